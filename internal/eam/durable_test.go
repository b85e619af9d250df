package eam

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashcall/hashcall/internal/store"
)

// TestStoreBacked: enrolments and claims kept in the store hold across a
// reopen (a restart).
func TestStoreBacked(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "hashcall.db")
	open := func() StoreBacked {
		st, err := store.Open(ctx, store.Options{Path: path, AuditKey: []byte("k")})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return StoreBacked{Store: st}
	}
	s := open()
	if _, err := s.Enrolled(ctx, "tid", "oid"); !errors.Is(err, ErrNotEnrolled) {
		t.Fatalf("before enrolment: %v", err)
	}
	if err := s.Enrol(ctx, "tid", "oid", "+447700900123", "vrf_1"); err != nil {
		t.Fatal(err)
	}
	exp := time.Now().Add(10 * time.Minute)
	if ok, err := s.Claim(ctx, "n", "s", exp); !ok || err != nil {
		t.Fatalf("first claim: %v %v", ok, err)
	}
	s.Store.Close()
	s = open()
	if n, err := s.Enrolled(ctx, "tid", "oid"); err != nil || n != "+447700900123" {
		t.Errorf("after a restart: %q %v", n, err)
	}
	if ok, err := s.Claim(ctx, "n", "s", exp); ok || err != nil {
		t.Errorf("a replay after a restart: %v %v, want refused", ok, err)
	}
}
