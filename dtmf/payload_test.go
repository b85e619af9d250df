package dtmf

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

func TestPayloadUnmarshal(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		want Payload
		err  error
	}{
		// The first and last packets of SIPp's dtmf_2833_pound.pcap.
		{name: "sipp_first", in: []byte{0x0b, 0x0a, 0x00, 0x00}, want: Payload{Event: 11, Volume: 10}},
		{name: "sipp_end", in: []byte{0x0b, 0x8a, 0x08, 0xc0}, want: Payload{Event: 11, End: true, Volume: 10, Duration: 2240}},
		{name: "all_bits", in: []byte{0xff, 0xff, 0xff, 0xff}, want: Payload{Event: 255, End: true, Reserved: true, Volume: 63, Duration: 0xffff}},
		{name: "reserved_only", in: []byte{0x01, 0x40, 0x01, 0x00}, want: Payload{Event: 1, Reserved: true, Duration: 256}},
		{name: "two_blocks_decodes_first", in: []byte{0x05, 0x80, 0x03, 0x20, 0x0b, 0x0a, 0x00, 0xa0}, want: Payload{Event: 5, End: true, Duration: 800}},
		{name: "R13_empty", in: nil, err: ErrShortPayload},
		{name: "R13_three_bytes", in: []byte{0x0b, 0x0a, 0x00}, err: ErrShortPayload},
		{name: "R13_five_bytes", in: []byte{0x0b, 0x0a, 0x00, 0x00, 0x00}, err: ErrPayloadSize},
		{name: "R13_seven_bytes", in: []byte{0x0b, 0x0a, 0x00, 0x00, 0x00, 0x00, 0x00}, err: ErrPayloadSize},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Payload{Event: 99, End: true, Volume: 1, Duration: 7} // overwritten on success
			err := got.Unmarshal(tc.in)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("Unmarshal(% x) error = %v, want %v", tc.in, err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Unmarshal(% x): %v", tc.in, err)
			}
			if got != tc.want {
				t.Fatalf("Unmarshal(% x) = %+v, want %+v", tc.in, got, tc.want)
			}
		})
	}
}

func TestPayloadMarshal(t *testing.T) {
	p := Payload{Event: 11, End: true, Volume: 10, Duration: 2240}
	b, err := p.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if want := []byte{0x0b, 0x8a, 0x08, 0xc0}; !bytes.Equal(b, want) {
		t.Fatalf("Marshal = % x, want % x", b, want)
	}
	if n := p.MarshalSize(); n != 4 {
		t.Fatalf("MarshalSize = %d", n)
	}
	buf := make([]byte, 8)
	n, err := p.MarshalTo(buf[2:])
	if err != nil || n != 4 || !bytes.Equal(buf[2:6], b) {
		t.Fatalf("MarshalTo = %d, %v, % x", n, err, buf)
	}
	if _, err := p.MarshalTo(buf[:3]); !errors.Is(err, io.ErrShortBuffer) {
		t.Fatalf("MarshalTo short buffer: %v, want io.ErrShortBuffer", err)
	}
	if _, err := (Payload{Volume: 64}).Marshal(); !errors.Is(err, ErrVolumeRange) {
		t.Fatalf("Marshal volume 64: %v, want ErrVolumeRange", err)
	}
	if k, ok := p.Key(); !ok || k != KeyHash {
		t.Fatalf("Key = %v, %v", k, ok)
	}
	if s := p.String(); s != "event 11 end true volume 10 duration 2240" {
		t.Fatalf("String = %q", s)
	}
}

func TestPayloadAllocs(t *testing.T) {
	in := []byte{0x0b, 0x8a, 0x08, 0xc0}
	out := make([]byte, 4)
	var p Payload
	allocs := testing.AllocsPerRun(100, func() {
		if err := p.Unmarshal(in); err != nil {
			t.Fatal(err)
		}
		if _, err := p.MarshalTo(out); err != nil {
			t.Fatal(err)
		}
		_ = p.Unmarshal(in[:3]) // error path too
	})
	if allocs != 0 {
		t.Fatalf("Unmarshal+MarshalTo allocate %v times", allocs)
	}
}

func FuzzPayloadUnmarshal(f *testing.F) {
	f.Add([]byte{0x0b, 0x0a, 0x00, 0x00})
	f.Add([]byte{0x0b, 0x8a, 0x08, 0xc0})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00})
	f.Add([]byte{0x10, 0x3f, 0xff})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		var p Payload
		err := p.Unmarshal(b)
		switch {
		case len(b) < 4:
			if !errors.Is(err, ErrShortPayload) {
				t.Fatalf("len %d: err %v", len(b), err)
			}
			return
		case len(b)%4 != 0:
			if !errors.Is(err, ErrPayloadSize) {
				t.Fatalf("len %d: err %v", len(b), err)
			}
			return
		case err != nil:
			t.Fatalf("len %d: unexpected err %v", len(b), err)
		}
		if p.Volume > MaxVolume {
			t.Fatalf("volume %d out of range", p.Volume)
		}
		out, err := p.Marshal()
		if err != nil {
			t.Fatalf("Marshal(%+v): %v", p, err)
		}
		if !bytes.Equal(out, b[:4]) {
			t.Fatalf("round trip % x -> %+v -> % x", b[:4], p, out)
		}
		var q Payload
		if err := q.Unmarshal(out); err != nil || q != p {
			t.Fatalf("second decode %+v, %v; want %+v", q, err, p)
		}
	})
}
