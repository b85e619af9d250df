package policy

import (
	"errors"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name, in, region  string
		e164, typ, masked string
		err               bool
	}{
		{"uk_mobile_e164", "+447700900123", "GB", "+447700900123", "mobile", "+44 77** ***123", false},
		{"uk_mobile_national", "07700 900123", "GB", "+447700900123", "mobile", "+44 77** ***123", false},
		{"uk_fixed_line", "+442079460000", "GB", "+442079460000", "fixed_line", "+44 20 **** *000", false},
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
