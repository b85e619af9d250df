package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashcall/hashcall/dtmf"
	"github.com/hashcall/hashcall/internal/phone"
	"github.com/hashcall/hashcall/media"
	"github.com/hashcall/hashcall/prompts"
	"github.com/hashcall/hashcall/verify"
)

// pressAfter is when the simulated phones press, as a callee would: a
// moment after the embedded en-GB ask prompt says "press the hash key"
// (keys before it, or within verify.min_key_delay, do not count).
func pressAfter(t *testing.T) time.Duration {
	t.Helper()
	set, err := prompts.Load("", "en-GB")
	if err != nil {
		t.Fatal(err)
	}
	// 2 s of margin: under load (100 parallel calls with -race) the prompt
	// may start a while after the answer, and a key before its phrase is
	// early.
	return max(set.AskPressAt, verify.DefaultMinKeyDelay) + 2*time.Second
}

// TestCallAgainstSimulatedPhone drives `hashcall call --json` through a
// configuration file, against the simulated phone as the "trunk".
func TestCallAgainstSimulatedPhone(t *testing.T) {
	if testing.Short() {
		t.Skip("a real call")
	}
	tests := []struct {
		name, method, key, outcome string
		code                       int
	}{
		{"hash_by_info", phone.MethodInfo, "#", "verified", 0},
		{"five_is_wrong_key", phone.MethodRFC4733, "5", "wrong_key", 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ph, err := phone.Start(context.Background(), phone.Config{Method: tc.method, Key: dtmfKey(tc.key), After: pressAfter(t), Ports: media.PortRange{Low: 33000, High: 33999}})
			if err != nil {
				t.Fatal(err)
			}
			defer ph.Close()
			cfg := filepath.Join(t.TempDir(), "hashcall.yaml")
			yaml := fmt.Sprintf(`sip:
  listen: 127.0.0.1:0
  from: "+441234567890"
  trunk:
    address: %s
media:
  rtp_ports: "34000-34999"
verify:
  answer_timeout: 500ms
  attempts: 1
policy:
  max_concurrent: 10
`, ph.Addr())
			if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			out, errOut, code := run(t, "call", "--config", cfg, "--json", "+447700900123")
			if code != tc.code {
				t.Fatalf("exit %d, want %d; stderr:\n%s", code, tc.code, errOut)
			}
			var res map[string]any
			if err := json.Unmarshal([]byte(out), &res); err != nil {
				t.Fatalf("stdout %q: %v", out, err)
			}
			for _, k := range []string{"outcome", "sip_code", "dtmf_source", "codec"} {
				if _, ok := res[k]; !ok {
					t.Errorf("result lacks %q: %v", k, res)
				}
			}
			if res["outcome"] != tc.outcome {
				t.Errorf("outcome %v, want %s", res["outcome"], tc.outcome)
			}
			if strings.Contains(out+errOut, "+447700900123") {
				t.Error("the number appears unmasked")
			}
		})
	}
	// Usage and configuration errors exit 2.
	if _, _, code := run(t, "call", "--config", filepath.Join(t.TempDir(), "none.yaml"), "123"); code != 2 {
		t.Errorf("missing config file: exit %d, want 2", code)
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	_ = os.WriteFile(bad, []byte("sip:\n  ring_timeout: soon\n"), 0o600)
	if _, errOut, code := run(t, "call", "--config", bad, "123"); code != 2 || !strings.Contains(errOut, "sip.ring_timeout") {
		t.Errorf("bad value: exit %d, stderr %q", code, errOut)
	}
}

func dtmfKey(s string) dtmf.Key { return dtmf.Key(s[0]) }

// TestConfigCheck: `hashcall config check` prints the effective
// configuration with secrets masked, and exits 2 naming a bad key.
func TestConfigCheck(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	_ = os.WriteFile(good, []byte("sip:\n  trunk:\n    address: 127.0.0.1:5060\n    username: hashcall\n"), 0o600)
	t.Setenv("HASHCALL_SIP_TRUNK_PASSWORD", "pa55word-from-env")
	t.Setenv("HASHCALL_HTTP_TOKENS", "token-aaaaaaaaaaaaaaaa,token-bbbbbbbbbbbbbbbb")
	t.Setenv("HASHCALL_STORE_DRIVER", "postgres")
	t.Setenv("HASHCALL_STORE_DSN", "postgres://hashcall:Db-pa55-from-env@db.example.org/hashcall")
	t.Setenv("HASHCALL_AUDIT_HMAC_KEY", "audit-key-from-env-0123456789")
	out, errOut, code := run(t, "config", "check", "--config", good)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, secret := range []string{"pa55word-from-env", "token-aaaa", "Db-pa55-from-env", "audit-key-from-env"} {
		if strings.Contains(out, secret) {
			t.Errorf("a secret is printed (%s):\n%s", secret, out)
		}
	}
	for _, want := range []string{"address: 127.0.0.1:5060", "password: '********'", "ring_timeout: 30s", "dsn: '********'", "hmac_key: '********'", "driver: postgres", "retention: 720h"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	bad := filepath.Join(dir, "bad.yaml")
	_ = os.WriteFile(bad, []byte("media:\n  rtp_ports: \"20001-20000\"\n  codec: [PCMA]\n"), 0o600)
	_, errOut, code = run(t, "config", "check", "--config", bad)
	if code != 2 || !strings.Contains(errOut, "media.rtp_ports") || !strings.Contains(errOut, "media.codec") {
		t.Errorf("bad config: exit %d, stderr %q", code, errOut)
	}
}

// TestCallPolicy: `hashcall call` applies the toll-fraud policy as the
// daemon does (a refused number exits 2 naming the rule, and no call
// reaches the phone) unless --no-policy is given.
func TestCallPolicy(t *testing.T) {
	if testing.Short() {
		t.Skip("real calls")
	}
	tests := []struct {
		name     string
		args     []string
		code     int
		want     string // in stderr
		answered int    // calls the phone answered
	}{
		{"landline refused", []string{"+442079460123"}, 2, "allowed_types", 0},
		{"premium rate refused", []string{"+449098790123"}, 2, "premium_rate", 0},
		{"another region refused", []string{"+33612345678"}, 2, "allowed_regions", 0},
		{"not a number", []string{"+44abc"}, 2, "malformed", 0},
		{"mobile called", []string{"+447700900123"}, 0, "verified", 1},
		{"landline with --no-policy", []string{"--no-policy", "+442079460123"}, 0, "verified", 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ph, err := phone.Start(context.Background(), phone.Config{Method: phone.MethodInfo, Key: '#', After: pressAfter(t), Ports: media.PortRange{Low: 33000, High: 33999}})
			if err != nil {
				t.Fatal(err)
			}
			defer ph.Close()
			cfg := filepath.Join(t.TempDir(), "hashcall.yaml")
			yaml := fmt.Sprintf("sip:\n  listen: 127.0.0.1:0\n  from: \"+441234567890\"\n  trunk:\n    address: %s\nmedia:\n  rtp_ports: \"34000-34999\"\nverify:\n  answer_timeout: 500ms\n  attempts: 1\n", ph.Addr())
			if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			_, errOut, code := run(t, append([]string{"call", "--config", cfg}, tc.args...)...)
			if code != tc.code || !strings.Contains(errOut, tc.want) {
				t.Fatalf("exit %d, want %d with %q in stderr:\n%s", code, tc.code, tc.want, errOut)
			}
			if tc.code == 2 && !strings.Contains(errOut, "--no-policy") {
				t.Errorf("the refusal does not say how to override it: %s", errOut)
			}
			if got := ph.Answered(); got != tc.answered {
				t.Errorf("the phone answered %d calls, want %d", got, tc.answered)
			}
			if strings.Contains(errOut, "2079460123") || strings.Contains(errOut, "9098790123") {
				t.Errorf("a number appears unmasked: %s", errOut)
			}
		})
	}
}
