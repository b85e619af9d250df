package interop

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/hashcall/hashcall/dtmf"
	"github.com/hashcall/hashcall/dtmf/dtmftest"
	"github.com/hashcall/hashcall/internal/testpeers"
	"github.com/hashcall/hashcall/numbermatch"
	"github.com/hashcall/hashcall/verify"
)

// Mode code (number matching) through the lab: hashcall serve draws the
// code and returns it in its 202; only then is the phone's capture written
// (the keys of that code, or of a wrong one) and SIPp started on it, so
// the INVITE that Kamailio relayed first finds no phone and its
// retransmission (T1, 500 ms) does.

// keyPress is one key of a generated capture, at its start after the
// capture's start, lasting dur.
type keyPress struct {
	key     dtmf.Key
	at, dur time.Duration
}

// pressesOf is the keys of s from at, each on for on with off between.
func pressesOf(s string, at, on, off time.Duration) []keyPress {
	var out []keyPress
	for i := range len(s) {
		out = append(out, keyPress{dtmf.Key(s[i]), at + time.Duration(i)*(on+off), on})
	}
	return out
}

// keyCapture says how a generated capture carries its presses.
type keyCapture struct {
	events bool          // RFC 4733 telephone-events (PT 101), replacing the audio while they last
	inband bool          // DTMF tones in the PCMU audio
	leak   time.Duration // events and inband: the tones this far behind the events (as Asterisk leaks them)
}

func (k keyCapture) source() string {
	if k.events {
		return "rfc4733"
	}
	return "inband"
}

// writeKeysPcap writes total of PCMU audio, one SSRC, with presses carried
// as kc says, as a SIPp capture dir/name (RFC 4733 §2.5.1: events share the
// audio's SSRC and sequence space, the event's timestamp its start; with
// leaked tones the audio goes on beside the events).
func writeKeysPcap(t testing.TB, dir, name string, ssrc uint32, total time.Duration, kc keyCapture, presses []keyPress) string {
	t.Helper()
	const baseTS = 160000
	audio := dtmftest.Silence(total)
	if kc.inband {
		for _, p := range presses {
			tone := dtmftest.DTMF(p.key, toneDBm0, p.dur)
			copy(audio[min(len(audio), dtmftest.Samples(p.at+kc.leak)):], tone)
		}
	}
	enc := dtmftest.EncodeUlaw(audio)
	type item struct {
		at  time.Duration
		h   rtp.Header
		pay []byte
	}
	var items []item
	eventOn := func(at time.Duration) bool {
		for _, p := range presses {
			if at >= p.at && at < p.at+p.dur+3*frameTime {
				return true
			}
		}
		return false
	}
	for i := 0; i*frameSamples < len(enc); i++ {
		at := time.Duration(i) * frameTime
		if kc.events && !kc.inband && eventOn(at) {
			continue // the events replace the audio
		}
		frame := make([]byte, frameSamples)
		copy(frame, enc[i*frameSamples:])
		items = append(items, item{at, rtp.Header{Version: 2, PayloadType: ptPCMU, SSRC: ssrc, Timestamp: baseTS + uint32(i*frameSamples), Marker: i == 0}, frame})
	}
	if kc.events {
		for _, p := range presses {
			e := dtmf.NewEncoder(dtmf.EncoderConfig{PayloadType: 101, SSRC: ssrc, Timestamp: baseTS + uint32(dtmftest.Samples(p.at)), Volume: phoneVolume, Interval: frameTime})
			for _, pk := range e.Press(nil, p.key, p.dur) {
				b := make([]byte, pk.Payload.MarshalSize())
				if _, err := pk.Payload.MarshalTo(b); err != nil {
					t.Fatal(err)
				}
				items = append(items, item{p.at + pk.Offset, pk.Header, b})
			}
		}
	}
	sort.SliceStable(items, func(i, j int) bool { return items[i].at < items[j].at })
	pkts := make([]pcapPacket, 0, len(items))
	for i, it := range items {
		it.h.SequenceNumber = uint16(4711 + i)
		b, err := (&rtp.Packet{Header: it.h, Payload: it.pay}).Marshal()
		if err != nil {
			t.Fatal(err)
		}
		pkts = append(pkts, pcapPacket{at: it.at, rtp: b})
	}
	var buf bytes.Buffer
	if err := writePcap(&buf, time.Date(2024, 1, 1, 12, 0, 0, 0, time.UTC), pkts); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// wrongOf is code with its last digit changed.
func wrongOf(code string) string {
	last := '0' + (code[len(code)-1]-'0'+1)%10
	return code[:len(code)-1] + string(rune(last))
}

// codeVerification is the part of the API's answer that mode code adds.
type codeVerification struct {
	ID               string  `json:"id"`
	Status           string  `json:"status"`
	Mode             string  `json:"mode"`
	Code             *string `json:"code"`
	CodeExpiresAt    *string `json:"code_expires_at"`
	Outcome          string  `json:"outcome"`
	DTMFSource       string  `json:"dtmf_source"`
	Keys             string  `json:"keys"`
	WrongCodes       int     `json:"wrong_codes"`
	HashToDecisionMS float64 `json:"hash_to_decision_ms"`
	EarlyKeys        []struct {
		Key    string `json:"key"`
		Reason string `json:"reason"`
	} `json:"early_keys"`
}

var sixDigits = regexp.MustCompile(`^[0-9]{6}$`)

// codeIn reports whether text holds code as a number of its own (not
// inside a longer run of digits, such as a timestamp).
func codeIn(text, code string) bool {
	return regexp.MustCompile(`(^|[^0-9])` + code + `([^0-9]|$)`).MatchString(text)
}

// keyDigitRE finds a key press logged with its digit, in slog's text or
// JSON form: in mode code the digits of a code are a secret, one by one too.
var keyDigitRE = regexp.MustCompile(`key=[0-9A-D]\b|"key":"[0-9A-D]"`)

// TestCodeThroughKamailio asks hashcall serve for mode code verifications
// of a SIPp phone through Kamailio that keys, 2 s after it answers (past
// verify.min_key_delay and the cut ask_code's press point), the right code
// or a wrong one, as RFC 4733 events or in-band tones, slowly (1.5 s
// between keys) or fast (Q.24: 40 ms on, 40 ms off), as events with the
// same tones leaked 150 ms behind (every key must count once), and the
// right code as soon as it answers (early keys: not verified). The code
// must be in the 202 and never in hashcall's log nor in the completed
// verification.
func TestCodeThroughKamailio(t *testing.T) {
	l, bin, promptsDir := hookLab(t)
	requireRoot(t)
	const (
		on  = 150 * time.Millisecond
		off = 150 * time.Millisecond
		at  = 2 * time.Second
	)
	events, inband := keyCapture{events: true}, keyCapture{inband: true}
	tests := []struct {
		name  string
		kc    keyCapture
		keys  func(code string) []keyPress
		want  string
		early bool
	}{
		{"rfc4733_right", events, func(c string) []keyPress { return pressesOf(c+"#", at, on, off) }, "verified", false},
		{"rfc4733_wrong", events, func(c string) []keyPress { return pressesOf(wrongOf(c)+"#", at, on, off) }, "wrong_code", false},
		{"inband_right", inband, func(c string) []keyPress { return pressesOf(c+"#", at, on, off) }, "verified", false},
		{"inband_wrong", inband, func(c string) []keyPress { return pressesOf(wrongOf(c)+"#", at, on, off) }, "wrong_code", false},
		{"rfc4733_slow", events, func(c string) []keyPress { return pressesOf(c+"#", at, on, 1500*time.Millisecond) }, "verified", false},
		{"inband_fast_q24", inband, func(c string) []keyPress { return pressesOf(c+"#", at, 40*time.Millisecond, 40*time.Millisecond) }, "verified", false},
		{"rfc4733_fast", events, func(c string) []keyPress { return pressesOf(c+"#", at, 40*time.Millisecond, 40*time.Millisecond) }, "verified", false},
		{"rfc4733_star_clears", events, func(c string) []keyPress { return pressesOf("99*"+c+"#", at, on, off) }, "verified", false},
		{"events_and_leaked_tones", keyCapture{events: true, inband: true, leak: 150 * time.Millisecond},
			func(c string) []keyPress { return pressesOf(c+"#", at, on, 250*time.Millisecond) }, "verified", false},
		{"code_on_answer", events, func(c string) []keyPress { return pressesOf(c+"#", 0, 80*time.Millisecond, 60*time.Millisecond) }, "no_key", true},
	}
	number := mobileNumber(scenarioByName(t, "code_play").number)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := l.startServe(t, bin, promptsDir, serveOptions{})
			r := s.must(t, "POST", "/v1/verifications", `{"to":"`+number+`","mode":"code","reference":"code-`+tc.name+`"}`)
			var v codeVerification
			if r.status != http.StatusAccepted || json.Unmarshal(r.body, &v) != nil || v.Code == nil || !sixDigits.MatchString(*v.Code) || v.Mode != "code" || v.CodeExpiresAt == nil {
				t.Fatalf("POST: %s, want 202 with mode code, a 6-digit code and its expiry", r)
			}
			code := *v.Code
			keys := tc.keys(code)
			last := keys[len(keys)-1]
			writeKeysPcap(t, l.dir, "code.pcap", 0x11110026, last.at+last.dur+3*time.Second, tc.kc, keys)
			u := l.startUAS(t, "code_play")
			r = s.must(t, "GET", "/v1/verifications/"+v.ID+"?wait=40s", "")
			var done codeVerification
			if r.status != http.StatusOK || json.Unmarshal(r.body, &done) != nil || done.Status != "completed" {
				t.Fatalf("GET: %s, want 200 and completed", r)
			}
			t.Logf("outcome %s by %q, wrong codes %d, early keys %d, #-to-decision %.1f ms", done.Outcome, done.DTMFSource, done.WrongCodes, len(done.EarlyKeys), done.HashToDecisionMS)
			if done.Outcome != tc.want {
				t.Errorf("outcome %s, want %s (%s)", done.Outcome, tc.want, r)
			}
			if tc.want != "no_key" && done.DTMFSource != tc.kc.source() {
				t.Errorf("dtmf_source %q, want %s", done.DTMFSource, tc.kc.source())
			}
			if tc.want == "wrong_code" && done.WrongCodes != 1 {
				t.Errorf("wrong_codes %d, want 1", done.WrongCodes)
			}
			if tc.early {
				if len(done.EarlyKeys) != len(keys) {
					t.Errorf("%d early keys, want the %d keyed on answer", len(done.EarlyKeys), len(keys))
				}
				for _, ek := range done.EarlyKeys {
					if ek.Key != "digit" && ek.Key != "#" {
						t.Errorf("early key shown as %q: a code's digits must show as \"digit\"", ek.Key)
					}
				}
			}
			if done.Code != nil || codeIn(string(r.body), code) || done.Keys != "" {
				t.Errorf("the completed verification shows the code or its keys: %s", r.body)
			}
			if codeIn(s.log(), code) {
				t.Errorf("hashcall serve logged the code %s", code)
			}
			if m := keyDigitRE.FindString(s.log()); m != "" {
				t.Errorf("hashcall serve logged a digit of the code: %s", m)
			}
			if !strings.Contains(s.log(), "verification completed") {
				t.Errorf("no audit line in the log: is it being read?")
			}
			if c := u.finish(t, 10*time.Second); c != 0 {
				t.Errorf("SIPp exited with status %d, want 0", c)
			}
		})
	}
}

// TestCodeSoftphonesThroughKamailio: a real softphone registered at the
// lab's Kamailio keys a code in mode code: baresip by RFC 4733 (ctrl_tcp
// sndcode, one per key); the right code verifies, a wrong one is
// wrong_code. (linphonec 5.1 by SIP INFO is not here: it sends the next
// INFO only once it has read the 200 to the previous one, and it reads
// that 200 off its socket only seconds later, when the call's BYE comes,
// although tshark shows Kamailio delivering it within a millisecond; so
// only the first key of a code arrives and the code times out. A code by
// SIP INFO is TestCodeSIPInfoThroughKamailio's, from SIPp.) The code is drawn as the
// service draws it and is in none of hashcall's log lines (debug level:
// the UA and the media session too).
func TestCodeSoftphonesThroughKamailio(t *testing.T) {
	const (
		pressDelay = 2 * time.Second // after min_key_delay and the press point
		keyGap     = 400 * time.Millisecond
	)
	l := startLab(t)
	type phone struct {
		established func(ctx context.Context) error
		press       func(ctx context.Context, key byte) error
	}
	tests := []struct {
		name, number, source string
		wrong                bool
	}{
		{"baresip_rfc4733_right", "2001", "rfc4733", false},
		{"baresip_rfc4733_wrong", "2001", "rfc4733", true},
	}
	baresip := func(t *testing.T) phone {
		b := testpeers.RunBaresip(t, testpeers.BaresipConfig{
			User:      "baresip",
			Registrar: &testpeers.Registrar{Address: l.kamAddr, Password: "baresip-pw"},
		})
		if err := b.WaitRegistered(ctxFor(t, 10*time.Second)); err != nil {
			t.Fatal(err)
		}
		mark := b.Mark()
		return phone{
			established: func(ctx context.Context) error { _, err := b.WaitEvent(ctx, mark, "CALL_ESTABLISHED"); return err },
			press:       b.Press,
		}
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ph := baresip(t)
			code, err := numbermatch.Generate(nil, numbermatch.DefaultLength)
			if err != nil {
				t.Fatal(err)
			}
			keyed := code
			if tc.wrong {
				keyed = wrongOf(code)
			}
			v, _, logs := l.newVerifierLog(t, uaOptions{})
			pressed := make(chan error, 1)
			pctx := ctxFor(t, 30*time.Second)
			go func() {
				pressed <- func() error {
					if err := ph.established(pctx); err != nil {
						return err
					}
					if err := pause(pctx, pressDelay); err != nil { // the callee listens to the prompt
						return err
					}
					for i := range len(keyed + "#") {
						if err := ph.press(pctx, (keyed + "#")[i]); err != nil {
							return err
						}
						if err := pause(pctx, keyGap); err != nil { // the callee's keying pace
							return err
						}
					}
					return nil
				}()
			}()
			secret := numbermatch.NewRandomHasher().Seal(code, time.Now().Add(numbermatch.DefaultTTL))
			wrongs := 0
			stages := &stageLog{}
			res := v.Run(ctxFor(t, callTimeout), verify.Request{To: tc.number, Prompts: shortPrompts(t), OnProgress: stages.record,
				Code: &verify.CodeRequest{Secret: secret, Failed: func() bool { wrongs++; return true }}})
			logResult(t, res, stages)
			if err := <-pressed; err != nil {
				t.Errorf("keying the code: %v", err)
			}
			want := verify.Verified
			if tc.wrong {
				want = verify.WrongCode
			}
			if res.Outcome != want || res.DTMFSource != tc.source {
				t.Errorf("outcome %s by %q, want %s by %s", res.Outcome, res.DTMFSource, want, tc.source)
			}
			if tc.wrong && (wrongs != 1 || res.WrongCodes != 1) {
				t.Errorf("%d wrong codes counted (%d in the result), want 1", wrongs, res.WrongCodes)
			}
			if res.Outcome == verify.Verified {
				t.Logf("%s: #-to-decision %.1f ms", tc.name, res.HashToDecisionMS)
			}
			if codeIn(logs.String(), code) || codeIn(stages.String(), code) || res.Keys != "" {
				t.Errorf("the code %s is in hashcall's log, its progress or its result", code)
			}
			if m := keyDigitRE.FindString(logs.String()); m != "" {
				t.Errorf("hashcall logged a digit of the code: %s", m)
			}
		})
	}
}

// TestCodeSIPInfoThroughKamailio: a SIPp phone through Kamailio keys the
// code from hashcall serve's 202 by SIP INFO, one INFO per key (the keys
// from an injection file written after the 202): the right code verifies,
// a wrong one is wrong_code, and the code is not logged.
func TestCodeSIPInfoThroughKamailio(t *testing.T) {
	l, bin, promptsDir := hookLab(t)
	number := mobileNumber(scenarioByName(t, "code_info").number)
	for _, tc := range []struct {
		name  string
		wrong bool
		want  string
	}{{"right", false, "verified"}, {"wrong", true, "wrong_code"}} {
		t.Run(tc.name, func(t *testing.T) {
			s := l.startServe(t, bin, promptsDir, serveOptions{})
			r := s.must(t, "POST", "/v1/verifications", `{"to":"`+number+`","mode":"code"}`)
			var v codeVerification
			if r.status != http.StatusAccepted || json.Unmarshal(r.body, &v) != nil || v.Code == nil || !sixDigits.MatchString(*v.Code) {
				t.Fatalf("POST: %s, want 202 with a 6-digit code", r)
			}
			code := *v.Code
			keyed := code
			if tc.wrong {
				keyed = wrongOf(code)
			}
			inf := filepath.Join(t.TempDir(), "keys.csv")
			fields := strings.Join(strings.Split(keyed+"#", ""), ";")
			if err := os.WriteFile(inf, []byte("SEQUENTIAL\n"+fields+";\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			u := l.startUASOn(t, "code_info", l.uasPorts["code_info"], 1, "-inf", inf)
			r = s.must(t, "GET", "/v1/verifications/"+v.ID+"?wait=40s", "")
			var done codeVerification
			if r.status != http.StatusOK || json.Unmarshal(r.body, &done) != nil || done.Status != "completed" {
				t.Fatalf("GET: %s, want 200 and completed", r)
			}
			t.Logf("outcome %s by %q, wrong codes %d, #-to-decision %.1f ms", done.Outcome, done.DTMFSource, done.WrongCodes, done.HashToDecisionMS)
			if done.Outcome != tc.want || done.DTMFSource != "sip_info" {
				t.Errorf("outcome %s by %q, want %s by sip_info", done.Outcome, done.DTMFSource, tc.want)
			}
			if done.Code != nil || codeIn(string(r.body), code) || codeIn(s.log(), code) {
				t.Errorf("the code %s is in the completed verification or hashcall's log", code)
			}
			if m := keyDigitRE.FindString(s.log()); m != "" {
				t.Errorf("hashcall serve logged a digit of the code: %s", m)
			}
			if c := u.finish(t, 10*time.Second); c != 0 {
				t.Errorf("SIPp exited with status %d, want 0", c)
			}
		})
	}
}

// TestCodeSIPInfoDebugLog: with hashcall's log at debug level (the SIP
// message trace on), a code keyed by SIP INFO still leaves none of its
// digits in the log: the INFO bodies are left out of the trace and the
// keys show as "digit".
func TestCodeSIPInfoDebugLog(t *testing.T) {
	l := startLab(t)
	code, err := numbermatch.Generate(nil, numbermatch.DefaultLength)
	if err != nil {
		t.Fatal(err)
	}
	inf := filepath.Join(t.TempDir(), "keys.csv")
	if err := os.WriteFile(inf, []byte("SEQUENTIAL\n"+strings.Join(strings.Split(code+"#", ""), ";")+";\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	u := l.startUASOn(t, "code_info", l.uasPorts["code_info"], 1, "-inf", inf)
	v, _, logs := l.newVerifierLog(t, uaOptions{})
	secret := numbermatch.NewRandomHasher().Seal(code, time.Now().Add(numbermatch.DefaultTTL))
	stages := &stageLog{}
	res := v.Run(ctxFor(t, callTimeout), verify.Request{To: u.scenario.number, Prompts: shortPrompts(t), OnProgress: stages.record,
		Code: &verify.CodeRequest{Secret: secret}})
	logResult(t, res, stages)
	if res.Outcome != verify.Verified || res.DTMFSource != "sip_info" {
		t.Errorf("outcome %s by %q, want verified by sip_info", res.Outcome, res.DTMFSource)
	}
	log := logs.String()
	if !strings.Contains(log, "sip recv") || !strings.Contains(log, "SIP INFO DTMF") {
		t.Fatal("no SIP trace in the debug log: is it being read?")
	}
	if m := regexp.MustCompile(`Signal= ?[0-9A-D]\b|key=[0-9A-D]\b`).FindString(log); m != "" || codeIn(log, code) {
		t.Errorf("a digit of the code is in the debug log: %q", m)
	}
	if c := u.finish(t, 10*time.Second); c != 0 {
		t.Errorf("SIPp exited with status %d, want 0", c)
	}
}
