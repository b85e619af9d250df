package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashcall/hashcall/internal/testpeers"
	"github.com/hashcall/hashcall/replay"
)

// realworldDir is the shared corpus of captures and recordings from other
// projects and real equipment: ../shared/realworld from the module root.
// It is read in place, never copied into the repository (each file keeps
// its source's licence).
func realworldDir(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's directory")
		}
		dir = parent
	}
	return testpeers.File(t, filepath.Join(dir, "..", "shared", "realworld"), "(none: the shared real-world corpus ../shared/realworld)")
}

// manifestEntry is one line of the corpus's manifest.tsv.
type manifestEntry struct {
	file, kind, expected, note string
}

func readManifest(t *testing.T, dir string) []manifestEntry {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, "manifest.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []manifestEntry
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for first := true; sc.Scan(); first = false {
		cols := strings.Split(sc.Text(), "\t")
		if first || len(cols) < 5 {
			continue // the header
		}
		e := manifestEntry{file: cols[0], kind: cols[3], expected: cols[4]}
		if len(cols) > 5 {
			e.note = cols[5]
		}
		out = append(out, e)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestRealWorldCorpus runs every capture of the corpus through replay and
// every recording through detect: each must give exactly the digits its
// manifest line lists, in order (per stream for "a / b"), a "none" file no
// digit at all, and a file replay cannot read a FormatError, never a panic.
func TestRealWorldCorpus(t *testing.T) {
	dir := realworldDir(t)
	entries := readManifest(t, dir)
	var pcaps, wavs int
	for _, e := range entries {
		switch e.kind {
		case "pcap":
			pcaps++
			t.Run(e.file, func(t *testing.T) { checkCapture(t, filepath.Join(dir, e.file), e) })
		case "wav":
			wavs++
			t.Run(e.file, func(t *testing.T) { checkRecording(t, filepath.Join(dir, e.file), e) })
		}
	}
	if pcaps == 0 || wavs == 0 {
		t.Fatalf("manifest lists %d captures and %d recordings", pcaps, wavs)
	}
}

// latchedCaptures are the corpus captures whose far end's media does not
// come from the address in its SDP, which a live hashcall drops unless
// media.symmetric_latching is on: they are replayed with Latch, and
// checked to give no live key without it.
var latchedCaptures = map[string]string{
	// The NEC Philips IP-DECT gateway's SDP names 192.168.105.110, its
	// media comes from a DSP at 192.168.105.172.
	"pcap/wireshark_SIP_DTMF2.cap": "media from 192.168.105.172, SDP says 192.168.105.110",
}

func checkCapture(t *testing.T, path string, e manifestEntry) {
	opts := replay.Options{}
	if why, ok := latchedCaptures[e.file]; ok {
		strict, err := replay.File(path, opts)
		if err != nil {
			t.Fatal(err)
		}
		if k := strict.Keys(); k != "" {
			t.Errorf("without latching (%s): keys %q, want none", why, k)
		}
		opts.Latch = true
	}
	rep, err := replay.File(path, opts)
	if err != nil {
		var fe *replay.FormatError
		if !errors.As(err, &fe) {
			t.Fatalf("error %v is not a FormatError", err)
		}
		if e.expected != "none" {
			t.Fatalf("%v, expected %s", err, e.expected)
		}
		return
	}
	// Every key a live call would have heard, per stream in the order of
	// the streams' first packets.
	var perStream []string
	for _, s := range rep.Streams {
		var b strings.Builder
		for _, p := range s.Presses {
			if p.Live {
				b.WriteString(p.Key.String())
			}
		}
		if b.Len() > 0 {
			perStream = append(perStream, b.String())
		}
	}
	got := strings.Join(perStream, " / ")
	want := e.expected
	if want == "none" {
		want = ""
	}
	if got != want {
		t.Errorf("keys %q, expected %q (%s)\n%s", got, want, e.note, rep.Summary())
	}
	for _, p := range rep.Presses() {
		if p.Accepted && p.Key.String() != "#" {
			t.Errorf("press %v accepted", p.Key)
		}
	}
}

func checkRecording(t *testing.T, path string, e manifestEntry) {
	stdout, stderr, code := run(t, "detect", "--json", path)
	if code != 0 {
		t.Fatalf("detect exit %d: %s", code, stderr)
	}
	var got strings.Builder
	dec := json.NewDecoder(strings.NewReader(stdout))
	for dec.More() {
		var r detectResult
		if err := dec.Decode(&r); err != nil {
			t.Fatal(err)
		}
		got.WriteString(r.Digit)
	}
	want := e.expected
	if want == "none" {
		want = ""
	}
	if got.String() != want {
		t.Errorf("digits %q, expected %q (%s)", got.String(), want, e.note)
	}
}
