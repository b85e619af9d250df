package dtmf_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/hashcall/hashcall/dtmf"
	. "github.com/hashcall/hashcall/dtmf/dtmftest"
)

// Example synthesises a # the way a phone sends it in-band, feeds it to the
// detector in 20 ms RTP frames of µ-law, and prints what it heard.
func Example() {
	audio := Concat(Silence(100*ms), DTMF('#', -10, 100*ms), Silence(100*ms))
	ulaw := EncodeUlaw(audio)

	d := dtmf.NewDetector()
	var events []dtmf.Event
	for i := 0; i < len(ulaw); i += 160 {
		events = d.FeedUlaw(events[:0], ulaw[i:min(i+160, len(ulaw))])
		for _, e := range events {
			if !e.Ended {
				fmt.Println(e.Key, "accepted:", e.Key.Accepted())
			} else {
				fmt.Printf("ended after about %d ms\n", e.Duration().Round(10*time.Millisecond).Milliseconds())
			}
		}
	}
	// Output:
	// # accepted: true
	// ended after about 100 ms
}

// benchAudio is ten seconds of what a call carries: presses, noise, network
// tones and silence.
func benchAudio() []int16 {
	rng := NewRand(7)
	return Concat(
		AddNoise(rng, Sequence('#', 5, 100*ms, 200*ms, -10), -30),
		WhiteNoise(rng, Samples(3*time.Second), -20),
		Ringback(3*time.Second),
		Silence(time.Second),
		Sequence('5', 3, 80*ms, 100*ms, -15),
		WhiteNoise(rng, Samples(time.Second), -35),
	)
}

func BenchmarkDetector(b *testing.B) {
	audio := benchAudio()
	ulaw, alaw := EncodeUlaw(audio), EncodeAlaw(audio)
	run := func(b *testing.B, feed func(d *dtmf.Detector, ev []dtmf.Event, i int) []dtmf.Event) {
		d := dtmf.NewDetector()
		ev := make([]dtmf.Event, 0, 8)
		b.ReportAllocs()
		b.SetBytes(int64(len(audio)))
		for b.Loop() {
			for i := 0; i+160 <= len(audio); i += 160 {
				ev = feed(d, ev[:0], i)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(audio)), "ns/sample")
	}
	b.Run("ulaw", func(b *testing.B) {
		run(b, func(d *dtmf.Detector, ev []dtmf.Event, i int) []dtmf.Event { return d.FeedUlaw(ev, ulaw[i:i+160]) })
	})
	b.Run("alaw", func(b *testing.B) {
		run(b, func(d *dtmf.Detector, ev []dtmf.Event, i int) []dtmf.Event { return d.FeedAlaw(ev, alaw[i:i+160]) })
	})
	b.Run("linear", func(b *testing.B) {
		run(b, func(d *dtmf.Detector, ev []dtmf.Event, i int) []dtmf.Event { return d.Feed(ev, audio[i:i+160]) })
	})
}

// TestDetectorAllocs: the sample path allocates nothing per frame.
func TestDetectorAllocs(t *testing.T) {
	audio := benchAudio()
	ulaw, alaw := EncodeUlaw(audio), EncodeAlaw(audio)
	d := dtmf.NewDetector()
	ev := make([]dtmf.Event, 0, 8)
	allocs := testing.AllocsPerRun(5, func() {
		for i := 0; i+160 <= len(audio); i += 160 {
			ev = d.FeedUlaw(ev[:0], ulaw[i:i+160])
			ev = d.FeedAlaw(ev[:0], alaw[i:i+160])
			ev = d.Feed(ev[:0], audio[i:i+160])
		}
		ev = d.Flush(ev[:0])
	})
	if allocs != 0 {
		t.Fatalf("%.1f allocations per run of %d frames, want 0", allocs, len(audio)/160)
	}
}

// TestDetectorChunking: the reports do not depend on how the audio is cut.
func TestDetectorChunking(t *testing.T) {
	audio := benchAudio()
	ref := collect(dtmf.NewDetector(), audio, len(audio))
	if len(ref) == 0 {
		t.Fatal("no presses in the reference audio")
	}
	for _, chunk := range []int{1, 7, 80, 101, 102, 103, 160, 240, 1000} {
		got := collect(dtmf.NewDetector(), audio, chunk)
		if fmt.Sprint(got) != fmt.Sprint(ref) {
			t.Errorf("chunk %d: %v\nwant %v", chunk, got, ref)
		}
	}
}

func collect(d *dtmf.Detector, audio []int16, chunk int) []dtmf.Event {
	var ev []dtmf.Event
	for i := 0; i < len(audio); i += chunk {
		ev = d.Feed(ev, audio[i:min(i+chunk, len(audio))])
	}
	return d.Flush(ev)
}

// TestDetectorReports checks what a press report carries: key, source,
// bounds in samples and time, level and twist.
func TestDetectorReports(t *testing.T) {
	audio := Concat(Silence(200*ms), DTMFTwist('#', -12, -15, 120*ms), Silence(200*ms))
	ev := collect(dtmf.NewDetector(), audio, 160)
	if len(ev) != 2 || ev[0].Ended || !ev[1].Ended {
		t.Fatalf("want a start and an end report, got %v", ev)
	}
	e := ev[1]
	near := func(name string, got, want, tol float64) {
		if got < want-tol || got > want+tol {
			t.Errorf("%s = %.2f, want %.2f±%.2f", name, got, want, tol)
		}
	}
	if e.Key != '#' || e.Source != dtmf.SourceInband {
		t.Errorf("key %v source %v", e.Key, e.Source)
	}
	near("start sample", float64(e.StartSample), 1600, 17)
	near("end sample", float64(e.EndSample), 1600+960, 17)
	near("duration ms", float64(e.Duration())/1e6, 120, 3)
	near("level dBm0", e.LevelDBm0, -13.5, 0.5)
	near("twist dB", e.TwistDB, -3, 0.5)
	if e.Start != time.Duration(e.StartSample)*time.Second/8000 {
		t.Errorf("Start %v does not match StartSample %d", e.Start, e.StartSample)
	}
	// The press is decided early, not at its end.
	d := dtmf.NewDetector()
	var first []dtmf.Event
	fed := 0
	for i := 0; len(first) == 0 && i < len(audio); i += 160 {
		first = d.Feed(first, audio[i:min(i+160, len(audio))])
		fed = min(i+160, len(audio))
	}
	if len(first) != 1 || first[0].Ended {
		t.Fatalf("first report %v", first)
	}
	if lat := fed - 1600; lat > 400+160 {
		t.Errorf("press decided %d samples after the tone began, want within 50 ms + one frame", lat)
	}
}

// TestDetectorAllKeys: all sixteen keys are recognised as themselves.
func TestDetectorAllKeys(t *testing.T) {
	for _, k := range "0123456789*#ABCD" {
		key := dtmf.Key(k)
		ev := collect(dtmf.NewDetector(), Concat(Silence(100*ms), DTMF(key, -10, 80*ms), Silence(100*ms)), 160)
		if len(ev) != 2 || ev[0].Key != key {
			t.Errorf("key %c: got %v", k, ev)
		}
		if key.Accepted() != (k == '#') {
			t.Errorf("key %c: Accepted() = %v", k, key.Accepted())
		}
	}
}

// TestDetectorDCOffset: a recording with a DC offset (some sound cards and
// converters) still yields its presses; the offset alone yields none.
func TestDetectorDCOffset(t *testing.T) {
	for _, dc := range []int16{0, 1500, -3000} {
		audio := Concat(Silence(100*ms), DTMF('#', -15, 100*ms), Silence(100*ms))
		for i := range audio {
			audio[i] += dc
		}
		ev := collect(dtmf.NewDetector(), audio, 160)
		if len(ev) != 2 || ev[0].Key != '#' {
			t.Errorf("DC %d: got %v", dc, ev)
		}
		flat := make([]int16, 8000)
		for i := range flat {
			flat[i] = dc
		}
		if ev := collect(dtmf.NewDetector(), flat, 160); len(ev) != 0 {
			t.Errorf("DC %d alone: %v", dc, ev)
		}
	}
}

// TestDetectorDCOffsetTiming: a DC offset neither fills the gaps between
// presses nor stretches a short tone past the minimum.
func TestDetectorDCOffsetTiming(t *testing.T) {
	const dc = 3000
	add := func(s []int16) []int16 {
		for i := range s {
			s[i] += dc
		}
		return s
	}
	two := add(Concat(Silence(100*ms), DTMF('#', -15, 100*ms), Silence(40*ms), DTMF('#', -15, 100*ms), Silence(100*ms)))
	if got, _ := presses(t, codecs[2].run, two); got != "##" {
		t.Errorf("two presses 40 ms apart on DC %d: got %q", dc, got)
	}
	for off := range 102 {
		short := add(Concat(Silence(100*ms), Zeros(off), DTMF('#', -15, 23*ms), Silence(100*ms)))
		if got, _ := presses(t, codecs[2].run, short); got != "" {
			t.Fatalf("23 ms on DC %d at offset %d: got %q", dc, off, got)
		}
	}
}
