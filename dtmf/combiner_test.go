package dtmf

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

const cbUnit = time.Millisecond

func cbStart(k Key, s Source, at time.Duration) Event {
	return Event{Key: k, Source: s, Start: at}
}

func cbEnd(k Key, s Source, from, to time.Duration) Event {
	return Event{Key: k, Source: s, Ended: true, Start: from, End: to}
}

func cbInfo(k Key, at time.Duration) Event { return cbEnd(k, SourceSIPInfo, at, at) }

func cbDescribe(evs []Event) string {
	parts := make([]string, 0, len(evs))
	for _, e := range evs {
		s := "start"
		if e.Ended {
			s = "end"
		}
		parts = append(parts, fmt.Sprintf("%s %s %s", e.Key, e.Source, s))
	}
	return strings.Join(parts, ", ")
}

func TestCombiner(t *testing.T) {
	const (
		in  = SourceInband
		rfc = SourceRFC4733
	)
	tests := []struct {
		name   string
		window time.Duration
		in     []Event
		want   string
	}{
		{
			name: "R14_inband_first",
			in: []Event{
				cbStart('#', in, 1000*cbUnit), cbStart('#', rfc, 1010*cbUnit),
				cbEnd('#', in, 1000*cbUnit, 1120*cbUnit), cbEnd('#', rfc, 1010*cbUnit, 1130*cbUnit),
			},
			want: "# inband start, # inband end",
		},
		{
			name: "R14_rfc4733_first",
			in: []Event{
				cbStart('#', rfc, 1000*cbUnit), cbStart('#', in, 1040*cbUnit),
				cbEnd('#', rfc, 1000*cbUnit, 1120*cbUnit), cbEnd('#', in, 1040*cbUnit, 1100*cbUnit),
			},
			want: "# rfc4733 start, # rfc4733 end",
		},
		{
			name: "R14_rfc4733_ended_before_inband_start_within_window",
			in: []Event{
				cbStart('#', rfc, 1000*cbUnit), cbEnd('#', rfc, 1000*cbUnit, 1080*cbUnit),
				cbStart('#', in, 1250*cbUnit), cbEnd('#', in, 1250*cbUnit, 1330*cbUnit),
			},
			want: "# rfc4733 start, # rfc4733 end",
		},
		{
			name: "R14_inband_start_earlier_than_rfc4733_start",
			// The in-band report arrives second but its tone began before
			// the RFC 4733 press's first packet arrived.
			in: []Event{
				cbStart('#', rfc, 1100*cbUnit),
				cbStart('#', in, 950*cbUnit), cbEnd('#', in, 950*cbUnit, 1200*cbUnit),
				cbEnd('#', rfc, 1100*cbUnit, 1350*cbUnit),
			},
			want: "# rfc4733 start, # rfc4733 end",
		},
		{
			name: "far_apart_two_presses",
			in: []Event{
				cbStart('#', in, 1000*cbUnit), cbEnd('#', in, 1000*cbUnit, 1100*cbUnit),
				cbStart('#', rfc, 1500*cbUnit), cbEnd('#', rfc, 1500*cbUnit, 1600*cbUnit),
			},
			want: "# inband start, # inband end, # rfc4733 start, # rfc4733 end",
		},
		{
			name:   "window_option",
			window: 50 * cbUnit,
			in: []Event{
				cbStart('#', in, 1000*cbUnit), cbEnd('#', in, 1000*cbUnit, 1100*cbUnit),
				cbStart('#', rfc, 1200*cbUnit), cbEnd('#', rfc, 1200*cbUnit, 1300*cbUnit),
			},
			want: "# inband start, # inband end, # rfc4733 start, # rfc4733 end",
		},
		{
			name: "different_keys_both",
			in: []Event{
				cbStart('#', in, 1000*cbUnit), cbStart('9', rfc, 1010*cbUnit),
				cbEnd('#', in, 1000*cbUnit, 1100*cbUnit), cbEnd('9', rfc, 1010*cbUnit, 1100*cbUnit),
			},
			want: "# inband start, 9 rfc4733 start, # inband end, 9 rfc4733 end",
		},
		{
			name: "same_source_never_merged",
			in: []Event{
				cbStart('#', in, 1000*cbUnit), cbEnd('#', in, 1000*cbUnit, 1060*cbUnit),
				cbStart('#', in, 1110*cbUnit), cbEnd('#', in, 1110*cbUnit, 1170*cbUnit),
			},
			want: "# inband start, # inband end, # inband start, # inband end",
		},
		{
			name: "two_quick_presses_on_both_sources",
			in: []Event{
				cbStart('#', in, 1000*cbUnit), cbStart('#', rfc, 1010*cbUnit),
				cbEnd('#', in, 1000*cbUnit, 1060*cbUnit), cbEnd('#', rfc, 1010*cbUnit, 1070*cbUnit),
				cbStart('#', in, 1110*cbUnit), cbStart('#', rfc, 1120*cbUnit),
				cbEnd('#', in, 1110*cbUnit, 1170*cbUnit), cbEnd('#', rfc, 1120*cbUnit, 1180*cbUnit),
			},
			// The first press is heard in-band first; from then on the call
			// carries telephone-events and in-band presses are leaks.
			want: "# inband start, # inband end, # rfc4733 start, # rfc4733 end",
		},
		{
			name: "leak_behind_events_split_by_dropout",
			// Asterisk's testsuite capture: the 8 as events, and its leaked
			// tone 110 ms after the events' end, broken in two by a 17 ms
			// drop-out (the second part 15 dB lower).
			in: []Event{
				cbStart('8', rfc, 1000*cbUnit), cbEnd('8', rfc, 1000*cbUnit, 1200*cbUnit),
				cbStart('8', in, 1310*cbUnit), cbEnd('8', in, 1310*cbUnit, 1414*cbUnit),
				cbStart('8', in, 1431*cbUnit), cbEnd('8', in, 1431*cbUnit, 1478*cbUnit),
			},
			want: "8 rfc4733 start, 8 rfc4733 end",
		},
		{
			name: "leak_far_behind_events",
			// The leaked tone starts after the events' press ended, further
			// behind than the window.
			in: []Event{
				cbStart('5', rfc, 1000*cbUnit), cbEnd('5', rfc, 1000*cbUnit, 1100*cbUnit),
				cbStart('5', in, 1600*cbUnit), cbEnd('5', in, 1600*cbUnit, 1700*cbUnit),
				cbStart('5', rfc, 2000*cbUnit), cbEnd('5', rfc, 2000*cbUnit, 2100*cbUnit),
				cbStart('5', in, 2600*cbUnit), cbEnd('5', in, 2600*cbUnit, 2700*cbUnit),
			},
			want: "5 rfc4733 start, 5 rfc4733 end, 5 rfc4733 start, 5 rfc4733 end",
		},
		{
			name: "inband_open_when_events_begin_gets_its_end",
			in: []Event{
				cbStart('3', in, 1000*cbUnit), cbStart('3', rfc, 1040*cbUnit),
				cbEnd('3', rfc, 1040*cbUnit, 1140*cbUnit), cbEnd('3', in, 1000*cbUnit, 1120*cbUnit),
			},
			want: "3 inband start, 3 inband end",
		},
		{
			name: "inband_restart_after_events_closes_open_press",
			in: []Event{
				cbStart('3', in, 1000*cbUnit), cbStart('3', rfc, 1040*cbUnit),
				cbStart('3', in, 1300*cbUnit),
			},
			want: "3 inband start, 3 inband end",
		},
		{
			name: "inband_only_far_end_keeps_every_press",
			in: []Event{
				cbStart('1', in, 1000*cbUnit), cbEnd('1', in, 1000*cbUnit, 1040*cbUnit),
				cbStart('1', in, 1080*cbUnit), cbEnd('1', in, 1080*cbUnit, 1120*cbUnit),
				cbStart('2', in, 1160*cbUnit), cbEnd('2', in, 1160*cbUnit, 1200*cbUnit),
			},
			want: "1 inband start, 1 inband end, 1 inband start, 1 inband end, 2 inband start, 2 inband end",
		},
		{
			name: "sip_info_unaffected_by_events",
			in: []Event{
				cbStart('4', rfc, 1000*cbUnit), cbEnd('4', rfc, 1000*cbUnit, 1100*cbUnit),
				cbInfo('6', 2000*cbUnit),
			},
			want: "4 rfc4733 start, 4 rfc4733 end, 6 sip_info start, 6 sip_info end",
		},
		{
			name: "sip_info_alone",
			in:   []Event{cbInfo('#', 1000*cbUnit)},
			want: "# sip_info start, # sip_info end",
		},
		{
			name: "sip_info_after_rfc4733",
			in: []Event{
				cbStart('#', rfc, 1000*cbUnit), cbEnd('#', rfc, 1000*cbUnit, 1100*cbUnit), cbInfo('#', 1150*cbUnit),
			},
			want: "# rfc4733 start, # rfc4733 end",
		},
		{
			name: "sip_info_first_then_inband_and_rfc4733",
			in: []Event{
				cbInfo('#', 990*cbUnit),
				cbStart('#', in, 1000*cbUnit), cbStart('#', rfc, 1020*cbUnit),
				cbEnd('#', in, 1000*cbUnit, 1100*cbUnit), cbEnd('#', rfc, 1020*cbUnit, 1110*cbUnit),
			},
			want: "# sip_info start, # sip_info end",
		},
		{
			name: "sip_info_start_and_end_reports",
			in: []Event{
				{Key: '#', Source: SourceSIPInfo, Start: 500 * cbUnit},
				{Key: '#', Source: SourceSIPInfo, Ended: true, Start: 500 * cbUnit, End: 500 * cbUnit},
			},
			want: "# sip_info start, # sip_info end",
		},
		{
			name: "sip_info_far_from_inband",
			in: []Event{
				cbStart('#', in, 1000*cbUnit), cbEnd('#', in, 1000*cbUnit, 1100*cbUnit), cbInfo('#', 2000*cbUnit),
			},
			want: "# inband start, # inband end, # sip_info start, # sip_info end",
		},
		{
			name: "held_key_other_source_starts_late",
			in: []Event{
				cbStart('#', in, 1000*cbUnit), cbStart('#', rfc, 3000*cbUnit),
				cbEnd('#', rfc, 3000*cbUnit, 4000*cbUnit), cbEnd('#', in, 1000*cbUnit, 4000*cbUnit),
			},
			want: "# inband start, # inband end",
		},
		{
			name: "restart_without_end_closes_open_press",
			in: []Event{
				cbStart('1', in, 1000*cbUnit), cbStart('1', in, 2000*cbUnit), cbEnd('1', in, 2000*cbUnit, 2100*cbUnit),
			},
			want: "1 inband start, 1 inband end, 1 inband start, 1 inband end",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := Combiner{Window: tc.window}
			var out []Event
			for _, e := range tc.in {
				out = c.Push(out, e)
			}
			if got := cbDescribe(out); got != tc.want {
				t.Fatalf("got  %s\nwant %s", got, tc.want)
			}
			for i, e := range out {
				if e.Ended && e.End < e.Start {
					t.Errorf("report %d ends before it starts: %v", i, e)
				}
			}
		})
	}
}

// TestCombinerManyPresses runs more presses than the Combiner remembers.
func TestCombinerManyPresses(t *testing.T) {
	var c Combiner
	var out []Event
	for i := 0; i < 100; i++ {
		at := time.Duration(i) * time.Second
		k := Key("0123456789*#ABCD"[i%16])
		out = c.Push(out, cbStart(k, SourceInband, at))
		out = c.Push(out, cbStart(k, SourceRFC4733, at+20*cbUnit))
		out = c.Push(out, cbEnd(k, SourceRFC4733, at+20*cbUnit, at+120*cbUnit))
		out = c.Push(out, cbEnd(k, SourceInband, at, at+100*cbUnit))
	}
	if len(out) != 200 {
		t.Fatalf("%d reports, want 200", len(out))
	}
	for i := 0; i < len(out); i += 2 {
		// The first press is heard in-band first; the call then carries
		// telephone-events, so every later one is reported by them.
		src := SourceRFC4733
		if i == 0 {
			src = SourceInband
		}
		if out[i].Ended || !out[i+1].Ended || out[i].Source != src || out[i].Key != out[i+1].Key {
			t.Fatalf("reports %d,%d: %v %v", i, i+1, out[i], out[i+1])
		}
	}
	c.Reset()
	if got := cbDescribe(c.Push(nil, cbStart('#', SourceRFC4733, 99*time.Second+50*cbUnit))); got != "# rfc4733 start" {
		t.Fatalf("after Reset: %s", got)
	}
}

func TestCombinerAllocs(t *testing.T) {
	var c Combiner
	dst := make([]Event, 0, 4)
	i := 0
	allocs := testing.AllocsPerRun(200, func() {
		at := time.Duration(i) * time.Second
		dst = c.Push(dst[:0], cbStart('#', SourceInband, at))
		dst = c.Push(dst[:0], cbStart('#', SourceRFC4733, at+10*cbUnit))
		dst = c.Push(dst[:0], cbEnd('#', SourceInband, at, at+100*cbUnit))
		dst = c.Push(dst[:0], cbEnd('#', SourceRFC4733, at+10*cbUnit, at+110*cbUnit))
		dst = c.Push(dst[:0], cbInfo('#', at+120*cbUnit))
		i++
	})
	if allocs != 0 {
		t.Fatalf("Push allocates %v times", allocs)
	}
}

// TestCombinerReceiverEndToEnd feeds the Receiver's reports of an encoded
// press and in-band reports of the same press through one Combiner.
func TestCombinerReceiverEndToEnd(t *testing.T) {
	r := NewReceiver(ReceiverConfig{PayloadType: rxPT})
	in := rxSched(time.Second, rxEnc(EncoderConfig{}).Press(nil, KeyHash, 200*time.Millisecond))
	var c Combiner
	var out, evs []Event
	inband := []Event{cbStart('#', SourceInband, time.Second+5*cbUnit), cbEnd('#', SourceInband, time.Second+5*cbUnit, time.Second+205*cbUnit)}
	for i := range in {
		evs = r.Packet(evs[:0], in[i].at, &in[i].h, in[i].raw)
		for _, e := range evs {
			out = c.Push(out, e)
		}
		if i == 3 {
			out = c.Push(out, inband[0])
		}
		if i == 10 {
			out = c.Push(out, inband[1])
		}
	}
	if got := cbDescribe(out); got != "# rfc4733 start, # rfc4733 end" {
		t.Fatalf("got %s", got)
	}
}

// TestCombinerSuppressed counts the in-band presses dropped once the call
// carries telephone-events, and Reset forgets that it did.
func TestCombinerSuppressed(t *testing.T) {
	var c Combiner
	c.Push(nil, cbStart('9', SourceRFC4733, 1000*cbUnit))
	c.Push(nil, cbEnd('9', SourceRFC4733, 1000*cbUnit, 1100*cbUnit))
	c.Push(nil, cbStart('9', SourceInband, 1400*cbUnit))
	c.Push(nil, cbEnd('9', SourceInband, 1400*cbUnit, 1500*cbUnit))
	c.Push(nil, cbStart('9', SourceInband, 1600*cbUnit))
	if got := c.Suppressed(); got != 2 {
		t.Fatalf("Suppressed %d, want 2", got)
	}
	c.Reset()
	if got := cbDescribe(c.Push(nil, cbStart('9', SourceInband, 2000*cbUnit))); got != "9 inband start" || c.Suppressed() != 0 {
		t.Fatalf("after Reset: %q, suppressed %d", got, c.Suppressed())
	}
}

// After ForgetEvents in-band presses are forwarded again, until the next
// RFC 4733 report.
func TestCombinerForgetEvents(t *testing.T) {
	var c Combiner
	c.Push(nil, cbStart('1', SourceRFC4733, 1000*cbUnit))
	c.Push(nil, cbEnd('1', SourceRFC4733, 1000*cbUnit, 1100*cbUnit))
	if got := cbDescribe(c.Push(nil, cbStart('2', SourceInband, 2000*cbUnit))); got != "" {
		t.Fatalf("before ForgetEvents: %q", got)
	}
	c.ForgetEvents()
	if got := cbDescribe(c.Push(nil, cbStart('3', SourceInband, 3000*cbUnit))); got != "3 inband start" {
		t.Fatalf("after ForgetEvents: %q", got)
	}
	c.Push(nil, cbEnd('3', SourceInband, 3000*cbUnit, 3100*cbUnit))
	c.Push(nil, cbStart('4', SourceRFC4733, 4000*cbUnit))
	if got := cbDescribe(c.Push(nil, cbStart('5', SourceInband, 5000*cbUnit))); got != "" {
		t.Fatalf("after events again: %q", got)
	}
}
