package policy

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/hashcall/hashcall/internal/redact"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name, in, region  string
		e164, typ, masked string
		err               bool
	}{
		{"uk_mobile_e164", "+447700900123", "GB", "+447700900123", "mobile", "+4477*****123", false},
		{"uk_mobile_national", "07700 900123", "GB", "+447700900123", "mobile", "+4477*****123", false},
		{"uk_fixed_line", "+442079460000", "GB", "+442079460000", "fixed_line", "+4420*****000", false},
		{"uk_premium", "+449098790000", "GB", "+449098790000", "premium_rate", "", false},
		{"us_number", "+12015550123", "GB", "+12015550123", "fixed_line_or_mobile", "", false},
		{"letters", "+44abc", "GB", "", "", "", true},
		{"too_short", "+44123", "GB", "", "", "", true},
		{"empty", "", "GB", "", "", "", true},
		{"injection", "+447700900123\r\nX: y", "GB", "", "", "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n, err := Parse(tc.in, tc.region)
			if tc.err {
				if !errors.Is(err, ErrMalformed) {
					t.Fatalf("want ErrMalformed, got %v %+v", err, n)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if n.E164 != tc.e164 || n.Type != tc.typ || (tc.masked != "" && n.Masked != tc.masked) {
				t.Errorf("got %+v", n)
			}
		})
	}
}

// TestMaskedIsRedactE164: the policy's masked number is redact.Number of the
// E.164 form whatever the input looked like, so logs, API answers and the
// audit chain show the same string as verify's and sip's logs.
func TestMaskedIsRedactE164(t *testing.T) {
	for _, in := range []string{"+447700900123", "07700 900123", "07700-900-123", "(07700) 900123", "+44 7700 900123",
		"+442079460000", "020 7946 0000", "+12015550123", "+1 (201) 555-0123", "+449098790000"} {
		n, err := Parse(in, "GB")
		if err != nil {
			t.Fatalf("Parse(%q): %v", in, err)
		}
		if want := redact.Number(n.E164); n.Masked != want {
			t.Errorf("Parse(%q).Masked = %q, want redact.Number(%q) = %q", in, n.Masked, n.E164, want)
		}
	}
}

func TestCheck(t *testing.T) {
	rules := Rules{Regions: []string{"GB"}, Types: []string{"mobile"}}
	tests := []struct {
		name, number, rule string
	}{
		{"uk_mobile_allowed", "+447700900123", ""},
		{"uk_fixed_line_refused", "+442079460000", RuleType},
		{"premium_always_refused", "+449098790000", RulePremium},
		{"us_refused_by_region", "+12015550123", RuleRegion},
		{"uk_0845_is_premium", "+448450000000", RulePremium},
		{"guernsey_mobile_is_not_GB", "+447911123456", RuleRegion},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n, err := Parse(tc.number, "GB")
			if err != nil {
				t.Fatal(err)
			}
			r := rules.Check(n)
			if tc.rule == "" {
				if r != nil {
					t.Fatalf("refused: %v", r)
				}
				return
			}
			if r == nil || r.Rule != tc.rule || r.Status != 422 {
				t.Fatalf("got %+v (type %s), want rule %s", r, n.Type, tc.rule)
			}
		})
	}
	if r := rules.Check(Number{E164: "+41840000000", Region: "GB", Type: "shared_cost"}); r == nil || r.Rule != RuleSharedCost {
		t.Errorf("shared cost: %+v", r)
	}
	if r := rules.Check(Number{E164: "+440", Region: "GB", Type: "unknown"}); r == nil || r.Rule != RuleUnknown {
		t.Errorf("unknown type: %+v", r)
	}
	// Premium is refused even when allowed by configuration.
	open := Rules{Regions: []string{"GB"}, Types: []string{"premium_rate", "mobile"}}
	n, _ := Parse("+449098790000", "GB")
	if r := open.Check(n); r == nil || r.Rule != RulePremium {
		t.Errorf("premium allowed by config: %+v", r)
	}
}

func TestLimiter(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	l := NewLimiter(Rules{PerNumber: Rate{3, 15 * time.Minute}, Global: Rate{5, time.Minute}}, func() time.Time { return now })
	for i := range 3 {
		if r := l.Allow("+447700900123"); r != nil {
			t.Fatalf("call %d refused: %v", i, r)
		}
	}
	r := l.Allow("+447700900123")
	if r == nil || r.Rule != RulePerNumber || r.Status != 429 || r.RetryAfter != 15*time.Minute {
		t.Fatalf("4th call: %+v", r)
	}
	// Other numbers still go, until the global rate.
	if r := l.Allow("+447700900124"); r != nil {
		t.Fatal(r)
	}
	if r := l.Allow("+447700900125"); r != nil {
		t.Fatal(r)
	}
	if r := l.Allow("+447700900126"); r == nil || r.Rule != RuleGlobal {
		t.Fatalf("6th call in a minute: %+v", r)
	}
	now = now.Add(time.Minute)
	if r := l.Allow("+447700900126"); r != nil {
		t.Fatalf("after the global window: %v", r)
	}
	now = now.Add(14 * time.Minute)
	if r := l.Allow("+447700900123"); r != nil {
		t.Fatalf("after the per-number window: %v", r)
	}
}

// TestLimiterReserve: a reservation holds a place in both windows until it
// is committed (spent) or cancelled (given back), so a request refused after
// Reserve (no call slot, trunk down, draining) costs no quota.
func TestLimiterReserve(t *testing.T) {
	const a, b = "+447700900123", "+447700900124"
	type step struct {
		op     string // reserve, commit, cancel (of the n-th reservation, 0-based), wait
		number string
		n      int           // for commit and cancel
		d      time.Duration // for wait
		want   string        // for reserve: "" granted, or the refusing rule
	}
	tests := []struct {
		name  string
		rules Rules
		steps []step
	}{
		{"cancelled reservations spend nothing", Rules{PerNumber: Rate{3, 15 * time.Minute}, Global: Rate{60, time.Minute}}, []step{
			{op: "reserve", number: a}, {op: "cancel", n: 0},
			{op: "reserve", number: a}, {op: "cancel", n: 1},
			{op: "reserve", number: a}, {op: "cancel", n: 2},
			{op: "reserve", number: a}, {op: "reserve", number: a}, {op: "reserve", number: a},
			{op: "reserve", number: a, want: RulePerNumber},
		}},
		{"pending reservations count against the limit", Rules{PerNumber: Rate{2, 15 * time.Minute}, Global: Rate{60, time.Minute}}, []step{
			{op: "reserve", number: a}, {op: "reserve", number: a},
			{op: "reserve", number: a, want: RulePerNumber},
			{op: "cancel", n: 1},
			{op: "reserve", number: a},
		}},
		{"committed reservations are spent", Rules{PerNumber: Rate{1, 15 * time.Minute}, Global: Rate{60, time.Minute}}, []step{
			{op: "reserve", number: a}, {op: "commit", n: 0},
			{op: "cancel", n: 0}, // after Commit: no effect
			{op: "reserve", number: a, want: RulePerNumber},
			{op: "wait", d: 15 * time.Minute},
			{op: "reserve", number: a},
		}},
		{"global rate: a cancel gives the place back", Rules{PerNumber: Rate{3, 15 * time.Minute}, Global: Rate{2, time.Minute}}, []step{
			{op: "reserve", number: a}, {op: "reserve", number: b},
			{op: "reserve", number: b, want: RuleGlobal},
			{op: "cancel", n: 0},
			{op: "reserve", number: b},
			{op: "reserve", number: a, want: RuleGlobal},
		}},
		{"cancel twice gives back once", Rules{PerNumber: Rate{1, 15 * time.Minute}, Global: Rate{60, time.Minute}}, []step{
			{op: "reserve", number: a}, {op: "reserve", number: b}, {op: "cancel", n: 0}, {op: "cancel", n: 0},
			{op: "reserve", number: a}, {op: "reserve", number: a, want: RulePerNumber},
			{op: "reserve", number: b, want: RulePerNumber},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			now := time.Unix(1_700_000_000, 0)
			l := NewLimiter(tc.rules, func() time.Time { return now })
			var held []*Reservation
			for i, st := range tc.steps {
				switch st.op {
				case "reserve":
					res, ref := l.Reserve(st.number)
					got := ""
					if ref != nil {
						got = ref.Rule
						if res != nil || ref.Status != 429 || ref.RetryAfter <= 0 {
							t.Fatalf("step %d: refusal %+v with reservation %v", i, ref, res)
						}
					} else if res == nil {
						t.Fatalf("step %d: neither reservation nor refusal", i)
					}
					if got != st.want {
						t.Fatalf("step %d: reserve %s: refused by %q, want %q", i, st.number, got, st.want)
					}
					if res != nil {
						held = append(held, res)
					}
				case "commit":
					held[st.n].Commit()
				case "cancel":
					held[st.n].Cancel()
				case "wait":
					now = now.Add(st.d)
				}
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	f.Add("+447700900123")
	f.Add("07700 900123")
	f.Fuzz(func(t *testing.T, s string) {
		n, err := Parse(s, "GB")
		if err == nil && (n.E164 == "" || n.E164[0] != '+') {
			t.Fatalf("bad E.164 %q", n.E164)
		}
	})
}

// A request holds its place in the limits while it waits for a call slot,
// and spends it only once the call is placed.
func ExampleLimiter_Reserve() {
	l := NewLimiter(Rules{PerNumber: Rate{N: 1, Per: 15 * time.Minute}, Global: Rate{N: 60, Per: time.Minute}}, nil)
	res, ref := l.Reserve("+447700900123")
	if ref != nil {
		fmt.Println("refused:", ref.Rule)
		return
	}
	res.Cancel() // no free call slot: nothing was placed, nothing is spent
	res, _ = l.Reserve("+447700900123")
	res.Commit() // the call was placed
	_, ref = l.Reserve("+447700900123")
	fmt.Println(ref.Rule)
	// Output: per_number_limit
}
