package media

import (
	"context"
	"slices"
	"sync"
	"time"
)

// Audio is a prompt ready to send: 8 kHz 16-bit linear samples, encoded in
// each G.711 law the first time a call needs that law and then shared,
// read-only, by every [Session] that plays it ([Session.PlayAudio]). A
// deployment holds one Audio per prompt and locale, so the encoded prompt
// exists once per codec in the process rather than once per call.
//
// It is safe for concurrent use.
type Audio struct {
	samples    []int16
	ulaw, alaw encoding
}

// encoding is one law's encoded form, made once.
type encoding struct {
	once sync.Once
	data []byte
}

// NewAudio returns the Audio of samples (8 kHz 16-bit linear), which it
// copies: later changes to samples do not change it.
func NewAudio(samples []int16) *Audio {
	return &Audio{samples: slices.Clone(samples)}
}

// Len is the number of samples.
func (a *Audio) Len() int { return len(a.samples) }

// Duration is how long the audio plays.
func (a *Audio) Duration() time.Duration {
	return time.Duration(len(a.samples)) * time.Second / SampleRate
}

// encoded returns a's samples in c's law (c must be supported), padded
// with silence to a whole number of frames; the slice is shared and must
// not be written to.
func (a *Audio) encoded(c Codec) []byte {
	e := &a.ulaw
	if c.law() == 'a' {
		e = &a.alaw
	}
	e.once.Do(func() {
		e.data = c.encode(make([]byte, 0, len(a.samples)+FrameSamples), a.samples)
	})
	return e.data
}

// PlayAudio sends a in the negotiated codec, a frame per 20 ms slot, the
// first with the marker bit, from a's shared encoding (the first call that
// needs a law encodes it). It waits for an earlier Play or SendDTMF to
// finish, and returns as Play does.
func (s *Session) PlayAudio(ctx context.Context, a *Audio) error {
	j, err := s.audioJob(a)
	if j == nil {
		return err
	}
	return s.run(ctx, j)
}

// audioJob is the job that plays a in the negotiated codec; nil with
// ErrNotStarted before Start, nil with nil for nothing to play.
func (s *Session) audioJob(a *Audio) (*job, error) {
	s.mu.Lock()
	started, codec := s.started, s.neg.Codec
	s.mu.Unlock()
	if !started {
		return nil, ErrNotStarted
	}
	if a == nil || a.Len() == 0 {
		return nil, nil
	}
	return &job{audio: a.encoded(codec), pt: codec.PayloadType}, nil
}

// StartAudio is PlayAudio without waiting: it starts a and returns a
// channel that receives what PlayAudio would have returned, once. While
// nothing else plays it needs no goroutine (a call waiting on a prompt is
// a select, not a parked goroutine of its own); otherwise it waits for the
// earlier playback in one.
func (s *Session) StartAudio(ctx context.Context, a *Audio) <-chan error {
	res := make(chan error, 1)
	j, err := s.audioJob(a)
	if j == nil {
		res <- err
		return res
	}
	select {
	case s.sem <- struct{}{}:
	default:
		go func() { res <- s.run(ctx, j) }()
		return res
	}
	j.result = res
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.install(j); err != nil {
		<-s.sem
		res <- err
		return res
	}
	// ctx ending stops the playback at the next frame, as in run.
	stopA := context.AfterFunc(ctx, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		j.stop, j.ctxErr = true, ctx.Err()
	})
	// The session ending (Close, or Listen's context) ends it at once.
	stopB := context.AfterFunc(s.ctx, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.finish(j, ErrClosed)
	})
	j.stopCtx = func() { stopA(); stopB() }
	return res
}
