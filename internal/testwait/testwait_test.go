package testwait

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestOutputWait(t *testing.T) {
	var o Output
	go func() {
		for i := range 50 {
			fmt.Fprintf(&o, "line %d\n", i)
		}
	}()
	if err := o.WaitContains(t.Context(), "line 49\n"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Millisecond)
	defer cancel()
	if err := o.WaitContains(ctx, "line 50"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("waiting for what never comes: %v", err)
	}
}

func TestWaitFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	go func() {
		f, err := os.Create(path) // created after the wait began, written in pieces
		if err != nil {
			t.Error(err)
			return
		}
		defer f.Close()
		for i := range 20 {
			fmt.Fprintf(f, "line %d\n", i)
		}
	}()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := WaitFile(ctx, path, func(s string) bool { return bytes.Contains([]byte(s), []byte("line 19\n")) }); err != nil {
		t.Fatal(err)
	}
	short, cancel2 := context.WithTimeout(t.Context(), 10*time.Millisecond)
	defer cancel2()
	if err := WaitFile(short, path, func(s string) bool { return bytes.Contains([]byte(s), []byte("line 20")) }); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("waiting for what never comes: %v", err)
	}
}

func TestUntil(t *testing.T) {
	n := 0
	if err := Until(t.Context(), func() bool { n++; return n == 3 }); err != nil || n != 3 {
		t.Fatalf("%v after %d checks", err, n)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Millisecond)
	defer cancel()
	if err := Until(ctx, func() bool { return false }); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatal(err)
	}
}
