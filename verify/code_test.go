package verify

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hashcall/hashcall/dtmf"
	"github.com/hashcall/hashcall/numbermatch"
)

// input is one thing the code flow is given: a key press starting at at
// (media clock), the digit timer firing at at (op 't'), or the answer
// timeout (op 's').
type input struct {
	op   byte // 'k' key, 't' digit timer, 's' silence
	key  dtmf.Key
	at   time.Duration
	want codeStep
}

// keyed is the keys of s pressed gap apart from at, each wanting want
// except the last, which wants last.
func keyed(s string, at, gap time.Duration, want, last codeStep) []input {
	var in []input
	for i := range len(s) {
		w := want
		if i == len(s)-1 {
			w = last
		}
		in = append(in, input{'k', dtmf.Key(s[i]), at + time.Duration(i)*gap, w})
	}
	return in
}

func seq(parts ...[]input) []input {
	var out []input
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

const (
	testCode    = "482910"
	testAnswer  = 10 * time.Second // media clock at the answer
	testAsk     = testAnswer + 20*time.Millisecond
	testPressAt = 4 * time.Second // the ask's "enter the code"
	ready       = testAsk + testPressAt + 100*time.Millisecond
)

// TestCodeFlow runs the mode code decision on made-up times: the right and
// wrong codes, * clearing, the digit timeout, too many digits, the
// attempts, the failed-code limit, early digits, the expiry and single use.
func TestCodeFlow(t *testing.T) {
	gap := 300 * time.Millisecond
	tests := []struct {
		name     string
		attempts int
		failures int // failed codes the number may still have (0: no limit)
		ttl      time.Duration
		in       []input
		wrong    int // wrong codes counted against the number
	}{
		{"right", 3, 0, 0, keyed(testCode+"#", ready, gap, codeDigit, codeVerified), 0},
		{"right_fast", 3, 0, 0, keyed(testCode+"#", ready, 80*time.Millisecond, codeDigit, codeVerified), 0},
		{"right_slow", 3, 0, 0, keyed(testCode+"#", ready, 4900*time.Millisecond, codeDigit, codeVerified), 0},
		{"wrong_then_right", 3, 0, 0, seq(
			keyed("482911#", ready, gap, codeDigit, codeWrong),
			keyed(testCode+"#", ready+5*time.Second, gap, codeDigit, codeVerified)), 1},
		{"wrong_last_attempt", 1, 0, 0, keyed("123456#", ready, gap, codeDigit, codeFailed), 1},
		{"wrong_every_attempt", 3, 0, 0, seq(
			keyed("000000#", ready, gap, codeDigit, codeWrong),
			keyed("111111#", ready+5*time.Second, gap, codeDigit, codeWrong),
			keyed("222222#", ready+10*time.Second, gap, codeDigit, codeFailed)), 3},
		{"short_code", 3, 0, 0, keyed("48291#", ready, gap, codeDigit, codeWrong), 1},
		{"hash_alone", 3, 0, 0, []input{{'k', '#', ready, codeWrong}}, 1},
		{"star_clears", 3, 0, 0, seq(
			keyed("48*", ready, gap, codeDigit, codeCleared),
			keyed(testCode+"#", ready+time.Second, gap, codeDigit, codeVerified)), 0},
		{"star_clears_a_wrong_entry", 1, 0, 0, seq(
			keyed("999999*", ready, gap, codeDigit, codeCleared),
			keyed(testCode+"#", ready+3*time.Second, gap, codeDigit, codeVerified)), 0},
		{"star_then_hash_is_empty", 3, 0, 0, seq(
			keyed(testCode+"*", ready, gap, codeDigit, codeCleared),
			[]input{{'k', '#', ready + 3*time.Second, codeWrong}}), 1},
		{"too_many_digits", 3, 0, 0, keyed(testCode+"0", ready, gap, codeDigit, codeWrong), 1},
		{"too_many_digits_then_right", 3, 0, 0, seq(
			keyed(testCode+"0", ready, gap, codeDigit, codeWrong),
			keyed(testCode+"#", ready+5*time.Second, gap, codeDigit, codeVerified)), 1},
		{"letter_key_never_matches", 3, 0, 0, keyed("48291A#", ready, gap, codeDigit, codeWrong), 1},
		{"digit_timer_not_due", 3, 0, 0, seq(
			keyed("482", ready, gap, codeDigit, codeDigit),
			[]input{{'t', 0, ready + 2*gap + 4*time.Second, codeNothing}},
			keyed("910#", ready+2*gap+4900*time.Millisecond, gap, codeDigit, codeVerified)), 0},
		{"digit_timeout", 3, 0, 0, seq(
			keyed("482", ready, gap, codeDigit, codeDigit),
			[]input{{'t', 0, ready + 2*gap + DefaultDigitTimeout, codeWrong}},
			keyed(testCode+"#", ready+10*time.Second, gap, codeDigit, codeVerified)), 1},
		{"digit_timeout_last_attempt", 1, 0, 0, seq(
			keyed("4829", ready, gap, codeDigit, codeDigit),
			[]input{{'t', 0, ready + 3*gap + DefaultDigitTimeout, codeFailed}}), 1},
		{"silence_while_keying_waits", 1, 0, 0, seq(
			keyed("48", ready, gap, codeDigit, codeDigit),
			[]input{{'s', 0, 0, codeNothing}},
			keyed("2910#", ready+2*gap, gap, codeDigit, codeVerified)), 0},
		{"silence_asks_again", 2, 0, 0, seq(
			[]input{{'s', 0, 0, codeAskAgain}},
			keyed(testCode+"#", ready+10*time.Second, gap, codeDigit, codeVerified)), 0},
		{"silence_every_attempt", 3, 0, 0, []input{{'s', 0, 0, codeAskAgain}, {'s', 0, 0, codeAskAgain}, {'s', 0, 0, codeNoKey}}, 0},
		{"wrong_then_silence", 2, 0, 0, seq(
			keyed("000000#", ready, gap, codeDigit, codeWrong),
			[]input{{'s', 0, 0, codeNoKey}}), 1},
		{"failures_run_out", 3, 1, 0, keyed("000000#", ready, gap, codeDigit, codeFailed), 1},
		{"failures_left", 3, 2, 0, seq(
			keyed("000000#", ready, gap, codeDigit, codeWrong),
			keyed("000000#", ready+5*time.Second, gap, codeDigit, codeFailed)), 2},
		// The early-key guard: digits before the press point or within
		// min_key_delay do not count, so a phone that plays the right code
		// as it answers is not verified.
		{"code_on_answer", 3, 0, 0, keyed(testCode+"#", testAnswer+20*time.Millisecond, 80*time.Millisecond, codeEarly, codeEarly), 0},
		{"code_during_the_ask_preamble", 3, 0, 0, keyed(testCode+"#", testAsk+2*time.Second, gap, codeEarly, codeEarly), 0},
		{"early_digits_then_rest", 3, 0, 0, seq(
			keyed("482", testAsk+testPressAt-3*gap, gap, codeEarly, codeEarly),
			keyed("910#", ready, gap, codeDigit, codeWrong)), 1},
		{"early_then_whole_code", 3, 0, 0, seq(
			keyed(testCode+"#", testAnswer, 100*time.Millisecond, codeEarly, codeEarly),
			keyed(testCode+"#", ready, gap, codeDigit, codeVerified)), 0},
		{"expired", 3, 0, time.Nanosecond, keyed(testCode+"#", ready, gap, codeDigit, codeExpired), 0},
	}
	h, err := numbermatch.NewHasher([]byte(strings.Repeat("k", numbermatch.MinKeySize)))
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ttl := tc.ttl
			if ttl == 0 {
				ttl = numbermatch.DefaultTTL
			}
			secret := h.Seal(testCode, t0.Add(ttl))
			counted := 0
			failed := func() bool {
				counted++
				return tc.failures == 0 || counted < tc.failures
			}
			cfg := Config{Attempts: tc.attempts, DigitTimeout: DefaultDigitTimeout, MinKeyDelay: DefaultMinKeyDelay}
			// The wall clock moves with the media clock, from t0 at the answer.
			var media time.Duration
			wall := func() time.Time { return t0.Add(media - testAnswer) }
			f := newCodeFlow(&CodeRequest{Secret: secret, Failed: failed}, cfg, wall, testPressAt, testAnswer, testAsk)
			for i, in := range tc.in {
				var got codeResult
				switch in.op {
				case 'k':
					media = in.at
					got = f.key(in.key, in.at)
				case 't':
					media = in.at
					got = f.timeout(in.at)
				case 's':
					got = f.silence()
				}
				if got.step != in.want {
					t.Fatalf("input %d (%c %s at %v): %s, want %s", i, in.op, in.key, in.at, got.step, in.want)
				}
			}
			if counted != tc.wrong || f.wrong != tc.wrong {
				t.Errorf("%d wrong codes counted against the number (%d in the call), want %d", counted, f.wrong, tc.wrong)
			}
		})
	}
}

// TestCodeFlowSingleUse: a code that matched once never matches again, in
// this call or another.
func TestCodeFlowSingleUse(t *testing.T) {
	secret := numbermatch.NewRandomHasher().Seal(testCode, time.Now().Add(time.Minute))
	cfg := Config{Attempts: 3, DigitTimeout: DefaultDigitTimeout, MinKeyDelay: DefaultMinKeyDelay}
	for i, want := range []codeStep{codeVerified, codeExpired} {
		f := newCodeFlow(&CodeRequest{Secret: secret}, cfg, time.Now, testPressAt, testAnswer, testAsk)
		var got codeResult
		for j, in := range keyed(testCode+"#", ready, 100*time.Millisecond, codeDigit, want) {
			if got = f.key(in.key, in.at); got.step != in.want {
				t.Fatalf("call %d, key %d: %s, want %s", i, j, got.step, in.want)
			}
		}
	}
}

// TestMaskKey: a code's digits never show.
func TestMaskKey(t *testing.T) {
	for _, k := range "0123456789ABCD*#" {
		got := maskKey(dtmf.Key(k))
		want := "digit"
		if k == '*' || k == '#' {
			want = string(k)
		}
		if got != want {
			t.Errorf("maskKey(%c) = %q, want %q", k, got, want)
		}
	}
	if s := fmt.Sprint(codeVerified); s != "verified" {
		t.Errorf("codeVerified prints %q", s)
	}
}
