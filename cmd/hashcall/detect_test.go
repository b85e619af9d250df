package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hashcall/hashcall/dtmf/dtmftest"
	"github.com/hashcall/hashcall/media/wav"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

const ms = time.Millisecond

// run executes the CLI in-process and returns stdout, stderr and the exit status.
func run(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	cmd := newRootCommand()
	var out, errOut bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetArgs(args)
	code := 0
	if err := cmd.Execute(); err != nil {
		var ee exitError
		if errors.As(err, &ee) {
			code = ee.code
			if ee.err != nil {
				errOut.WriteString(ee.err.Error())
			}
		} else {
			code = 2
			errOut.WriteString(err.Error())
		}
	}
	return out.String(), errOut.String(), code
}

// keyAudio is a # and a 5 with silence between, then a second # held long.
func keyAudio() []int16 {
	return dtmftest.Concat(
		dtmftest.Silence(250*ms), dtmftest.DTMF('#', -10, 100*ms),
		dtmftest.Silence(200*ms), dtmftest.DTMF('5', -20, 60*ms),
		dtmftest.Silence(300*ms), dtmftest.DTMF('#', -30, 400*ms),
		dtmftest.Silence(100*ms),
	)
}

func writeFile(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func wavBytes(t *testing.T, f wav.Format, data []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := wav.Write(&b, f, data); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func le16(s []int16) []byte {
	b := make([]byte, 2*len(s))
	for i, v := range s {
		binary.LittleEndian.PutUint16(b[2*i:], uint16(v))
	}
	return b
}

func TestDetectFormats(t *testing.T) {
	dir := t.TempDir()
	audio := keyAudio()
	ul, al, lin := dtmftest.EncodeUlaw(audio), dtmftest.EncodeAlaw(audio), le16(audio)
	mono := func(e wav.Encoding, bits uint16) wav.Format {
		return wav.Format{Encoding: e, SampleRate: 8000, Channels: 1, BitsPerSample: bits}
	}
	files := map[string]string{
		"pcm16.wav": writeFile(t, dir, "pcm16.wav", wavBytes(t, mono(wav.PCM16, 16), lin)),
		"ulaw.wav":  writeFile(t, dir, "ulaw.wav", wavBytes(t, mono(wav.Ulaw, 8), ul)),
		"alaw.wav":  writeFile(t, dir, "alaw.wav", wavBytes(t, mono(wav.Alaw, 8), al)),
		"raw.ul":    writeFile(t, dir, "raw.ul", ul),
		"raw.alaw":  writeFile(t, dir, "raw.alaw", al),
		"raw.sln":   writeFile(t, dir, "raw.sln", lin),
		"noext":     writeFile(t, dir, "noext", ul),
	}
	tests := []struct {
		name string
		args []string
	}{
		{"wav_pcm16", []string{files["pcm16.wav"]}},
		{"wav_ulaw", []string{files["ulaw.wav"]}},
		{"wav_alaw", []string{files["alaw.wav"]}},
		{"raw_ulaw_by_extension", []string{files["raw.ul"]}},
		{"raw_alaw_by_extension", []string{files["raw.alaw"]}},
		{"raw_slin16_by_extension", []string{files["raw.sln"]}},
		{"raw_by_flag", []string{"--format", "ulaw", files["noext"]}},
		{"wav_by_flag", []string{"--format", "wav", files["pcm16.wav"]}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := run(t, append([]string{"detect", "--json"}, tc.args...)...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			var got []detectResult
			for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
				var r detectResult
				dec := json.NewDecoder(strings.NewReader(line))
				dec.DisallowUnknownFields()
				if err := dec.Decode(&r); err != nil {
					t.Fatalf("line %q: %v", line, err)
				}
				got = append(got, r)
			}
			if len(got) != 3 || got[0].Digit != "#" || got[1].Digit != "5" || got[2].Digit != "#" {
				t.Fatalf("got %+v", got)
			}
			if !got[0].Accepted || got[1].Accepted || !got[2].Accepted {
				t.Errorf("accepted must be true only for #: %+v", got)
			}
			for i, want := range []struct{ start, dur, level float64 }{{250, 100, -10}, {550, 60, -20}, {910, 400, -30}} {
				g := got[i]
				if abs(g.StartMS-want.start) > 3 || abs(g.DurationMS-want.dur) > 5 || abs(g.LevelDBm0-want.level) > 0.6 || g.Source != "inband" {
					t.Errorf("press %d: %+v, want start %v ms, duration %v ms, level %v dBm0", i, g, want.start, want.dur, want.level)
				}
			}
		})
	}
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}

// TestDetectGolden pins the exact output, text and JSON, of a fixed input.
func TestDetectGolden(t *testing.T) {
	dir := t.TempDir()
	f := writeFile(t, dir, "x.wav", wavBytes(t, wav.PCM16Mono8k, le16(keyAudio())))
	for _, tc := range []struct{ name, golden string }{{"json", "detect.json.golden"}, {"text", "detect.txt.golden"}} {
		t.Run(tc.name, func(t *testing.T) {
			args := []string{"detect", f}
			if tc.name == "json" {
				args = []string{"detect", "--json", f}
			}
			out, errOut, code := run(t, args...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			out = strings.ReplaceAll(out, f, "x.wav")
			checkGolden(t, tc.golden, out)
		})
	}
}

func TestDetectErrors(t *testing.T) {
	dir := t.TempDir()
	audio := keyAudio()
	good := writeFile(t, dir, "good.wav", wavBytes(t, wav.PCM16Mono8k, le16(audio)))
	stereo := le16(audio[:8000])
	tests := []struct {
		name     string
		args     []string
		wantErr  []string
		wantCode int
		wantOut  bool // the good file's presses are still printed
	}{
		{"44k1_stereo", []string{writeFile(t, dir, "cd.wav", wavBytes(t, wav.Format{Encoding: wav.PCM16, SampleRate: 44100, Channels: 2, BitsPerSample: 16}, stereo))},
			[]string{"44100 Hz", "stereo", "need 8000 Hz mono", "sox ", "cd-8k.wav"}, 2, false},
		{"8k_stereo", []string{writeFile(t, dir, "st.wav", wavBytes(t, wav.Format{Encoding: wav.PCM16, SampleRate: 8000, Channels: 2, BitsPerSample: 16}, stereo))},
			[]string{"stereo", "-c 1"}, 2, false},
		{"16k_mono", []string{writeFile(t, dir, "wb.wav", wavBytes(t, wav.Format{Encoding: wav.PCM16, SampleRate: 16000, Channels: 1, BitsPerSample: 16}, le16(audio)))},
			[]string{"16000 Hz", "-r 8000"}, 2, false},
		{"missing_file", []string{filepath.Join(dir, "nope.wav")}, []string{"no such file"}, 2, false},
		{"unknown_extension", []string{writeFile(t, dir, "a.mp3", []byte("ID3garbage"))}, []string{"--format"}, 2, false},
		{"truncated_wav", []string{writeFile(t, dir, "t.wav", []byte("RIFF\x24\x00\x00\x00WAVEfmt "))}, []string{"t.wav"}, 2, false},
		{"bad_format_flag", []string{"--format", "mp3", good}, []string{"--format", "auto, wav, slin16, ulaw, alaw"}, 2, false},
		{"one_bad_one_good", []string{filepath.Join(dir, "nope.wav"), good}, []string{"nope.wav"}, 2, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := run(t, append([]string{"detect"}, tc.args...)...)
			if code != tc.wantCode {
				t.Fatalf("exit %d, want %d (stderr %q)", code, tc.wantCode, errOut)
			}
			for _, w := range tc.wantErr {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr %q does not mention %q", errOut, w)
				}
			}
			if got := strings.Contains(out, "#"); got != tc.wantOut {
				t.Errorf("stdout %q: presses printed = %v, want %v", out, got, tc.wantOut)
			}
		})
	}
}

func TestVersion(t *testing.T) {
	out, _, code := run(t, "version")
	if code != 0 || !strings.HasPrefix(out, "hashcall ") {
		t.Fatalf("exit %d, output %q", code, out)
	}
}

// TestDemo runs `hashcall demo` end to end: exit 0 and "verified" for #, exit
// 1 for another key.
func TestDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("a real call of several seconds")
	}
	out, errOut, code := run(t, "demo", "--dtmf", "inband")
	if code != 0 || strings.TrimSpace(out) != "verified" {
		t.Fatalf("exit %d, stdout %q, stderr:\n%s", code, out, errOut)
	}
	for _, want := range []string{"dialling", "answered", "prompt", "key         # via inband", "outcome verified"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("progress lacks %q:\n%s", want, errOut)
		}
	}
	out, errOut, code = run(t, "demo", "--dtmf", "rfc4733", "--key", "5")
	if code != 1 || strings.TrimSpace(out) != "wrong_key" {
		t.Fatalf("key 5: exit %d, stdout %q, stderr:\n%s", code, out, errOut)
	}
	if _, _, code := run(t, "demo", "--dtmf", "smoke"); code != 2 {
		t.Errorf("bad --dtmf: exit %d, want 2", code)
	}
}

// TestDemoCode: `hashcall demo --code` shows a code, the simulated phone
// keys it (each key once, then #) and the call is verified; with
// --wrong-code it is wrong_code.
func TestDemoCode(t *testing.T) {
	if testing.Short() {
		t.Skip("real calls of several seconds")
	}
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"right_rfc4733", []string{"demo", "--code"}, 0, "verified"},
		{"right_info", []string{"demo", "--code", "--dtmf", "info"}, 0, "verified"},
		{"wrong_inband", []string{"demo", "--code", "--wrong-code", "--dtmf", "inband"}, 1, "wrong_code"},
		{"wrong_without_code", []string{"demo", "--wrong-code"}, 2, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := run(t, tc.args...)
			if code != tc.code || strings.TrimSpace(out) != tc.want {
				t.Fatalf("exit %d, stdout %q, want %d %q; stderr:\n%s", code, out, tc.code, tc.want, errOut)
			}
			if tc.code == 2 {
				return
			}
			m := regexp.MustCompile(`shows the code ([0-9]{6})\n`).FindStringSubmatch(errOut)
			if m == nil {
				t.Fatalf("no code shown:\n%s", errOut)
			}
			// Shown once (the screen), never in the progress or the log.
			if n := strings.Count(errOut, m[1]); n != 1 {
				t.Errorf("the code appears %d times in the output:\n%s", n, errOut)
			}
			if n := strings.Count(errOut, "key         digit via"); n != 6 {
				t.Errorf("%d digits keyed, want 6:\n%s", n, errOut)
			}
		})
	}
}

// checkGolden compares out with testdata/name, rewriting it under -update.
func checkGolden(t *testing.T, name, out string) {
	t.Helper()
	golden := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(golden, []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if out != string(want) {
		t.Errorf("output differs from %s:\n%s\nwant:\n%s", golden, out, want)
	}
}
