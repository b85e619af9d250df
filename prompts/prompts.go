// Package prompts holds the announcements a verification call plays, per
// locale, as 8 kHz linear samples ready for G.711 encoding.
//
// Default prompts for every supported locale are embedded in the binary
// (en-GB says "hash key", en-US "pound key"). They are synthesised from the
// text files beside them by gen.sh (espeak-ng and sox) at 8000 Hz mono PCM
// 16-bit, band-limited to 300–3400 Hz, with the speech at about −20 dBm0 and
// a little silence before and after it.
//
// A deployment can replace any of them with its own recordings: [Load] with a
// prompts directory uses <dir>/<locale>/<name>.wav for each prompt that file
// exists for, and the embedded default for the others; a locale that is not
// built in can be added by providing all of its prompts there. Replacement
// files must be 8000 Hz mono WAV in PCM 16-bit, µ-law or A-law (hashcall
// never resamples silently); the error for any other file gives the sox
// command that converts it. [Check] validates a configuration at start-up.
//
// The ask prompts have one piece of metadata beside their WAV, ask.json
// and ask_code.json: {"press_at_ms": N}, where the phrase that asks for
// keys starts ("press the hash key" in ask, "enter the code" in ask_code;
// keys heard before it do not count; see [Set.AskPressAt]). gen.sh
// measures it for the embedded prompts; a replacement WAV without its JSON
// beside it gets the end of the prompt.
//
// Mode code (number matching) plays ask_code ("enter the code shown on
// your screen, then press the hash key"), wrong_code ("that code is not
// right") before asking again, and code_failed after the last wrong code.
// The code itself is never spoken.
package prompts

import (
	"bufio"
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/hashcall/hashcall/media/wav"
)

// defaults holds the embedded prompts, <locale>/<name>.wav, and the ask
// prompts' metadata, <locale>/ask.json.
//
//go:embed */*.wav */ask.json */ask_code.json
var defaults embed.FS

// Name identifies a prompt. Its string is the prompt's file name without
// the .wav extension.
type Name string

// The prompts of a verification call.
const (
	// Ask is played when the call is answered: it asks the callee to press
	// the hash (pound) key, or to hang up.
	Ask Name = "ask"
	// Success is played after the hash key was pressed.
	Success Name = "success"
	// WrongKey is played when a key other than hash was pressed.
	WrongKey Name = "wrong_key"
	// Goodbye is played when no key press came after the last attempt.
	Goodbye Name = "goodbye"
	// AskCode is mode code's ask: enter the code shown on the screen, then
	// press the hash (pound) key.
	AskCode Name = "ask_code"
	// WrongCode is played after a wrong code, before asking again.
	WrongCode Name = "wrong_code"
	// CodeFailed is played after the last wrong code.
	CodeFailed Name = "code_failed"
)

// Names returns every prompt name, in the order a call may play them:
// mode hash's, then mode code's.
func Names() []Name { return []Name{Ask, Success, WrongKey, Goodbye, AskCode, WrongCode, CodeFailed} }

// file returns the prompt's file name, e.g. "ask.wav".
func (n Name) file() string { return string(n) + ".wav" }

// Limits on a prompt's length.
const (
	MinDuration = 300 * time.Millisecond
	MaxDuration = 60 * time.Second
)

// SampleRate is the sample rate of every prompt, in Hz.
const SampleRate = 8000

// silentPeak is the largest sample magnitude of a prompt regarded as
// silent (about −50 dBFS): a recording that never exceeds it is an error.
const silentPeak = 104

// ErrUnknownLocale is wrapped by the error [Load] returns for a locale that
// is neither built in nor fully provided by the prompts directory.
var ErrUnknownLocale = errors.New("prompts: unknown locale")

// Set is one locale's prompts as 8000 Hz mono 16-bit linear samples.
type Set struct {
	// Locale is the canonical locale name, such as "en-GB".
	Locale string
	// The prompts, named as the [Name] constants.
	Ask, Success, WrongKey, Goodbye []int16
	// Mode code's prompts.
	AskCode, WrongCode, CodeFailed []int16
	// AskPressAt is how far into Ask its "press the hash key" phrase
	// starts: a key heard before the first ask reaches it does not count
	// (a greeting or recording that plays # as the call is answered). From
	// ask.json's press_at_ms; without one (a replacement ask.wav alone) the
	// end of Ask: where the phrase is in a recording is not known, and only
	// the end is sure to be after it, so a callee who presses during such a
	// prompt must press again. Give a recording an ask.json to accept keys
	// as soon as it asks.
	AskPressAt time.Duration
	// AskCodePressAt is AskCode's press point, where its "enter the code"
	// phrase starts (ask_code.json), in the same way.
	AskCodePressAt time.Duration
}

// pressMeta is the content of ask.json.
type pressMeta struct {
	// PressAtMS is where the phrase starts, in milliseconds from the start
	// of the WAV.
	PressAtMS *int64 `json:"press_at_ms"`
}

// MetaFile is the name of the ask prompt's metadata file beside ask.wav.
const MetaFile = "ask.json"

// metaFile is the metadata file of prompt n (ask.json, ask_code.json).
func (n Name) metaFile() string { return string(n) + ".json" }

// Get returns the samples of prompt n, or nil for a name that is not one of
// [Names].
func (s *Set) Get(n Name) []int16 {
	if p := s.slot(n); p != nil {
		return *p
	}
	return nil
}

// slot returns a pointer to the field holding prompt n, or nil.
func (s *Set) slot(n Name) *[]int16 {
	switch n {
	case Ask:
		return &s.Ask
	case Success:
		return &s.Success
	case WrongKey:
		return &s.WrongKey
	case Goodbye:
		return &s.Goodbye
	case AskCode:
		return &s.AskCode
	case WrongCode:
		return &s.WrongCode
	case CodeFailed:
		return &s.CodeFailed
	}
	return nil
}

// Locales returns the embedded locales, sorted: "en-GB", "en-US".
func Locales() []string {
	entries, err := defaults.ReadDir(".")
	if err != nil { // cannot happen: "." always exists in an embed.FS
		return nil
	}
	var out []string
	for _, e := range entries {
		if e.IsDir() {
			out = append(out, e.Name())
		}
	}
	return out // ReadDir sorts by name
}

// canonical returns the canonical spelling of a locale tag: "en-gb",
// "EN_GB" and "en-GB" all become "en-GB". The language is lower case, a
// two-letter region upper case and a four-letter script title case; other
// subtags, and all those from a singleton such as "x" on, are lower case.
// It reports false for anything that is not letters and digits in subtags
// separated by "-" or "_".
func canonical(locale string) (string, bool) {
	if locale == "" || len(locale) > 35 {
		return "", false
	}
	parts := strings.FieldsFunc(locale, func(r rune) bool { return r == '-' || r == '_' })
	if len(parts) == 0 || strings.Count(locale, "-")+strings.Count(locale, "_") != len(parts)-1 {
		return "", false // empty subtag, or a leading or trailing separator
	}
	extension := false // a singleton subtag has been seen
	for i, p := range parts {
		for _, r := range p {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
				return "", false
			}
		}
		if i > 0 && len(p) == 1 {
			extension = true
		}
		switch {
		case i == 0 || extension:
			p = strings.ToLower(p)
		case len(p) == 2:
			p = strings.ToUpper(p)
		case len(p) == 4:
			p = strings.ToUpper(p[:1]) + strings.ToLower(p[1:])
		default:
			p = strings.ToLower(p)
		}
		parts[i] = p
	}
	return strings.Join(parts, "-"), true
}

// Load returns the prompts for locale, which is matched case-insensitively
// and with "_" or "-" between subtags ("en_gb" is "en-GB").
//
// With dir empty it returns the embedded defaults. Otherwise each prompt is
// read from <dir>/<locale>/<name>.wav when that file exists and is the
// embedded default when it does not, so a deployment may replace only some
// prompts; the locale directory may be spelled in any case or with "_".
// A locale that is not built in must have all its prompts in dir.
//
// A replacement must be an 8000 Hz mono WAV file in PCM 16-bit, µ-law or
// A-law, between [MinDuration] and [MaxDuration] long and not silent. The
// error for any other file names it, says what it is and what is needed, and
// gives the sox command that converts it; every bad file is reported, the
// errors joined. dir itself must exist when given.
//
// Every call decodes the prompts afresh; the returned samples belong to the
// caller.
func Load(dir, locale string) (*Set, error) {
	canon, ok := canonical(locale)
	if !ok {
		return nil, fmt.Errorf("%w %q: not a locale tag such as en-GB; available: %s",
			ErrUnknownLocale, locale, strings.Join(available(dir), ", "))
	}
	embedded := slices.Contains(Locales(), canon)

	var locDir string // the locale's directory under dir, if any
	if dir != "" {
		info, err := os.Stat(dir)
		if err != nil {
			return nil, fmt.Errorf("prompts: prompts directory: %w", err)
		}
		if !info.IsDir() {
			return nil, fmt.Errorf("prompts: prompts directory %s is not a directory", dir)
		}
		if locDir, err = findLocaleDir(dir, canon); err != nil {
			return nil, err
		}
	}

	s := &Set{Locale: canon}
	var (
		missing []string
		errs    []error // one per bad file, so that Check reports them all
	)
	for _, n := range Names() {
		if locDir != "" {
			samples, err := readFile(filepath.Join(locDir, n.file()))
			if err == nil {
				*s.slot(n) = samples
				continue
			}
			if !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, err)
				continue
			}
		}
		if !embedded {
			missing = append(missing, n.file())
			continue
		}
		samples, err := readEmbedded(path.Join(canon, n.file()))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		*s.slot(n) = samples
	}
	for _, p := range []struct {
		n  Name
		at *time.Duration
	}{{Ask, &s.AskPressAt}, {AskCode, &s.AskCodePressAt}} {
		if s.Get(p.n) == nil {
			continue
		}
		at, err := s.pressAt(p.n, locDir, canon, embedded)
		if err != nil {
			errs = append(errs, err)
		}
		*p.at = at
	}
	if len(missing) > 0 {
		var have string
		switch {
		case dir == "":
			have = "no prompts directory is configured"
		case locDir == "":
			have = "there is no directory " + filepath.Join(dir, canon)
		default:
			have = locDir + " lacks " + strings.Join(missing, ", ")
		}
		errs = append(errs, fmt.Errorf("%w %q: it is not built in and %s; available: %s",
			ErrUnknownLocale, canon, have, strings.Join(available(dir), ", ")))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return s, nil
}

// pressAt returns ask prompt n's press point: from locDir's <n>.json
// when the prompt is a replacement there, the end of the prompt when it
// has none, the embedded <n>.json otherwise.
func (s *Set) pressAt(n Name, locDir, canon string, embedded bool) (time.Duration, error) {
	var (
		b    []byte
		name string
		err  error
	)
	d := duration(s.Get(n))
	switch {
	case locDir != "" && exists(filepath.Join(locDir, n.file())):
		name = filepath.Join(locDir, n.metaFile())
		b, err = os.ReadFile(name)
		if errors.Is(err, fs.ErrNotExist) {
			return d, nil
		}
	case embedded:
		name = "embedded " + path.Join(canon, n.metaFile())
		b, err = defaults.ReadFile(path.Join(canon, n.metaFile()))
	default:
		return d, nil
	}
	if err != nil {
		return 0, fmt.Errorf("prompts: %w", err)
	}
	return parsePressAt(b, d, name)
}

// parsePressAt parses ask.json (b, from name) for an ask prompt of length
// d: one object with press_at_ms, a whole number of milliseconds from 0 to
// d, and nothing else (one JSON value, no unknown field).
func parsePressAt(b []byte, d time.Duration, name string) (time.Duration, error) {
	var m pressMeta
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil || m.PressAtMS == nil || dec.More() {
		return 0, fmt.Errorf("prompts: %s: want {\"press_at_ms\": N}, where the phrase that asks for keys starts in %s, in ms", name, wavOf(name))
	}
	if ms := *m.PressAtMS; ms < 0 || ms > d.Milliseconds() {
		return 0, fmt.Errorf("prompts: %s: press_at_ms %d is outside %s (0 to %d ms)", name, ms, wavOf(name), d.Milliseconds())
	}
	return time.Duration(*m.PressAtMS) * time.Millisecond, nil
}

// wavOf names the WAV of metadata file name: ask.wav for .../ask.json.
func wavOf(name string) string {
	return strings.TrimSuffix(path.Base(filepath.ToSlash(name)), ".json") + ".wav"
}

// duration is the length of a prompt.
func duration(samples []int16) time.Duration {
	return time.Duration(len(samples)) * time.Second / SampleRate
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// Check loads the prompts of every locale in locales (every embedded locale
// when locales is empty) with [Load] and returns all the errors found,
// joined, or nil. It is meant for start-up validation of a configuration.
func Check(dir string, locales []string) error {
	if len(locales) == 0 {
		locales = Locales()
	}
	var errs []error
	for _, l := range locales {
		if _, err := Load(dir, l); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// findLocaleDir returns the directory of locale canon under dir: dir/canon,
// or an entry of dir whose name is the same locale spelled differently. It
// returns "" when there is none.
func findLocaleDir(dir, canon string) (string, error) {
	p := filepath.Join(dir, canon)
	if info, err := os.Stat(p); err == nil && info.IsDir() {
		return p, nil
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "", fmt.Errorf("prompts: prompts directory: %w", err)
	}
	for _, e := range entries {
		if c, ok := canonical(e.Name()); ok && c == canon && isDir(filepath.Join(dir, e.Name())) {
			return filepath.Join(dir, e.Name()), nil
		}
	}
	return "", nil
}

// isDir reports whether p is a directory, following symbolic links.
func isDir(p string) bool {
	info, err := os.Stat(p)
	return err == nil && info.IsDir()
}

// available lists the locales Load accepts: the embedded ones and those
// dir holds every prompt for, sorted and without duplicates.
func available(dir string) []string {
	out := Locales()
	if dir == "" {
		return out
	}
	entries, _ := os.ReadDir(dir) // best effort: only used in messages
	for _, e := range entries {
		c, ok := canonical(e.Name())
		if !ok || slices.Contains(out, c) {
			continue
		}
		complete := true
		for _, n := range Names() {
			if _, err := os.Stat(filepath.Join(dir, e.Name(), n.file())); err != nil {
				complete = false
				break
			}
		}
		if complete {
			out = append(out, c)
		}
	}
	slices.Sort(out)
	return out
}

// readEmbedded decodes an embedded prompt.
func readEmbedded(name string) ([]int16, error) {
	f, err := defaults.Open(name)
	if err != nil {
		return nil, fmt.Errorf("prompts: embedded %s: %w", name, err)
	}
	defer f.Close()
	return decode(f, "embedded "+name, "")
}

// readFile decodes a replacement prompt. A file that does not exist gives
// an error wrapping fs.ErrNotExist.
func readFile(p string) ([]int16, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("prompts: %w", err)
	}
	defer f.Close()
	return decode(bufio.NewReader(f), p, p)
}

// decode reads a prompt WAV from r and checks it. name identifies it in
// errors; file is its path on disk, for the conversion command, or "".
func decode(r io.Reader, name, file string) ([]int16, error) {
	rd, err := wav.NewReader(r)
	if err != nil {
		return nil, fmt.Errorf("prompts: %s: %w", name, err)
	}
	if err := rd.Format.Telephony(); err != nil {
		var fe *wav.FormatError
		if !errors.As(err, &fe) || file == "" {
			return nil, fmt.Errorf("prompts: %s: %w", name, err)
		}
		out := strings.TrimSuffix(file, filepath.Ext(file)) + "-8k.wav"
		return nil, &formatError{
			msg: fmt.Sprintf("prompts: %s is %s; need %s; convert with: %s (then replace %s with %s)",
				name, fe.Found, wav.Need, fe.SoxCommand(file, out), filepath.Base(file), filepath.Base(out)),
			err: fe,
		}
	}
	width := int64(1)
	if rd.Format.Encoding == wav.PCM16 {
		width = 2
	}
	maxBytes := int64(MaxDuration/time.Second) * SampleRate * width
	if n := rd.DataSize(); n > maxBytes {
		return nil, fmt.Errorf("prompts: %s: %s of audio is longer than the %g s limit", name, seconds(n/width), MaxDuration.Seconds())
	}
	data, err := io.ReadAll(io.LimitReader(rd, maxBytes+width))
	if err != nil {
		return nil, fmt.Errorf("prompts: %s: %w", name, err)
	}
	if int64(len(data)) > maxBytes {
		return nil, fmt.Errorf("prompts: %s: more than the %g s limit of audio", name, MaxDuration.Seconds())
	}
	samples, err := wav.Samples(rd.Format, data)
	if err != nil {
		return nil, fmt.Errorf("prompts: %s: %w", name, err)
	}
	if least := int(MinDuration / (time.Second / SampleRate)); len(samples) < least {
		return nil, fmt.Errorf("prompts: %s: %s of audio is shorter than the %g s minimum", name, seconds(int64(len(samples))), MinDuration.Seconds())
	}
	var peak int
	for _, v := range samples {
		peak = max(peak, abs(int(v)))
	}
	if peak <= silentPeak {
		return nil, fmt.Errorf("prompts: %s: the audio is silent (peak %d of 32767)", name, peak)
	}
	return samples, nil
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}

// seconds formats a number of samples as seconds, e.g. "0.12 s".
func seconds(samples int64) string {
	return fmt.Sprintf("%.2f s", float64(samples)/SampleRate)
}

// formatError is a replacement prompt in a format hashcall does not take;
// it wraps the *wav.FormatError.
type formatError struct {
	msg string
	err error
}

func (e *formatError) Error() string { return e.msg }
func (e *formatError) Unwrap() error { return e.err }
