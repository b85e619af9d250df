package sip

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo"
)

// TestSipgoTooManyResponsesText pins the text tooManyResponses matches to
// the sipgo in go.mod: sipgo returns it from a plain fmt.Errorf, so an
// upgrade that rewords it must fail here rather than silently stop Dial
// reading on past a carrier's repeated 18x.
func TestSipgoTooManyResponsesText(t *testing.T) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/emiago/sipgo").Output()
	if err != nil {
		t.Fatalf("go list sipgo: %v", err)
	}
	src, err := os.ReadFile(filepath.Join(strings.TrimSpace(string(out)), "dialog_client.go"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(src), `fmt.Errorf("`+sipgoTooManyResponses+`")`) {
		t.Fatalf("sipgo's dialog_client.go no longer returns %q: update tooManyResponses", sipgoTooManyResponses)
	}
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"sipgo's", errors.New(sipgoTooManyResponses), true},
		{"nil", nil, false},
		{"another", errors.New("transaction terminated"), false},
		{"wrapped text in another", errors.New("x: " + sipgoTooManyResponses), false},
	} {
		if got := tooManyResponses(tc.err); got != tc.want {
			t.Errorf("%s: tooManyResponses = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestSplitHostPort pins the host[:port] forms addresses are read in.
func TestSplitHostPort(t *testing.T) {
	for _, tc := range []struct {
		in      string
		host    string
		port    int
		wantErr bool
	}{
		{in: "pbx.example.net", host: "pbx.example.net", port: 5060},
		{in: "pbx.example.net:5080", host: "pbx.example.net", port: 5080},
		{in: "192.0.2.1", host: "192.0.2.1", port: 5060},
		{in: "[2001:db8::1]", host: "2001:db8::1", port: 5060},
		{in: "[2001:db8::1]:5070", host: "2001:db8::1", port: 5070},
		{in: "2001:db8::1", wantErr: true},
		{in: "[2001:db8::1", wantErr: true},
		{in: "host:0", wantErr: true},
		{in: "host:99999", wantErr: true},
		{in: "host:x", wantErr: true},
	} {
		h, p, err := splitHostPort(tc.in, 5060)
		if (err != nil) != tc.wantErr || !tc.wantErr && (h != tc.host || p != tc.port) {
			t.Errorf("splitHostPort(%q) = %q, %d, %v; want %q, %d, error %v", tc.in, h, p, err, tc.host, tc.port, tc.wantErr)
		}
	}
}

// TestCloseStopsLateTimers: the timers that forget the dialogs of
// cancelled calls (awaitLate, 64*T1) do not outlive Close, and none is
// armed after it.
func TestCloseStopsLateTimers(t *testing.T) {
	ua, err := NewUA(t.Context(), Config{Listen: "127.0.0.1:0", Trunk: Trunk{Address: "127.0.0.1:5", OptionsInterval: -1}})
	if err != nil {
		t.Fatal(err)
	}
	sess := &sipgo.DialogClientSession{}
	ua.awaitLate("a", sess)
	ua.awaitLate("b", sess)
	ua.awaitLate("a", sess) // re-armed: the first timer of a is stopped
	ua.mu.Lock()
	timers := []*time.Timer{ua.late["a"].timer, ua.late["b"].timer}
	n := len(ua.late)
	ua.mu.Unlock()
	if n != 2 {
		t.Fatalf("%d late dialogs, want 2", n)
	}
	if err := ua.Close(); err != nil {
		t.Fatal(err)
	}
	for i, tm := range timers {
		if tm.Stop() {
			t.Errorf("timer %d still pending after Close", i)
		}
	}
	ua.awaitLate("c", sess)
	ua.mu.Lock()
	n = len(ua.late)
	ua.mu.Unlock()
	if n != 0 {
		t.Errorf("%d late dialogs after Close, want 0", n)
	}
}
