package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashcall/hashcall/internal/eam"
)

func TestKeysGenerate(t *testing.T) {
	out := filepath.Join(t.TempDir(), "eam-key.pem")
	stdout, stderr, code := run(t, "keys", "generate", "--out", out, "--cn", "mfa.example.org", "--days", "30")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	k, err := eam.LoadSigningKey(out)
	if err != nil {
		t.Fatal(err)
	}
	if k.Key.N.BitLen() != 3072 || k.Certs[0].Subject.CommonName != "mfa.example.org" || !strings.Contains(stdout, "kid "+k.KeyID) {
		t.Errorf("bits %d, CN %q, stdout %q", k.Key.N.BitLen(), k.Certs[0].Subject.CommonName, stdout)
	}
	if st, _ := os.Stat(out); st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", st.Mode().Perm())
	}
	// An existing file is never overwritten.
	if _, _, code := run(t, "keys", "generate", "--out", out); code != 2 {
		t.Errorf("overwrite: exit %d, want 2", code)
	}
	if _, _, code := run(t, "keys", "generate"); code != 2 {
		t.Errorf("no --out: exit %d, want 2", code)
	}
}
