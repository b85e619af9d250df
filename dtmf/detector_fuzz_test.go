package dtmf

import (
	"slices"
	"testing"
)

// FuzzDetector feeds arbitrary µ-law and A-law audio in arbitrary chunks and
// checks the invariants every consumer relies on.
func FuzzDetector(f *testing.F) {
	f.Add([]byte{0xff, 0x7f, 0x00, 0x80}, uint8(160))
	tone := make([]byte, 4000)
	for i := range tone {
		tone[i] = byte(i*37) ^ 0x55
	}
	f.Add(tone, uint8(7))
	f.Fuzz(func(t *testing.T, audio []byte, chunk uint8) {
		ref := checkStream(t, audio, len(audio)+1, false)
		if c := int(chunk); c > 0 {
			got := checkStream(t, audio, c, false)
			if !slices.Equal(got, ref) {
				t.Fatalf("chunk size %d changed the reports:\n%v\nvs one chunk:\n%v", c, got, ref)
			}
		}
		checkStream(t, audio, len(audio)+1, true)
	})
}

func checkStream(t *testing.T, audio []byte, chunk int, alaw bool) []Event {
	d := NewDetector()
	var ev []Event
	for b := audio; len(b) > 0; {
		k := min(chunk, len(b))
		if alaw {
			ev = d.FeedAlaw(ev, b[:k])
		} else {
			ev = d.FeedUlaw(ev, b[:k])
		}
		b = b[k:]
	}
	ev = d.Flush(ev)
	silent := true
	for _, c := range audio {
		if (alaw && c != 0xd5 && c != 0x55) || (!alaw && c != 0xff && c != 0x7f) {
			silent = false
		}
	}
	if silent && len(ev) > 0 {
		t.Fatalf("reports for silence: %v", ev)
	}
	open := false
	var last Event
	for i, e := range ev {
		if !e.Key.Valid() || e.Source != SourceInband {
			t.Fatalf("report %d: bad key or source: %v", i, e)
		}
		if e.Ended != open {
			t.Fatalf("report %d: start and end do not alternate: %v", i, ev)
		}
		if e.Ended {
			if e.Key != last.Key || e.Start != last.Start || e.End <= e.Start || e.Duration() <= 0 {
				t.Fatalf("report %d: end does not match its start or has no duration: %v then %v", i, last, e)
			}
		} else if i > 0 && e.Start < last.End {
			t.Fatalf("report %d: press starts before the previous one ended: %v then %v", i, last, e)
		}
		if e.StartSample < 0 || e.EndSample > d.Position() {
			t.Fatalf("report %d: outside the stream: %v", i, e)
		}
		open = !e.Ended
		last = e
	}
	return ev
}
