package verify

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/hashcall/hashcall/dtmf"
	"github.com/hashcall/hashcall/media"
	"github.com/hashcall/hashcall/sip"
)

// The fakes below drive Verifier.Run without a network, inside a
// testing/synctest bubble: every time (timers, time.Now, the media clock)
// is the bubble's, so a call of minutes runs in microseconds and each
// time in the result is exact.

// press is a key the fake far end presses, at a time after the answer.
type press struct {
	at     time.Duration
	key    dtmf.Key
	source dtmf.Source // 0: rfc4733
}

// fakeMedia is a Media: PlayAudio takes as long as its audio lasts, keys come
// from a script, and far-end audio (a voicemail greeting) is fed to the
// session's AudioSink in 20 ms frames from the answer.
type fakeMedia struct {
	cfg     media.SessionConfig
	epoch   time.Time
	presses chan dtmf.Event

	script    []press
	audio     []int16       // far-end audio from the answer
	playErr   error         // what Play returns at once, if set
	closeAt   time.Duration // Presses closes this long after the answer (0: never)
	answerErr error         // what StartAnswer returns

	mu         sync.Mutex
	started    bool
	answeredAt time.Duration
	stopCur    chan struct{} // closed by Stop: the prompt playing
	timers     []*time.Timer
	closed     bool
	wg         sync.WaitGroup
	quit       chan struct{}
}

func newFakeMedia(cfg media.SessionConfig) *fakeMedia {
	return &fakeMedia{cfg: cfg, epoch: time.Now(), presses: make(chan dtmf.Event, 16), quit: make(chan struct{})}
}

func (m *fakeMedia) Now() time.Duration { return time.Since(m.epoch) }

func (m *fakeMedia) Offer() ([]byte, error) { return []byte("v=0 offer\r\n"), nil }

func (m *fakeMedia) StartAnswer([]byte) error {
	if m.answerErr != nil {
		return m.answerErr
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.started, m.answeredAt = true, m.Now()
	for _, p := range m.script {
		src := p.source
		if src == 0 {
			src = dtmf.SourceRFC4733
		}
		e := dtmf.Event{Key: p.key, Source: src, Start: m.answeredAt + p.at}
		m.timers = append(m.timers, time.AfterFunc(p.at, func() { m.deliver(e) }))
	}
	if m.closeAt > 0 {
		m.timers = append(m.timers, time.AfterFunc(m.closeAt, m.closePresses))
	}
	if len(m.audio) > 0 && m.cfg.Audio != nil {
		m.wg.Add(1)
		go m.feed()
	}
	return nil
}

// feed plays the far end's audio into the sink, a frame per 20 ms.
func (m *fakeMedia) feed() {
	defer m.wg.Done()
	t := time.NewTicker(media.FrameDuration)
	defer t.Stop()
	for a := m.audio; len(a) > 0; {
		select {
		case <-t.C:
		case <-m.quit:
			return
		}
		n := min(len(a), media.FrameSamples)
		m.cfg.Audio.Audio(a[:n])
		a = a[n:]
	}
}

func (m *fakeMedia) deliver(e dtmf.Event) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.closed {
		m.presses <- e
	}
}

func (m *fakeMedia) closePresses() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.closed {
		m.closed = true
		close(m.presses)
	}
}

func (m *fakeMedia) AnswerOffer([]byte) ([]byte, error) { return nil, errors.New("no re-offers") }
func (m *fakeMedia) CurrentSDP() []byte                 { return nil }
func (m *fakeMedia) Info(dtmf.Key, time.Duration)       {}

func (m *fakeMedia) Negotiated() media.Negotiated {
	return media.Negotiated{Codec: media.PCMU, HaveEvents: true}
}

func (m *fakeMedia) AnsweredAt() time.Duration {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.answeredAt
}

func (m *fakeMedia) Presses() <-chan dtmf.Event { return m.presses }

func (m *fakeMedia) PlayAudio(ctx context.Context, a *media.Audio) error {
	if m.playErr != nil {
		return m.playErr
	}
	if a == nil || a.Len() == 0 {
		return nil
	}
	stop := make(chan struct{})
	m.mu.Lock()
	m.stopCur = stop
	m.mu.Unlock()
	t := time.NewTimer(a.Duration())
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-stop:
		return media.ErrStopped
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (m *fakeMedia) Stop() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.stopCur != nil {
		close(m.stopCur)
		m.stopCur = nil
	}
}

func (m *fakeMedia) Stats() media.SessionStats { return media.SessionStats{} }

func (m *fakeMedia) Close() error {
	m.mu.Lock()
	for _, t := range m.timers {
		t.Stop()
	}
	m.mu.Unlock()
	m.closePresses()
	close(m.quit)
	m.wg.Wait()
	return nil
}

// fakeDialer is a Dialer: it reports progress, rings, then answers (or
// fails) and starts the media with the answer, as sip.UA.Dial does.
type fakeDialer struct {
	progress  []sip.Progress
	ring      time.Duration
	fail      *sip.DialError // the final response instead of an answer
	diversion sip.Diversion  // of the 200
	hangupAt  time.Duration  // the far end hangs up this long after the answer (0: never)

	offer    []byte
	cause    error // the dial context's cause, if it ended while ringing
	call     *fakeCall
	hangupAT *time.Timer
}

func (d *fakeDialer) Dial(ctx context.Context, number string, opts sip.DialOptions) (Call, error) {
	d.offer = opts.Offer
	var div sip.Diversion
	for _, p := range d.progress {
		if p.Diversion.Diverted {
			div = p.Diversion
		}
		opts.OnProgress(p)
	}
	t := time.NewTimer(d.ring)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
		d.cause = context.Cause(ctx)
		return nil, &sip.DialError{Kind: sip.KindCancelled, Code: 487, Reason: "Request Terminated", Diversion: div, Err: d.cause}
	}
	if d.fail != nil {
		return nil, d.fail
	}
	if err := opts.Media.StartAnswer([]byte("v=0 answer\r\n")); err != nil {
		return nil, &sip.DialError{Kind: sip.KindTransport, Err: err}
	}
	d.call = &fakeCall{done: make(chan struct{}), diversion: d.diversion}
	if d.hangupAt > 0 {
		d.hangupAT = time.AfterFunc(d.hangupAt, func() { d.call.end(true) })
	}
	return d.call, nil
}

// fakeCall is a Call.
type fakeCall struct {
	diversion sip.Diversion

	mu     sync.Mutex
	done   chan struct{}
	ended  bool
	remote bool // the far end hung up
	byUs   bool // Hangup ended it
}

func (c *fakeCall) end(remote bool) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ended {
		return false
	}
	c.ended, c.remote = true, remote
	close(c.done)
	return true
}

func (c *fakeCall) Done() <-chan struct{} { return c.done }

func (c *fakeCall) Hangup(context.Context) error {
	if c.end(false) {
		c.mu.Lock()
		c.byUs = true
		c.mu.Unlock()
	}
	return nil
}

func (c *fakeCall) Diversion() sip.Diversion { return c.diversion }
func (c *fakeCall) Status() (int, string)    { return 200, "OK" }
func (c *fakeCall) State() sip.DialogState   { return sip.DialogState{CallID: "fake-call"} }
