package store

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashcall/hashcall/internal/pgtest"
)

func TestOpenErrors(t *testing.T) {
	pg := pgtest.Start(t)
	dir := t.TempDir()
	notDB := filepath.Join(dir, "not.db")
	if err := os.WriteFile(notDB, []byte(strings.Repeat("this is not a database ", 100)), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		o       Options
		want    error
		notSays string // must not appear in the message
	}{
		{"unknown driver", Options{Driver: "mysql"}, ErrDriver, ""},
		{"sqlite: no path", Options{Driver: DriverSQLite}, ErrOpen, ""},
		{"sqlite: directory missing", Options{Path: filepath.Join(dir, "nope", "hashcall.db")}, ErrOpen, ""},
		{"sqlite: not a database", Options{Path: notDB}, ErrOpen, ""},
		{"postgres: no dsn", Options{Driver: DriverPostgres}, ErrBadDSN, ""},
		{"postgres: malformed dsn", Options{Driver: DriverPostgres, DSN: "postgres://hashcall:s3cret@[::1:5432/x"}, ErrBadDSN, "s3cret"},
		{"postgres: bad password", Options{Driver: DriverPostgres, DSN: pg.DSNWithPassword("postgres", "wrong-s3cret")}, ErrLogin, "wrong-s3cret"},
		{"postgres: no server", Options{Driver: DriverPostgres, DSN: "host=" + dir + " user=hashcall password=x dbname=x sslmode=disable connect_timeout=2"}, ErrOpen, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Open(context.Background(), tc.o)
			if err == nil {
				s.Close()
				t.Fatal("opened")
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if tc.notSays != "" && strings.Contains(err.Error(), tc.notSays) {
				t.Errorf("the error shows the secret: %v", err)
			}
		})
	}
}
