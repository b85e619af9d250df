package testpeers_test

import (
	"context"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashcall/hashcall/internal/testpeers"
	"github.com/hashcall/hashcall/media"
	"github.com/hashcall/hashcall/prompts"
	"github.com/hashcall/hashcall/sip"
	"github.com/hashcall/hashcall/verify"
)

// hashcall's RTP ports, on 127.0.0.1 only, away from the common ones
// other tests and programs on a shared machine use. The phones take free
// ports from testpeers.BaresipSIPBase (27060), testpeers.LinphoneSIPBase
// (27160) and their RTP ranges (27200-27399) up.
var hashcallRTP = media.PortRange{Low: 28000, High: 28999}

// pressAfter is how long after the phone reports the call up it presses
// the key: as a person would, once the ask prompt said to (its press point,
// shortPressAt) and verify.min_key_delay (1.5 s, the default kept here)
// have passed.
const pressAfter = 2 * time.Second

// shortPressAt is the press point of shortPrompts' cut ask, which ends
// before its phrase.
const shortPressAt = 500 * time.Millisecond

// shortPrompts are the en-GB prompts cut short: two seconds of the ask
// prompt, a fifth of a second of the others.
func shortPrompts(t *testing.T) *prompts.Set {
	t.Helper()
	set, err := prompts.Load("", "en-GB")
	if err != nil {
		t.Fatal(err)
	}
	short := *set
	short.Ask = short.Ask[:min(len(short.Ask), 2*media.SampleRate)]
	cut := func(s []int16) []int16 { return s[:min(len(s), media.SampleRate/5)] }
	short.Success, short.Goodbye, short.WrongKey = cut(short.Success), cut(short.Goodbye), cut(short.WrongKey)
	short.AskPressAt = shortPressAt
	return &short
}

// newVerifier is hashcall's side: a user agent whose trunk is the phone
// itself (or a proxy in front of it), with short verification timings.
// Its debug log goes to a file printed when the test fails.
func newVerifier(t *testing.T, trunk sip.Trunk) *verify.Verifier {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), "hashcall.log")
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(f, &slog.HandlerOptions{Level: slog.LevelDebug}))
	if trunk.OptionsInterval == 0 {
		trunk.OptionsInterval = -1
	}
	ctx := context.Background()
	ua, err := sip.NewUA(ctx, sip.Config{Listen: "127.0.0.1:0", Trunk: trunk, From: "hashcall", RingTimeout: 5 * time.Second, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ua.Close()
		f.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("hashcall log:\n%s", b)
		}
	})
	return &verify.Verifier{UA: ua, Logger: log, Config: verify.Config{
		AnswerTimeout:   2 * time.Second,
		Attempts:        1,
		MaxCallDuration: 20 * time.Second,
		Media: media.SessionConfig{
			IP:     netip.MustParseAddr("127.0.0.1"),
			Ports:  hashcallRTP,
			Codecs: []media.Codec{media.PCMU, media.PCMA},
			Logger: log,
		},
	}}
}

// run places the verification call to number and checks its outcome.
func run(t *testing.T, v *verify.Verifier, number string, want verify.Outcome, source string) verify.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res := v.Run(ctx, verify.Request{To: number, Prompts: shortPrompts(t), OnProgress: func(p verify.Progress) {
		t.Logf("progress: %s %s", p.Stage, p.Detail)
	}})
	t.Logf("result: %+v", res)
	if res.Outcome != want || res.DTMFSource != source {
		t.Errorf("outcome %s, dtmf source %q (error %q); want %s, %q", res.Outcome, res.DTMFSource, res.Error, want, source)
	}
	if res.SIPCode != 200 {
		t.Errorf("SIP code %d, want 200", res.SIPCode)
	}
	if res.Outcome == verify.Verified {
		t.Logf("%s: call set-up %.1f ms, # to decision %.1f ms (codec %s)", source, res.SetupMS, res.HashToDecisionMS, res.Codec)
		if res.HashToDecisionMS < 0 || res.HashToDecisionMS > 1000 {
			t.Errorf("# to decision %.1f ms: want under a second", res.HashToDecisionMS)
		}
	}
	return res
}

// baresip auto-answers hashcall's call placed straight to it and presses
// a key over ctrl_tcp: RFC 4733 events interleaved with its audio (a sine)
// on one SSRC.
func TestBaresip(t *testing.T) {
	tests := []struct {
		name   string
		codecs []string // baresip's audio_codecs; nil: PCMU and PCMA
		key    byte
		want   verify.Outcome
		codec  string
	}{
		{"hash_verifies", nil, '#', verify.Verified, "PCMU"},
		{"five_is_wrong_key", nil, '5', verify.WrongKey, "PCMU"},
		{"hash_verifies_pcma", []string{"PCMA/8000/1"}, '#', verify.Verified, "PCMA"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := testpeers.RunBaresip(t, testpeers.BaresipConfig{User: "2001", Codecs: tc.codecs})
			v := newVerifier(t, sip.Trunk{Address: b.Addr()})
			mark := b.Mark()
			pressed := pressWhenUp(t, func(ctx context.Context) error { return b.PressAfterAnswer(ctx, mark, pressAfter, tc.key) })
			res := run(t, v, b.User(), tc.want, "rfc4733")
			if err := <-pressed; err != nil {
				t.Errorf("pressing %c: %v", tc.key, err)
			}
			if res.Codec != tc.codec {
				t.Errorf("codec %s, want %s", res.Codec, tc.codec)
			}
			if n := res.RTPDropped["ssrc"] + res.RTPDropped["payload_type"]; n > 0 {
				t.Errorf("dropped %v: events and audio share one SSRC and were negotiated", res.RTPDropped)
			}
		})
	}
}

// linphonec auto-answers and presses # on stdin, sending it as SIP INFO,
// in-band tones (in PCMU or PCMA) or RFC 4733 events, as its linphonerc
// says.
func TestLinphone(t *testing.T) {
	tests := []struct {
		name   string
		dtmf   string
		codec  string // the only codec linphonec enables
		source string
	}{
		{"sip_info", testpeers.DTMFInfo, "PCMU", "sip_info"},
		{"inband_pcmu", testpeers.DTMFInband, "PCMU", "inband"},
		{"inband_pcma", testpeers.DTMFInband, "PCMA", "inband"},
		{"rfc4733", testpeers.DTMFRFC4733, "PCMU", "rfc4733"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := testpeers.RunLinphone(t, testpeers.LinphoneConfig{User: "2002", DTMF: tc.dtmf, Codecs: []string{tc.codec}})
			v := newVerifier(t, sip.Trunk{Address: l.Addr()})
			mark := l.Mark()
			pressed := pressWhenUp(t, func(ctx context.Context) error { return l.PressAfterAnswer(ctx, mark, pressAfter, '#') })
			res := run(t, v, l.User(), verify.Verified, tc.source)
			if err := <-pressed; err != nil {
				t.Errorf("pressing #: %v", err)
			}
			if res.Codec != tc.codec {
				t.Errorf("codec %s, want %s", res.Codec, tc.codec)
			}
		})
	}
}

// pressWhenUp runs press in the background (it waits for the call, then
// presses) and returns its error.
func pressWhenUp(t *testing.T, press func(ctx context.Context) error) <-chan error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	done := make(chan error, 1)
	go func() { done <- press(ctx) }()
	return done
}
