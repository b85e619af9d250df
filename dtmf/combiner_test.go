package dtmf

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

const ms = time.Millisecond

func start(k Key, s Source, at time.Duration) Event {
	return Event{Key: k, Source: s, Start: at}
}

func end(k Key, s Source, from, to time.Duration) Event {
	return Event{Key: k, Source: s, Ended: true, Start: from, End: to}
}

func info(k Key, at time.Duration) Event { return end(k, SourceSIPInfo, at, at) }

func describeCombined(evs []Event) string {
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
				start('#', in, 1000*ms), start('#', rfc, 1010*ms),
				end('#', in, 1000*ms, 1120*ms), end('#', rfc, 1010*ms, 1130*ms),
			},
			want: "# inband start, # inband end",
		},
		{
			name: "R14_rfc4733_first",
			in: []Event{
				start('#', rfc, 1000*ms), start('#', in, 1040*ms),
				end('#', rfc, 1000*ms, 1120*ms), end('#', in, 1040*ms, 1100*ms),
			},
			want: "# rfc4733 start, # rfc4733 end",
		},
		{
			name: "R14_rfc4733_ended_before_inband_start_within_window",
			in: []Event{
				start('#', rfc, 1000*ms), end('#', rfc, 1000*ms, 1080*ms),
				start('#', in, 1250*ms), end('#', in, 1250*ms, 1330*ms),
			},
			want: "# rfc4733 start, # rfc4733 end",
		},
		{
			name: "R14_inband_start_earlier_than_rfc4733_start",
			// The in-band report arrives second but its tone began before
			// the RFC 4733 press's first packet arrived.
			in: []Event{
				start('#', rfc, 1100*ms),
				start('#', in, 950*ms), end('#', in, 950*ms, 1200*ms),
				end('#', rfc, 1100*ms, 1350*ms),
			},
			want: "# rfc4733 start, # rfc4733 end",
		},
		{
			name: "far_apart_two_presses",
			in: []Event{
				start('#', in, 1000*ms), end('#', in, 1000*ms, 1100*ms),
				start('#', rfc, 1500*ms), end('#', rfc, 1500*ms, 1600*ms),
			},
			want: "# inband start, # inband end, # rfc4733 start, # rfc4733 end",
		},
		{
			name:   "window_option",
			window: 50 * ms,
			in: []Event{
				start('#', in, 1000*ms), end('#', in, 1000*ms, 1100*ms),
				start('#', rfc, 1200*ms), end('#', rfc, 1200*ms, 1300*ms),
			},
			want: "# inband start, # inband end, # rfc4733 start, # rfc4733 end",
		},
		{
			name: "different_keys_both",
			in: []Event{
				start('#', in, 1000*ms), start('9', rfc, 1010*ms),
				end('#', in, 1000*ms, 1100*ms), end('9', rfc, 1010*ms, 1100*ms),
			},
			want: "# inband start, 9 rfc4733 start, # inband end, 9 rfc4733 end",
		},
		{
			name: "same_source_never_merged",
			in: []Event{
				start('#', in, 1000*ms), end('#', in, 1000*ms, 1060*ms),
				start('#', in, 1110*ms), end('#', in, 1110*ms, 1170*ms),
			},
			want: "# inband start, # inband end, # inband start, # inband end",
		},
		{
			name: "two_quick_presses_on_both_sources",
			in: []Event{
				start('#', in, 1000*ms), start('#', rfc, 1010*ms),
				end('#', in, 1000*ms, 1060*ms), end('#', rfc, 1010*ms, 1070*ms),
				start('#', in, 1110*ms), start('#', rfc, 1120*ms),
				end('#', in, 1110*ms, 1170*ms), end('#', rfc, 1120*ms, 1180*ms),
			},
			want: "# inband start, # inband end, # inband start, # inband end",
		},
		{
			name: "sip_info_alone",
			in:   []Event{info('#', 1000*ms)},
			want: "# sip_info start, # sip_info end",
		},
		{
			name: "sip_info_after_rfc4733",
			in: []Event{
				start('#', rfc, 1000*ms), end('#', rfc, 1000*ms, 1100*ms), info('#', 1150*ms),
			},
			want: "# rfc4733 start, # rfc4733 end",
		},
		{
			name: "sip_info_first_then_inband_and_rfc4733",
			in: []Event{
				info('#', 990*ms),
				start('#', in, 1000*ms), start('#', rfc, 1020*ms),
				end('#', in, 1000*ms, 1100*ms), end('#', rfc, 1020*ms, 1110*ms),
			},
			want: "# sip_info start, # sip_info end",
		},
		{
			name: "sip_info_start_and_end_reports",
			in: []Event{
				{Key: '#', Source: SourceSIPInfo, Start: 500 * ms},
				{Key: '#', Source: SourceSIPInfo, Ended: true, Start: 500 * ms, End: 500 * ms},
			},
			want: "# sip_info start, # sip_info end",
		},
		{
			name: "sip_info_far_from_inband",
			in: []Event{
				start('#', in, 1000*ms), end('#', in, 1000*ms, 1100*ms), info('#', 2000*ms),
			},
			want: "# inband start, # inband end, # sip_info start, # sip_info end",
		},
		{
			name: "held_key_other_source_starts_late",
			in: []Event{
				start('#', in, 1000*ms), start('#', rfc, 3000*ms),
				end('#', rfc, 3000*ms, 4000*ms), end('#', in, 1000*ms, 4000*ms),
			},
			want: "# inband start, # inband end",
		},
		{
			name: "restart_without_end_closes_open_press",
			in: []Event{
				start('1', in, 1000*ms), start('1', in, 2000*ms), end('1', in, 2000*ms, 2100*ms),
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
			if got := describeCombined(out); got != tc.want {
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
		out = c.Push(out, start(k, SourceInband, at))
		out = c.Push(out, start(k, SourceRFC4733, at+20*ms))
		out = c.Push(out, end(k, SourceRFC4733, at+20*ms, at+120*ms))
		out = c.Push(out, end(k, SourceInband, at, at+100*ms))
	}
	if len(out) != 200 {
		t.Fatalf("%d reports, want 200", len(out))
	}
	for i := 0; i < len(out); i += 2 {
		if out[i].Ended || !out[i+1].Ended || out[i].Source != SourceInband || out[i].Key != out[i+1].Key {
			t.Fatalf("reports %d,%d: %v %v", i, i+1, out[i], out[i+1])
		}
	}
	c.Reset()
	if got := describeCombined(c.Push(nil, start('#', SourceRFC4733, 99*time.Second+50*ms))); got != "# rfc4733 start" {
		t.Fatalf("after Reset: %s", got)
	}
}

func TestCombinerAllocs(t *testing.T) {
	var c Combiner
	dst := make([]Event, 0, 4)
	i := 0
	allocs := testing.AllocsPerRun(200, func() {
		at := time.Duration(i) * time.Second
		dst = c.Push(dst[:0], start('#', SourceInband, at))
		dst = c.Push(dst[:0], start('#', SourceRFC4733, at+10*ms))
		dst = c.Push(dst[:0], end('#', SourceInband, at, at+100*ms))
		dst = c.Push(dst[:0], end('#', SourceRFC4733, at+10*ms, at+110*ms))
		dst = c.Push(dst[:0], info('#', at+120*ms))
		i++
	})
	if allocs != 0 {
		t.Fatalf("Push allocates %v times", allocs)
	}
}

// TestCombinerReceiverEndToEnd feeds the Receiver's reports of an encoded
// press and in-band reports of the same press through one Combiner.
func TestCombinerReceiverEndToEnd(t *testing.T) {
	r := NewReceiver(ReceiverConfig{PayloadType: testPT})
	in := sched(time.Second, enc(EncoderConfig{}).Press(nil, KeyHash, 200*time.Millisecond))
	var c Combiner
	var out, evs []Event
	inband := []Event{start('#', SourceInband, time.Second+5*ms), end('#', SourceInband, time.Second+5*ms, time.Second+205*ms)}
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
	if got := describeCombined(out); got != "# rfc4733 start, # rfc4733 end" {
		t.Fatalf("got %s", got)
	}
}
