// Package testpeers is test support, not product code: it runs the real
// peer programs hashcall's tests talk to, all on 127.0.0.1, each one
// started in a directory of its own and ended by its PID when the test
// ends. Nothing outside _test.go files imports it.
//
//   - baresip (Debian baresip-core, 1.0.0), driven over its ctrl_tcp
//     module, whose messages are netstrings (netstring.go);
//   - linphonec (Debian linphone-cli, 5.1), driven over stdin;
//   - tshark (Debian tshark), capturing calls into pcap/pcapng files;
//   - the free loopback ports the phones take, and the child process
//     type that logs their output and waits on it (proc.go, ports.go);
//   - Program, File and Glob, which skip a test cleanly when a program,
//     file or corpus is missing, naming the Debian package to install, or
//     fail it instead when HASHCALL_REQUIRE_PEERS=1 (as CI sets it).
//
// Each phone runner writes the phone's configuration from the templates
// in testdata/ into its directory, starts the phone, waits until it is
// ready (on its output or its control socket, never by sleeping), presses
// keys during a call and stops it by its PID.
//
// By default a phone takes calls on its own SIP port, so hashcall can call
// it directly (trunk address = the phone's address, number = its user).
// With a [Registrar] it registers at a registrar/proxy such as Kamailio
// and is reached through it.
//
// PostgreSQL has its own starter, internal/pgtest: it is a database
// server rather than a peer on the wire, and keeping it apart keeps the
// pgx driver out of every test binary that only needs a phone.
//
// The tests of this package place real verification calls to the phones;
// see phones_test.go.
package testpeers

import (
	"bytes"
	"context"
	"embed"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"text/template"
	"time"
)

// Registrar is where a phone registers: a registrar/proxy with digest
// authentication (Kamailio in internal/interop).
type Registrar struct {
	// Address is the registrar's host:port (UDP); REGISTERs and the
	// phone's outgoing requests go there.
	Address string
	// Domain is the SIP domain of the phone's address of record; empty
	// means Address (user@host:port).
	Domain string
	// Username and Password are the digest credentials; Username defaults
	// to the phone's user.
	Username, Password string
	// Expiry is the registration interval; default 60 s.
	Expiry time.Duration
}

func (r *Registrar) expiry() time.Duration {
	if r.Expiry <= 0 {
		return 60 * time.Second
	}
	return r.Expiry
}

// aorHost is the host[:port] of the phone's address of record.
func (r *Registrar) aorHost() string {
	if r.Domain != "" {
		return r.Domain
	}
	return r.Address
}

//go:embed testdata/baresip/*.tmpl testdata/linphone/*.tmpl
var templates embed.FS

// render writes the template testdata/name filled with data to path.
func render(path, name string, data any) error {
	t, err := template.ParseFS(templates, "testdata/"+name)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, data); err != nil {
		return err
	}
	return os.WriteFile(path, buf.Bytes(), 0o644)
}

// phone is what RunBaresip and RunLinphone run.
type phone interface {
	Stop() error
	PID() int
}

// runPhone is RunBaresip's and RunLinphone's shape: it skips the test in
// -short mode or when the program name (from the Debian package pkg) is
// missing, fills in *binary and *dir (t.TempDir()), starts the phone,
// prints dir/name.log when that fails and, when the test ends, stops it
// by its PID and calls failed if the test failed.
func runPhone[P phone](t testing.TB, name, pkg string, binary, dir *string, start func() (P, error), failed func(P)) P {
	t.Helper()
	if testing.Short() {
		t.Skipf("real softphone (%s): not in -short mode", name)
	}
	if *binary == "" {
		*binary = Program(t, name, pkg)
	}
	if *dir == "" {
		*dir = t.TempDir()
	}
	p, err := start()
	if err != nil {
		if log := filepath.Join(*dir, name+".log"); fileExists(log) {
			logFile(t, log)
		}
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Stop(); err != nil {
			t.Errorf("stopping %s (pid %d): %v", name, p.PID(), err)
		}
		if t.Failed() {
			failed(p)
		}
	})
	return p
}

// pause lets d pass, as a callee takes time before pressing a key; it
// returns early with the context's cause when ctx ends first.
func pause(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// logFile prints a log file into the test's output, the last maxLines
// lines of it.
func logFile(t testing.TB, path string) {
	t.Helper()
	const maxLines = 400
	b, err := os.ReadFile(path)
	if err != nil {
		t.Logf("reading %s: %v", path, err)
		return
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > maxLines {
		t.Logf("%s (last %d of %d lines):", path, maxLines, len(lines))
		lines = lines[len(lines)-maxLines:]
	} else {
		t.Logf("%s:", path)
	}
	t.Log("\n" + strings.Join(lines, "\n"))
}
