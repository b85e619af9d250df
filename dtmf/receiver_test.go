package dtmf

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/pion/rtp"
)

const (
	rxPT   = 101
	rxSSRC = 0x1111aaaa
)

// rxArrival is one packet as a Receiver is given it.
type rxArrival struct {
	at  time.Duration
	h   rtp.Header
	raw []byte
}

// rxSched turns encoder packets into arrivals at base+Offset.
func rxSched(base time.Duration, pkts []Packet) []rxArrival {
	out := make([]rxArrival, 0, len(pkts))
	for _, p := range pkts {
		b, err := p.Payload.Marshal()
		if err != nil {
			panic(err) // test input bug
		}
		out = append(out, rxArrival{at: base + p.Offset, h: p.Header, raw: b})
	}
	return out
}

// rxEnc returns an encoder with the test's payload type and SSRC unless cfg
// names others, 20 ms updates unless cfg says otherwise.
func rxEnc(cfg EncoderConfig) *Encoder {
	if cfg.PayloadType == 0 {
		cfg.PayloadType = rxPT
	}
	if cfg.SSRC == 0 {
		cfg.SSRC = rxSSRC
	}
	if cfg.Interval == 0 {
		cfg.Interval = 20 * time.Millisecond
	}
	return NewEncoder(cfg)
}

// rxPkt builds one rxArrival by hand.
func rxPkt(at time.Duration, seq uint16, ts uint32, event uint8, end bool, dur uint16) rxArrival {
	b, _ := Payload{Event: event, End: end, Volume: 10, Duration: dur}.Marshal()
	return rxArrival{at: at, h: rtp.Header{Version: 2, PayloadType: rxPT, SequenceNumber: seq, Timestamp: ts, SSRC: rxSSRC}, raw: b}
}

func rxWithout(in []rxArrival, drop func(i int, a rxArrival) bool) []rxArrival {
	var out []rxArrival
	for i, a := range in {
		if !drop(i, a) {
			out = append(out, a)
		}
	}
	return out
}

func rxIsEnd(_ int, a rxArrival) bool { return a.raw[1]&0x80 != 0 }

func rxFeed(r *Receiver, evs []Event, in []rxArrival) []Event {
	for i := range in {
		evs = r.Packet(evs, in[i].at, &in[i].h, in[i].raw)
	}
	return evs
}

// rxDescribe renders reports as "# start, # end, ...".
func rxDescribe(evs []Event) string {
	parts := make([]string, 0, len(evs))
	for _, e := range evs {
		s := "start"
		if e.Ended {
			s = "end"
		}
		parts = append(parts, e.Key.String()+" "+s)
	}
	return strings.Join(parts, ", ")
}

// rxCheckInvariants checks what holds for every report sequence: RFC 4733
// source, an end only after its start, End >= Start.
func rxCheckInvariants(t *testing.T, evs []Event, st ReceiverStats) {
	t.Helper()
	var open *Event
	starts := 0
	for i := range evs {
		e := &evs[i]
		if e.Source != SourceRFC4733 || !e.Key.Valid() {
			t.Errorf("report %d: %v", i, e)
		}
		if !e.Ended {
			if open != nil {
				t.Errorf("report %d: start while %v is open", i, open)
			}
			open = e
			starts++
			continue
		}
		if open == nil || open.Key != e.Key || open.Start != e.Start {
			t.Errorf("report %d: end %v without its start (open %v)", i, e, open)
		}
		if e.End < e.Start {
			t.Errorf("report %d: End %v before Start %v", i, e.End, e.Start)
		}
		open = nil
	}
	if uint64(starts) != st.Accepted {
		t.Errorf("%d start reports, Stats.Accepted %d", starts, st.Accepted)
	}
}

type rxCase struct {
	name  string
	cfg   ReceiverConfig
	setup func(*Receiver)
	in    func() []rxArrival
	tick  bool   // after the packets, Tick just before and at the timeout
	want  string // reports, as describe renders them
	check func(t *testing.T, st ReceiverStats, evs []Event)
}

func rxWantStat(t *testing.T, name string, got, want uint64) {
	t.Helper()
	if got != want {
		t.Errorf("Stats.%s = %d, want %d", name, got, want)
	}
}

func rxWantDuration(t *testing.T, evs []Event, i int, want time.Duration) {
	t.Helper()
	if i >= len(evs) || !evs[i].Ended {
		t.Fatalf("report %d is not an end report: %v", i, evs)
	}
	if d := evs[i].Duration(); d != want {
		t.Errorf("report %d duration %v, want %v", i, d, want)
	}
}

// receiverCases are the contract's RFC 4733 rows (R1–R13, R15; R14 is the
// Combiner's) and further cases for wrap, loss, duplication and reordering.
func receiverCases() []rxCase {
	hash := func(cfg EncoderConfig, d time.Duration) []rxArrival {
		return rxSched(0, rxEnc(cfg).Press(nil, KeyHash, d))
	}
	return []rxCase{
		{
			name: "R1_three_end_packets_same_seq",
			in: func() []rxArrival {
				return hash(EncoderConfig{Sequence: 8436, Timestamp: 92640, EndSameSequence: true}, 280*time.Millisecond)
			},
			want: "# start, # end",
			check: func(t *testing.T, st ReceiverStats, evs []Event) {
				rxWantStat(t, "Duplicate", st.Duplicate, 2)
				rxWantDuration(t, evs, 1, 280*time.Millisecond)
				if evs[0].Start != 0 || evs[0].LevelDBm0 != -10 {
					t.Errorf("start report %+v", evs[0])
				}
			},
		},
		{
			name: "R2_three_end_packets_incrementing_seq",
			in:   func() []rxArrival { return hash(EncoderConfig{Interval: 50 * time.Millisecond}, 250*time.Millisecond) },
			want: "# start, # end",
			check: func(t *testing.T, st ReceiverStats, evs []Event) {
				rxWantStat(t, "Duplicate", st.Duplicate, 2)
				rxWantDuration(t, evs, 1, 250*time.Millisecond)
			},
		},
		{
			name: "R3_marker_never_set",
			in:   func() []rxArrival { return hash(EncoderConfig{NoMarker: true}, 120*time.Millisecond) },
			want: "# start, # end",
		},
		{
			name: "R4_all_end_packets_lost",
			in:   func() []rxArrival { return rxWithout(hash(EncoderConfig{}, 200*time.Millisecond), rxIsEnd) },
			tick: true,
			want: "# start, # end",
			check: func(t *testing.T, st ReceiverStats, evs []Event) {
				rxWantStat(t, "NoEnd", st.NoEnd, 1)
				rxWantDuration(t, evs, 1, 180*time.Millisecond) // the last update received
			},
		},
		{
			name: "R4_all_end_packets_lost_timeout_by_next_packet",
			in: func() []rxArrival {
				e := rxEnc(EncoderConfig{})
				a := rxWithout(rxSched(0, e.Press(nil, KeyHash, 200*time.Millisecond)), rxIsEnd)
				e.Skip(time.Second)
				return append(a, rxSched(1200*time.Millisecond, e.Press(nil, '1', 100*time.Millisecond))...)
			},
			want: "# start, # end, 1 start, 1 end",
		},
		{
			name: "R5_sender_never_sets_end",
			cfg:  ReceiverConfig{Timeout: 300 * time.Millisecond},
			in: func() []rxArrival {
				var a []rxArrival
				for i := 0; i <= 50; i++ { // 1 s of updates every 20 ms, then nothing
					a = append(a, rxPkt(time.Duration(i)*20*time.Millisecond, uint16(100+i), 4000, 11, false, uint16(160*i)))
				}
				return a
			},
			tick: true,
			want: "# start, # end",
			check: func(t *testing.T, st ReceiverStats, evs []Event) {
				rxWantStat(t, "NoEnd", st.NoEnd, 1)
				rxWantDuration(t, evs, 1, time.Second)
			},
		},
		{
			name: "R6_same_event_new_timestamp",
			in: func() []rxArrival {
				e := rxEnc(EncoderConfig{})
				a := rxSched(0, e.Press(nil, KeyHash, 100*time.Millisecond))
				e.Skip(100 * time.Millisecond)
				return append(a, rxSched(200*time.Millisecond, e.Press(nil, KeyHash, 100*time.Millisecond))...)
			},
			want: "# start, # end, # start, # end",
		},
		{
			name: "R6_same_event_contiguous_timestamp_after_end",
			in: func() []rxArrival {
				e := rxEnc(EncoderConfig{})
				a := rxSched(0, e.Press(nil, KeyHash, 100*time.Millisecond))
				return append(a, rxSched(100*time.Millisecond, e.Press(nil, KeyHash, 100*time.Millisecond))...)
			},
			want: "# start, # end, # start, # end",
		},
		{
			name: "R6_end_lost_then_same_event_with_marker",
			in: func() []rxArrival {
				e := rxEnc(EncoderConfig{})
				a := rxWithout(rxSched(0, e.Press(nil, KeyHash, 100*time.Millisecond)), rxIsEnd)
				e.Skip(60 * time.Millisecond)
				return append(a, rxSched(160*time.Millisecond, e.Press(nil, KeyHash, 100*time.Millisecond))...)
			},
			want: "# start, # end, # start, # end",
		},
		{
			name: "R6_end_lost_then_same_event_without_marker",
			in: func() []rxArrival {
				e := rxEnc(EncoderConfig{NoMarker: true})
				a := rxWithout(rxSched(0, e.Press(nil, KeyHash, 100*time.Millisecond)), rxIsEnd)
				e.Skip(60 * time.Millisecond)
				return append(a, rxSched(160*time.Millisecond, e.Press(nil, KeyHash, 100*time.Millisecond))...)
			},
			want: "# start, # end, # start, # end",
		},
		{
			name: "R7_held_past_0xFFFF_segments",
			in:   func() []rxArrival { return hash(EncoderConfig{Timestamp: 1000}, 10*time.Second) },
			want: "# start, # end",
			check: func(t *testing.T, st ReceiverStats, evs []Event) {
				rxWantDuration(t, evs, 1, 10*time.Second)
			},
		},
		{
			name: "R7_held_past_0xFFFF_48kHz",
			cfg:  ReceiverConfig{ClockRate: 48000},
			in:   func() []rxArrival { return hash(EncoderConfig{ClockRate: 48000}, 5*time.Second) },
			want: "# start, # end",
			check: func(t *testing.T, st ReceiverStats, evs []Event) {
				rxWantDuration(t, evs, 1, 5*time.Second)
			},
		},
		{
			name: "R7_segments_across_timestamp_wrap",
			in:   func() []rxArrival { return hash(EncoderConfig{Timestamp: 0xffff8000}, 20*time.Second) },
			want: "# start, # end",
			check: func(t *testing.T, st ReceiverStats, evs []Event) {
				rxWantDuration(t, evs, 1, 20*time.Second)
			},
		},
		{
			name: "R7_segment_boundary_packets_lost",
			in: func() []rxArrival {
				return rxWithout(hash(EncoderConfig{}, 10*time.Second), func(_ int, a rxArrival) bool {
					d := binary.BigEndian.Uint16(a.raw[2:])
					return a.h.Timestamp == 0 && d > 65000 // the first segment's last packets
				})
			},
			want: "# start, # end",
			check: func(t *testing.T, st ReceiverStats, evs []Event) {
				rxWantDuration(t, evs, 1, 10*time.Second)
			},
		},
		{
			name: "R7_new_timestamp_while_contiguous",
			// A sender that starts its next segment where its last update
			// ended (65440 = 409 × 160) instead of at +0xFFFF.
			in: func() []rxArrival {
				var a []rxArrival
				seq := uint16(0)
				at := time.Duration(0)
				for d := 0; d <= 65440; d += 160 {
					a = append(a, rxPkt(at, seq, 0, 11, false, uint16(d)))
					seq++
					at += 20 * time.Millisecond
				}
				for d := 160; d <= 8000; d += 160 {
					a = append(a, rxPkt(at, seq, 65440, 11, d == 8000, uint16(d)))
					seq++
					at += 20 * time.Millisecond
				}
				return a
			},
			want: "# start, # end",
			check: func(t *testing.T, st ReceiverStats, evs []Event) {
				rxWantDuration(t, evs, 1, time.Duration(65440+8000)*time.Second/8000)
			},
		},
		{
			name: "R8_late_packet_after_end",
			in: func() []rxArrival {
				a := hash(EncoderConfig{}, 200*time.Millisecond)
				late := a[3]
				late.at = a[len(a)-1].at + 100*time.Millisecond
				return append(a, late)
			},
			want: "# start, # end",
			check: func(t *testing.T, st ReceiverStats, evs []Event) {
				rxWantStat(t, "Late", st.Late, 1)
			},
		},
		{
			name: "R8_late_packets_after_next_press_started",
			in: func() []rxArrival {
				e := rxEnc(EncoderConfig{})
				a := rxSched(0, e.Press(nil, KeyHash, 200*time.Millisecond))
				e.Skip(100 * time.Millisecond)
				b := rxSched(400*time.Millisecond, e.Press(nil, '1', 200*time.Millisecond))
				lateUpd, lateEnd := a[5], a[len(a)-1]
				lateUpd.at, lateEnd.at = b[4].at+time.Millisecond, b[6].at+time.Millisecond
				out := append(a, b[:5]...)
				out = append(out, lateUpd)
				out = append(out, b[5:7]...)
				out = append(out, lateEnd)
				return append(out, b[7:]...)
			},
			want: "# start, # end, 1 start, 1 end",
			check: func(t *testing.T, st ReceiverStats, evs []Event) {
				rxWantStat(t, "Late", st.Late, 1)
				rxWantStat(t, "Duplicate", st.Duplicate, 2+2+1)
				rxWantDuration(t, evs, 3, 200*time.Millisecond)
			},
		},
		{
			name: "R8_stale_packet_of_unseen_press",
			in: func() []rxArrival {
				// Packets of earlier presses that were never seen, arriving
				// in the middle of the current one, with timestamps before it.
				a := hash(EncoderConfig{Timestamp: 80000}, 200*time.Millisecond)
				stale1 := rxPkt(a[4].at+time.Millisecond, 5, 78000, 11, false, 320)
				stale2 := rxPkt(a[6].at+time.Millisecond, 6, 76000, 1, true, 800)
				out := append(a[:5:5], stale1)
				out = append(out, a[5:7]...)
				out = append(out, stale2)
				return append(out, a[7:]...)
			},
			want: "# start, # end",
			check: func(t *testing.T, st ReceiverStats, evs []Event) {
				rxWantStat(t, "Late", st.Late, 2)
				rxWantDuration(t, evs, 1, 200*time.Millisecond)
			},
		},
		{
			name: "R9_payload_type_not_negotiated",
			in:   func() []rxArrival { return hash(EncoderConfig{PayloadType: 96}, 200*time.Millisecond) },
			want: "",
			check: func(t *testing.T, st ReceiverStats, evs []Event) {
				rxWantStat(t, "WrongPayloadType", st.WrongPayloadType, st.Packets)
			},
		},
		{
			name: "R9_negotiated_96",
			cfg:  ReceiverConfig{PayloadType: 96},
			in:   func() []rxArrival { return hash(EncoderConfig{PayloadType: 96}, 200*time.Millisecond) },
			want: "# start, # end",
		},
		{
			name: "R10_volume_56_to_63",
			in: func() []rxArrival {
				var a []rxArrival
				for v := 56; v <= 63; v++ {
					a = append(a, rxSched(time.Duration(v)*time.Second, rxEnc(EncoderConfig{Volume: v, Timestamp: uint32(v) * 8000}).Press(nil, KeyHash, 200*time.Millisecond))...)
				}
				return a
			},
			want: "",
			check: func(t *testing.T, st ReceiverStats, evs []Event) {
				rxWantStat(t, "LowVolume", st.LowVolume, st.Packets)
				if _, ok := (&Receiver{}).SSRC(); ok {
					t.Error("zero receiver has an SSRC")
				}
			},
		},
		{
			name: "R10_volume_55_and_0_accepted",
			in: func() []rxArrival {
				a := rxSched(0, rxEnc(EncoderConfig{Volume: 55}).Press(nil, KeyHash, 100*time.Millisecond))
				return append(a, rxSched(time.Second, rxEnc(EncoderConfig{Volume: -1, Timestamp: 8000}).Press(nil, KeyHash, 100*time.Millisecond))...)
			},
			want: "# start, # end, # start, # end",
			check: func(t *testing.T, st ReceiverStats, evs []Event) {
				if evs[0].LevelDBm0 != -55 || evs[2].LevelDBm0 != 0 {
					t.Errorf("levels %v, %v", evs[0].LevelDBm0, evs[2].LevelDBm0)
				}
			},
		},
		{
			name: "R11_events_0_to_10_and_12_to_16",
			in: func() []rxArrival {
				e := rxEnc(EncoderConfig{})
				var a []rxArrival
				for code := uint8(0); code <= 16; code++ {
					if code == 11 {
						continue
					}
					a = append(a, rxSched(time.Duration(code)*time.Second, e.PressEvent(nil, code, 100*time.Millisecond))...)
					e.Skip(time.Second - 100*time.Millisecond)
				}
				return a
			},
			want: "0 start, 0 end, 1 start, 1 end, 2 start, 2 end, 3 start, 3 end, 4 start, 4 end, 5 start, 5 end, " +
				"6 start, 6 end, 7 start, 7 end, 8 start, 8 end, 9 start, 9 end, * start, * end, " +
				"A start, A end, B start, B end, C start, C end, D start, D end",
			check: func(t *testing.T, st ReceiverStats, evs []Event) {
				for _, e := range evs {
					if e.Key.Accepted() {
						t.Errorf("%v accepted", e)
					}
				}
				rxWantStat(t, "NonKey", st.NonKey, 8) // flash: 5 updates, 3 E packets
			},
		},
		{
			name: "R11_flash_inside_a_press",
			in: func() []rxArrival {
				a := hash(EncoderConfig{}, 200*time.Millisecond)
				f := rxEnc(EncoderConfig{Timestamp: 400}).PressEvent(nil, 16, 60*time.Millisecond)
				fl := rxSched(a[2].at+time.Millisecond, f)
				return append(append(a[:3:3], fl...), a[3:]...)
			},
			want: "# start, # end",
			check: func(t *testing.T, st ReceiverStats, evs []Event) {
				rxWantDuration(t, evs, 1, 200*time.Millisecond)
			},
		},
		{
			name: "R12_final_duration_39ms",
			in:   func() []rxArrival { return hash(EncoderConfig{}, 39*time.Millisecond) },
			want: "",
			check: func(t *testing.T, st ReceiverStats, evs []Event) {
				rxWantStat(t, "TooShort", st.TooShort, 1)
			},
		},
		{
			name: "R12_final_duration_39ms_end_lost",
			in:   func() []rxArrival { return rxWithout(hash(EncoderConfig{}, 39*time.Millisecond), rxIsEnd) },
			tick: true,
			want: "",
			check: func(t *testing.T, st ReceiverStats, evs []Event) {
				rxWantStat(t, "TooShort", st.TooShort, 1)
			},
		},
		{
			name: "R12_final_duration_40ms_accepted",
			in:   func() []rxArrival { return hash(EncoderConfig{}, 40*time.Millisecond) },
			want: "# start, # end",
		},
		{
			name: "R12_48kHz_39ms",
			cfg:  ReceiverConfig{ClockRate: 48000},
			in:   func() []rxArrival { return hash(EncoderConfig{ClockRate: 48000}, 39*time.Millisecond) },
			want: "",
		},
		{
			name: "R12_48kHz_40ms_accepted",
			cfg:  ReceiverConfig{ClockRate: 48000},
			in:   func() []rxArrival { return hash(EncoderConfig{ClockRate: 48000}, 40*time.Millisecond) },
			want: "# start, # end",
		},
		{
			name: "R12_8kHz_packets_at_48kHz_rate_too_short",
			// 1900 units are 237.5 ms at 8 kHz but only 39.6 ms at 48 kHz.
			cfg: ReceiverConfig{ClockRate: 48000},
			in: func() []rxArrival {
				return []rxArrival{rxPkt(0, 1, 0, 11, false, 0), rxPkt(20*time.Millisecond, 2, 0, 11, true, 1900)}
			},
		},
		{
			name: "R13_payload_not_multiple_of_4",
			in: func() []rxArrival {
				var a []rxArrival
				for _, n := range []int{0, 1, 3, 5, 6, 7, 9} {
					x := rxPkt(time.Duration(n)*time.Millisecond, uint16(n), 0, 11, true, 2000)
					x.raw = make([]byte, n)
					copy(x.raw, []byte{11, 0x8a, 0x07, 0xd0})
					a = append(a, x)
				}
				// A valid press afterwards is still received.
				return append(a, rxSched(time.Second, rxEnc(EncoderConfig{Timestamp: 8000}).Press(nil, '2', 100*time.Millisecond))...)
			},
			want: "2 start, 2 end",
			check: func(t *testing.T, st ReceiverStats, evs []Event) {
				rxWantStat(t, "BadPayload", st.BadPayload, 7)
			},
		},
		{
			name: "R13_foreign_ssrc",
			in: func() []rxArrival {
				a := rxSched(0, rxEnc(EncoderConfig{}).Press(nil, '1', 100*time.Millisecond))
				f := rxSched(500*time.Millisecond, rxEnc(EncoderConfig{SSRC: 0xbad, Timestamp: 4000}).Press(nil, KeyHash, 300*time.Millisecond))
				return append(a, f...)
			},
			want: "1 start, 1 end",
			check: func(t *testing.T, st ReceiverStats, evs []Event) {
				rxWantStat(t, "ForeignSSRC", st.ForeignSSRC, 18)
			},
		},
		{
			name:  "R13_locked_ssrc_foreign_first",
			setup: func(r *Receiver) { r.LockSSRC(rxSSRC) },
			in: func() []rxArrival {
				f := rxSched(0, rxEnc(EncoderConfig{SSRC: 0xbad}).Press(nil, KeyHash, 300*time.Millisecond))
				return append(f, rxSched(time.Second, rxEnc(EncoderConfig{Timestamp: 8000}).Press(nil, '5', 100*time.Millisecond))...)
			},
			want: "5 start, 5 end",
			check: func(t *testing.T, st ReceiverStats, evs []Event) {
				rxWantStat(t, "ForeignSSRC", st.ForeignSSRC, 18)
			},
		},
		{
			name: "R13_foreign_ssrc_interleaved",
			in: func() []rxArrival {
				a := rxSched(0, rxEnc(EncoderConfig{}).Press(nil, '4', 200*time.Millisecond))
				f := rxSched(time.Millisecond, rxEnc(EncoderConfig{SSRC: 0xbad, Timestamp: 0}).Press(nil, KeyHash, 200*time.Millisecond))
				var out []rxArrival
				for i := range a {
					out = append(out, a[i])
					if i < len(f) {
						out = append(out, f[i])
					}
				}
				return out
			},
			want: "4 start, 4 end",
			check: func(t *testing.T, st ReceiverStats, evs []Event) {
				rxWantStat(t, "ForeignSSRC", st.ForeignSSRC, 13)
				rxWantDuration(t, evs, 1, 200*time.Millisecond)
			},
		},
		{
			name: "R15_relay_changes_timestamp_mid_press",
			in: func() []rxArrival {
				a := hash(EncoderConfig{Timestamp: 5000}, 400*time.Millisecond)
				for i := 8; i < len(a); i++ {
					a[i].h.Timestamp += 123456
				}
				return a
			},
			want: "# start, # end",
			check: func(t *testing.T, st ReceiverStats, evs []Event) {
				rxWantDuration(t, evs, 1, 400*time.Millisecond)
			},
		},
		{
			name: "R15_relay_changes_timestamp_backwards_and_sequence",
			in: func() []rxArrival {
				a := hash(EncoderConfig{Timestamp: 900000}, 400*time.Millisecond)
				for i := 8; i < len(a); i++ {
					a[i].h.Timestamp -= 500000
					a[i].h.SequenceNumber += 30000
				}
				return a
			},
			want: "# start, # end",
			check: func(t *testing.T, st ReceiverStats, evs []Event) {
				rxWantDuration(t, evs, 1, 400*time.Millisecond)
			},
		},
		{
			name: "R15_relay_changes_timestamp_and_end_lost",
			in: func() []rxArrival {
				a := rxWithout(hash(EncoderConfig{Timestamp: 5000}, 400*time.Millisecond), rxIsEnd)
				for i := 3; i < len(a); i++ {
					a[i].h.Timestamp += 777
				}
				return a
			},
			tick: true,
			want: "# start, # end",
		},
		{
			name: "sequence_number_wrap",
			in:   func() []rxArrival { return hash(EncoderConfig{Sequence: 65530}, 300*time.Millisecond) },
			want: "# start, # end",
		},
		{
			name: "timestamp_wrap_between_presses",
			in: func() []rxArrival {
				e := rxEnc(EncoderConfig{Timestamp: 0xffffff00})
				a := rxSched(0, e.Press(nil, KeyHash, 100*time.Millisecond))
				e.Skip(200 * time.Millisecond)
				return append(a, rxSched(300*time.Millisecond, e.Press(nil, KeyHash, 100*time.Millisecond))...)
			},
			want: "# start, # end, # start, # end",
		},
		{
			name: "duplicated_packets",
			in: func() []rxArrival {
				var out []rxArrival
				for _, a := range hash(EncoderConfig{}, 200*time.Millisecond) {
					b := a
					b.at += time.Millisecond
					out = append(out, a, b)
				}
				return out
			},
			want: "# start, # end",
			check: func(t *testing.T, st ReceiverStats, evs []Event) {
				rxWantStat(t, "Duplicate", st.Duplicate, 10+5)
				rxWantDuration(t, evs, 1, 200*time.Millisecond)
			},
		},
		{
			name: "reordered_updates",
			in: func() []rxArrival {
				a := hash(EncoderConfig{}, 200*time.Millisecond)
				for i := 1; i+1 < len(a)-3; i += 2 {
					a[i], a[i+1] = a[i+1], a[i]
				}
				// The first E packet overtakes the last update.
				n := len(a) - 3
				a[n-1], a[n] = a[n], a[n-1]
				return a
			},
			want: "# start, # end",
			check: func(t *testing.T, st ReceiverStats, evs []Event) {
				rxWantDuration(t, evs, 1, 200*time.Millisecond)
			},
		},
		{
			name: "first_packets_lost",
			in: func() []rxArrival {
				return rxWithout(hash(EncoderConfig{}, 200*time.Millisecond), func(i int, _ rxArrival) bool { return i < 4 })
			},
			want: "# start, # end",
			check: func(t *testing.T, st ReceiverStats, evs []Event) {
				if evs[0].Start != 80*time.Millisecond {
					t.Errorf("Start %v, want the first rxArrival 80ms", evs[0].Start)
				}
			},
		},
		{
			name: "only_an_end_packet",
			in:   func() []rxArrival { return []rxArrival{rxPkt(0, 1, 0, 11, true, 800)} },
			want: "# start, # end",
			check: func(t *testing.T, st ReceiverStats, evs []Event) {
				rxWantDuration(t, evs, 1, 100*time.Millisecond)
			},
		},
		{
			name: "two_keys_back_to_back",
			in: func() []rxArrival {
				e := rxEnc(EncoderConfig{})
				a := rxSched(0, e.Press(nil, '1', 100*time.Millisecond))
				e.Skip(50 * time.Millisecond)
				return append(a, rxSched(150*time.Millisecond, e.Press(nil, KeyHash, 100*time.Millisecond))...)
			},
			want: "1 start, 1 end, # start, # end",
		},
		{
			name: "key_change_with_end_lost",
			in: func() []rxArrival {
				e := rxEnc(EncoderConfig{})
				a := rxWithout(rxSched(0, e.Press(nil, '1', 100*time.Millisecond)), rxIsEnd)
				e.Skip(50 * time.Millisecond)
				return append(a, rxSched(150*time.Millisecond, e.Press(nil, KeyHash, 100*time.Millisecond))...)
			},
			want: "1 start, 1 end, # start, # end",
		},
		{
			name: "nil_header",
			in:   func() []rxArrival { return nil },
			setup: func(r *Receiver) {
				r.Packet(nil, 0, nil, []byte{11, 0x8a, 0, 0xff})
			},
			check: func(t *testing.T, st ReceiverStats, evs []Event) {
				rxWantStat(t, "BadPayload", st.BadPayload, 1)
			},
		},
	}
}

func TestReceiverRFC4733Rows(t *testing.T) {
	for _, tc := range receiverCases() {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			if cfg.PayloadType == 0 {
				cfg.PayloadType = rxPT
			}
			r := NewReceiver(cfg)
			if tc.setup != nil {
				tc.setup(r)
			}
			in := tc.in()
			evs := rxFeed(r, nil, in)
			if tc.tick {
				timeout := cfg.Timeout
				if timeout == 0 {
					timeout = DefaultTimeout
				}
				last := in[len(in)-1].at
				n := len(evs)
				evs = r.Tick(evs, last+timeout-time.Nanosecond)
				if len(evs) != n {
					t.Fatalf("timed out early: %v", evs[n:])
				}
				evs = r.Tick(evs, last+timeout)
			}
			if got := rxDescribe(evs); got != tc.want {
				t.Fatalf("reports %q, want %q\n%v\nstats %+v", got, tc.want, evs, r.Stats())
			}
			st := r.Stats()
			rxCheckInvariants(t, evs, st)
			if tc.check != nil {
				tc.check(t, st, evs)
			}
			// Nothing is left open: Flush and later ticks add nothing.
			if more := r.Tick(r.Flush(nil), 1<<40); len(more) != 0 {
				t.Fatalf("reports after the end: %v", more)
			}
		})
	}
}

// TestReceiverStartWhenMinDurationReached checks that the start report comes
// with the first packet whose duration reaches MinDuration, before any E.
func TestReceiverStartWhenMinDurationReached(t *testing.T) {
	for _, rate := range []uint32{8000, 16000, 48000} {
		t.Run(fmt.Sprint(rate), func(t *testing.T) {
			r := NewReceiver(ReceiverConfig{PayloadType: rxPT, ClockRate: rate})
			in := rxSched(0, rxEnc(EncoderConfig{ClockRate: rate, Interval: 10 * time.Millisecond}).Press(nil, KeyHash, 100*time.Millisecond))
			for i := range in {
				evs := r.Packet(nil, in[i].at, &in[i].h, in[i].raw)
				d := time.Duration(binary.BigEndian.Uint16(in[i].raw[2:])) * time.Second / time.Duration(rate)
				switch {
				case d < 40*time.Millisecond && len(evs) != 0:
					t.Fatalf("packet %d (%v): early report %v", i, d, evs)
				case d == 40*time.Millisecond && rxDescribe(evs) != "# start":
					t.Fatalf("packet %d (%v): %q, want the start report", i, d, rxDescribe(evs))
				}
			}
		})
	}
}

// TestReceiverLockSSRCMidPress: after LockSSRC names another stream, the
// press open on the old one ends by timeout.
func TestReceiverLockSSRCMidPress(t *testing.T) {
	r := NewReceiver(ReceiverConfig{PayloadType: rxPT})
	in := rxSched(0, rxEnc(EncoderConfig{}).Press(nil, KeyHash, 400*time.Millisecond))
	evs := rxFeed(r, nil, in[:6])
	r.LockSSRC(0x2222)
	if s, ok := r.SSRC(); !ok || s != 0x2222 {
		t.Fatalf("SSRC() = %#x, %v", s, ok)
	}
	evs = rxFeed(r, evs, in[6:])
	evs = r.Tick(evs, time.Second)
	if got := rxDescribe(evs); got != "# start, # end" {
		t.Fatalf("reports %q", got)
	}
	rxCheckInvariants(t, evs, r.Stats())
}

// pcapUDP is one UDP payload read from a capture, at its capture time
// relative to the first packet.
type pcapUDP struct {
	at      time.Duration
	payload []byte
}

// readPcapUDP reads the IPv4/UDP payloads of a classic pcap file with
// Ethernet (1) or Linux cooked v1 (113) link type. It is the least reader the
// replay tests need, not a general one: no pcapng, no IPv6, no fragments.
func readPcapUDP(b []byte) ([]pcapUDP, error) {
	if len(b) < 24 {
		return nil, errors.New("pcap: short file header")
	}
	var bo binary.ByteOrder
	nanos := false
	switch binary.LittleEndian.Uint32(b) {
	case 0xa1b2c3d4:
		bo = binary.LittleEndian
	case 0xa1b23c4d:
		bo, nanos = binary.LittleEndian, true
	case 0xd4c3b2a1:
		bo = binary.BigEndian
	case 0x4d3cb2a1:
		bo, nanos = binary.BigEndian, true
	default:
		return nil, fmt.Errorf("pcap: unknown magic % x", b[:4])
	}
	link := bo.Uint32(b[20:24])
	var out []pcapUDP
	var first time.Duration
	for off := 24; off < len(b); {
		if len(b)-off < 16 {
			return nil, errors.New("pcap: short record header")
		}
		sec, frac, incl := bo.Uint32(b[off:]), bo.Uint32(b[off+4:]), int(bo.Uint32(b[off+8:]))
		off += 16
		if incl > len(b)-off {
			return nil, errors.New("pcap: short record")
		}
		frame := b[off : off+incl]
		off += incl
		at := time.Duration(sec) * time.Second
		if nanos {
			at += time.Duration(frac)
		} else {
			at += time.Duration(frac) * time.Microsecond
		}
		if len(out) == 0 {
			first = at
		}
		var ethertype uint16
		switch link {
		case 1: // Ethernet, with at most one VLAN tag
			if len(frame) < 14 {
				continue
			}
			ethertype, frame = binary.BigEndian.Uint16(frame[12:]), frame[14:]
			if ethertype == 0x8100 && len(frame) >= 4 {
				ethertype, frame = binary.BigEndian.Uint16(frame[2:]), frame[4:]
			}
		case 113: // Linux cooked capture v1
			if len(frame) < 16 {
				continue
			}
			ethertype, frame = binary.BigEndian.Uint16(frame[14:]), frame[16:]
		default:
			return nil, fmt.Errorf("pcap: link type %d not supported", link)
		}
		if ethertype != 0x0800 || len(frame) < 20 || frame[0]>>4 != 4 {
			continue
		}
		ihl := int(frame[0]&0x0f) * 4
		total := int(binary.BigEndian.Uint16(frame[2:]))
		if frame[9] != 17 || ihl < 20 || total > len(frame) || total < ihl+8 || binary.BigEndian.Uint16(frame[6:])&0x3fff != 0 {
			continue // not UDP, truncated or a fragment
		}
		udp := frame[ihl:total]
		ulen := int(binary.BigEndian.Uint16(udp[4:]))
		if ulen < 8 || ulen > len(udp) {
			continue
		}
		out = append(out, pcapUDP{at: at - first, payload: udp[8:ulen]})
	}
	return out, nil
}

// sippCapture reads one of SIPp's RFC 4733 captures, skipping (or failing,
// with HASHCALL_REQUIRE_PEERS=1) when Debian's sip-tester is not installed.
func sippCapture(t *testing.T, name string) []pcapUDP {
	t.Helper()
	path := "/usr/share/sip-tester/" + name
	b, err := os.ReadFile(path)
	if err != nil {
		msg := fmt.Sprintf("%s not readable (%v): install the Debian package sip-tester", path, err)
		if os.Getenv("HASHCALL_REQUIRE_PEERS") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	pkts, err := readPcapUDP(b)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return pkts
}

// TestReceiverSIPpCaptures is row R1 on the real capture, and the same
// for SIPp's other DTMF captures: each is exactly one press of its key.
func TestReceiverSIPpCaptures(t *testing.T) {
	files := []struct {
		file string
		key  Key
	}{
		{"dtmf_2833_pound.pcap", KeyHash},
		{"dtmf_2833_star.pcap", '*'},
	}
	for d := '0'; d <= '9'; d++ {
		files = append(files, struct {
			file string
			key  Key
		}{fmt.Sprintf("dtmf_2833_%c.pcap", d), Key(d)})
	}
	for _, f := range files {
		name := f.file
		if f.key == KeyHash {
			name = "R1_three_end_packets_same_seq_" + name
		}
		t.Run(name, func(t *testing.T) {
			pkts := sippCapture(t, f.file)
			r := NewReceiver(ReceiverConfig{PayloadType: 101})
			var evs []Event
			for _, p := range pkts {
				var rp rtp.Packet
				if err := rp.Unmarshal(p.payload); err != nil {
					t.Fatalf("rtp at %v: %v", p.at, err)
				}
				evs = r.Packet(evs, p.at, &rp.Header, rp.Payload)
			}
			evs = r.Tick(evs, pkts[len(pkts)-1].at+time.Minute)
			want := f.key.String() + " start, " + f.key.String() + " end"
			if got := rxDescribe(evs); got != want {
				t.Fatalf("reports %q, want %q (stats %+v)", got, want, r.Stats())
			}
			st := r.Stats()
			rxCheckInvariants(t, evs, st)
			if st.Packets != uint64(len(pkts)) || st.Duplicate != 2 || st.NoEnd != 0 {
				t.Errorf("stats %+v", st)
			}
			if f.key == KeyHash {
				if len(pkts) != 10 {
					t.Errorf("%d packets in the capture, want 10", len(pkts))
				}
				// 2240 units at 8000 Hz.
				rxWantDuration(t, evs, 1, 280*time.Millisecond)
				t.Logf("%s: %v; stats %+v", f.file, evs, st)
			}
		})
	}
}

func TestReadPcapUDPLinkTypes(t *testing.T) {
	udp := func(payload []byte) []byte {
		ip := make([]byte, 20+8+len(payload))
		ip[0], ip[9] = 0x45, 17
		binary.BigEndian.PutUint16(ip[2:], uint16(len(ip)))
		binary.BigEndian.PutUint16(ip[24:], uint16(8+len(payload)))
		copy(ip[28:], payload)
		return ip
	}
	build := func(link uint32, hdr []byte) []byte {
		b := make([]byte, 24)
		binary.LittleEndian.PutUint32(b, 0xa1b2c3d4)
		binary.LittleEndian.PutUint32(b[20:], link)
		for i, us := range []uint32{0, 20000} {
			frame := append(append([]byte{}, hdr...), udp([]byte{byte(i), 0xaa})...)
			rec := make([]byte, 16)
			binary.LittleEndian.PutUint32(rec[4:], us)
			binary.LittleEndian.PutUint32(rec[8:], uint32(len(frame)))
			b = append(append(b, rec...), frame...)
		}
		return b
	}
	eth := make([]byte, 14)
	eth[12] = 0x08
	sll := make([]byte, 16)
	sll[14] = 0x08
	for _, tc := range []struct {
		name string
		link uint32
		hdr  []byte
	}{{"ethernet", 1, eth}, {"sll", 113, sll}} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := readPcapUDP(build(tc.link, tc.hdr))
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 2 || got[1].at != 20*time.Millisecond || got[1].payload[0] != 1 || len(got[1].payload) != 2 {
				t.Fatalf("got %+v", got)
			}
		})
	}
	if _, err := readPcapUDP(build(228, nil)); err == nil {
		t.Fatal("link type 228 accepted")
	}
}

// benchStream is a long telephone-event stream: presses of every key with
// 20 ms updates and pauses, as header/payload pairs.
type benchStream struct {
	in   []rxArrival
	span uint32        // timestamp units the stream covers
	dur  time.Duration // time it covers
}

func newBenchStream() benchStream {
	e := rxEnc(EncoderConfig{})
	var in []rxArrival
	at := time.Duration(0)
	for i := 0; i < 32; i++ {
		ts := e.Timestamp()
		in = append(in, rxSched(at, e.Press(nil, Key("0123456789*#ABCD"[i%16]), 120*time.Millisecond))...)
		e.Skip(80 * time.Millisecond)
		at += time.Duration(e.Timestamp()-ts) * time.Second / 8000
	}
	return benchStream{in: in, span: e.Timestamp() - in[0].h.Timestamp, dur: at}
}

// play feeds packet i of the endless repetition of the stream.
func (s *benchStream) play(r *Receiver, dst []Event, i int) []Event {
	n := len(s.in)
	cycle := i / n
	a := &s.in[i%n]
	h := a.h
	h.Timestamp += uint32(cycle) * s.span
	return r.Packet(dst, a.at+time.Duration(cycle)*s.dur, &h, a.raw)
}

func TestReceiverPacketAllocs(t *testing.T) {
	s := newBenchStream()
	r := NewReceiver(ReceiverConfig{PayloadType: rxPT})
	dst := make([]Event, 0, 8)
	i := 0
	starts := 0
	allocs := testing.AllocsPerRun(2000, func() {
		dst = s.play(r, dst[:0], i)
		for _, e := range dst {
			if !e.Ended {
				starts++
			}
		}
		i++
	})
	if allocs != 0 {
		t.Fatalf("Receiver.Packet allocates %v times per packet", allocs)
	}
	if starts < 2001/len(s.in)*32 {
		t.Fatalf("only %d presses in %d packets", starts, i)
	}
	// Bad and foreign packets allocate nothing either.
	bad := []byte{1, 2, 3}
	h := rtp.Header{PayloadType: rxPT, SSRC: 0xbad}
	allocs = testing.AllocsPerRun(100, func() {
		dst = r.Packet(dst[:0], 0, &h, bad)
		dst = r.Packet(dst[:0], 0, &h, s.in[0].raw)
	})
	if allocs != 0 {
		t.Fatalf("dropped packets allocate %v times", allocs)
	}
}

func BenchmarkReceiverPacket(b *testing.B) {
	s := newBenchStream()
	r := NewReceiver(ReceiverConfig{PayloadType: rxPT})
	dst := make([]Event, 0, 8)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		dst = s.play(r, dst[:0], i)
	}
	b.StopTimer()
	if b.N > 10*len(s.in) && r.Stats().Accepted == 0 {
		b.Fatal("no presses")
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/packet")
}

// FuzzReceiver feeds arbitrary packet sequences built from the fuzz input:
// the receiver must not panic, must report an end only after its start, with
// End >= Start, and never more ends than starts.
func FuzzReceiver(f *testing.F) {
	seed := func(pkts []Packet) []byte {
		var b []byte
		for _, p := range pkts {
			var flags byte
			if p.Payload.End {
				flags |= 1
			}
			if p.Header.Marker {
				flags |= 2
			}
			b = append(b, flags, p.Payload.Event, 20, 1, 0, 0, 0, p.Payload.Volume,
				byte(p.Payload.Duration>>8), byte(p.Payload.Duration))
		}
		return b
	}
	f.Add(seed(rxEnc(EncoderConfig{EndSameSequence: true}).Press(nil, KeyHash, 280*time.Millisecond)))
	f.Add(seed(rxEnc(EncoderConfig{}).Press(nil, '1', 60*time.Millisecond)))
	noEnd := rxEnc(EncoderConfig{}).Press(nil, KeyHash, 200*time.Millisecond)
	f.Add(seed(noEnd[:len(noEnd)-3]))
	f.Add([]byte{0, 11, 20, 1, 0, 0xff, 0xff, 10, 0xff, 0xff, 1, 11, 20, 1, 0, 0x10, 0, 10, 0x01, 0x40})
	f.Fuzz(func(t *testing.T, b []byte) {
		r := NewReceiver(ReceiverConfig{PayloadType: rxPT, Timeout: 200 * time.Millisecond})
		var now time.Duration
		seq := uint16(0)
		ts := uint32(0)
		var evs []Event
		for ; len(b) >= 10; b = b[10:] {
			flags := b[0]
			now += time.Duration(b[2]) * time.Millisecond
			seq += binary.BigEndian.Uint16(b[3:])
			ts += uint32(int32(int16(binary.BigEndian.Uint16(b[5:]))) * 8)
			if flags&0x10 != 0 {
				evs = r.Tick(evs, now)
				continue
			}
			raw := []byte{b[1] % 20, b[7] & 0x3f, b[8], b[9], 0, 0, 0, 0}
			if flags&1 != 0 {
				raw[1] |= 0x80
			}
			h := rtp.Header{Version: 2, Marker: flags&2 != 0, PayloadType: rxPT, SequenceNumber: seq, Timestamp: ts, SSRC: rxSSRC}
			if flags&4 != 0 {
				h.SSRC = 0xbad
			}
			if flags&8 != 0 {
				h.PayloadType = 96
			}
			n := 4
			if flags&0x20 != 0 {
				n = int(b[7] % 9)
			}
			evs = r.Packet(evs, now, &h, raw[:n])
		}
		evs = r.Flush(evs)
		st := r.Stats()
		rxCheckInvariants(t, evs, st)
		ends := 0
		for _, e := range evs {
			if e.Ended {
				ends++
			}
			if e.Duration() < 0 {
				t.Fatalf("negative duration %v", e)
			}
		}
		if uint64(ends) != st.Accepted {
			t.Fatalf("%d ends for %d presses after Flush", ends, st.Accepted)
		}
	})
}
