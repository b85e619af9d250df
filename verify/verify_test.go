package verify

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/hashcall/hashcall/dtmf"
	"github.com/hashcall/hashcall/internal/phone"
	"github.com/hashcall/hashcall/media"
	"github.com/hashcall/hashcall/prompts"
	"github.com/hashcall/hashcall/sip"
)

// loopback marks an integration test that calls the simulated phone over
// 127.0.0.1 in real time: `go test -short ./verify/` leaves these out and
// runs the fast set (the flow over fakes, TestFlow, and the rules).
func loopback(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("loopback integration test: runs without -short")
	}
}

// A whole verification over 127.0.0.1 against the simulated phone: real
// SIP (sipgo both sides), real RTP, the real detector.
func TestVerifyWithSimulatedPhone(t *testing.T) {
	loopback(t)
	set, err := prompts.Load("", "en-GB")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		method string
		key    dtmf.Key
		codecs []media.Codec
		want   Outcome
		source string
		after  time.Duration // when the phone presses; 0: 700 ms
	}{
		{"rfc4733_hash", phone.MethodRFC4733, '#', nil, Verified, "rfc4733", 0},
		{"inband_hash_pcmu", phone.MethodInband, '#', []media.Codec{media.PCMU}, Verified, "inband", 0},
		{"inband_hash_pcma", phone.MethodInband, '#', []media.Codec{media.PCMA}, Verified, "inband", 0},
		{"sip_info_hash", phone.MethodInfo, '#', nil, Verified, "sip_info", 0},
		{"wrong_key", phone.MethodRFC4733, '5', nil, WrongKey, "rfc4733", 0},
		{"no_key", phone.MethodNone, '#', nil, NoKey, "", 0},
		// A far end that plays # as it answers (a voicemail greeting).
		{"hash_on_answer_rfc4733", phone.MethodRFC4733, '#', nil, NoKey, "", 20 * time.Millisecond},
		{"hash_on_answer_inband", phone.MethodInband, '#', nil, NoKey, "", 20 * time.Millisecond},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			after := tc.after
			if after == 0 {
				after = 700 * time.Millisecond
			}
			ph, err := phone.Start(ctx, phone.Config{Method: tc.method, Key: tc.key, After: after, Codecs: tc.codecs, Ports: media.PortRange{Low: 31000, High: 31999}})
			if err != nil {
				t.Fatal(err)
			}
			defer ph.Close()
			ua, err := sip.NewUA(ctx, sip.Config{Listen: "127.0.0.1:0", Trunk: sip.Trunk{Address: ph.Addr(), OptionsInterval: -1}, From: "hashcall"})
			if err != nil {
				t.Fatal(err)
			}
			defer ua.Close()
			v := &Verifier{UA: ua, Config: Config{
				AnswerTimeout: 300 * time.Millisecond, Attempts: 1, MinKeyDelay: 400 * time.Millisecond,
				Media: media.SessionConfig{IP: netip.MustParseAddr("127.0.0.1"), Ports: media.PortRange{Low: 32000, High: 32999}},
			}}
			short := *set
			short.Ask = short.Ask[:8000] // one second of the ask prompt
			short.AskPressAt = 200 * time.Millisecond
			short.Success, short.Goodbye, short.WrongKey = short.Success[:1600], short.Goodbye[:1600], short.WrongKey[:1600]
			res := v.Run(ctx, Request{To: "100", Prompts: &short, OnProgress: func(p Progress) { t.Logf("%s %s", p.Stage, p.Detail) }})
			t.Logf("result %+v", res)
			if res.Outcome != tc.want || res.DTMFSource != tc.source {
				t.Fatalf("outcome %s source %q, want %s %q", res.Outcome, res.DTMFSource, tc.want, tc.source)
			}
			if tc.after != 0 {
				if len(res.EarlyKeys) == 0 || res.EarlyKeys[0].Key != "#" || res.EarlyKeys[0].Reason != EarlyMinKeyDelay || res.Keys != "" {
					t.Errorf("early keys %+v, keys %q: want the # listed as early (min_key_delay) and no key counted", res.EarlyKeys, res.Keys)
				}
			} else if len(res.EarlyKeys) != 0 {
				t.Errorf("early keys %+v, want none", res.EarlyKeys)
			}
			if res.SIPCode != 200 || res.Codec == "" {
				t.Errorf("sip code %d codec %q", res.SIPCode, res.Codec)
			}
			if tc.want == Verified {
				t.Logf("call set-up %.1f ms, # to decision %.1f ms", res.SetupMS, res.HashToDecisionMS)
			}
		})
	}
}

// TestVerifyRepeatsAndLimits: silence repeats the ask up to Attempts times;
// sip.max_call_duration ends a call that runs too long.
func TestVerifyRepeatsAndLimits(t *testing.T) {
	loopback(t)
	set, err := prompts.Load("", "en-GB")
	if err != nil {
		t.Fatal(err)
	}
	short := *set
	short.Ask, short.Goodbye = short.Ask[:4000], short.Goodbye[:1600] // 0.5 s, 0.2 s
	tests := []struct {
		name     string
		cfg      Config
		attempts int
		errText  string
	}{
		{"three_attempts_then_goodbye", Config{AnswerTimeout: 300 * time.Millisecond, Attempts: 3}, 3, ""},
		{"max_call_duration", Config{AnswerTimeout: 5 * time.Second, Attempts: 3, MaxCallDuration: 1500 * time.Millisecond}, 1, "maximum call duration"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			ph, err := phone.Start(ctx, phone.Config{Method: phone.MethodNone, Ports: media.PortRange{Low: 31000, High: 31999}})
			if err != nil {
				t.Fatal(err)
			}
			defer ph.Close()
			ua, err := sip.NewUA(ctx, sip.Config{Listen: "127.0.0.1:0", Trunk: sip.Trunk{Address: ph.Addr(), OptionsInterval: -1}})
			if err != nil {
				t.Fatal(err)
			}
			defer ua.Close()
			cfg := tc.cfg
			cfg.Media = media.SessionConfig{IP: netip.MustParseAddr("127.0.0.1"), Ports: media.PortRange{Low: 32000, High: 32999}}
			var prompted []string
			res := (&Verifier{UA: ua, Config: cfg}).Run(ctx, Request{To: "100", Prompts: &short, OnProgress: func(p Progress) {
				if p.Stage == StagePrompt {
					prompted = append(prompted, p.Detail)
				}
			}})
			if res.Outcome != NoKey || res.Attempts != tc.attempts || !strings.Contains(res.Error, tc.errText) {
				t.Fatalf("outcome %s attempts %d error %q; want no_key, %d, %q", res.Outcome, res.Attempts, res.Error, tc.attempts, tc.errText)
			}
			t.Logf("prompts played: %v", prompted)
			if tc.errText == "" && strings.Join(prompted, ",") != "ask,ask,ask,goodbye" {
				t.Errorf("prompts %v, want ask three times then goodbye", prompted)
			}
		})
	}
}

// TestEarly is the early-key guard's rule: a key counts from the later of
// the answer + min_key_delay and the first ask's press point.
func TestEarly(t *testing.T) {
	const (
		answer  = 2 * time.Second
		ask     = answer + 30*time.Millisecond
		delay   = 1500 * time.Millisecond
		pressAt = 4111 * time.Millisecond
	)
	for _, tc := range []struct {
		name       string
		start, ask time.Duration
		delay      time.Duration
		pressAt    time.Duration
		want       EarlyReason
		early      bool
	}{
		{"at the answer (a greeting's #)", answer + 500*time.Millisecond, ask, delay, pressAt, EarlyMinKeyDelay, true},
		{"just inside min_key_delay", answer + delay - time.Millisecond, ask, delay, 0, EarlyMinKeyDelay, true},
		{"at min_key_delay, press point passed", answer + delay, ask, delay, 0, "", false},
		{"after min_key_delay, before the phrase", answer + 3*time.Second, ask, delay, pressAt, EarlyBeforePhrase, true},
		{"at the phrase", ask + pressAt, ask, delay, pressAt, "", false},
		{"after the phrase", ask + pressAt + 700*time.Millisecond, ask, delay, pressAt, "", false},
		{"before the ask started", answer + 2*time.Second, -1, delay, 0, EarlyBeforePhrase, true},
		{"no min_key_delay, before the phrase", answer + 10*time.Millisecond, ask, 0, pressAt, EarlyBeforePhrase, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			why, early := early(tc.start, answer, tc.ask, tc.delay, tc.pressAt)
			if why != tc.want || early != tc.early {
				t.Errorf("early = %q, %v; want %q, %v", why, early, tc.want, tc.early)
			}
		})
	}
}
