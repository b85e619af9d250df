package verify

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/hashcall/hashcall/dtmf"
	"github.com/hashcall/hashcall/media"
	"github.com/hashcall/hashcall/numbermatch"
	"github.com/hashcall/hashcall/prompts"
	"github.com/hashcall/hashcall/sip"
)

// silence is d of silent prompt audio.
func silence(d time.Duration) []int16 { return make([]int16, int(d*media.SampleRate/time.Second)) }

// flowPrompts is a set of silent prompts of known lengths: ask 2 s with its
// phrase at 1 s, wrong key 0.5 s, success and goodbye 0.2 s; mode code's
// alike.
func flowPrompts() *prompts.Set {
	return &prompts.Set{
		Locale: "en-GB",
		Ask:    silence(2 * time.Second), AskPressAt: time.Second,
		WrongKey: silence(500 * time.Millisecond), Success: silence(200 * time.Millisecond), Goodbye: silence(200 * time.Millisecond),
		AskCode: silence(2 * time.Second), AskCodePressAt: time.Second,
		WrongCode: silence(500 * time.Millisecond), CodeFailed: silence(200 * time.Millisecond),
	}
}

// keys is a script of keys pressed 500 ms apart from at.
func keys(at time.Duration, ks string) []press {
	var ps []press
	for i, k := range ks {
		ps = append(ps, press{at: at + time.Duration(i)*500*time.Millisecond, key: dtmf.Key(k)})
	}
	return ps
}

// flowCase is one call through the fakes, and what it must come to.
type flowCase struct {
	name   string
	cfg    Config // AnswerTimeout 3 s, Attempts 3 unless set
	dialer fakeDialer
	media  func(m *fakeMedia)
	code   string             // mode code: the code to key
	failed func() bool        // mode code: CodeRequest.Failed
	prompt func(*prompts.Set) // changes to flowPrompts
	// greeting, when set, is far-end audio from the answer (an answering
	// machine) and turns voicemail detection on.
	greeting []int16
	// cancelAt cancels the request's context this long after the start.
	cancelAt time.Duration

	want        Outcome
	keys        string
	attempts    int
	prompts     string // the prompts played, comma-separated
	source      string
	errText     string // in Result.Error ("" : none)
	early       []EarlyKey
	wrongCodes  int
	diverted    bool
	vmReason    string
	hungUpByUs  bool          // we sent the BYE
	answeredFor time.Duration // EndedAt − AnsweredAt, exactly (0: not checked)
	within      time.Duration // EndedAt − AnsweredAt at most (0: not checked)
	keyAfter    time.Duration // KeyAt − AnsweredAt, exactly (0: not checked)
	dialCause   error         // the dial context's cause (ringing ended by us)
}

func TestFlow(t *testing.T) {
	const s = time.Second
	ms := time.Millisecond
	speech, err := prompts.Load("", "en-GB")
	if err != nil {
		t.Fatal(err)
	}
	greeting := slices.Concat(speech.Ask, speech.WrongKey, speech.Goodbye) // several seconds of speech
	tests := []flowCase{
		{name: "verified_first_try", media: script(press{at: 2 * s, key: '#'}), want: Verified, keys: "#", attempts: 1, prompts: "ask,success", source: "rfc4733", hungUpByUs: true, keyAfter: 2 * s, answeredFor: 2*s + 200*ms},
		{name: "verified_by_sip_info", media: script(press{at: 2 * s, key: '#', source: dtmf.SourceSIPInfo}), want: Verified, keys: "#", attempts: 1, prompts: "ask,success", source: "sip_info", hungUpByUs: true},
		{name: "wrong_key_then_hash", media: script(press{at: 1600 * ms, key: '5'}, press{at: 3 * s, key: '#'}), want: Verified, keys: "5#", attempts: 1, prompts: "ask,wrong_key,success", source: "rfc4733", hungUpByUs: true, keyAfter: 3 * s},
		{name: "wrong_key_only", media: script(press{at: 1600 * ms, key: '5'}), want: WrongKey, keys: "5", attempts: 3, prompts: "ask,wrong_key,ask,ask,goodbye", source: "rfc4733", hungUpByUs: true,
			// 1.6 + 0.5 wrong key, 3 silence, (2 ask + 3 silence) twice, 0.2 goodbye
			answeredFor: 1600*ms + 500*ms + 3*s + 2*(5*s) + 200*ms},
		{name: "attempts_exhausted", want: NoKey, attempts: 3, prompts: "ask,ask,ask,goodbye", hungUpByUs: true, answeredFor: 3*(5*s) + 200*ms},
		{name: "one_attempt", cfg: Config{Attempts: 1}, want: NoKey, attempts: 1, prompts: "ask,goodbye", hungUpByUs: true, answeredFor: 5*s + 200*ms},
		{name: "hangup_mid_prompt", dialer: fakeDialer{hangupAt: 500 * ms}, want: HungUp, attempts: 1, prompts: "ask", answeredFor: 500 * ms},
		{name: "hangup_after_wrong_key", dialer: fakeDialer{hangupAt: 2500 * ms}, media: script(press{at: 1600 * ms, key: '5'}), want: WrongKey, keys: "5", attempts: 1, prompts: "ask,wrong_key", source: "rfc4733", answeredFor: 2500 * ms},
		{name: "cancel_while_ringing", dialer: fakeDialer{ring: 10 * s}, cancelAt: s, want: Cancelled, dialCause: ErrCancelled},
		{name: "cancel_after_answer", dialer: fakeDialer{ring: s}, cancelAt: 2500 * ms, want: Cancelled, attempts: 1, prompts: "ask", hungUpByUs: true, answeredFor: 1500 * ms},
		{name: "max_call_duration", cfg: Config{AnswerTimeout: 10 * s, MaxCallDuration: 4 * s}, want: NoKey, attempts: 1, prompts: "ask", errText: "maximum call duration", hungUpByUs: true, answeredFor: 4 * s},
		{name: "max_call_duration_after_wrong_key", cfg: Config{AnswerTimeout: 10 * s, MaxCallDuration: 4 * s}, media: script(press{at: 1600 * ms, key: '5'}), want: WrongKey, keys: "5", attempts: 1, prompts: "ask,wrong_key", source: "rfc4733", errText: "maximum call duration", hungUpByUs: true, answeredFor: 4 * s},
		{name: "early_key_min_key_delay", media: script(press{at: 100 * ms, key: '#'}), cfg: Config{Attempts: 1}, want: NoKey, attempts: 1, prompts: "ask,goodbye", hungUpByUs: true,
			early: []EarlyKey{{Key: "#", Source: "rfc4733", MS: 100, Reason: EarlyMinKeyDelay}}},
		{name: "early_key_before_phrase_then_hash", prompt: func(p *prompts.Set) { p.AskPressAt = 1800 * ms },
			media: script(press{at: 1600 * ms, key: '#'}, press{at: 2500 * ms, key: '#'}), want: Verified, keys: "#", attempts: 1, prompts: "ask,success", source: "rfc4733", hungUpByUs: true, keyAfter: 2500 * ms,
			early: []EarlyKey{{Key: "#", Source: "rfc4733", MS: 1600, Reason: EarlyBeforePhrase}}},
		{name: "no_min_key_delay", cfg: Config{MinKeyDelay: -1}, prompt: func(p *prompts.Set) { p.AskPressAt = 0 },
			media: script(press{at: 10 * ms, key: '#'}), want: Verified, keys: "#", attempts: 1, prompts: "ask,success", source: "rfc4733", hungUpByUs: true, keyAfter: 10 * ms},
		{name: "busy", dialer: fakeDialer{fail: &sip.DialError{Kind: sip.KindResponse, Code: 486, Reason: "Busy Here"}}, want: Busy},
		{name: "ring_timeout", dialer: fakeDialer{fail: &sip.DialError{Kind: sip.KindRingTimeout}}, want: NoAnswer},
		{name: "diverted_while_ringing_refused", dialer: fakeDialer{ring: 5 * s, progress: []sip.Progress{{Code: 181, Reason: "Call Is Being Forwarded", Diversion: sip.Diversion{Diverted: true, Reasons: []string{"unconditional"}}}}},
			want: Diverted, diverted: true, dialCause: errDiverted},
		{name: "diverted_while_ringing_flagged", cfg: Config{OnDiversion: DiversionFlag}, dialer: fakeDialer{ring: s, progress: []sip.Progress{{Code: 181, Reason: "Call Is Being Forwarded", Diversion: sip.Diversion{Diverted: true, Reasons: []string{"unconditional"}}}}, diversion: sip.Diversion{Diverted: true, Reasons: []string{"unconditional"}}},
			media: script(press{at: 2 * s, key: '#'}), want: Verified, keys: "#", attempts: 1, prompts: "ask,success", source: "rfc4733", diverted: true, hungUpByUs: true},
		{name: "diverted_answer_refused", dialer: fakeDialer{diversion: sip.Diversion{Diverted: true, Reasons: []string{"user-busy"}}}, media: script(press{at: 2 * s, key: '#'}), want: Diverted, diverted: true, hungUpByUs: true},
		{name: "diverted_answer_flagged", cfg: Config{OnDiversion: DiversionFlag}, dialer: fakeDialer{diversion: sip.Diversion{Diverted: true, Reasons: []string{"user-busy"}}}, media: script(press{at: 2 * s, key: '#'}), want: Verified, keys: "#", attempts: 1, prompts: "ask,success", source: "rfc4733", diverted: true, hungUpByUs: true},
		{name: "prompt_failure", media: func(m *fakeMedia) { m.playErr = errors.New("socket gone") }, want: Failed, attempts: 1, prompts: "ask", errText: "playing prompt: socket gone", hungUpByUs: true},
		{name: "media_closed", media: func(m *fakeMedia) { m.closeAt = 700 * ms }, want: Failed, attempts: 1, prompts: "ask", errText: "media session closed", hungUpByUs: true, answeredFor: 700 * ms},
		{name: "answer_sdp_refused", media: func(m *fakeMedia) { m.answerErr = errors.New("no common codec") }, want: Failed, errText: "no common codec"},

		{name: "voicemail_greeting", greeting: greeting, want: Voicemail, vmReason: "greeting", attempts: 1, prompts: "ask", hungUpByUs: true, within: 5 * s},
		{name: "voicemail_greeting_then_hash", greeting: greeting, media: script(press{at: 4 * s, key: '#', source: dtmf.SourceInband}), want: Voicemail, vmReason: "greeting", attempts: 1, prompts: "ask", hungUpByUs: true},
		{name: "code_voicemail_greeting", code: "4711", greeting: greeting, want: Voicemail, vmReason: "greeting", attempts: 1, prompts: "ask_code", hungUpByUs: true},

		// Mode code: the code is 4711.
		{name: "code_right", code: "4711", media: script(keys(1500*ms, "4711#")...), want: Verified, attempts: 1, prompts: "ask_code,success", source: "rfc4733", hungUpByUs: true, keyAfter: 3500 * ms},
		{name: "code_wrong_then_right", code: "4711", media: script(append(keys(1500*ms, "1111#"), keys(5*s, "4711#")...)...), want: Verified, attempts: 2, prompts: "ask_code,wrong_code,ask_code,success", source: "rfc4733", wrongCodes: 1, hungUpByUs: true},
		{name: "code_star_clears", code: "4711", media: script(keys(1500*ms, "12*4711#")...), want: Verified, attempts: 1, prompts: "ask_code,success", source: "rfc4733", hungUpByUs: true},
		{name: "code_too_many_digits", code: "4711", cfg: Config{Attempts: 1}, media: script(keys(1500*ms, "47111")...), want: WrongCode, attempts: 1, prompts: "ask_code,code_failed", source: "rfc4733", wrongCodes: 1, hungUpByUs: true},
		{name: "code_digit_timeout", code: "4711", cfg: Config{Attempts: 2, DigitTimeout: 5 * s}, media: script(keys(1500*ms, "47")...), want: WrongCode, attempts: 2, prompts: "ask_code,wrong_code,ask_code,goodbye", wrongCodes: 1, hungUpByUs: true,
			// the digit timer runs from the last digit (2 s): 7 s, then
			// wrong code 0.5, ask 2, silence 3, goodbye 0.2
			answeredFor: 7*s + 500*ms + 2*s + 3*s + 200*ms},
		{name: "code_attempts_exhausted", code: "4711", want: NoKey, attempts: 3, prompts: "ask_code,ask_code,ask_code,goodbye", hungUpByUs: true, answeredFor: 3*(5*s) + 200*ms},
		{name: "code_out_of_failures", code: "4711", failed: func() bool { return false }, media: script(keys(1500*ms, "1111#")...), want: WrongCode, attempts: 1, prompts: "ask_code,code_failed", source: "rfc4733", wrongCodes: 1, hungUpByUs: true},
		{name: "code_early_digit", code: "4711", media: script(append([]press{{at: 200 * ms, key: '9'}}, keys(1500*ms, "4711#")...)...), want: Verified, attempts: 1, prompts: "ask_code,success", source: "rfc4733", hungUpByUs: true,
			early: []EarlyKey{{Key: "digit", Source: "rfc4733", MS: 200, Reason: EarlyMinKeyDelay}}},
		{name: "code_hangup", code: "4711", dialer: fakeDialer{hangupAt: 2 * s}, media: script(keys(1500*ms, "47")...), want: HungUp, attempts: 1, prompts: "ask_code", answeredFor: 2 * s},
		{name: "code_max_call_duration", code: "4711", cfg: Config{AnswerTimeout: 10 * s, MaxCallDuration: 4 * s}, want: NoKey, attempts: 1, prompts: "ask_code", errText: "maximum call duration", hungUpByUs: true, answeredFor: 4 * s},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) { runFlow(t, tc) })
		})
	}
}

// script is a media change that presses ps.
func script(ps ...press) func(*fakeMedia) {
	return func(m *fakeMedia) { m.script = ps }
}

func runFlow(t *testing.T, tc flowCase) {
	t.Helper()
	cfg := tc.cfg
	if cfg.AnswerTimeout == 0 {
		cfg.AnswerTimeout = 3 * time.Second
	}
	if cfg.Attempts == 0 {
		cfg.Attempts = 3
	}
	cfg.NoVoicemail = tc.greeting == nil
	var fm *fakeMedia
	dialer := tc.dialer
	v := &Verifier{Config: cfg, Dialer: &dialer, Listen: func(ctx context.Context, mc media.SessionConfig) (Media, error) {
		fm = newFakeMedia(mc)
		fm.audio = tc.greeting
		if tc.media != nil {
			tc.media(fm)
		}
		return fm, nil
	}}
	set := flowPrompts()
	if tc.prompt != nil {
		tc.prompt(set)
	}
	req := Request{To: "+447700900123", Prompts: set}
	var played []string
	req.OnProgress = func(p Progress) {
		if p.Stage == StagePrompt {
			played = append(played, p.Detail)
		}
		if p.Stage == StageKey && tc.code != "" && strings.ContainsAny(strings.ReplaceAll(p.Detail, "rfc4733", ""), "0123456789") {
			t.Errorf("progress %q shows a digit of the code", p.Detail)
		}
	}
	if tc.code != "" {
		req.Code = &CodeRequest{Secret: numbermatch.NewRandomHasher().Seal(tc.code, time.Now().Add(time.Minute)), Failed: tc.failed}
	}
	ctx, cancel := context.WithCancelCause(t.Context())
	defer cancel(nil)
	if tc.cancelAt > 0 {
		stop := time.AfterFunc(tc.cancelAt, func() { cancel(ErrCancelled) })
		defer stop.Stop()
	}
	res := v.Run(ctx, req)
	if dialer.hangupAT != nil {
		dialer.hangupAT.Stop()
	}

	if tc.want != Verified && res.Outcome == Verified {
		t.Fatalf("VERIFIED: %+v", res)
	}
	if res.Outcome != tc.want {
		t.Fatalf("outcome %s (error %q), want %s", res.Outcome, res.Error, tc.want)
	}
	if tc.code == "" && res.Keys != tc.keys {
		t.Errorf("keys %q, want %q", res.Keys, tc.keys)
	}
	if tc.code != "" && res.Keys != "" {
		t.Errorf("mode code put keys %q in the result", res.Keys)
	}
	if res.Attempts != tc.attempts {
		t.Errorf("attempts %d, want %d", res.Attempts, tc.attempts)
	}
	if got := strings.Join(played, ","); got != tc.prompts {
		t.Errorf("prompts %q, want %q", got, tc.prompts)
	}
	if res.DTMFSource != tc.source {
		t.Errorf("dtmf source %q, want %q", res.DTMFSource, tc.source)
	}
	if (tc.errText == "") != (res.Error == "") || !strings.Contains(res.Error, tc.errText) {
		t.Errorf("error %q, want %q", res.Error, tc.errText)
	}
	if !slices.Equal(res.EarlyKeys, tc.early) {
		t.Errorf("early keys %+v, want %+v", res.EarlyKeys, tc.early)
	}
	if res.WrongCodes != tc.wrongCodes {
		t.Errorf("wrong codes %d, want %d", res.WrongCodes, tc.wrongCodes)
	}
	if res.Diverted != tc.diverted || (tc.diverted && len(res.DiversionReasons) != 1) {
		t.Errorf("diverted %v %q, want %v", res.Diverted, res.DiversionReasons, tc.diverted)
	}
	if res.VoicemailReason != tc.vmReason {
		t.Errorf("voicemail reason %q, want %q", res.VoicemailReason, tc.vmReason)
	}
	if res.To == req.To || !strings.Contains(res.To, "*") {
		t.Errorf("number %q not masked", res.To)
	}
	if tc.dialCause != nil && !errors.Is(dialer.cause, tc.dialCause) {
		t.Errorf("dial context ended with %v, want %v", dialer.cause, tc.dialCause)
	}
	if c := dialer.call; c != nil {
		if c.byUs != tc.hungUpByUs {
			t.Errorf("hung up by us %v, want %v", c.byUs, tc.hungUpByUs)
		}
		if !c.ended {
			t.Error("the call was left up")
		}
		if res.AnsweredAt == nil || res.SIPCode != 200 || res.Codec != media.PCMU.Name {
			t.Errorf("answered %v sip code %d codec %q", res.AnsweredAt, res.SIPCode, res.Codec)
		}
	} else if res.AnsweredAt != nil {
		t.Errorf("answered at %v without a call", res.AnsweredAt)
	}
	if tc.answeredFor > 0 && res.AnsweredAt != nil {
		if got := res.EndedAt.Sub(*res.AnsweredAt); got != tc.answeredFor {
			t.Errorf("call lasted %v after the answer, want %v", got, tc.answeredFor)
		}
	}
	if tc.within > 0 && res.AnsweredAt != nil {
		if got := res.EndedAt.Sub(*res.AnsweredAt); got > tc.within {
			t.Errorf("call lasted %v after the answer, want at most %v", got, tc.within)
		}
	}
	if tc.keyAfter > 0 {
		if res.KeyAt == nil || res.KeyAt.Sub(*res.AnsweredAt) != tc.keyAfter {
			t.Errorf("key at %v, want %v after the answer", res.KeyAt, tc.keyAfter)
		} else if res.HashToDecisionMS != 0 {
			t.Errorf("# to decision %v ms, want 0 on the fake media", res.HashToDecisionMS)
		}
	}
	if fm != nil && !fm.closed {
		t.Error("the media session was not closed")
	}
}

// offsetClock is the real clock (the bubble's) shifted by a day: a clock
// other than time.Now that the flow must read.
type offsetClock struct{ media.Clock }

func (c offsetClock) Now() time.Time { return c.Clock.Now().Add(24 * time.Hour) }

// TestFlowInjectedClock: Verifier.Clock is the time of the result and the
// media's clock.
func TestFlowInjectedClock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		clock := offsetClock{media.SystemClock()}
		var mediaClock media.Clock
		dialer := &fakeDialer{ring: time.Second}
		v := &Verifier{Config: Config{NoVoicemail: true}, Dialer: dialer, Clock: clock, Listen: func(ctx context.Context, mc media.SessionConfig) (Media, error) {
			mediaClock = mc.Clock
			m := newFakeMedia(mc)
			m.script = []press{{at: 2 * time.Second, key: '#'}}
			return m, nil
		}}
		start := time.Now()
		res := v.Run(t.Context(), Request{To: "100", Prompts: flowPrompts()})
		if res.Outcome != Verified {
			t.Fatalf("outcome %s (%s)", res.Outcome, res.Error)
		}
		day := 24 * time.Hour
		if !res.StartedAt.Equal(start.Add(day)) || !res.AnsweredAt.Equal(start.Add(day+time.Second)) || !res.KeyAt.Equal(start.Add(day+3*time.Second)) {
			t.Errorf("started %v answered %v key %v: not on the injected clock (start %v)", res.StartedAt, res.AnsweredAt, res.KeyAt, start)
		}
		if res.SetupMS != 1000 {
			t.Errorf("set-up %v ms, want 1000", res.SetupMS)
		}
		if mediaClock != media.Clock(clock) {
			t.Errorf("the media got clock %v, want the verifier's", mediaClock)
		}
	})
}
