// Package pgtest starts a real PostgreSQL server for tests: initdb and
// pg_ctl from the Debian postgresql package, run as the unprivileged
// "postgres" OS user (PostgreSQL refuses to run as root), with its data
// directory and its Unix socket in a temporary directory and no TCP
// listener, so parallel test runs never collide on a port. The server is
// stopped with "pg_ctl stop -m fast" when the test ends.
//
// When the programs are missing the test is skipped, or fails under
// HASHCALL_REQUIRE_PEERS=1 (testpeers.Required).
package pgtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver

	"github.com/hashcall/hashcall/internal/testpeers"
)

// BinDir is where Debian installs PostgreSQL 15's server programs.
const BinDir = "/usr/lib/postgresql/15/bin"

// Server is a running PostgreSQL server.
type Server struct {
	// Dir holds the data directory, the socket and the log.
	Dir      string
	User     string
	Password string
	cred     *syscall.Credential
	n        atomic.Int64
}

// Start initialises and starts a server for the test and stops it when the
// test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	for _, p := range []string{"initdb", "pg_ctl", "postgres"} {
		testpeers.File(t, filepath.Join(BinDir, p), "postgresql")
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		if testpeers.Required() {
			t.Fatalf("OS user postgres is missing (HASHCALL_REQUIRE_PEERS=1): install the Debian package postgresql")
		}
		t.Skip("OS user postgres is missing: install the Debian package postgresql")
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	s := &Server{User: "hashcall", Password: randomHex(12)}
	if os.Getuid() == 0 {
		s.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	// Not t.TempDir: its parents are private to root, and the server runs
	// as postgres.
	s.Dir, err = os.MkdirTemp("", "hcpg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(s.Dir) })
	if s.cred != nil {
		if err := os.Chown(s.Dir, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	pwfile := filepath.Join(s.Dir, "pw")
	if err := os.WriteFile(pwfile, []byte(s.Password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if s.cred != nil {
		_ = os.Chown(pwfile, uid, gid)
	}
	s.run(t, "initdb", "-D", s.data(), "-U", s.User, "--pwfile", pwfile, "-A", "scram-sha-256", "-E", "UTF8", "--no-locale", "--no-sync")
	opts := fmt.Sprintf("-c listen_addresses='' -k %s -c max_connections=100 -c fsync=on -c synchronous_commit=on", s.Dir)
	s.run(t, "pg_ctl", "-D", s.data(), "-l", filepath.Join(s.Dir, "log"), "-o", opts, "-w", "-t", "60", "start")
	t.Cleanup(func() {
		cmd := s.cmd("pg_ctl", "-D", s.data(), "-m", "fast", "-w", "stop")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("pg_ctl stop: %v\n%s", err, out)
		}
	})
	return s
}

func (s *Server) data() string { return filepath.Join(s.Dir, "data") }

func (s *Server) cmd(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(BinDir, name), args...)
	cmd.Dir = s.Dir
	if s.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	}
	return cmd
}

func (s *Server) run(t testing.TB, name string, args ...string) {
	t.Helper()
	cmd := s.cmd(name, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		log, _ := os.ReadFile(filepath.Join(s.Dir, "log"))
		t.Fatalf("%s: %v\n%s\n%s", name, err, out.Bytes(), log)
	}
}

// DSN returns a connection URL for database db as the superuser.
func (s *Server) DSN(db string) string {
	return s.DSNWithPassword(db, s.Password)
}

// DSNWithPassword is DSN with another password (to test a refused login).
func (s *Server) DSNWithPassword(db, password string) string {
	q := url.Values{"host": {s.Dir}, "sslmode": {"disable"}}
	return (&url.URL{Scheme: "postgres", User: url.UserPassword(s.User, password), Path: "/" + db, RawQuery: q.Encode()}).String()
}

// NewDatabase creates an empty database and returns its DSN.
func (s *Server) NewDatabase(t testing.TB) string {
	t.Helper()
	name := fmt.Sprintf("t%d_%s", s.n.Add(1), randomHex(4))
	db, err := sql.Open("pgx", s.DSN("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := db.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create database: %v", err)
	}
	return s.DSN(name)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
