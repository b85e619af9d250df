package interop

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashcall/hashcall/internal/testpeers"
)

// buildCLI builds cmd/hashcall into dir.
func buildCLI(t *testing.T, dir string) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is not on PATH: %v", err)
	}
	bin := filepath.Join(dir, "hashcall")
	cmd := exec.Command(goBin, "build", "-buildvcs=false", "-o", bin, "github.com/hashcall/hashcall/cmd/hashcall")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/hashcall: %v\n%s", err, out)
	}
	return bin
}

// cliEnv is the environment without any HASHCALL_ setting, plus extra.
func cliEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "HASHCALL_") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// TestCLICallThroughKamailio runs the built binary, `hashcall call --config
// FILE --json NUMBER`, with a YAML configuration pointing at Kamailio and
// the trunk password in HASHCALL_SIP_TRUNK_PASSWORD only.
func TestCLICallThroughKamailio(t *testing.T) {
	l := startLab(t)
	var (
		once sync.Once
		bin  string
	)
	// 0.5 s prompts (no ask.json: keys count from the ask's end and
	// verify.min_key_delay, 1.5 s), as the serve tests use; the SIPp phone
	// presses 2 s in.
	promptsDir := writeShortPrompts(t)
	tests := []struct {
		name     string
		scenario string // "" for a call that never reaches a UAS
		number   string
		realm    string
		exit     int
		outcome  string
		source   string
		code     int
	}{
		{"rfc4733_hash_verified", "rfc4733_pound", "", trunkRealm, 0, "verified", "rfc4733", 200},
		{"busy_486", "busy", "", "", 1, "busy", "", 486},
		// sip.trunk.realm reaches the UA: a challenge for another realm is
		// refused and the password never sent.
		{"wrong_realm_refused", "", "9006", "other.example.org", 1, "failed", "", 407},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			number := tc.number
			var u *uas
			if tc.scenario != "" {
				u = l.startUAS(t, tc.scenario) // skips first when it cannot run
				number = u.scenario.number
			}
			// hashcall call applies the toll-fraud policy (UK mobiles by
			// default): dial the test number's UK mobile alias, which the
			// lab routes to the same phone.
			number = mobileNumber(number)
			once.Do(func() { bin = buildCLI(t, l.dir) })
			if bin == "" {
				t.Fatal("hashcall was not built")
			}
			low, high := rtpPorts(t)
			cfg := filepath.Join(t.TempDir(), "hashcall.yaml")
			yaml := fmt.Sprintf(`# hashcall through the interop Kamailio; the password comes from
# HASHCALL_SIP_TRUNK_PASSWORD.
sip:
  listen: 127.0.0.1:0
  from: %q
  ring_timeout: 5s
  max_call_duration: 20s
  trunk:
    address: %s
    username: %s
    realm: %q
    options_interval: 0s
media:
  rtp_ports: "%d-%d"
verify:
  answer_timeout: 2s
  attempts: 1
  locale: en-GB
prompts:
  dir: %s
policy:
  max_concurrent: 1
`, callerID, l.kamAddr, trunkUser, tc.realm, low, high, promptsDir)
			if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(t.Context(), callTimeout)
			defer cancel()
			mark := len(l.kamLog())
			cmd := exec.CommandContext(ctx, bin, "call", "--config", cfg, "--json", number)
			cmd.Env = cliEnv("HASHCALL_SIP_TRUNK_PASSWORD=" + trunkPassword)
			cmd.SysProcAttr = testpeers.ChildAttr()
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			code := 0
			var ee *exec.ExitError
			switch {
			case errors.As(err, &ee):
				code = ee.ExitCode()
			case err != nil:
				t.Fatalf("running hashcall: %v", err)
			}
			t.Cleanup(func() {
				if t.Failed() || showLogs() {
					t.Logf("hashcall call exit %d\nstdout: %s\nstderr:\n%s", code, stdout.String(), stderr.String())
				}
			})
			if code != tc.exit {
				t.Errorf("exit status %d, want %d", code, tc.exit)
			}
			var res struct {
				Outcome          string  `json:"outcome"`
				SIPCode          int     `json:"sip_code"`
				DTMFSource       string  `json:"dtmf_source"`
				Codec            string  `json:"codec"`
				SetupMS          float64 `json:"setup_ms"`
				HashToDecisionMS float64 `json:"hash_to_decision_ms"`
			}
			if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
				t.Fatalf("stdout is not one JSON object: %v", err)
			}
			if res.Outcome != tc.outcome || res.SIPCode != tc.code || res.DTMFSource != tc.source {
				t.Errorf("outcome %q, sip_code %d, dtmf_source %q; want %q, %d, %q", res.Outcome, res.SIPCode, res.DTMFSource, tc.outcome, tc.code, tc.source)
			}
			if res.Outcome == "verified" {
				t.Logf("%s (CLI): call set-up %.1f ms, #-to-decision %.1f ms", tc.name, res.SetupMS, res.HashToDecisionMS)
			}
			if strings.Contains(stdout.String()+stderr.String(), trunkPassword) {
				t.Error("the trunk password appears in hashcall's output")
			}
			authenticated := countLines(l.kamLog()[mark:], "interop: authenticated INVITE au="+trunkUser)
			if want := u != nil; (authenticated == 1) != want {
				t.Errorf("Kamailio authenticated %d INVITEs from the CLI", authenticated)
			}
			if u != nil {
				if c := u.finish(t, 10*time.Second); c != 0 {
					t.Errorf("SIPp %s exited with status %d, want 0", tc.scenario, c)
				}
			}
		})
	}
}
