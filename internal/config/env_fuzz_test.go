package config

import (
	"strings"
	"testing"
)

// FuzzEnv feeds the environment layer: one HASHCALL_* variable (the key
// picked by index, with the trunk address and a callback secret set too,
// so that the other keys' checks are reached) over an empty file. Load
// either fails, naming the key, or returns a configuration that validates;
// a secret's value never shows in an error.
func FuzzEnv(f *testing.F) {
	f.Fuzz(func(t *testing.T, index uint8, value string) {
		clearEnv(t)
		fl := fields[int(index)%len(fields)]
		t.Setenv("HASHCALL_SIP_TRUNK_ADDRESS", "pbx.example.org:5060")
		t.Setenv("HASHCALL_HTTP_CALLBACK_SECRET", strings.Repeat("c", MinCallbackSecret))
		if strings.ContainsRune(value, 0) {
			return // not representable in the environment
		}
		t.Setenv(fl.env, value)
		c, err := Load(writeFile(t, t.TempDir(), "hashcall.yaml", ""))
		if err != nil {
			msg := err.Error()
			if !strings.Contains(msg, fl.key) && !strings.Contains(msg, "sip.") && !strings.Contains(msg, "media.") {
				t.Fatalf("%s=%q: error does not name a key: %v", fl.env, value, err)
			}
			if fl.secret && len(value) >= 24 && strings.Contains(msg, value) {
				t.Fatalf("%s: the error reveals the secret: %v", fl.env, err)
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("%s=%q: Load accepted a configuration that does not validate: %v", fl.env, value, err)
		}
	})
}
