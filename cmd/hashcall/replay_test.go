package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/hashcall/hashcall/internal/testpeers"
	"github.com/hashcall/hashcall/media/wav"
)

// Golden captures of the replay package.
const (
	capRFC4733 = "../../replay/testdata/rfc4733-pcmu-lo.pcap"
	capInband  = "../../replay/testdata/inband-pcma-lo.pcapng"
	capInfo    = "../../replay/testdata/sipinfo-pcmu-any-sll.pcapng"
	capNoKey   = "../../replay/testdata/nokey-pcma-any-sll2.pcap"
	capWrong   = "../../replay/testdata/rfc4733-wrongkey-lo.pcapng"
)

// replayPressLine is a press line of `replay --json`, field for field.
type replayPressLine struct {
	File       string  `json:"file"`
	Stream     string  `json:"stream"`
	Digit      string  `json:"digit"`
	Source     string  `json:"source"`
	At         string  `json:"at"`
	DurationMS float64 `json:"duration_ms"`
	Accepted   bool    `json:"accepted"`
}

func TestReplayExpect(t *testing.T) {
	dir := t.TempDir()
	junk := writeFile(t, dir, "junk.pcap", []byte("not a capture at all"))
	tests := []struct {
		name     string
		args     []string
		code     int
		stderr   string // a substring of stderr
		presses  int    // lines on stdout
		verdicts []string
	}{
		{"rfc4733_hash", []string{capRFC4733}, 0, "", 1, []string{"accepted"}},
		{"expect_hash_verified", []string{"--expect", "#", capRFC4733, capInband, capInfo}, 0, "", 3, nil},
		{"expect_hash_not_verified", []string{"--expect", "#", capNoKey}, 1, `nokey-pcma-any-sll2.pcap: accepted presses "", expected "#"`, 0, nil},
		{"expect_none_not_verified", []string{"--expect", "", capNoKey}, 0, "", 0, nil},
		{"expect_none_wrong_key", []string{"--expect", "", capWrong}, 0, "", 1, []string{"not accepted"}},
		{"expect_none_verified", []string{"--expect", "", capInfo}, 1, `accepted presses "#", expected ""`, 1, nil},
		{"expect_keys", []string{"--expect", "5", capWrong}, 0, "", 1, nil},
		{"expect_keys_wrong", []string{"--expect", "5#", capWrong}, 1, `key presses "5", expected "5#"`, 1, nil},
		{"unreadable", []string{capRFC4733, junk}, 2, `junk.pcap: not a pcap or pcapng capture (starts with "not ")`, 1, nil},
		{"unreadable_wins_over_expect", []string{"--expect", "#", capNoKey, junk}, 2, "junk.pcap", 0, nil},
		{"missing_file", []string{filepath.Join(dir, "nope.pcap")}, 2, "no such file", 0, nil},
		{"bad_te_pt", []string{"--te-pt", "8", capRFC4733}, 2, "--te-pt 8", 0, nil},
		{"bad_codec", []string{"--codec", "opus", capRFC4733}, 2, `--codec "opus"`, 0, nil},
		{"bad_expect", []string{"--expect", "#x", capRFC4733}, 2, `"x" is not a DTMF key`, 0, nil},
		{"no_files", nil, 2, "requires at least 1 arg", 0, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := run(t, append([]string{"replay"}, tc.args...)...)
			if code != tc.code || !strings.Contains(errOut, tc.stderr) {
				t.Fatalf("exit %d, stderr %q; want %d, %q\nstdout: %s", code, errOut, tc.code, tc.stderr, out)
			}
			lines := nonEmpty(out)
			if len(lines) != tc.presses {
				t.Fatalf("%d lines, want %d:\n%s", len(lines), tc.presses, out)
			}
			for i, v := range tc.verdicts {
				if !strings.HasSuffix(lines[i], " "+v) {
					t.Errorf("line %q does not end with %q", lines[i], v)
				}
			}
		})
	}
}

func nonEmpty(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l != "" {
			out = append(out, l)
		}
	}
	return out
}

func TestReplayJSON(t *testing.T) {
	out, errOut, code := run(t, "replay", "--json", capRFC4733, capInfo)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	at := regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`)
	lines := nonEmpty(out)
	// Per file: its presses, then a summary per stream.
	kinds := []string{}
	for _, line := range lines {
		var probe map[string]any
		if err := json.Unmarshal([]byte(line), &probe); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		if probe["type"] == "stream" {
			kinds = append(kinds, "stream")
			for _, k := range []string{"file", "stream", "codec", "packets", "lost", "duplicated", "reordered", "dropped", "duration_ms", "presses"} {
				if _, ok := probe[k]; !ok {
					t.Errorf("summary %q has no %q", line, k)
				}
			}
			continue
		}
		kinds = append(kinds, "press")
		var p replayPressLine
		dec := json.NewDecoder(strings.NewReader(line))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&p); err != nil {
			t.Fatalf("press line %q: %v", line, err)
		}
		if p.Digit != "#" || !p.Accepted || !at.MatchString(p.At) || !strings.Contains(p.Stream, "->") || !strings.Contains(p.Stream, " ssrc=0x") {
			t.Errorf("press %+v", p)
		}
		if !regexp.MustCompile(`"duration_ms":\d+\.\d,`).MatchString(line) || !strings.Contains(line, "->") {
			t.Errorf("line %q: want duration_ms with one decimal and a literal ->", line)
		}
	}
	if got := strings.Join(kinds, " "); got != "press stream stream press stream stream" {
		t.Errorf("line kinds %q", got)
	}
	if !strings.Contains(lines[0], `"source":"rfc4733"`) || !strings.Contains(lines[3], `"source":"sip_info"`) {
		t.Errorf("sources: %s", out)
	}
}

// TestReplayGolden pins the exact output, text and JSON, of a capture.
func TestReplayGolden(t *testing.T) {
	for _, tc := range []struct {
		name, golden string
		args         []string
	}{
		{"text", "replay.txt.golden", []string{"replay", "--streams", capRFC4733, capWrong}},
		{"json", "replay.json.golden", []string{"replay", "--json", capRFC4733, capWrong}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := run(t, tc.args...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			checkGolden(t, tc.golden, out)
		})
	}
}

func TestReplayWAV(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "wavs")
	out, errOut, code := run(t, "replay", "--json", "--wav-dir", dir, capInband)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.wav"))
	if len(files) != 2 {
		t.Fatalf("wrote %v", files)
	}
	for _, f := range files {
		if !strings.Contains(out, `"wav":"`+f+`"`) {
			t.Errorf("summary does not name %s:\n%s", f, out)
		}
		r, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		wf, data, err := wav.ReadAll(r)
		r.Close()
		if err != nil {
			t.Fatal(err)
		}
		// About 0.4 s of 8 kHz 16-bit mono.
		if wf.SampleRate != 8000 || wf.Channels != 1 || len(data) < 2*3000 {
			t.Errorf("%s: %+v, %d bytes", f, wf, len(data))
		}
	}
}

// Without SIP (SIPp's capture), --te-pt names the telephone-event payload
// type; the default detects it.
func TestReplayTEPT(t *testing.T) {
	pound := testpeers.File(t, "/usr/share/sip-tester/dtmf_2833_pound.pcap", "sip-tester")
	for _, tc := range []struct {
		args []string
		code int
	}{
		{[]string{"--expect", "#", pound}, 0},
		{[]string{"--expect", "#", "--te-pt", "101", pound}, 0},
		{[]string{"--expect", "", "--te-pt", "100", pound}, 0},
	} {
		if _, errOut, code := run(t, append([]string{"replay"}, tc.args...)...); code != tc.code {
			t.Errorf("%v: exit %d (%s), want %d", tc.args, code, errOut, tc.code)
		}
	}
}
