package dtmf

// Detector is the streaming in-band DTMF detector. (Work in progress: the
// signatures are fixed, the body is being written.)
type Detector struct{}

// NewDetector returns a detector for 8 kHz audio.
func NewDetector() *Detector { return &Detector{} }

// Feed processes 16-bit linear samples and appends any reports to dst.
func (d *Detector) Feed(dst []Event, samples []int16) []Event { return dst }

// FeedUlaw processes G.711 µ-law bytes and appends any reports to dst.
func (d *Detector) FeedUlaw(dst []Event, b []byte) []Event { return dst }

// FeedAlaw processes G.711 A-law bytes and appends any reports to dst.
func (d *Detector) FeedAlaw(dst []Event, b []byte) []Event { return dst }

// Flush ends the stream: a press still active is reported as ended.
func (d *Detector) Flush(dst []Event) []Event { return dst }

// Reset returns the detector to its initial state.
func (d *Detector) Reset() {}
