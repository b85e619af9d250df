package media

import (
	"testing"
	"time"

	"github.com/hashcall/hashcall/dtmf"
	"github.com/hashcall/hashcall/dtmf/dtmftest"
	"github.com/zaf/g711"
)

func TestParseCodec(t *testing.T) {
	for in, want := range map[string]Codec{"PCMU": PCMU, "pcmu": PCMU, "ulaw": PCMU, " G711U ": PCMU, "PCMA": PCMA, "alaw": PCMA, "g711a": PCMA} {
		if got, err := ParseCodec(in); err != nil || got != want {
			t.Errorf("ParseCodec(%q) = %v, %v", in, got, err)
		}
	}
	for _, bad := range []string{"", "G729", "opus"} {
		if _, err := ParseCodec(bad); err == nil {
			t.Errorf("ParseCodec(%q) succeeded", bad)
		}
	}
	if PCMU.String() != "PCMU/8000" || PCMU.Silence() != 0xFF || PCMA.Silence() != 0xD5 {
		t.Error("names or silence bytes")
	}
	if (Codec{"G729", 18, 8000}).Supported() || (Codec{"PCMU", 0, 16000}).Supported() {
		t.Error("unsupported codec reported supported")
	}
	// The silence bytes decode to (near) zero.
	if g711.DecodeUlawFrame(PCMU.Silence()) != 0 || abs(g711.DecodeAlawFrame(PCMA.Silence())) > 8 {
		t.Error("silence bytes are not silent")
	}
}

func abs(x int16) int16 {
	if x < 0 {
		return -x
	}
	return x
}

func TestEncodePads(t *testing.T) {
	b := PCMA.encode(nil, make([]int16, 170))
	if len(b) != 2*FrameSamples {
		t.Fatalf("%d bytes", len(b))
	}
	for _, c := range b[170:] {
		if c != 0xD5 {
			t.Fatal("padding is not silence")
		}
	}
	if n := testing.AllocsPerRun(10, func() { b = PCMU.encode(b[:0], make([]int16, 0)) }); n != 0 {
		t.Errorf("%v allocations", n)
	}
}

// TestDTMFTone checks the tone generator with the in-band detector, through
// both G.711 laws, for every key.
func TestDTMFTone(t *testing.T) {
	for _, k := range []dtmf.Key("123A456B789C*0#D") {
		for _, c := range []Codec{PCMU, PCMA} {
			d := dtmf.NewDetector()
			b := c.encode(nil, dtmftest.Concat(dtmfTone(k, 80*time.Millisecond), dtmftest.Silence(100*time.Millisecond)))
			var evs []dtmf.Event
			if c == PCMU {
				evs = d.FeedUlaw(evs, b)
			} else {
				evs = d.FeedAlaw(evs, b)
			}
			if len(evs) != 2 || evs[0].Key != k {
				t.Errorf("%v in %s: %v", k, c.Name, evs)
			}
		}
	}
	if dtmfTone('x', time.Second) != nil {
		t.Error("tone for an invalid key")
	}
}
