package dtmf

import (
	"errors"
	"io"
	"testing"
	"time"

	"github.com/pion/rtp"
)

func TestEncoderPress(t *testing.T) {
	tests := []struct {
		name      string
		cfg       EncoderConfig
		dur       time.Duration
		wantDurs  []uint16 // duration fields, in order
		wantEnds  int
		wantSeqs  []uint16
		wantOffs  []time.Duration
		wantNoMrk bool
	}{
		{
			name:     "defaults_50ms_interval_120ms",
			cfg:      EncoderConfig{Sequence: 10, Timestamp: 1000},
			dur:      120 * time.Millisecond,
			wantDurs: []uint16{0, 400, 800, 960, 960, 960},
			wantEnds: 3,
			wantSeqs: []uint16{10, 11, 12, 13, 14, 15},
			wantOffs: []time.Duration{0, 50 * time.Millisecond, 100 * time.Millisecond, 120 * time.Millisecond, 170 * time.Millisecond, 220 * time.Millisecond},
		},
		{
			name:     "sipp_style_same_seq_20ms",
			cfg:      EncoderConfig{Sequence: 65534, Interval: 20 * time.Millisecond, EndSameSequence: true},
			dur:      60 * time.Millisecond,
			wantDurs: []uint16{0, 160, 320, 480, 480, 480},
			wantEnds: 3,
			wantSeqs: []uint16{65534, 65535, 0, 1, 1, 1},
		},
		{
			name:      "no_marker_one_end_packet",
			cfg:       EncoderConfig{NoMarker: true, EndPackets: 1, Interval: 20 * time.Millisecond},
			dur:       40 * time.Millisecond,
			wantDurs:  []uint16{0, 160, 320},
			wantEnds:  1,
			wantNoMrk: true,
		},
		{
			name:     "48kHz",
			cfg:      EncoderConfig{ClockRate: 48000, Interval: 20 * time.Millisecond, PayloadType: 110},
			dur:      50 * time.Millisecond,
			wantDurs: []uint16{0, 960, 1920, 2400, 2400, 2400},
			wantEnds: 3,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := NewEncoder(tc.cfg)
			pkts := e.Press(nil, KeyHash, tc.dur)
			if len(pkts) != len(tc.wantDurs) {
				t.Fatalf("got %d packets, want %d: %+v", len(pkts), len(tc.wantDurs), pkts)
			}
			ends := 0
			for i, p := range pkts {
				if p.Payload.Duration != tc.wantDurs[i] {
					t.Errorf("packet %d duration %d, want %d", i, p.Payload.Duration, tc.wantDurs[i])
				}
				if p.Payload.Event != 11 || p.Payload.Volume != DefaultVolume {
					t.Errorf("packet %d payload %+v", i, p.Payload)
				}
				if p.Header.Marker != (i == 0 && !tc.wantNoMrk) {
					t.Errorf("packet %d marker %v", i, p.Header.Marker)
				}
				if p.Header.Timestamp != tc.cfg.Timestamp || p.Header.Version != 2 {
					t.Errorf("packet %d header %+v", i, p.Header)
				}
				wantPT := tc.cfg.PayloadType
				if wantPT == 0 {
					wantPT = DefaultPayloadType
				}
				if p.Header.PayloadType != wantPT {
					t.Errorf("packet %d PT %d", i, p.Header.PayloadType)
				}
				if p.Payload.End {
					ends++
				} else if ends > 0 {
					t.Errorf("packet %d: update after an E packet", i)
				}
				if tc.wantSeqs != nil && p.Header.SequenceNumber != tc.wantSeqs[i] {
					t.Errorf("packet %d seq %d, want %d", i, p.Header.SequenceNumber, tc.wantSeqs[i])
				}
				if tc.wantOffs != nil && p.Offset != tc.wantOffs[i] {
					t.Errorf("packet %d offset %v, want %v", i, p.Offset, tc.wantOffs[i])
				}
			}
			if ends != tc.wantEnds {
				t.Errorf("%d E packets, want %d", ends, tc.wantEnds)
			}
		})
	}
}

func TestEncoderTimestampsAdvance(t *testing.T) {
	var ts0 uint32 = 0xffffff00
	e := NewEncoder(EncoderConfig{Timestamp: ts0, Sequence: 7})
	a := e.Press(nil, '1', 100*time.Millisecond)
	if got := e.Timestamp(); got != ts0+800 {
		t.Fatalf("timestamp after press %#x", got)
	}
	e.Skip(50 * time.Millisecond)
	b := e.Press(nil, '2', 100*time.Millisecond)
	if b[0].Header.Timestamp != ts0+800+400 {
		t.Fatalf("second press timestamp %#x", b[0].Header.Timestamp)
	}
	if b[0].Header.SequenceNumber != a[len(a)-1].Header.SequenceNumber+1 || e.Sequence() != b[len(b)-1].Header.SequenceNumber+1 {
		t.Fatalf("sequence numbers do not continue: %d then %d", a[len(a)-1].Header.SequenceNumber, b[0].Header.SequenceNumber)
	}
	if b[0].Payload.Event != 2 || !b[0].Header.Marker {
		t.Fatalf("second press first packet %+v", b[0])
	}
	if n := len(e.Press(nil, Key('x'), time.Second)); n != 0 {
		t.Fatalf("invalid key gave %d packets", n)
	}
	if p := e.PressEvent(nil, 16, 100*time.Millisecond); len(p) == 0 || p[0].Payload.Event != 16 {
		t.Fatalf("PressEvent(16) = %+v", p)
	}
}

// TestEncoderSegments checks RFC 4733 §2.5.1.3: an event longer than 0xFFFF
// units is sent in segments, each new one 0xFFFF units later.
func TestEncoderSegments(t *testing.T) {
	var ts0 uint32 = 0xfffff000 // the second segment's timestamp wraps
	e := NewEncoder(EncoderConfig{Timestamp: ts0, Interval: 20 * time.Millisecond})
	pkts := e.Press(nil, KeyHash, 20*time.Second) // 160000 units: 3 segments
	var segTS []uint32
	var total uint64
	prevDur := -1
	for i, p := range pkts {
		if len(segTS) == 0 || p.Header.Timestamp != segTS[len(segTS)-1] {
			segTS = append(segTS, p.Header.Timestamp)
			prevDur = -1
			if i > 0 && p.Header.Marker {
				t.Fatalf("marker on the first packet of a later segment")
			}
		}
		if int(p.Payload.Duration) < prevDur {
			t.Fatalf("packet %d duration %d went down from %d", i, p.Payload.Duration, prevDur)
		}
		prevDur = int(p.Payload.Duration)
		if p.Payload.Duration == 0xffff && p.Payload.End {
			t.Fatalf("segment end with E bit")
		}
		if i > 0 && p.Offset < pkts[i-1].Offset {
			t.Fatalf("offsets go backwards at %d", i)
		}
		total = uint64(segTS[len(segTS)-1]-ts0) + uint64(p.Payload.Duration)
	}
	want := []uint32{ts0, ts0 + 0xffff, ts0 + 2*0xffff}
	if len(segTS) != len(want) {
		t.Fatalf("segments at %#x, want %#x", segTS, want)
	}
	for i := range want {
		if segTS[i] != want[i] {
			t.Fatalf("segments at %#x, want %#x", segTS, want)
		}
	}
	if total != 160000 || !pkts[len(pkts)-1].Payload.End {
		t.Fatalf("final total %d, last %+v", total, pkts[len(pkts)-1])
	}
	if e.Timestamp() != ts0+160000 {
		t.Fatalf("next timestamp %#x", e.Timestamp())
	}
}

func TestPacketMarshalTo(t *testing.T) {
	e := NewEncoder(EncoderConfig{SSRC: 0xdeadbeef, Sequence: 100, Timestamp: 5000, PayloadType: 96})
	pkts := e.Press(nil, KeyHash, 100*time.Millisecond)
	buf := make([]byte, 64)
	for i, p := range pkts {
		n, err := p.MarshalTo(buf)
		if err != nil {
			t.Fatal(err)
		}
		if n != 16 || n != p.MarshalSize() {
			t.Fatalf("packet %d: %d bytes", i, n)
		}
		var rp rtp.Packet
		if err := rp.Unmarshal(buf[:n]); err != nil {
			t.Fatal(err)
		}
		var pl Payload
		if err := pl.Unmarshal(rp.Payload); err != nil {
			t.Fatal(err)
		}
		h := rp.Header
		if h.SSRC != 0xdeadbeef || h.PayloadType != 96 || h.SequenceNumber != p.Header.SequenceNumber ||
			h.Timestamp != 5000 || h.Marker != p.Header.Marker || pl != p.Payload {
			t.Fatalf("packet %d decoded %+v %+v, sent %+v", i, h, pl, p)
		}
	}
	if _, err := pkts[0].MarshalTo(buf[:15]); !errors.Is(err, io.ErrShortBuffer) {
		t.Fatalf("short buffer: %v", err)
	}
	bad := pkts[0]
	bad.Payload.Volume = 64
	if _, err := bad.MarshalTo(buf); !errors.Is(err, ErrVolumeRange) {
		t.Fatalf("bad volume: %v", err)
	}
}

func TestEncoderVolume(t *testing.T) {
	for _, tc := range []struct{ in, want int }{{0, 10}, {-1, 0}, {36, 36}, {63, 63}, {99, 63}} {
		p := NewEncoder(EncoderConfig{Volume: tc.in}).Press(nil, '5', 50*time.Millisecond)
		if int(p[0].Payload.Volume) != tc.want {
			t.Errorf("Volume %d sends %d, want %d", tc.in, p[0].Payload.Volume, tc.want)
		}
	}
}
