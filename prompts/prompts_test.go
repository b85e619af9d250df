package prompts_test

import (
	"bytes"
	"errors"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashcall/hashcall/dtmf"
	"github.com/hashcall/hashcall/dtmf/dtmftest"
	"github.com/hashcall/hashcall/media/wav"
	"github.com/hashcall/hashcall/prompts"
)

// loadAll loads every embedded locale.
func loadAll(t *testing.T) []*prompts.Set {
	t.Helper()
	var sets []*prompts.Set
	for _, l := range prompts.Locales() {
		s, err := prompts.Load("", l)
		if err != nil {
			t.Fatalf("Load(%q, %q): %v", "", l, err)
		}
		sets = append(sets, s)
	}
	return sets
}

func TestLocalesAndNames(t *testing.T) {
	if got, want := prompts.Locales(), []string{"en-GB", "en-US"}; !slices.Equal(got, want) {
		t.Errorf("Locales() = %v, want %v", got, want)
	}
	want := []prompts.Name{"ask", "success", "wrong_key", "goodbye", "ask_code", "wrong_code", "code_failed"}
	if got := prompts.Names(); !slices.Equal(got, want) {
		t.Errorf("Names() = %v, want %v", got, want)
	}
	if got := []prompts.Name{prompts.Ask, prompts.Success, prompts.WrongKey, prompts.Goodbye, prompts.AskCode, prompts.WrongCode, prompts.CodeFailed}; !slices.Equal(got, want) {
		t.Errorf("constants = %v, want %v", got, want)
	}
}

// TestEmbedded checks every embedded prompt: format, length, level, quiet
// edges, and that Load returns exactly the committed file's samples.
func TestEmbedded(t *testing.T) {
	for _, set := range loadAll(t) {
		for _, n := range prompts.Names() {
			t.Run(set.Locale+"/"+string(n), func(t *testing.T) {
				s := set.Get(n)
				if len(s) == 0 {
					t.Fatal("empty")
				}

				b, err := os.ReadFile(filepath.Join(set.Locale, string(n)+".wav"))
				if err != nil {
					t.Fatal(err)
				}
				f, data, err := wav.ReadAll(bytes.NewReader(b))
				if err != nil {
					t.Fatal(err)
				}
				if f != wav.PCM16Mono8k {
					t.Errorf("format %v, want %v", f, wav.PCM16Mono8k)
				}
				disk, err := wav.Samples(f, data)
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(disk, s) {
					t.Error("embedded samples differ from the file on disk")
				}

				d := dtmftest.Duration(len(s))
				if d < time.Second || d > 15*time.Second {
					t.Errorf("duration %v, want 1–15 s", d)
				}
				level := dtmftest.LevelDBm0(s)
				if level < -30 || level > -10 {
					t.Errorf("RMS level %.1f dBm0, want −30 to −10", level)
				}
				var peak int
				for _, v := range s {
					peak = max(peak, int(math.Abs(float64(v))))
				}
				if peak >= 32000 {
					t.Errorf("peak %d: clipped or nearly", peak)
				}
				edge := dtmftest.Samples(100 * time.Millisecond)
				if l := dtmftest.LevelDBm0(s[:edge]); l > -50 {
					t.Errorf("first 100 ms at %.1f dBm0, want silence", l)
				}
				if l := dtmftest.LevelDBm0(s[len(s)-edge:]); l > -50 {
					t.Errorf("last 100 ms at %.1f dBm0, want silence", l)
				}
				t.Logf("%.2f s, RMS %.1f dBm0, peak %.1f dBFS", d.Seconds(), level, 20*math.Log10(float64(peak)/32767))
			})
		}
	}
}

// TestTexts checks the wording that differs between the locales.
func TestTexts(t *testing.T) {
	tests := []struct {
		name      string
		file      string
		want, not string
		wantExact string
	}{
		{name: "en-GB ask says hash", file: "en-GB/ask.txt", want: "press the hash key", not: "pound"},
		{name: "en-US ask says pound", file: "en-US/ask.txt", want: "press the pound key", not: "hash"},
		{name: "en-GB wrong key says hash", file: "en-GB/wrong_key.txt", want: "hash", not: "pound"},
		{name: "en-US wrong key says pound", file: "en-US/wrong_key.txt", want: "pound", not: "hash"},
		{name: "en-GB ask_code says hash", file: "en-GB/ask_code.txt", want: "enter the code shown on your screen, then press the hash key", not: "pound"},
		{name: "en-US ask_code says pound", file: "en-US/ask_code.txt", want: "enter the code shown on your screen, then press the pound key", not: "hash"},
		{name: "en-GB wrong_code", file: "en-GB/wrong_code.txt", wantExact: "That code is not right."},
		{name: "en-US wrong_code", file: "en-US/wrong_code.txt", wantExact: "That code is not right."},
		{name: "en-GB code_failed", file: "en-GB/code_failed.txt", wantExact: "That code is not right. Your sign-in has not been verified. Goodbye."},
		{name: "en-US code_failed", file: "en-US/code_failed.txt", wantExact: "That code is not right. Your sign-in has not been verified. Goodbye."},
		{name: "en-GB success", file: "en-GB/success.txt", wantExact: "Thank you. Your sign-in is verified. Goodbye."},
		{name: "en-US success", file: "en-US/success.txt", wantExact: "Thank you. Your sign-in is verified. Goodbye."},
		{name: "en-GB goodbye", file: "en-GB/goodbye.txt", wantExact: "We did not receive a key press. Your sign-in has not been verified. Goodbye."},
		{name: "en-US goodbye", file: "en-US/goodbye.txt", wantExact: "We did not receive a key press. Your sign-in has not been verified. Goodbye."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := os.ReadFile(tt.file)
			if err != nil {
				t.Fatal(err)
			}
			text := strings.TrimSpace(string(b))
			if tt.want != "" && !strings.Contains(text, tt.want) {
				t.Errorf("%q does not contain %q", text, tt.want)
			}
			if tt.not != "" && strings.Contains(text, tt.not) {
				t.Errorf("%q contains %q", text, tt.not)
			}
			if tt.wantExact != "" && text != tt.wantExact {
				t.Errorf("text %q, want %q", text, tt.wantExact)
			}
		})
	}
}

// TestTextsMatchWAVs checks that every locale directory holds a .txt and a
// .wav for every prompt and nothing else, and that the directories are the
// embedded locales.
func TestTextsMatchWAVs(t *testing.T) {
	var dirs []string
	entries, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.IsDir() && e.Name() != "testdata" {
			dirs = append(dirs, e.Name())
		}
	}
	if !slices.Equal(dirs, prompts.Locales()) {
		t.Errorf("locale directories %v, embedded locales %v", dirs, prompts.Locales())
	}
	var want []string
	for _, n := range prompts.Names() {
		want = append(want, string(n))
	}
	slices.Sort(want)
	for _, d := range dirs {
		t.Run(d, func(t *testing.T) {
			files := map[string][]string{}
			entries, err := os.ReadDir(d)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range entries {
				ext := filepath.Ext(e.Name())
				files[ext] = append(files[ext], strings.TrimSuffix(e.Name(), ext))
			}
			for ext, names := range files {
				switch ext {
				case ".json":
					if !slices.Equal(names, []string{"ask", "ask_code"}) {
						t.Errorf(".json files %v, want only ask.json and ask_code.json (the press points)", names)
					}
				case ".txt", ".wav":
					if !slices.Equal(names, want) {
						t.Errorf("%s files %v, want %v", ext, names, want)
					}
				default:
					t.Errorf("unexpected files %v%s", names, ext)
				}
			}
			if len(files[".txt"]) == 0 || len(files[".wav"]) == 0 {
				t.Errorf("txt %v, wav %v", files[".txt"], files[".wav"])
			}
		})
	}
}

func TestGet(t *testing.T) {
	s, err := prompts.Load("", "en-GB")
	if err != nil {
		t.Fatal(err)
	}
	fields := map[prompts.Name][]int16{
		prompts.Ask: s.Ask, prompts.Success: s.Success, prompts.WrongKey: s.WrongKey, prompts.Goodbye: s.Goodbye,
	}
	for n, want := range fields {
		if got := s.Get(n); len(got) == 0 || &got[0] != &want[0] {
			t.Errorf("Get(%q) is not the %s field", n, n)
		}
	}
	if got := s.Get("welcome"); got != nil {
		t.Errorf("Get(welcome) = %d samples, want nil", len(got))
	}
	// Each Load decodes afresh: changing one set leaves the next untouched.
	s.Ask[0] = 12345
	again, err := prompts.Load("", "en-GB")
	if err != nil {
		t.Fatal(err)
	}
	if again.Ask[0] == 12345 {
		t.Error("Load returned shared samples")
	}
}

func TestLocaleNormalisation(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"canonical GB", "en-GB", "en-GB"},
		{"lower case", "en-gb", "en-GB"},
		{"underscore", "en_GB", "en-GB"},
		{"lower underscore", "en_gb", "en-GB"},
		{"upper case", "EN-GB", "en-GB"},
		{"mixed US", "En_uS", "en-US"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := prompts.Load("", tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if s.Locale != tt.want {
				t.Errorf("Locale = %q, want %q", s.Locale, tt.want)
			}
		})
	}
}

// tone returns d of a 440 Hz tone at −20 dBm0 with a 10 ms silent edge, a
// valid replacement prompt.
func tone(d time.Duration) []int16 {
	return dtmftest.Concat(
		dtmftest.Silence(10*time.Millisecond),
		dtmftest.Tones(d-20*time.Millisecond, dtmftest.Tone{Freq: 440, DBm0: -20}),
		dtmftest.Silence(10*time.Millisecond),
	)
}

// writeWAV writes samples as a WAV file of format f (PCM16, Ulaw or Alaw
// encoding, any rate and channel count) at dir/rel, creating directories.
func writeWAV(t *testing.T, dir, rel string, f wav.Format, samples []int16) string {
	t.Helper()
	p := filepath.Join(dir, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	var err error
	switch f.Encoding {
	case wav.Ulaw:
		err = wav.Write(&buf, f, dtmftest.EncodeUlaw(samples))
	case wav.Alaw:
		err = wav.Write(&buf, f, dtmftest.EncodeAlaw(samples))
	default:
		data := make([]byte, 0, 2*len(samples))
		for _, s := range samples {
			data = append(data, byte(s), byte(uint16(s)>>8))
		}
		err = wav.Write(&buf, f, data)
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// writePCM16 writes samples with wav.WritePCM16 at dir/rel.
func writePCM16(t *testing.T, dir, rel string, samples []int16) string {
	t.Helper()
	p := filepath.Join(dir, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := wav.WritePCM16(&buf, samples); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestReplacement(t *testing.T) {
	defaults, err := prompts.Load("", "en-GB")
	if err != nil {
		t.Fatal(err)
	}
	defaultsUS, err := prompts.Load("", "en-US")
	if err != nil {
		t.Fatal(err)
	}
	ask := tone(time.Second)
	ulaw := wav.Format{Encoding: wav.Ulaw, SampleRate: 8000, Channels: 1}
	alaw := wav.Format{Encoding: wav.Alaw, SampleRate: 8000, Channels: 1}

	tests := []struct {
		name    string
		files   func(t *testing.T, dir string)
		locale  string
		want    map[prompts.Name][]int16 // replaced prompts; the rest are defaults
		wantLoc string
	}{
		{
			name:    "ask only, PCM16",
			files:   func(t *testing.T, dir string) { writePCM16(t, dir, "en-GB/ask.wav", ask) },
			locale:  "en-GB",
			want:    map[prompts.Name][]int16{prompts.Ask: ask},
			wantLoc: "en-GB",
		},
		{
			name:    "goodbye only, µ-law",
			files:   func(t *testing.T, dir string) { writeWAV(t, dir, "en-GB/goodbye.wav", ulaw, ask) },
			locale:  "en-GB",
			want:    map[prompts.Name][]int16{prompts.Goodbye: dtmftest.RoundTripUlaw(ask)},
			wantLoc: "en-GB",
		},
		{
			name: "success and wrong key, A-law",
			files: func(t *testing.T, dir string) {
				writeWAV(t, dir, "en-GB/success.wav", alaw, ask)
				writeWAV(t, dir, "en-GB/wrong_key.wav", alaw, ask)
			},
			locale:  "en-GB",
			want:    map[prompts.Name][]int16{prompts.Success: dtmftest.RoundTripAlaw(ask), prompts.WrongKey: dtmftest.RoundTripAlaw(ask)},
			wantLoc: "en-GB",
		},
		{
			name:    "locale directory spelled en_gb",
			files:   func(t *testing.T, dir string) { writePCM16(t, dir, "en_gb/ask.wav", ask) },
			locale:  "en-GB",
			want:    map[prompts.Name][]int16{prompts.Ask: ask},
			wantLoc: "en-GB",
		},
		{
			name:    "other locale untouched",
			files:   func(t *testing.T, dir string) { writePCM16(t, dir, "en-GB/ask.wav", ask) },
			locale:  "en-US",
			want:    map[prompts.Name][]int16{},
			wantLoc: "en-US",
		},
		{
			name:    "empty directory",
			files:   func(t *testing.T, dir string) {},
			locale:  "en_us",
			want:    map[prompts.Name][]int16{},
			wantLoc: "en-US",
		},
		{
			name: "new locale, all prompts",
			files: func(t *testing.T, dir string) {
				for _, n := range prompts.Names() {
					writePCM16(t, dir, "fr-FR/"+string(n)+".wav", ask)
				}
			},
			locale: "fr_fr",
			want: map[prompts.Name][]int16{prompts.Ask: ask, prompts.Success: ask, prompts.WrongKey: ask, prompts.Goodbye: ask,
				prompts.AskCode: ask, prompts.WrongCode: ask, prompts.CodeFailed: ask},
			wantLoc: "fr-FR",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			tt.files(t, dir)
			s, err := prompts.Load(dir, tt.locale)
			if err != nil {
				t.Fatal(err)
			}
			if s.Locale != tt.wantLoc {
				t.Errorf("Locale = %q, want %q", s.Locale, tt.wantLoc)
			}
			def := defaults
			if tt.wantLoc == "en-US" {
				def = defaultsUS
			}
			for _, n := range prompts.Names() {
				want, replaced := tt.want[n]
				if !replaced {
					want = def.Get(n)
				}
				if !slices.Equal(s.Get(n), want) {
					t.Errorf("%s: %d samples, not the %s (%d samples)", n, len(s.Get(n)),
						map[bool]string{true: "replacement", false: "default"}[replaced], len(want))
				}
			}
		})
	}
}

func TestErrors(t *testing.T) {
	ask := tone(time.Second)
	tests := []struct {
		name   string
		files  func(t *testing.T, dir string) string // returns the bad file, if any
		dir    func(dir string) string               // the dir passed to Load; nil: dir itself
		locale string
		want   []string // substrings of the message; "FILE" is the bad file's path
		is     error
		as     bool // wraps a *wav.FormatError
	}{
		{
			name: "44.1 kHz stereo",
			files: func(t *testing.T, dir string) string {
				return writeWAV(t, dir, "en-GB/ask.wav", wav.Format{Encoding: wav.PCM16, SampleRate: 44100, Channels: 2}, ask)
			},
			locale: "en-GB",
			want:   []string{"FILE", "PCM 16-bit, 44100 Hz, stereo", wav.Need, "sox FILE -r 8000 -c 1 -b 16 -e signed-integer ", "ask-8k.wav"},
			as:     true,
		},
		{
			name: "8 kHz stereo µ-law",
			files: func(t *testing.T, dir string) string {
				return writeWAV(t, dir, "en-GB/success.wav", wav.Format{Encoding: wav.Ulaw, SampleRate: 8000, Channels: 2}, ask)
			},
			locale: "en-GB",
			want:   []string{"FILE", "stereo", "sox", "success-8k.wav"},
			as:     true,
		},
		{
			name: "16 kHz mono",
			files: func(t *testing.T, dir string) string {
				return writeWAV(t, dir, "en-US/goodbye.wav", wav.Format{Encoding: wav.PCM16, SampleRate: 16000, Channels: 1}, ask)
			},
			locale: "en-US",
			want:   []string{"FILE", "16000 Hz", "sox"},
			as:     true,
		},
		{
			name: "not a WAV file",
			files: func(t *testing.T, dir string) string {
				p := filepath.Join(dir, "en-GB", "ask.wav")
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte("ID3\x04 this is an mp3, honest"), 0o644); err != nil {
					t.Fatal(err)
				}
				return p
			},
			locale: "en-GB",
			want:   []string{"FILE", "not a RIFF/WAVE file"},
			is:     wav.ErrNotWAV,
		},
		{
			name:   "empty",
			files:  func(t *testing.T, dir string) string { return writePCM16(t, dir, "en-GB/ask.wav", nil) },
			locale: "en-GB",
			want:   []string{"FILE", "0.00 s", "shorter"},
		},
		{
			name: "too short",
			files: func(t *testing.T, dir string) string {
				return writePCM16(t, dir, "en-GB/ask.wav", tone(200*time.Millisecond))
			},
			locale: "en-GB",
			want:   []string{"FILE", "0.20 s", "shorter than the 0.3 s minimum"},
		},
		{
			name: "too long",
			files: func(t *testing.T, dir string) string {
				return writePCM16(t, dir, "en-GB/ask.wav", tone(61*time.Second))
			},
			locale: "en-GB",
			want:   []string{"FILE", "61.00 s", "longer than the 60 s limit"},
		},
		{
			name: "too long, streamed (data size 0)",
			files: func(t *testing.T, dir string) string {
				p := writePCM16(t, dir, "en-GB/ask.wav", tone(61*time.Second))
				b, err := os.ReadFile(p)
				if err != nil {
					t.Fatal(err)
				}
				copy(b[40:44], []byte{0, 0, 0, 0}) // the data chunk's size
				if err := os.WriteFile(p, b, 0o644); err != nil {
					t.Fatal(err)
				}
				return p
			},
			locale: "en-GB",
			want:   []string{"FILE", "more than the 60 s limit"},
		},
		{
			name: "silent",
			files: func(t *testing.T, dir string) string {
				return writePCM16(t, dir, "en-GB/ask.wav", dtmftest.Silence(2*time.Second))
			},
			locale: "en-GB",
			want:   []string{"FILE", "silent"},
		},
		{
			name:   "unknown locale",
			locale: "fr-FR",
			want:   []string{`unknown locale "fr-FR"`, "available: en-GB, en-US"},
			is:     prompts.ErrUnknownLocale,
		},
		{
			name:   "unknown locale, no directory",
			dir:    func(string) string { return "" },
			locale: "de_de",
			want:   []string{`unknown locale "de-DE"`, "no prompts directory", "available: en-GB, en-US"},
			is:     prompts.ErrUnknownLocale,
		},
		{
			name: "new locale, incomplete",
			files: func(t *testing.T, dir string) string {
				writePCM16(t, dir, "fr-FR/ask.wav", ask)
				writePCM16(t, dir, "fr-FR/success.wav", ask)
				return ""
			},
			locale: "fr-FR",
			want:   []string{`unknown locale "fr-FR"`, "lacks wrong_key.wav, goodbye.wav", "available: en-GB, en-US"},
			is:     prompts.ErrUnknownLocale,
		},
		{
			name: "available lists complete directories",
			files: func(t *testing.T, dir string) string {
				for _, n := range prompts.Names() {
					writePCM16(t, dir, "de-DE/"+string(n)+".wav", ask)
				}
				return ""
			},
			locale: "fr-FR",
			want:   []string{`unknown locale "fr-FR"`, "available: de-DE, en-GB, en-US"},
			is:     prompts.ErrUnknownLocale,
		},
		{
			name:   "not a locale",
			locale: "../etc",
			want:   []string{`unknown locale "../etc"`, "not a locale tag"},
			is:     prompts.ErrUnknownLocale,
		},
		{
			name:   "empty locale",
			locale: "",
			want:   []string{`unknown locale ""`},
			is:     prompts.ErrUnknownLocale,
		},
		{
			name:   "missing prompts directory",
			dir:    func(dir string) string { return filepath.Join(dir, "nope") },
			locale: "en-GB",
			want:   []string{"prompts directory", "nope"},
			is:     fs.ErrNotExist,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			var file string
			if tt.files != nil {
				file = tt.files(t, dir)
			}
			if tt.dir != nil {
				dir = tt.dir(dir)
			}
			s, err := prompts.Load(dir, tt.locale)
			if err == nil {
				t.Fatalf("no error; locale %s", s.Locale)
			}
			msg := err.Error()
			t.Log(msg)
			if !strings.HasPrefix(msg, "prompts: ") {
				t.Errorf("message does not start with %q", "prompts: ")
			}
			for _, w := range tt.want {
				w = strings.ReplaceAll(w, "FILE", file)
				if !strings.Contains(msg, w) {
					t.Errorf("message lacks %q", w)
				}
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error does not wrap %v", tt.is)
			}
			var fe *wav.FormatError
			if errors.As(err, &fe) != tt.as {
				t.Errorf("errors.As(*wav.FormatError) = %v, want %v", !tt.as, tt.as)
			}
		})
	}
}

func TestCheck(t *testing.T) {
	if err := prompts.Check("", nil); err != nil {
		t.Errorf("Check of the defaults: %v", err)
	}
	dir := t.TempDir()
	if err := prompts.Check(dir, []string{"en-GB", "en_us"}); err != nil {
		t.Errorf("Check of an empty directory: %v", err)
	}
	writePCM16(t, dir, "en-GB/ask.wav", tone(time.Second))
	bad := writeWAV(t, dir, "en-US/ask.wav", wav.Format{Encoding: wav.PCM16, SampleRate: 44100, Channels: 2}, tone(time.Second))
	short := writePCM16(t, dir, "en-US/goodbye.wav", tone(100*time.Millisecond))
	err := prompts.Check(dir, []string{"en-GB", "en-US", "xx-YY"})
	if err == nil {
		t.Fatal("no error")
	}
	msg := err.Error()
	t.Log(msg)
	for _, w := range []string{bad, "44100", short, "0.10 s", `unknown locale "xx-YY"`} {
		if !strings.Contains(msg, w) {
			t.Errorf("message lacks %q", w)
		}
	}
	if strings.Contains(msg, "en-GB/ask.wav") {
		t.Error("the valid en-GB replacement is reported")
	}
	if !errors.Is(err, prompts.ErrUnknownLocale) {
		t.Error("joined error does not wrap ErrUnknownLocale")
	}
	var fe *wav.FormatError
	if !errors.As(err, &fe) || fe.Found.SampleRate != 44100 {
		t.Error("joined error does not wrap the *wav.FormatError")
	}
	// With no locales listed, every embedded locale is checked.
	if err := prompts.Check(dir, nil); err == nil || !strings.Contains(err.Error(), bad) {
		t.Errorf("Check(dir, nil) = %v, want the en-US error", err)
	}
}

// presses feeds audio to a new in-band detector in 20 ms frames, as RTP
// delivers it, and returns every report.
func presses(audio []int16) []dtmf.Event {
	frame := dtmftest.Samples(20 * time.Millisecond)
	d := dtmf.NewDetector()
	var events []dtmf.Event
	for len(audio) > 0 {
		k := min(frame, len(audio))
		events = d.Feed(events, audio[:k])
		audio = audio[k:]
	}
	// Trailing silence gets any tone in the last partial block analysed;
	// Flush ends a press still in progress.
	events = d.Feed(events, dtmftest.Silence(100*time.Millisecond))
	return d.Flush(events)
}

// TestTalkOff: our own prompt echoed back by the callee's phone must never
// verify, so no prompt may contain anything the in-band detector takes for
// a key press — not just #, any key. Each prompt goes through linear, µ-law
// and A-law, at its own level and 6 dB louder.
func TestTalkOff(t *testing.T) {
	paths := []struct {
		name string
		conv func([]int16) []int16
	}{
		{"linear", func(s []int16) []int16 { return s }},
		{"µ-law", dtmftest.RoundTripUlaw},
		{"A-law", dtmftest.RoundTripAlaw},
	}
	gains := []struct {
		name string
		dB   float64
	}{{"native", 0}, {"+6dB", 6}}
	for _, set := range loadAll(t) {
		for _, n := range prompts.Names() {
			for _, p := range paths {
				for _, g := range gains {
					t.Run(set.Locale+"/"+string(n)+"/"+p.name+"/"+g.name, func(t *testing.T) {
						audio := set.Get(n)
						if g.dB != 0 {
							audio = dtmftest.Gain(audio, g.dB)
						}
						for _, e := range presses(p.conv(audio)) {
							t.Errorf("TALK-OFF: %v", e)
						}
					})
				}
			}
		}
	}

	// Control: the same path does report a # that follows the prompt.
	t.Run("control", func(t *testing.T) {
		set := loadAll(t)[0]
		audio := dtmftest.Concat(set.Ask, dtmftest.DTMF('#', -10, 100*time.Millisecond))
		var hash bool
		for _, e := range presses(dtmftest.RoundTripUlaw(audio)) {
			hash = hash || e.Key == dtmf.KeyHash
		}
		if !hash {
			t.Error("a # after the prompt was not detected")
		}
	})
}

// TestPressAt checks the ask prompts' press points: the embedded ones are
// where gen.sh measured them, at the onset of sound after the pause that
// comes before "press" (the texts are checked to say it in TestTexts); a
// replacement ask.wav without ask.json is taken from its end; a bad
// ask.json is an error naming it.
func TestPressAt(t *testing.T) {
	for _, set := range loadAll(t) {
		for _, p := range []struct {
			name    prompts.Name
			samples []int16
			at      time.Duration
		}{{prompts.Ask, set.Ask, set.AskPressAt}, {prompts.AskCode, set.AskCode, set.AskCodePressAt}} {
			t.Run(set.Locale+"/"+string(p.name), func(t *testing.T) {
				at := dtmftest.Samples(p.at)
				if p.at < time.Second || at >= len(p.samples)-dtmftest.Samples(time.Second) {
					t.Fatalf("press at %v of %v", p.at, dtmftest.Duration(len(p.samples)))
				}
				// A pause (the comma before "press" or "enter") just before, speech just after.
				before := p.samples[at-dtmftest.Samples(100*time.Millisecond) : at-dtmftest.Samples(20*time.Millisecond)]
				after := p.samples[at+dtmftest.Samples(30*time.Millisecond) : at+dtmftest.Samples(130*time.Millisecond)]
				if l := dtmftest.LevelDBm0(before); l > -55 {
					t.Errorf("the 80 ms before the press point are at %.1f dBm0, want the pause before the phrase", l)
				}
				if l := dtmftest.LevelDBm0(after); l < -40 {
					t.Errorf("the 100 ms after the press point are at %.1f dBm0, want speech", l)
				}
				t.Logf("press at %v of %v", p.at, dtmftest.Duration(len(p.samples)))
			})
		}
	}
	emb, err := prompts.Load("", "en-GB")
	if err != nil {
		t.Fatal(err)
	}
	write := func(t *testing.T, meta string) string {
		dir := t.TempDir()
		loc := filepath.Join(dir, "en-GB")
		if err := os.MkdirAll(loc, 0o755); err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		if err := wav.WritePCM16(&b, emb.Ask[:3*prompts.SampleRate]); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(loc, "ask.wav"), b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		if meta != "" {
			if err := os.WriteFile(filepath.Join(loc, prompts.MetaFile), []byte(meta), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return dir
	}
	for _, tc := range []struct {
		name, meta string
		want       time.Duration
		err        string
	}{
		{name: "no sidecar: the end of the prompt", want: 3 * time.Second},
		{name: "sidecar", meta: `{"press_at_ms": 1250}`, want: 1250 * time.Millisecond},
		{name: "beyond the prompt", meta: `{"press_at_ms": 3001}`, err: "outside ask.wav"},
		{name: "negative", meta: `{"press_at_ms": -1}`, err: "outside ask.wav"},
		{name: "unknown field", meta: `{"press_at": 100}`, err: "want {\"press_at_ms\": N}"},
		{name: "not json", meta: `1250`, err: "want {\"press_at_ms\": N}"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := prompts.Load(write(t, tc.meta), "en-GB")
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), prompts.MetaFile) {
					t.Fatalf("err %v, want one naming %s with %q", err, prompts.MetaFile, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s.AskPressAt != tc.want {
				t.Errorf("press at %v, want %v", s.AskPressAt, tc.want)
			}
		})
	}
}
