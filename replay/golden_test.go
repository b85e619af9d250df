package replay_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/hashcall/hashcall/replay"
)

// expected is a golden capture's expected result (x.expected.json beside
// x.pcap).
type expected = replay.Golden

func expectedOf(rep *replay.Report) expected { return rep.Golden() }

// TestReplayGoldens replays every golden capture in testdata/ and compares
// the result with the expected one beside it.
func TestReplayGoldens(t *testing.T) {
	files, err := filepath.Glob("testdata/*.expected.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden captures in testdata/ (%v)", err)
	}
	for _, exp := range files {
		base := strings.TrimSuffix(exp, ".expected.json")
		capture := ""
		for _, ext := range []string{".pcap", ".pcapng"} {
			if _, err := os.Stat(base + ext); err == nil {
				capture = base + ext
			}
		}
		t.Run(filepath.Base(base), func(t *testing.T) {
			if capture == "" {
				t.Fatalf("no capture beside %s", exp)
			}
			if st, _ := os.Stat(capture); st.Size() > 200<<10 {
				t.Errorf("%s is %d bytes; keep goldens under 200 KB", capture, st.Size())
			}
			b, err := os.ReadFile(exp)
			if err != nil {
				t.Fatal(err)
			}
			var want expected
			if err := json.Unmarshal(b, &want); err != nil {
				t.Fatal(err)
			}
			rep, err := replay.File(capture, replay.Options{})
			if err != nil {
				t.Fatal(err)
			}
			got := expectedOf(rep)
			got.Method, got.Call = want.Method, want.Call
			if !reflect.DeepEqual(got, want) {
				g, _ := json.MarshalIndent(got, "", "  ")
				t.Errorf("replay of %s:\n%s\nwant:\n%s", capture, g, b)
			}
			replay.Verify(t, capture, want.Accepted)
			if len(rep.Warnings) > 0 {
				t.Errorf("warnings: %q", rep.Warnings)
			}
		})
	}
}
