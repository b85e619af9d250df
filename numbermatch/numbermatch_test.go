package numbermatch_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/hashcall/hashcall/numbermatch"
)

// cycle is a random source giving the bytes 0 to 255 in turn, so that over
// 256·k bytes each value comes k times.
type cycle struct{ b byte }

func (c *cycle) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = c.b
		c.b++
	}
	return len(p), nil
}

// TestGenerateUniform: over every byte value, each digit comes equally
// often: the bytes 250–255 (which would favour 0–5 by modulo) are drawn
// again.
func TestGenerateUniform(t *testing.T) {
	var counts [10]int
	src := &cycle{}
	const codes = 250 // 250·10 digits from 2560 bytes
	for range codes {
		c, err := numbermatch.Generate(src, 10)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range c {
			counts[d-'0']++
		}
	}
	for d, n := range counts {
		if n != codes {
			t.Errorf("digit %d: %d times, want %d", d, n, codes)
		}
	}
}

func TestGenerate(t *testing.T) {
	tests := []struct {
		name string
		src  []byte
		n    int
		want string
		err  error
	}{
		{"six", []byte{0, 11, 22, 33, 44, 55, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, 6, "012345", nil},
		{"skips_250_and_up", []byte{250, 251, 252, 253, 254, 255, 7, 249, 9, 19, 29, 39, 0, 0, 0, 0}, 4, "7999", nil},
		{"too_short", nil, 3, "", numbermatch.ErrLength},
		{"too_long", nil, 11, "", numbermatch.ErrLength},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := numbermatch.Generate(bytes.NewReader(tc.src), tc.n)
			if !errors.Is(err, tc.err) || got != tc.want {
				t.Errorf("Generate = %q, %v; want %q, %v", got, err, tc.want, tc.err)
			}
		})
	}
	if _, err := numbermatch.Generate(iotest.ErrReader(errors.New("no entropy")), 6); err == nil {
		t.Error("a failing random source gave a code")
	}
	c, err := numbermatch.Generate(nil, numbermatch.DefaultLength)
	if err != nil || len(c) != 6 || strings.Trim(c, "0123456789") != "" {
		t.Errorf("crypto/rand code %q, %v", c, err)
	}
}

func TestCheck(t *testing.T) {
	h, err := numbermatch.NewHasher([]byte(strings.Repeat("x", 32)))
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name    string
		entries []string
		at      time.Duration // after t0; the code expires at t0 + 5 m
		want    []numbermatch.Verdict
	}{
		{"right", []string{"482910"}, time.Minute, []numbermatch.Verdict{numbermatch.Match}},
		{"wrong", []string{"482911"}, time.Minute, []numbermatch.Verdict{numbermatch.Mismatch}},
		{"prefix", []string{"48291"}, time.Minute, []numbermatch.Verdict{numbermatch.Mismatch}},
		{"longer", []string{"4829100"}, time.Minute, []numbermatch.Verdict{numbermatch.Mismatch}},
		{"empty", []string{""}, time.Minute, []numbermatch.Verdict{numbermatch.Mismatch}},
		{"wrong_then_right", []string{"000000", "482910"}, time.Minute, []numbermatch.Verdict{numbermatch.Mismatch, numbermatch.Match}},
		{"single_use", []string{"482910", "482910"}, time.Minute, []numbermatch.Verdict{numbermatch.Match, numbermatch.Used}},
		{"expired", []string{"482910"}, 5 * time.Minute, []numbermatch.Verdict{numbermatch.Expired}},
		{"expired_wrong", []string{"000000"}, 6 * time.Minute, []numbermatch.Verdict{numbermatch.Expired}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := h.Seal("482910", t0.Add(5*time.Minute))
			for i, e := range tc.entries {
				if got := s.Check([]byte(e), t0.Add(tc.at)); got != tc.want[i] {
					t.Errorf("entry %d %q: %v, want %v", i, e, got, tc.want[i])
				}
			}
		})
	}
	if _, err := numbermatch.NewHasher([]byte("short")); !errors.Is(err, numbermatch.ErrKeySize) {
		t.Errorf("short key: %v", err)
	}
}

// BenchmarkCheck: an entry's check is one HMAC-SHA256, far under the
// #-to-decision budget.
func BenchmarkCheck(b *testing.B) {
	s := numbermatch.NewRandomHasher().Seal("482910", time.Now().Add(time.Hour))
	entry := []byte("000000")
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		s.Check(entry, now)
	}
}
