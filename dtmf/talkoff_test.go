package dtmf_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashcall/hashcall/dtmf"
	. "github.com/hashcall/hashcall/dtmf/dtmftest"
	"github.com/hashcall/hashcall/internal/testpeers"
)

// Talk-off, rows S1–S3: no # from speech, music or synthetic speech, ever.
// Every other key they produce is logged as a near miss.

type clip struct {
	name  string
	audio []int16
}

// talkOff runs every clip at native level and +6 dB through µ-law and
// A-law and fails on any #.
func talkOff(t *testing.T, clips []clip) {
	t.Helper()
	var samples, nearMisses int
	for _, c := range clips {
		for _, gain := range []float64{0, 6} {
			audio := c.audio
			if gain != 0 {
				audio = Gain(audio, gain)
			}
			for _, cd := range codecs[:2] {
				samples += len(audio)
				got, starts := presses(t, cd.run, audio)
				for _, e := range starts {
					if e.Key.Accepted() {
						t.Errorf("TALK-OFF: %s at %+.0f dB via %s: %v", c.name, gain, cd.name, e)
						continue
					}
					nearMisses++
					t.Logf("near miss: %s at %+.0f dB via %s: %v", c.name, gain, cd.name, e)
				}
				_ = got
			}
		}
	}
	t.Logf("%d clips, %.1f min of audio through the detector, %d near misses", len(clips), float64(samples)/SampleRate/60, nearMisses)
}

func readClips(t *testing.T, files []string) []clip {
	t.Helper()
	var clips []clip
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		s, err := ReadWAV(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		clips = append(clips, clip{filepath.Base(filepath.Dir(f)) + "/" + filepath.Base(f), s})
	}
	return clips
}

func TestConformanceTalkOff(t *testing.T) {
	t.Run("S1_speech_asterisk_core_sounds", func(t *testing.T) {
		t.Parallel()
		files := testpeers.Glob(t, "asterisk-core-sounds-en-wav",
			"/usr/share/asterisk/sounds/*/*.wav", "/usr/share/asterisk/sounds/*/*/*.wav", "/usr/share/asterisk/sounds/*/*/*/*.wav")
		if len(files) < 500 {
			t.Fatalf("only %d prompt files found; the corpus looks incomplete", len(files))
		}
		talkOff(t, readClips(t, files))
	})
	t.Run("S2_music_asterisk_moh", func(t *testing.T) {
		t.Parallel()
		files := testpeers.Glob(t, "asterisk-moh-opsound-wav", "/usr/share/asterisk/moh/*.wav")
		talkOff(t, readClips(t, files))
	})
	t.Run("S3_synthetic_speech_espeak_ng", func(t *testing.T) {
		t.Parallel()
		clips := espeakCorpus(t, 30*time.Minute)
		talkOff(t, clips)
	})
}

// espeakCorpus speaks English text (the GPL, which every Debian system has)
// with several espeak-ng voices, pitches and speeds, converted to 8 kHz with
// sox, until at least total audio is made.
func espeakCorpus(t *testing.T, total time.Duration) []clip {
	t.Helper()
	espeak := testpeers.Program(t, "espeak-ng", "espeak-ng")
	sox := testpeers.Program(t, "sox", "sox")
	text, err := os.ReadFile(testpeers.File(t, "/usr/share/common-licenses/GPL-3", "base-files"))
	if err != nil {
		t.Fatal(err)
	}
	voices := []struct {
		voice        string
		pitch, speed int
	}{
		{"en-gb", 50, 175}, {"en-us", 30, 140}, {"en-gb-x-rp", 80, 220}, {"en-gb-scotland", 20, 160},
		{"en-us+f3", 70, 190}, {"en-029", 45, 130}, {"en-gb+f4", 90, 250}, {"en-us+m3", 10, 200},
	}
	dir := t.TempDir()
	var clips []clip
	var have int
	const chunk = 6000 // characters, about five minutes of speech
	for i := 0; have < Samples(total); i++ {
		if i >= 4*len(voices) {
			t.Fatalf("espeak-ng made only %v of speech", Duration(have))
		}
		v := voices[i%len(voices)]
		from := (i * chunk) % (len(text) - chunk)
		out := filepath.Join(dir, fmt.Sprintf("s%d.wav", i))
		cmd := exec.Command("sh", "-c", `"$0" -v "$1" -p "$2" -s "$3" --stdout | "$4" -t wav - -r 8000 -c 1 -b 16 -e signed-integer "$5"`,
			espeak, v.voice, fmt.Sprint(v.pitch), fmt.Sprint(v.speed), sox, out)
		cmd.Stdin = strings.NewReader(string(text[from : from+chunk]))
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("espeak-ng %s: %v\n%s", v.voice, err, b)
		}
		c := readClips(t, []string{out})[0]
		c.name = fmt.Sprintf("espeak-ng %s pitch %d speed %d", v.voice, v.pitch, v.speed)
		clips = append(clips, c)
		have += len(c.audio)
	}
	return clips
}

var _ = dtmf.KeyHash
