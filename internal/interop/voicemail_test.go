package interop

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashcall/hashcall/dtmf"
	"github.com/hashcall/hashcall/dtmf/dtmftest"
	"github.com/hashcall/hashcall/internal/testpeers"
	"github.com/hashcall/hashcall/media/wav"
	"github.com/hashcall/hashcall/verify"
)

// speakAudio says text with espeak-ng as 8 kHz audio (sox), without the
// silence espeak-ng puts around it.
func speakAudio(t *testing.T, voice, text string) []int16 {
	t.Helper()
	espeak := testpeers.Program(t, "espeak-ng", "espeak-ng")
	sox := testpeers.Program(t, "sox", "sox")
	out := filepath.Join(t.TempDir(), "speech.wav")
	cmd := exec.Command("sh", "-c", `"$0" -v "$1" --stdout | "$2" -t wav - -r 8000 -c 1 -b 16 -e signed-integer "$3"`, espeak, voice, sox, out)
	cmd.Stdin = strings.NewReader(text)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("espeak-ng: %v\n%s", err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	f, data, err := wav.ReadAll(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	s, err := wav.Samples(f, data)
	if err != nil {
		t.Fatal(err)
	}
	i, j := 0, len(s)
	for i < j && s[i] > -300 && s[i] < 300 {
		i++
	}
	for j > i && s[j-1] > -300 && s[j-1] < 300 {
		j--
	}
	return s[i:j]
}

const ms = time.Millisecond

func beep(hz float64, d time.Duration) []int16 {
	return dtmftest.Tones(d, dtmftest.Tone{Freq: hz, DBm0: -12})
}

// TestVoicemailThroughKamailio calls a SIPp phone through Kamailio that
// plays, as soon as it answers, a voicemail greeting with a beep (hung up
// at once: voicemail, by the greeting or the beep), and a person's
// "hello?" and an in-band # (verified, not voicemail).
func TestVoicemailThroughKamailio(t *testing.T) {
	l := startLab(t)
	set := shortPrompts(t)
	long := speakAudio(t, "en-gb", "Hi, you've reached Alex. I can't take your call right now. Please leave a message after the tone.")
	short := speakAudio(t, "en-us", "Please leave a message.")
	hello := speakAudio(t, "en-gb+f3", "Hello?")
	tests := []struct {
		name   string
		audio  []int16
		want   verify.Outcome
		reason string
	}{
		{"greeting_and_beep", dtmftest.Concat(long, dtmftest.Silence(250*ms), beep(1000, 500*ms), dtmftest.Silence(3*time.Second)), verify.Voicemail, "greeting"},
		{"short_greeting_and_beep", dtmftest.Concat(short, dtmftest.Silence(250*ms), beep(850, 400*ms), dtmftest.Silence(3*time.Second)), verify.Voicemail, "beep"},
		{"person_hello_then_hash", dtmftest.Concat(hello, dtmftest.Silence(1500*ms), dtmftest.DTMF(dtmf.KeyHash, -8, 150*ms), dtmftest.Silence(2*time.Second)), verify.Verified, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			writeAudioPcap(t, l.dir, "voicemail_pcmu.pcap", lawPCMU, 0x11110021, tc.audio)
			u := l.startUAS(t, "voicemail_greeting")
			v, _ := l.newVerifier(t, uaOptions{})
			v.Config.AnswerTimeout = 8 * time.Second // longer than the greeting: the verdict must come first
			stages := &stageLog{}
			start := time.Now()
			res := v.Run(ctxFor(t, callTimeout), verify.Request{To: u.scenario.number, Prompts: set, OnProgress: stages.record})
			elapsed := time.Since(start)
			logResult(t, res, stages)
			t.Logf("voicemail reason %q after %v", res.VoicemailReason, elapsed)
			if res.Outcome != tc.want || res.VoicemailReason != tc.reason {
				t.Errorf("outcome %s (%q), want %s (%q)", res.Outcome, res.VoicemailReason, tc.want, tc.reason)
			}
			if tc.want == verify.Voicemail {
				if res.Outcome == verify.Verified {
					t.Fatal("VERIFIED a voicemail greeting")
				}
				if elapsed > 6*time.Second {
					t.Errorf("hung up after %v: the verdict did not end the call", elapsed)
				}
			}
			if code := u.finish(t, 10*time.Second); code != 0 {
				t.Errorf("SIPp exited with status %d, want 0", code)
			}
		})
	}
}
