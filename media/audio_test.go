package media

import (
	"bytes"
	"context"
	"errors"
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
				queue := watchJobs(s)
				go func() { done <- s.PlayAudio(context.Background(), a) }()
				jobs[i] = queued(t, queue, "the playback to be queued").audio
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

// TestStartAudio: StartAudio reports what PlayAudio would: nil at the
// end, ErrStopped after Stop, the context's error when it ends, ErrClosed
// when the session closes, and it waits for an earlier playback.
func TestStartAudio(t *testing.T) {
	a := NewAudio(dtmfTone('1', 100*time.Millisecond))
	t.Run("to the end", func(t *testing.T) {
		s, clk, _ := fakeSession(t, pcmuEvents)
		done := s.StartAudio(context.Background(), a)
		for range 6 {
			step(t, clk, FrameDuration)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if st := s.Stats(); st.Sent < 6 {
			t.Errorf("sent %d", st.Sent)
		}
	})
	t.Run("stopped", func(t *testing.T) {
		s, clk, _ := fakeSession(t, pcmuEvents)
		done := s.StartAudio(context.Background(), a)
		s.Stop()
		step(t, clk, FrameDuration)
		if err := <-done; !errors.Is(err, ErrStopped) {
			t.Fatal(err)
		}
	})
	t.Run("context", func(t *testing.T) {
		s, clk, _ := fakeSession(t, pcmuEvents)
		ctx, cancel := context.WithCancel(context.Background())
		done := s.StartAudio(ctx, NewAudio(dtmfTone('1', 10*time.Second)))
		cancel()
		// The stop lands from the context's own goroutine: step until the
		// pacer has seen it.
		var err error
		for err == nil {
			step(t, clk, FrameDuration)
			select {
			case err = <-done:
			default:
			}
		}
		if !errors.Is(err, context.Canceled) {
			t.Fatal(err)
		}
	})
	t.Run("closed", func(t *testing.T) {
		s, _, _ := fakeSession(t, pcmuEvents)
		done := s.StartAudio(context.Background(), a)
		s.Close()
		if err := <-done; !errors.Is(err, ErrClosed) {
			t.Fatal(err)
		}
	})
	t.Run("after another", func(t *testing.T) {
		s, clk, _ := fakeSession(t, pcmuEvents)
		first := s.StartAudio(context.Background(), a)
		second := s.StartAudio(context.Background(), a) // waits in a goroutine
		var errs []error
		for len(errs) < 2 {
			step(t, clk, FrameDuration)
			select {
			case err := <-first:
				errs = append(errs, err)
			case err := <-second:
				if len(errs) == 0 {
					t.Fatal("the second playback ended before the first")
				}
				errs = append(errs, err)
			default:
			}
		}
		if errs[0] != nil || errs[1] != nil {
			t.Fatal(errs)
		}
	})
	t.Run("not started", func(t *testing.T) {
		s := listen(t, SessionConfig{})
		if err := <-s.StartAudio(context.Background(), a); !errors.Is(err, ErrNotStarted) {
			t.Fatal(err)
		}
	})
}
