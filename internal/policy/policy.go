// Package policy is hashcall's toll-fraud guard: it decides, before any call
// is placed, whether a number may be called now. Numbers are parsed and
// normalised to E.164 with github.com/nyaruka/phonenumbers and checked
// against the allowed regions and number types (premium-rate, shared-cost
// and unknown-type numbers are always refused); then per-number and global
// rate limits apply.
package policy

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nyaruka/phonenumbers"

	"github.com/hashcall/hashcall/internal/redact"
)

// Number is a parsed, normalised phone number.
type Number struct {
	E164   string // +447700900123
	Region string // GB
	Type   string // mobile, fixed_line, ... (see typeNames)
	Masked string // redact.Number(E164), +4477*****123: the one masked form of logs, API answers and the audit chain
}

// ErrMalformed is wrapped by Parse's errors: the input is not a phone number.
var ErrMalformed = errors.New("malformed phone number")

// typeNames maps libphonenumber's types to the names used in
// policy.allowed_types.
var typeNames = map[phonenumbers.PhoneNumberType]string{
	phonenumbers.FIXED_LINE:           "fixed_line",
	phonenumbers.MOBILE:               "mobile",
	phonenumbers.FIXED_LINE_OR_MOBILE: "fixed_line_or_mobile",
	phonenumbers.TOLL_FREE:            "toll_free",
	phonenumbers.PREMIUM_RATE:         "premium_rate",
	phonenumbers.SHARED_COST:          "shared_cost",
	phonenumbers.VOIP:                 "voip",
	phonenumbers.PERSONAL_NUMBER:      "personal_number",
	phonenumbers.PAGER:                "pager",
	phonenumbers.UAN:                  "uan",
	phonenumbers.VOICEMAIL:            "voicemail",
	phonenumbers.UNKNOWN:              "unknown",
}

// Parse parses raw (E.164 such as +447700900123, or a national number of
// defaultRegion) into a valid number.
func Parse(raw, defaultRegion string) (Number, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" || len(raw) > 32 {
		return Number{}, fmt.Errorf("%w: want E.164 such as +447700900123", ErrMalformed)
	}
	for _, r := range raw {
		if !(r >= '0' && r <= '9' || r == '+' || r == ' ' || r == '-' || r == '(' || r == ')' || r == '.') {
			return Number{}, fmt.Errorf("%w: only digits, spaces and a leading + are allowed", ErrMalformed)
		}
	}
	num, err := phonenumbers.Parse(raw, strings.ToUpper(defaultRegion))
	if err != nil {
		return Number{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	n := Number{
		E164:   phonenumbers.Format(num, phonenumbers.E164),
		Region: phonenumbers.GetRegionCodeForNumber(num),
		Type:   typeNames[phonenumbers.GetNumberType(num)],
	}
	if !phonenumbers.IsValidNumber(num) {
		if !ofcomDramaMobile(n.E164) {
			return Number{}, fmt.Errorf("%w: %s is not a valid number", ErrMalformed, redact.Number(n.E164))
		}
		// Ofcom reserves 07700 900000–900999 for drama and documentation
		// (the numbers every UK example uses, +447700900123 among them);
		// libphonenumber calls them invalid. They are mobile numbers in
		// form, and test trunks route them.
		n.Region, n.Type = "GB", "mobile"
	}
	n.Masked = redact.Number(n.E164)
	return n, nil
}

// ofcomDramaMobile reports whether e164 is in Ofcom's drama mobile range
// +44 7700 900000 to 900999.
func ofcomDramaMobile(e164 string) bool {
	return len(e164) == 13 && strings.HasPrefix(e164, "+447700900")
}

// Refusal is why a number may not be called now. Status is the HTTP status
// to answer (422 for a number the rules refuse, 429 for a limit) and Rule
// the rule's name, used in metrics.
type Refusal struct {
	Status     int
	Rule       string
	Message    string
	RetryAfter time.Duration // for 429
}

func (r *Refusal) Error() string { return r.Message }

// Rule names.
const (
	RuleRegion     = "allowed_regions"
	RuleType       = "allowed_types"
	RulePremium    = "premium_rate"
	RuleSharedCost = "shared_cost"
	RuleUnknown    = "unknown_type"
	RulePerNumber  = "per_number_limit"
	RuleGlobal     = "global_rate"
	RulePerToken   = "per_token_rate"
	RuleConcurrent = "max_concurrent"
)

// Rate is N calls per Per.
type Rate struct {
	N   int
	Per time.Duration
}

// Rules are the number rules and limits.
type Rules struct {
	Regions   []string // ISO 3166 codes, e.g. GB
	Types     []string // mobile, fixed_line, ...
	PerNumber Rate     // e.g. 3 per 15 min
	Global    Rate     // e.g. 60 per minute
	PerToken  Rate     // calls for one bearer token of the hook; zero: none
}

// DefaultRegion is the region national numbers are read in: the first
// allowed one.
func (r Rules) DefaultRegion() string {
	if len(r.Regions) > 0 {
		return r.Regions[0]
	}
	return ""
}

// Check applies the number rules (not the limits).
func (r Rules) Check(n Number) *Refusal {
	switch n.Type {
	case "premium_rate":
		return &Refusal{422, RulePremium, "premium-rate numbers are never called", 0}
	case "shared_cost":
		return &Refusal{422, RuleSharedCost, "shared-cost numbers are never called", 0}
	case "unknown", "":
		return &Refusal{422, RuleUnknown, "numbers of unknown type are never called", 0}
	}
	if !slices.ContainsFunc(r.Regions, func(s string) bool { return strings.EqualFold(s, n.Region) }) {
		return &Refusal{422, RuleRegion, fmt.Sprintf("numbers in region %s are not allowed (policy.allowed_regions: %s)", n.Region, strings.Join(r.Regions, ", ")), 0}
	}
	if !slices.Contains(r.Types, n.Type) {
		return &Refusal{422, RuleType, fmt.Sprintf("%s numbers are not allowed (policy.allowed_types: %s)", strings.ReplaceAll(n.Type, "_", " "), strings.Join(r.Types, ", ")), 0}
	}
	return nil
}

// Limiter applies the rate limits with sliding windows: at most PerNumber.N
// calls to one number in any PerNumber.Per, and Global.N calls in all in
// any Global.Per. It is safe for concurrent use.
//
// A call spends its quota only once it is really placed: [Limiter.Reserve]
// holds a place in both windows (so that concurrent requests cannot
// overshoot a limit), and the caller then either commits the reservation
// when the call starts or cancels it when the request is refused for
// another reason (no free call slot, the trunk down, a drain), which gives
// the place back.
type Limiter struct {
	mu     sync.Mutex
	rules  Rules
	now    func() time.Time
	seq    uint64
	number map[string][]stamp
	global []stamp
}

// stamp is one call (or reservation) in a window; id tells reservations
// apart so that Cancel removes exactly its own.
type stamp struct {
	t  time.Time
	id uint64
}

// NewLimiter returns a limiter; now may be nil for the real clock.
func NewLimiter(rules Rules, now func() time.Time) *Limiter {
	if now == nil {
		now = time.Now
	}
	return &Limiter{rules: rules, now: now, number: map[string][]stamp{}}
}

// SetRules replaces the rules (SIGHUP); the history is kept.
func (l *Limiter) SetRules(r Rules) {
	l.mu.Lock()
	l.rules = r
	l.mu.Unlock()
}

// Reservation is a place held in the limits for one call; exactly one of
// Commit and Cancel should follow (later calls are no-ops).
type Reservation struct {
	l    *Limiter
	e164 string
	id   uint64
	done bool
}

// Commit spends the reservation: the call was placed.
func (r *Reservation) Commit() {
	r.l.mu.Lock()
	r.done = true
	r.l.mu.Unlock()
}

// Cancel gives the reservation back: no call was placed.
func (r *Reservation) Cancel() {
	l := r.l
	l.mu.Lock()
	defer l.mu.Unlock()
	if r.done {
		return
	}
	r.done = true
	l.global = remove(l.global, r.id)
	if calls := remove(l.number[r.e164], r.id); len(calls) > 0 {
		l.number[r.e164] = calls
	} else {
		delete(l.number, r.e164)
	}
}

func remove(ts []stamp, id uint64) []stamp {
	for i, s := range ts {
		if s.id == id {
			return append(ts[:i], ts[i+1:]...)
		}
	}
	return ts
}

// Reserve holds a place for a call to e164 in both windows and returns it,
// or returns the limit the call would break, holding nothing.
func (l *Limiter) Reserve(e164 string) (*Reservation, *Refusal) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	r := l.rules
	l.global = prune(l.global, now, r.Global.Per)
	calls := prune(l.number[e164], now, r.PerNumber.Per)
	if r.PerNumber.N > 0 && len(calls) >= r.PerNumber.N {
		l.number[e164] = calls
		return nil, &Refusal{429, RulePerNumber, fmt.Sprintf("this number was called %d times in the last %v (policy.per_number_limit %d/%v)", len(calls), r.PerNumber.Per, r.PerNumber.N, r.PerNumber.Per),
			retry(calls[0].t.Add(r.PerNumber.Per).Sub(now))}
	}
	if r.Global.N > 0 && len(l.global) >= r.Global.N {
		l.number[e164] = calls
		return nil, &Refusal{429, RuleGlobal, fmt.Sprintf("%d calls in the last %v (policy.global_rate %d/%v)", len(l.global), r.Global.Per, r.Global.N, r.Global.Per),
			retry(l.global[0].t.Add(r.Global.Per).Sub(now))}
	}
	l.seq++
	st := stamp{now, l.seq}
	l.number[e164] = append(calls, st)
	l.global = append(l.global, st)
	// Forget numbers whose window has passed, so the map stays small.
	if len(l.number) > 1024 {
		for k, v := range l.number {
			if len(prune(v, now, r.PerNumber.Per)) == 0 {
				delete(l.number, k)
			}
		}
	}
	return &Reservation{l: l, e164: e164, id: st.id}, nil
}

// Allow records a call to e164 at once (Reserve, then Commit) and returns
// nil, or returns the limit it would break without recording anything.
func (l *Limiter) Allow(e164 string) *Refusal {
	res, ref := l.Reserve(e164)
	if ref != nil {
		return ref
	}
	res.Commit()
	return nil
}

// prune drops the times older than per.
func prune(ts []stamp, now time.Time, per time.Duration) []stamp {
	i := 0
	for i < len(ts) && now.Sub(ts[i].t) >= per {
		i++
	}
	return ts[i:]
}

func retry(d time.Duration) time.Duration {
	return max(d.Round(time.Second), time.Second)
}
