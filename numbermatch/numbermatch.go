// Package numbermatch is the secret of verify mode code (number matching):
// a code of decimal digits that the auth service shows on the screen and
// the callee keys on the phone, then #.
//
// NIST SP 800-63B rev 4 (§3.1.3.2, out-of-band authenticators) no longer
// accepts approve-only out-of-band authentication: when the approval
// happens on the secondary channel, the user must transfer a secret from
// the primary channel — at least 6 decimal digits from an approved random
// generator, valid for at most 10 minutes, used once, with the failed
// attempts limited (§3.2.2) and not reset by a new secret. This package
// draws the code (crypto/rand, uniform digits by rejection sampling: no
// modulo bias), keeps it only as an HMAC-SHA256 under a key of its own,
// compares an entry in constant time, honours the expiry and lets a code
// match once. Counting failed codes per number is internal/policy's
// FailureCounter.
package numbermatch

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"
)

// Limits and defaults of the code (verify.code_length, verify.code_ttl).
const (
	MinLength     = 4
	MaxLength     = 10
	DefaultLength = 6
	DefaultTTL    = 5 * time.Minute
	MaxTTL        = 10 * time.Minute // NIST SP 800-63B rev 4 §3.1.3.2
	// MinKeySize is the shortest HMAC key accepted (verify.code_key).
	MinKeySize = 32
)

// ErrLength is wrapped by Generate's error for a length outside
// MinLength..MaxLength.
var ErrLength = fmt.Errorf("numbermatch: the code length must be %d to %d digits", MinLength, MaxLength)

// ErrKeySize is wrapped by NewHasher's error for a key under MinKeySize.
var ErrKeySize = fmt.Errorf("numbermatch: the key must be at least %d bytes", MinKeySize)

// Generate draws a code of n decimal digits from r (crypto/rand.Reader when
// nil). Each digit comes from one random byte below 250, taken mod 10;
// bytes of 250 and up are drawn again, so that every digit is equally
// likely.
func Generate(r io.Reader, n int) (string, error) {
	if n < MinLength || n > MaxLength {
		return "", fmt.Errorf("%w, got %d", ErrLength, n)
	}
	if r == nil {
		r = rand.Reader
	}
	code := make([]byte, 0, n)
	var buf [16]byte
	for len(code) < n {
		if _, err := io.ReadFull(r, buf[:]); err != nil {
			return "", fmt.Errorf("numbermatch: random source: %w", err)
		}
		for _, b := range buf {
			if b >= 250 || len(code) == n {
				continue
			}
			code = append(code, '0'+b%10)
		}
	}
	return string(code), nil
}

// Hasher keys the codes' hashes. One per process (NewRandomHasher) unless
// verify.code_key configures one that several instances share.
type Hasher struct{ key []byte }

// NewHasher returns a hasher with key (at least MinKeySize bytes).
func NewHasher(key []byte) (*Hasher, error) {
	if len(key) < MinKeySize {
		return nil, fmt.Errorf("%w, got %d", ErrKeySize, len(key))
	}
	return &Hasher{key: append([]byte(nil), key...)}, nil
}

// NewRandomHasher returns a hasher with a fresh random key.
func NewRandomHasher() *Hasher {
	key := make([]byte, MinKeySize)
	_, _ = rand.Read(key) // never fails (crypto/rand)
	return &Hasher{key: key}
}

func (h *Hasher) sum(entry []byte) [sha256.Size]byte {
	m := hmac.New(sha256.New, h.key)
	m.Write(entry)
	var s [sha256.Size]byte
	m.Sum(s[:0])
	return s
}

// Seal keeps code as its keyed hash, valid until expires. The code itself
// is not kept.
func (h *Hasher) Seal(code string, expires time.Time) *Secret {
	return &Secret{h: h, mac: h.sum([]byte(code)), length: len(code), expires: expires}
}

// Secret is a code as hashcall keeps it: its HMAC, its length, its expiry
// and whether it has matched already. It is safe for concurrent use.
type Secret struct {
	h       *Hasher
	mac     [sha256.Size]byte
	length  int
	expires time.Time

	mu   sync.Mutex
	used bool
}

// Length is the number of digits of the code.
func (s *Secret) Length() int { return s.length }

// Expires is when the code stops matching.
func (s *Secret) Expires() time.Time { return s.expires }

// Verdict is what an entry comes to.
type Verdict int

// Verdicts of Check.
const (
	Mismatch Verdict = iota // not the code
	Match                   // the code: the secret is now used up
	Expired                 // the code's time is over: nothing matches
	Used                    // the code matched before: nothing matches
)

func (v Verdict) String() string {
	switch v {
	case Match:
		return "match"
	case Expired:
		return "expired"
	case Used:
		return "used"
	}
	return "mismatch"
}

// ErrNoSecret: Check on a nil secret.
var ErrNoSecret = errors.New("numbermatch: no code")

// Check compares entry (the keys, without the #) with the code at time
// now. The comparison is of the entry's HMAC with the code's, in constant
// time (crypto/subtle), whatever the entry's length. A match uses the code
// up: later checks give Used.
func (s *Secret) Check(entry []byte, now time.Time) Verdict {
	got := s.h.sum(entry)
	eq := subtle.ConstantTimeCompare(got[:], s.mac[:]) == 1
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.used:
		return Used
	case !now.Before(s.expires):
		return Expired
	case !eq:
		return Mismatch
	}
	s.used = true
	return Match
}
