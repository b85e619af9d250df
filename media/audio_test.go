package media

import (
	"bytes"
	"context"
	"testing"
	"time"
	"unsafe"
)

// TestAudioShared: two calls playing one Audio send from the same encoded
// bytes (one copy per law in the process, not one per call), and what
// they send is the prompt, frame by frame.
func TestAudioShared(t *testing.T) {
	prompt := dtmfTone('5', 200*time.Millisecond)
	a := NewAudio(prompt)
	prompt[0] = 12345 // NewAudio copied the samples
	for _, codec := range []Codec{PCMU, PCMA} {
		t.Run(codec.Name, func(t *testing.T) {
			var jobs [2][]byte
			var socks [2]*testSock
			for i := range jobs {
				s, clk, far := fakeSession(t, Negotiated{Codec: codec, RecvCodecs: []Codec{codec}})
				socks[i] = &testSock{c: far}
				readRTP(t, far) // slot 0, silence
				waitArmed(t, clk, 1)
				done := make(chan error, 1)
				go func() { done <- s.PlayAudio(context.Background(), a) }()
				eventually(t, "the playback to be queued", func() bool {
					s.mu.Lock()
					defer s.mu.Unlock()
					if s.job != nil {
						jobs[i] = s.job.audio
					}
					return s.job != nil
				})
				want := codec.encode(nil, dtmfTone('5', 200*time.Millisecond))
				for f := range 10 {
					clk.Advance(FrameDuration)
					_, p := readRTP(t, far)
					if !bytes.Equal(p, want[f*FrameSamples:(f+1)*FrameSamples]) {
						t.Fatalf("call %d frame %d differs from the prompt", i, f)
					}
					waitArmed(t, clk, 1)
				}
				if err := <-done; err != nil {
					t.Fatal(err)
				}
			}
			if unsafe.SliceData(jobs[0]) != unsafe.SliceData(jobs[1]) || unsafe.SliceData(jobs[0]) != unsafe.SliceData(a.encoded(codec)) {
				t.Error("the two calls played separate copies of the prompt")
			}
		})
	}
	if unsafe.SliceData(a.encoded(PCMU)) == unsafe.SliceData(a.encoded(PCMA)) {
		t.Error("µ-law and A-law share one encoding")
	}
	if a.Len() != 1600 || a.Duration() != 200*time.Millisecond {
		t.Errorf("Len %d Duration %v", a.Len(), a.Duration())
	}
}

// TestAudioEncodeOnce: concurrent first uses of a law encode it once.
func TestAudioEncodeOnce(t *testing.T) {
	a := NewAudio(dtmfTone('1', time.Second))
	got := make(chan *byte, 8)
	for range cap(got) {
		go func() { got <- unsafe.SliceData(a.encoded(PCMA)) }()
	}
	first := <-got
	for range cap(got) - 1 {
		if p := <-got; p != first {
			t.Fatal("encoded twice")
		}
	}
	if allocs := testing.AllocsPerRun(100, func() { a.encoded(PCMA) }); allocs != 0 {
		t.Errorf("%v allocations per use after the first", allocs)
	}
}
