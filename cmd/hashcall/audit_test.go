package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashcall/hashcall/internal/store"
)

// auditFixture writes a configuration whose store holds three audit rows.
func auditFixture(t *testing.T) (cfg, db string) {
	t.Helper()
	dir := t.TempDir()
	db = filepath.Join(dir, "hashcall.db")
	cfg = filepath.Join(dir, "hashcall.yaml")
	y := fmt.Sprintf("store:\n  path: %s\naudit:\n  hmac_key: audit-key-0123456789\n", db)
	if err := os.WriteFile(cfg, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := store.Open(context.Background(), store.Options{Path: db, AuditKey: []byte("audit-key-0123456789")})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i, rule := range []string{"per_number_limit", "allowed_regions", "global_rate"} {
		if err := s.Audit(context.Background(), store.AuditEvent{Event: store.EventRefusal, Scope: "tok",
			E164: fmt.Sprintf("+44770090012%d", i), Masked: "+4477*****12" + fmt.Sprint(i), Rule: rule}); err != nil {
			t.Fatal(err)
		}
	}
	return cfg, db
}

func TestAuditCommands(t *testing.T) {
	cfg, db := auditFixture(t)
	cases := []struct {
		name     string
		args     []string
		tamper   string
		code     int
		stdout   string // contained
		lines    int    // JSON lines, for export
		stderrIn string
	}{
		{name: "verify intact", args: []string{"audit", "verify", "--config", cfg}, code: 0, stdout: "audit log intact: 3 rows"},
		{name: "export all", args: []string{"audit", "export", "--config", cfg}, lines: 3},
		{name: "export since a duration", args: []string{"audit", "export", "--config", cfg, "--since", "1h"}, lines: 3},
		{name: "export since tomorrow", args: []string{"audit", "export", "--config", cfg, "--since", time.Now().Add(48 * time.Hour).Format(time.DateOnly)}, lines: 0},
		{name: "export bad since", args: []string{"audit", "export", "--config", cfg, "--since", "last tuesday"}, code: 2, stderrIn: "--since: want an RFC 3339 time"},
		{name: "verify tampered", args: []string{"audit", "verify", "--config", cfg}, tamper: `UPDATE audit SET rule = 'none' WHERE seq = 2`,
			code: 1, stdout: "audit log broken at row 2: the row was changed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.tamper != "" {
				d, err := sql.Open("sqlite", db)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := d.Exec(tc.tamper); err != nil {
					t.Fatal(err)
				}
				d.Close()
			}
			out, errOut, code := run(t, tc.args...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\n%s%s", code, tc.code, out, errOut)
			}
			if !strings.Contains(out, tc.stdout) {
				t.Errorf("stdout %q lacks %q", out, tc.stdout)
			}
			if tc.stderrIn != "" && !strings.Contains(errOut, tc.stderrIn) {
				t.Errorf("stderr %q lacks %q", errOut, tc.stderrIn)
			}
			if tc.args[1] == "export" && tc.code == 0 {
				var n int
				for l := range strings.Lines(out) {
					var r map[string]any
					if err := json.Unmarshal([]byte(l), &r); err != nil {
						t.Fatalf("not a JSON line: %q", l)
					}
					if strings.Contains(l, "+447700900") {
						t.Errorf("an export holds a whole number: %s", l)
					}
					if r["to_hmac"] == "" || r["hash"] == "" || r["event"] != "refusal" {
						t.Errorf("row %s", l)
					}
					n++
				}
				if n != tc.lines {
					t.Errorf("%d lines, want %d", n, tc.lines)
				}
			}
		})
	}
}

func TestAuditStoreErrors(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "hashcall.yaml")
	if err := os.WriteFile(cfg, []byte("store:\n  path: "+filepath.Join(dir, "missing", "h.db")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, errOut, code := run(t, "audit", "verify", "--config", cfg)
	if code != 2 || !strings.Contains(errOut, "does not exist") {
		t.Errorf("exit %d: %s", code, errOut)
	}
}
