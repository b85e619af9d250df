package voicemail

import "time"

// EchoDelay is the longest echo path delay allowed for: what we sent this
// long ago may still come back.
const EchoDelay = 600 * time.Millisecond

// Sent is the loudness of a prompt we play, 20 ms frame by frame, to tell
// a Detector how loud its echo could be (see [Detector.Echo]).
type Sent struct {
	frames []float64 // mean square of each frame
}

// NewSent measures samples, the prompt as played (8 kHz).
func NewSent(samples []int16) *Sent {
	s := &Sent{frames: make([]float64, (len(samples)+frame-1)/frame)}
	for i := range s.frames {
		var e float64
		part := samples[i*frame : min(len(samples), (i+1)*frame)]
		for _, x := range part {
			e += float64(x) * float64(x)
		}
		s.frames[i] = e / frame
	}
	return s
}

// Level returns the mean square of the loudest frame sent in the EchoDelay
// up to at, the time since the prompt started; 0 before it and once it
// is EchoDelay over.
func (s *Sent) Level(at time.Duration) float64 {
	if s == nil || at < 0 {
		return 0
	}
	per := time.Second * frame / SampleRate
	hi := int(at / per)
	lo := int((at - EchoDelay) / per)
	if at < EchoDelay {
		lo = 0
	}
	var m float64
	for i := max(lo, 0); i <= hi && i < len(s.frames); i++ {
		m = max(m, s.frames[i])
	}
	return m
}
