package directory

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func TestNormaliseUser(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     []string
	}{
		{"plain", "alice", []string{"alice"}},
		{"upn", "Alice@Example.ORG", []string{"alice@example.org", "alice"}},
		{"down_level", `CORP\Alice`, []string{"alice"}},
		{"spaces", "  bob ", []string{"bob"}},
		{"empty", "", nil},
		{"domain_only", `CORP\`, nil},
		{"leading_at", "@example.org", []string{"@example.org"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := NormaliseUser(tc.in); !slices.Equal(got, tc.want) {
				t.Errorf("NormaliseUser(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func writeFile(t *testing.T, path, body string, mod time.Time) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path, mod, mod); err != nil {
		t.Fatal(err)
	}
}

func TestCSV(t *testing.T) {
	path := filepath.Join(t.TempDir(), "users.csv")
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	writeFile(t, path, "\ufeffoid,user,mobile,dept\n"+
		"# exported nightly\n"+
		"0F1E2D3C-0000-4000-8000-000000000001,alice@example.org,+447700900123,ops\n"+
		",bob,07700 900456,\n"+
		",carol@example.org,,\n", t0)
	d, err := OpenCSV(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, tc := range []struct {
		name, key, want string
	}{
		{"upn", "alice@example.org", "+447700900123"},
		{"upn_case", "ALICE@example.org", "+447700900123"},
		{"oid", "0f1e2d3c-0000-4000-8000-000000000001", "+447700900123"},
		{"down_level", `CORP\bob`, "07700 900456"},
		{"upn_of_plain_user", "bob@corp.example", "07700 900456"},
		{"no_number", "carol@example.org", ""},
		{"unknown", "mallory", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, err := d.Lookup(ctx, tc.key)
			if tc.want == "" {
				if !errors.Is(err, ErrNotFound) {
					t.Fatalf("Lookup(%q) = %+v, %v; want ErrNotFound", tc.key, e, err)
				}
				return
			}
			if err != nil || e.Number != tc.want {
				t.Fatalf("Lookup(%q) = %+v, %v; want number %s", tc.key, e, err, tc.want)
			}
		})
	}

	// A replaced file is read on the next lookup; a broken one keeps the
	// last good contents and says what is wrong.
	writeFile(t, path, "user,mobile\nmallory,+447700900999\n", t0.Add(time.Minute))
	if e, err := d.Lookup(ctx, "mallory"); err != nil || e.Number != "+447700900999" {
		t.Fatalf("after reload: %+v, %v", e, err)
	}
	writeFile(t, path, "name,phone\nx,y\n", t0.Add(2*time.Minute))
	if err := d.Reload(); err == nil {
		t.Fatal("Reload of a file without user/mobile columns: no error")
	}
	if e, err := d.Lookup(ctx, "mallory"); err != nil || e.Number != "+447700900999" {
		t.Fatalf("after a bad reload the last good contents answer: %+v, %v", e, err)
	}
}

func TestOpenCSVErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ name, body string }{
		{"empty", ""},
		{"no_mobile_column", "user\nalice\n"},
		{"duplicate_user", "user,mobile\nalice,+447700900123\nALICE,+447700900124\n"},
		{"empty_user", "user,mobile\n,+447700900123\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, tc.name+".csv")
			writeFile(t, p, tc.body, time.Now())
			if _, err := OpenCSV(p); err == nil {
				t.Fatal("no error")
			}
		})
	}
	if _, err := OpenCSV(filepath.Join(dir, "missing.csv")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v, want os.ErrNotExist", err)
	}
}
