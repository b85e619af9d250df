// Skipping or failing a test when a peer program, file or corpus is
// missing.

package testpeers

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Required reports whether missing peers fail tests instead of skipping them.
func Required() bool { return os.Getenv("HASHCALL_REQUIRE_PEERS") == "1" }

// missing skips or fails t.
func missing(t testing.TB, what, pkg string) {
	t.Helper()
	if Required() {
		t.Fatalf("%s is missing (HASHCALL_REQUIRE_PEERS=1): install the Debian package %s", what, pkg)
	}
	t.Skipf("%s is missing: install the Debian package %s (make test does this as root)", what, pkg)
}

// Program returns the path of the named program, or skips/fails t.
func Program(t testing.TB, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		missing(t, "program "+name, pkg)
	}
	return p
}

// File returns path when it exists, or skips/fails t.
func File(t testing.TB, path, pkg string) string {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		missing(t, path, pkg)
	}
	return path
}

// Glob returns the files matching the patterns, or skips/fails t when
// none match.
func Glob(t testing.TB, pkg string, patterns ...string) []string {
	t.Helper()
	var files []string
	for _, p := range patterns {
		m, err := filepath.Glob(p)
		if err != nil {
			t.Fatalf("bad pattern %q: %v", p, err)
		}
		files = append(files, m...)
	}
	if len(files) == 0 {
		missing(t, "files matching "+patterns[0], pkg)
	}
	return files
}
