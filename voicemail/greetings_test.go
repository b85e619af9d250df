package voicemail

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashcall/hashcall/dtmf/dtmftest"
	"github.com/hashcall/hashcall/internal/testpeers"
	"github.com/hashcall/hashcall/media/wav"
	"github.com/hashcall/hashcall/prompts"
)

// mixLong adds b onto a, the result as long as the longer.
func mixLong(a, b []int16) []int16 {
	out := make([]int16, max(len(a), len(b)))
	copy(out, a)
	for i, x := range b {
		out[i] += x
	}
	return out
}

// speak says text with an espeak-ng voice, as 8 kHz 16-bit audio (sox).
func speak(t *testing.T, voice string, pitch, speed int, text string) []int16 {
	t.Helper()
	espeak := testpeers.Program(t, "espeak-ng", "espeak-ng")
	sox := testpeers.Program(t, "sox", "sox")
	out := filepath.Join(t.TempDir(), "s.wav")
	cmd := exec.Command("sh", "-c", `"$0" -v "$1" -p "$2" -s "$3" --stdout | "$4" -t wav - -r 8000 -c 1 -b 16 -e signed-integer "$5"`,
		espeak, voice, fmt.Sprint(pitch), fmt.Sprint(speed), sox, out)
	cmd.Stdin = strings.NewReader(text)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("espeak-ng %s: %v\n%s", voice, err, b)
	}
	return readWAV(t, out)
}

func readWAV(t *testing.T, path string) []int16 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f, data, err := wav.ReadAll(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	s, err := wav.Samples(f, data)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return s
}

// trim drops espeak-ng's leading and trailing silence.
func trim(s []int16) []int16 {
	loud := func(x int16) bool { return x > 300 || x < -300 }
	i, j := 0, len(s)
	for i < j && !loud(s[i]) {
		i++
	}
	for j > i && !loud(s[j-1]) {
		j--
	}
	return s[i:j]
}

var voices = []struct {
	voice        string
	pitch, speed int
}{
	{"en-gb", 50, 175}, {"en-us", 30, 150}, {"en-gb-x-rp", 80, 200}, {"en-gb-scotland", 20, 160},
	{"en-us+f3", 70, 185}, {"en-029", 45, 140}, {"en-gb+f4", 90, 220}, {"en-us+m3", 10, 195},
}

var machineGreetings = []string{
	"Hi, you've reached Alex. I can't take your call right now. Please leave a message after the tone.",
	"The person you are calling is not available. Please leave a message after the beep.",
	"Hello, this is Sam. Leave your name and number and I'll call you back.",
	"Welcome to the voicemail service. The number you have called is not available.",
	"Please leave a message.",
	"Sorry I missed you, leave a message.",
}

var humanGreetings = []string{
	"Hello?",
	"Hello, who is this?",
	"Yes?",
	"Hiya.",
	"Hello, Sam speaking.",
	"Good morning?",
}

// beeps are recorder beeps: frequency, level, length.
var beeps = []struct {
	hz, dBm0 float64
	d        time.Duration
}{
	{425, -12, 400 * ms}, {440, -16, 500 * ms}, {850, -10, 300 * ms}, {1000, -14, 600 * ms}, {1400, -20, 350 * ms}, {950, -24, 800 * ms},
}

// TestGreetingRates measures how often generated voicemail greetings
// (espeak-ng voices, with and without a beep of several frequencies) are
// recognised, and requires that no person saying hello and then pressing #
// is taken for a machine. The rates are logged for the report.
func TestGreetingRates(t *testing.T) {
	set, err := prompts.Load("", "en-GB")
	if err != nil {
		t.Fatal(err)
	}
	ask := set.Ask // what the far end hears from the answer on
	var machines, recognisable, machineHits, beepHits, humans, humanHits int
	// The same with our prompt playing and its echo coming back 20 dB
	// down after 80 ms (a line without an echo canceller).
	var echoMachineHits, echoRecognisableHits, echoHumanHits int
	withEcho := func(audio []int16) Verdict {
		return runEcho(New(Config{}), mixLong(audio, echoOf(ask, 20, 80*ms)), ask)
	}
	var misses []string
	for vi, v := range voices {
		for gi, g := range machineGreetings {
			speech := trim(speak(t, v.voice, v.pitch, v.speed, g))
			lead := time.Duration(200+100*(gi%5)) * ms // the machine answers, then speaks
			// With a beep after the greeting, and without (a greeting that
			// ends in silence: only its length can tell).
			b := beeps[(vi+gi)%len(beeps)]
			for _, withBeep := range []bool{true, false} {
				audio := dtmftest.Concat(dtmftest.Silence(lead), speech, dtmftest.Silence(250*ms))
				if withBeep {
					audio = dtmftest.Concat(audio, tone(b.hz, b.dBm0, b.d))
				}
				audio = dtmftest.Concat(audio, dtmftest.Silence(5*time.Second))
				verdict := run(New(Config{}), audio)
				machines++
				// A greeting shorter than a person's longest hello, with
				// no beep, cannot be told from one: counted, not required.
				required := withBeep || dtmftest.Duration(len(speech)) >= 3*time.Second
				if required {
					recognisable++
				}
				if ev := withEcho(audio); ev.Machine {
					echoMachineHits++
					if required {
						echoRecognisableHits++
					}
				}
				switch {
				case verdict.Machine:
					machineHits++
					if verdict.Reason == ReasonBeep {
						beepHits++
					}
				case required:
					t.Errorf("greeting %s %q beep=%v (%v of speech) not recognised", v.voice, g, withBeep, dtmftest.Duration(len(speech)))
				default:
					misses = append(misses, fmt.Sprintf("%s %q (%v of speech, no beep)", v.voice, g, dtmftest.Duration(len(speech))))
				}
			}
		}
		for hi, h := range humanGreetings {
			speech := trim(speak(t, v.voice, v.pitch, v.speed, h))
			lead := time.Duration(300+150*(hi%4)) * ms
			// The person says hello, listens to the prompt, presses #.
			audio := dtmftest.Concat(dtmftest.Silence(lead), speech, dtmftest.Silence(1500*ms), dtmftest.DTMF('#', -8, 150*ms), dtmftest.Silence(3*time.Second))
			// And one who says it twice, waiting a second for an answer.
			twice := dtmftest.Concat(dtmftest.Silence(lead), speech, dtmftest.Silence(time.Second), speech, dtmftest.Silence(1500*ms), dtmftest.DTMF('#', -8, 150*ms), dtmftest.Silence(3*time.Second))
			for i, a := range [][]int16{audio, twice} {
				humans++
				if v := run(New(Config{}), a); v.Machine {
					humanHits++
					t.Errorf("person %s %q ×%d (%v) taken for a machine: %+v", voices[vi].voice, h, i+1, dtmftest.Duration(len(speech)), v)
				}
				if v := withEcho(a); v.Machine {
					echoHumanHits++
					t.Errorf("person %s %q ×%d over our prompt's echo taken for a machine: %+v", voices[vi].voice, h, i+1, v)
				}
			}
		}
	}
	t.Logf("generated voicemail greetings recognised: %d/%d (%.1f%%), %d of them by the beep; of those with a beep or 3 s of speech: %d/%d; people taken for a machine: %d/%d (%.1f%%)",
		machineHits, machines, 100*float64(machineHits)/float64(machines), beepHits, machineHits, recognisable, humanHits, humans, 100*float64(humanHits)/float64(humans))
	t.Logf("with our prompt playing and its echo 20 dB down: greetings recognised %d/%d (%d/%d of those with a beep or 3 s of speech); people taken for a machine %d/%d",
		echoMachineHits, machines, echoRecognisableHits, recognisable, echoHumanHits, humans)
	if echoRecognisableHits*100 < recognisable*90 {
		t.Errorf("over our prompt, only %d of %d recognisable greetings recognised", echoRecognisableHits, recognisable)
	}
	for _, m := range misses {
		t.Logf("not recognised (too short to tell, no beep): %s", m)
	}
}

// TestRealWorldSpeech runs the real-world corpus's speech recordings
// (../shared/realworld/wav) as a far end would play them after the answer:
// whole, as a greeting (the long ones must be recognised), and cut to
// their first second followed by silence and a #, as a person's hello
// (never a machine).
func TestRealWorldSpeech(t *testing.T) {
	dir := filepath.Join("..", "..", "shared", "realworld", "wav")
	testpeers.File(t, dir, "(none: the shared real-world corpus ../shared/realworld)")
	files := []struct {
		name    string
		machine bool // long enough to be a greeting when played whole
	}{
		{"asterisk-testsuite_talking.wav", true},
		{"freeswitch_vm-record_message.wav", true},
		{"restcomm-tck_Numbers_1-15.wav", true},
		{"spandsp_short_nb_voice.wav", true},
		{"freeswitch_vm-person.wav", false},
	}
	var wholeHits, whole, cutHits int
	for _, f := range files {
		t.Run(f.name, func(t *testing.T) {
			speech := trim(readWAV(t, filepath.Join(dir, f.name)))
			v := run(New(Config{}), dtmftest.Concat(dtmftest.Silence(400*ms), speech, dtmftest.Silence(3*time.Second)))
			t.Logf("whole (%v): %+v", dtmftest.Duration(len(speech)), v)
			if f.machine {
				whole++
				if v.Machine {
					wholeHits++
				} else {
					t.Errorf("%v of speech from the answer on not recognised", dtmftest.Duration(len(speech)))
				}
			} else if v.Machine {
				t.Errorf("%v of speech taken for a machine: %+v", dtmftest.Duration(len(speech)), v)
			}
			hello := speech[:min(len(speech), dtmftest.Samples(time.Second))]
			v = run(New(Config{}), dtmftest.Concat(dtmftest.Silence(400*ms), hello, dtmftest.Silence(1500*ms), dtmftest.DTMF('#', -8, 150*ms), dtmftest.Silence(3*time.Second)))
			if v.Machine {
				cutHits++
				t.Errorf("its first second, as a hello, taken for a machine: %+v", v)
			}
		})
	}
	t.Logf("real-world speech: %d/%d long recordings recognised as greetings; %d/%d one-second hellos taken for a machine", wholeHits, whole, cutHits, len(files))
}
