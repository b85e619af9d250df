// Package verify runs one verification call: dial through the trunk, play
// the ask prompt once answered, and decide on the keys the callee presses.
// A # verifies once the first ask prompt has reached its "press the hash
// key" phrase (prompts.Set.AskPressAt) and Config.MinKeyDelay has passed
// since the answer; any other key plays the wrong-key prompt and keeps
// waiting; silence repeats the ask up to the configured number of attempts.
//
// The early-key guard: a key that starts before that point does not count
// (a voicemail greeting, an answering machine or a recording that plays a
// keypad tone as it answers, the published attack on "press a key" calls).
// It is listed in Result.EarlyKeys, the prompt goes on, and the callee must
// press again after the phrase; a far end that only ever plays # on answer
// gets no_key.
//
// A call forwarded to another phone (a 181, or a Diversion or History-Info
// header in a response: see sip.Diversion) is refused by default: CANCEL
// while it rings, BYE once answered, outcome Diverted; Config.OnDiversion
// DiversionFlag lets it go on and only reports it. An answering machine,
// recognised from the audio after the answer (package voicemail: a
// greeting that runs on, or the recorder's beep), is hung up on at once
// with outcome Voicemail.
//
// It is used by `hashcall call`, `hashcall demo` and the HTTP service.
//
// The flow runs over three small interfaces, so that it can be driven
// without a network: a Dialer places the call (UADialer: a *sip.UA) and
// returns a Call, a Media is the call's media session (*media.Session,
// whose sip.Media half the dialog drives through sip.DialOptions.Media),
// and a media.Clock is the time source. Its tests drive every path with a
// fake dialer and fake media inside a testing/synctest bubble, in
// milliseconds; the tests that call the simulated phone over 127.0.0.1 in
// real time are the integration layer and skip under -short, so
// `go test -short ./verify/` is the fast set.
package verify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashcall/hashcall/dtmf"
	"github.com/hashcall/hashcall/internal/redact"
	"github.com/hashcall/hashcall/media"
	"github.com/hashcall/hashcall/prompts"
	"github.com/hashcall/hashcall/sip"
	"github.com/hashcall/hashcall/voicemail"
)

// Outcome is how a verification call ended. The strings are the API's.
type Outcome string

// Outcomes.
const (
	Verified    Outcome = "verified"    // the callee pressed #
	WrongKey    Outcome = "wrong_key"   // only other keys were pressed
	NoKey       Outcome = "no_key"      // answered, but no key after every attempt
	HungUp      Outcome = "hung_up"     // the callee hung up before any key
	NoAnswer    Outcome = "no_answer"   // 408, or our ring timeout (then CANCEL)
	Busy        Outcome = "busy"        // 486, 600
	Declined    Outcome = "declined"    // 603
	Unreachable Outcome = "unreachable" // 404, 410, 484, 480, 604
	Failed      Outcome = "failed"      // auth failure, 403, other 4xx/5xx/6xx, transport or media errors
	Cancelled   Outcome = "cancelled"   // the requester cancelled, or shutdown
	Diverted    Outcome = "diverted"    // forwarded to another phone, refused (verify.on_diversion: refuse)
	Voicemail   Outcome = "voicemail"   // answered by a machine: its greeting or its beep was heard
	WrongCode   Outcome = "wrong_code"  // mode code: only wrong codes were keyed (or the code expired)
	// Interrupted: hashcall stopped during the call (a crash, or its node
	// lost its lease); not verified. Set at the next start or by another node.
	Interrupted Outcome = "interrupted"
)

// Outcomes lists every outcome.
func Outcomes() []Outcome {
	return []Outcome{Verified, WrongKey, NoKey, HungUp, NoAnswer, Busy, Declined, Unreachable, Failed, Cancelled, Diverted, Voicemail, WrongCode, Interrupted}
}

// KnownOutcome reports whether o is one of Outcomes.
func KnownOutcome(o Outcome) bool {
	return slices.Contains(Outcomes(), o)
}

// ErrCancelled is the cause to cancel a verification's context with when
// the requester asked for it (a shutdown uses its own cause; both give
// Cancelled).
var ErrCancelled = errors.New("verification cancelled")

// OutcomeOf maps a final SIP response code to an outcome.
func OutcomeOf(code int) Outcome {
	switch code {
	case 486, 600:
		return Busy
	case 603:
		return Declined
	case 404, 410, 484, 480, 604:
		return Unreachable
	case 408:
		return NoAnswer
	}
	return Failed
}

// Result is what a verification call came to.
type Result struct {
	Outcome    Outcome    `json:"outcome"`
	To         string     `json:"to"` // masked
	StartedAt  time.Time  `json:"started_at"`
	AnsweredAt *time.Time `json:"answered_at,omitempty"`
	KeyAt      *time.Time `json:"key_at,omitempty"` // when the deciding key was heard
	EndedAt    time.Time  `json:"ended_at"`
	SIPCode    int        `json:"sip_code"` // final response to the INVITE (200 when answered)
	SIPReason  string     `json:"sip_reason,omitempty"`
	Q850Cause  int        `json:"q850_cause,omitempty"`
	DTMFSource string     `json:"dtmf_source,omitempty"` // rfc4733, inband or sip_info
	Codec      string     `json:"codec,omitempty"`
	Keys       string     `json:"keys,omitempty"` // every key that counted, in order (the others are in EarlyKeys)
	Attempts   int        `json:"attempts,omitempty"`
	// SetupMS is from sending the INVITE to the 200.
	SetupMS float64 `json:"setup_ms,omitempty"`
	// HashToDecisionMS is from the start of the # (first tone sample or
	// first event packet, on the media clock) to the decision. The
	// decision comes once the # has lasted the minimum duration, usually
	// before the key is released.
	HashToDecisionMS float64 `json:"hash_to_decision_ms,omitempty"`
	// Diverted reports that the call was forwarded to another phone (a
	// 181, Diversion or History-Info), DiversionReasons the reasons the
	// responses gave ("unconditional", "user-busy", "no-answer", …).
	Diverted         bool     `json:"diverted"`
	DiversionReasons []string `json:"diversion_reasons,omitempty"`
	// VoicemailReason says how an answering machine was recognised for
	// outcome Voicemail: "greeting" or "beep".
	VoicemailReason string `json:"voicemail_reason,omitempty"`
	// RTPDropped counts received RTP packets dropped, by reason.
	RTPDropped map[string]uint64 `json:"rtp_dropped,omitempty"`
	// WrongCodes counts the wrong codes keyed (mode code).
	WrongCodes int `json:"wrong_codes,omitempty"`
	// EarlyKeys are the keys heard too early to count (the early-key
	// guard), in order; in mode code a digit shows as "digit".
	EarlyKeys []EarlyKey `json:"early_keys,omitempty"`
	Error     string     `json:"error,omitempty"`
}

// EarlyKey is a key that did not count because it came too early.
type EarlyKey struct {
	Key    string `json:"key"`
	Source string `json:"source"` // rfc4733, inband or sip_info
	// MS is when the key started, in milliseconds after the answer (an
	// in-band tone's start is estimated from the audio, and one that began
	// with the answer's first packet is at 0).
	MS     float64     `json:"ms_after_answer"`
	Reason EarlyReason `json:"reason"`
}

// EarlyReason says why a key was early. The strings are the API's.
type EarlyReason string

// Early reasons.
const (
	// EarlyMinKeyDelay: within Config.MinKeyDelay of the answer.
	EarlyMinKeyDelay EarlyReason = "min_key_delay"
	// EarlyBeforePhrase: before the first ask prompt reached its "press
	// the hash key" phrase.
	EarlyBeforePhrase EarlyReason = "before_press_phrase"
)

// DefaultMinKeyDelay is Config.MinKeyDelay's default (verify.min_key_delay).
const DefaultMinKeyDelay = 1500 * time.Millisecond

// Config is the verification behaviour.
type Config struct {
	AnswerTimeout   time.Duration // after the ask prompt ends; default 10 s
	Attempts        int           // ask prompts at most; default 3
	MaxCallDuration time.Duration // from the answer; default 3 min
	// MinKeyDelay: a key that starts sooner after the answer does not
	// count; 0 means DefaultMinKeyDelay, negative none (tests only).
	MinKeyDelay time.Duration
	// DigitTimeout ends a code being keyed (mode code) that gets no key for
	// this long as a wrong code; 0 means DefaultDigitTimeout.
	DigitTimeout time.Duration
	// OnDiversion is what a forwarded call comes to (verify.on_diversion):
	// DiversionRefuse (the default) hangs up with outcome Diverted, never
	// verified; DiversionFlag goes on and only sets Result.Diverted.
	OnDiversion DiversionPolicy
	// NoVoicemail turns answering-machine detection off
	// (verify.detect_voicemail: false): a greeting then ends as no_key.
	NoVoicemail bool
	// Voicemail tunes the answering-machine detector (zero: defaults).
	Voicemail voicemail.Config
	Media     media.SessionConfig
}

// early reports whether a key that started at start does not count, and
// why: the times are on the media clock; answer is the answer, ask the start
// of the first ask prompt (negative before it started), pressAt its press
// point.
func early(start, answer, ask, minDelay, pressAt time.Duration) (EarlyReason, bool) {
	switch {
	case start < answer+minDelay:
		return EarlyMinKeyDelay, true
	case ask < 0 || start < ask+pressAt:
		return EarlyBeforePhrase, true
	}
	return "", false
}

// DiversionPolicy says what a forwarded call comes to.
type DiversionPolicy string

// Diversion policies (verify.on_diversion).
const (
	// DiversionRefuse hangs up a forwarded call (CANCEL while it rings, BYE
	// once answered) with outcome Diverted: the # of whoever the call was
	// forwarded to must not approve the sign-in.
	DiversionRefuse DiversionPolicy = "refuse"
	// DiversionFlag lets the call go on and reports Result.Diverted.
	DiversionFlag DiversionPolicy = "flag"
)

// errDiverted cancels the dial of a call forwarded while it rang.
var errDiverted = errors.New("the call was forwarded")

// Stage is a step of a call's progress, for progress lines and the HTTP
// status.
type Stage string

// Stages.
const (
	StageDialling Stage = "dialling"
	StageRinging  Stage = "ringing"
	StageEarly    Stage = "early_media"
	StageAnswered Stage = "answered"
	StagePrompt   Stage = "prompt"
	StageKey      Stage = "key"
	StageOutcome  Stage = "outcome"
)

// Progress is one step of a call.
type Progress struct {
	Stage  Stage
	Detail string
	// Dialog, at StageAnswered, is what a BYE needs should this process
	// stop during the call (stored by the service, sent at the next start).
	Dialog *sip.DialogState
	// Cancel, at StageRinging and StageEarly, is what a CANCEL needs
	// should this process stop while the call rings.
	Cancel *sip.CancelState
}

// Request is one verification.
type Request struct {
	To      string // the number to call (digits, optional leading +)
	Prompts *prompts.Set
	// OnProgress, when set, sees each step. It must not block.
	OnProgress func(Progress)
	// Code, when set, makes the call mode code (number matching): the
	// callee keys the code, then #.
	Code *CodeRequest
}

// Verifier places verification calls through a SIP user agent.
type Verifier struct {
	UA     *sip.UA
	Config Config
	Logger *slog.Logger
	// Dialer places the calls instead of UA when set (tests drive the flow
	// with a made-up call).
	Dialer Dialer
	// Listen opens each call's media session; nil means media.Listen.
	Listen func(ctx context.Context, cfg media.SessionConfig) (Media, error)
	// Clock is the time source of the flow (timers, the result's times)
	// and, unless Config.Media.Clock is set, of the media; nil means the
	// real clock.
	Clock media.Clock

	audio promptAudio // the prompts, encoded once for every call
}

// Dialer places a call and waits for the answer, as sip.UA.Dial does
// (errors are *sip.DialError); UADialer adapts a *sip.UA.
type Dialer interface {
	Dial(ctx context.Context, number string, opts sip.DialOptions) (Call, error)
}

// Call is an answered call, as verify uses it (*sip.Call through UADialer).
type Call interface {
	// Done is closed when the call has ended, by either side.
	Done() <-chan struct{}
	// Hangup ends the call (BYE) unless it has ended.
	Hangup(ctx context.Context) error
	// Diversion is what the responses said about the call being forwarded.
	Diversion() sip.Diversion
	// Status is the final response's code and reason (the 200).
	Status() (code int, reason string)
	// State is what a BYE needs to end the call from another process
	// (crash recovery: sip.UA.ByeFromState).
	State() sip.DialogState
}

// Media is a call's media session, as verify uses it (*media.Session). Its
// sip.Media half is handed to the dialog (sip.DialOptions.Media).
type Media interface {
	sip.Media
	// Offer is our SDP offer, for the INVITE.
	Offer() ([]byte, error)
	// Negotiated is the outcome of the offer/answer exchange.
	Negotiated() media.Negotiated
	// AnsweredAt is when StartAnswer ran, on the media clock.
	AnsweredAt() time.Duration
	// Now is the media clock: the time base of key presses' Start.
	Now() time.Duration
	// Presses are the key press reports; closed when the session closes.
	Presses() <-chan dtmf.Event
	// PlayAudio sends a prompt and returns when it has been sent, ctx
	// ends or Stop cuts it short (media.ErrStopped).
	PlayAudio(ctx context.Context, a *media.Audio) error
	// Stop cuts the prompt playing short.
	Stop()
	// Stats are the session's counters.
	Stats() media.SessionStats
	// Close ends the session.
	Close() error
}

var _ Media = (*media.Session)(nil)

// UADialer is a Dialer placing calls through a SIP user agent.
type UADialer struct{ UA *sip.UA }

// Dial implements Dialer.
func (d UADialer) Dial(ctx context.Context, number string, opts sip.DialOptions) (Call, error) {
	c, err := d.UA.Dial(ctx, number, opts)
	if err != nil {
		return nil, err
	}
	return sipCall{c}, nil
}

// sipCall is a *sip.Call as a Call.
type sipCall struct{ *sip.Call }

func (c sipCall) Status() (int, string) { return c.Code, c.Reason }

// listen is media.Listen as a Verifier.Listen.
func listen(ctx context.Context, cfg media.SessionConfig) (Media, error) {
	s, err := media.Listen(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return s, nil
}

func (v *Verifier) defaults() Config {
	c := v.Config
	if c.AnswerTimeout <= 0 {
		c.AnswerTimeout = 10 * time.Second
	}
	if c.Attempts <= 0 {
		c.Attempts = 3
	}
	if c.MaxCallDuration <= 0 {
		c.MaxCallDuration = 3 * time.Minute
	}
	if c.DigitTimeout <= 0 {
		c.DigitTimeout = DefaultDigitTimeout
	}
	switch {
	case c.MinKeyDelay == 0:
		c.MinKeyDelay = DefaultMinKeyDelay
	case c.MinKeyDelay < 0:
		c.MinKeyDelay = 0
	}
	return c
}

// Run places the call and returns its result. Cancelling ctx cancels the
// call (CANCEL before the answer, BYE after) with outcome Cancelled.
func (v *Verifier) Run(ctx context.Context, req Request) Result {
	cfg := v.defaults()
	log := v.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	clock := v.Clock
	if clock == nil {
		clock = media.SystemClock()
	}
	r := &run{v: v, cfg: cfg, req: req, log: log.With("to", redact.Number(req.To)), clock: clock}
	r.res.To = redact.Number(req.To)
	r.res.StartedAt = clock.Now()
	r.execute(ctx)
	r.res.EndedAt = clock.Now()
	r.progress(StageOutcome, string(r.res.Outcome))
	r.log.Info("verification finished", "outcome", r.res.Outcome, "sip_code", r.res.SIPCode, "dtmf_source", r.res.DTMFSource, "keys", r.res.Keys, "err", r.res.Error)
	return r.res
}

type run struct {
	v     *Verifier
	cfg   Config
	req   Request
	log   *slog.Logger
	clock media.Clock
	res   Result
}

// dialer is the Verifier's Dialer, or its UA's.
func (r *run) dialer() (Dialer, error) {
	switch {
	case r.v.Dialer != nil:
		return r.v.Dialer, nil
	case r.v.UA != nil:
		return UADialer{r.v.UA}, nil
	}
	return nil, errors.New("no SIP user agent")
}

func (r *run) progress(s Stage, detail string) {
	if r.req.OnProgress != nil {
		r.req.OnProgress(Progress{Stage: s, Detail: detail})
	}
}

func (r *run) fail(err error) {
	r.res.Outcome = Failed
	r.res.Error = err.Error()
}

func (r *run) execute(ctx context.Context) {
	if r.req.Prompts == nil {
		r.fail(errors.New("no prompts"))
		return
	}
	if c := r.req.Code; c != nil {
		p := r.req.Prompts
		switch {
		case c.Secret == nil:
			r.fail(errors.New("mode code without a code"))
			return
		case p.AskCode == nil || p.WrongCode == nil || p.CodeFailed == nil:
			r.fail(errors.New("the prompts lack mode code's (ask_code, wrong_code, code_failed)"))
			return
		}
	}
	dialer, err := r.dialer()
	if err != nil {
		r.fail(err)
		return
	}
	mcfg := r.cfg.Media
	mcfg.RedactKeys = r.req.Code != nil // a code's digits are a secret
	if mcfg.Clock == nil && r.v.Clock != nil {
		mcfg.Clock = r.v.Clock
	}
	var vm *machineSink
	if !r.cfg.NoVoicemail {
		vm = newMachineSink(r.cfg.Voicemail, r.clock)
		mcfg.Audio = vm
	}
	open := r.v.Listen
	if open == nil {
		open = listen
	}
	sess, err := open(ctx, mcfg)
	if err != nil {
		r.fail(err)
		return
	}
	defer func() {
		st := sess.Stats()
		sess.Close()
		d := st.Stream.Dropped
		drops := map[string]uint64{"not_rtp": d.NotRTP, "source": d.Source, "ssrc": d.SSRC, "payload_type": d.PayloadType,
			"old": d.Old, "rtcp": d.RTCP, "early": d.Early}
		for k, n := range drops {
			if n == 0 {
				delete(drops, k)
			}
		}
		if len(drops) > 0 {
			r.res.RTPDropped = drops
		}
	}()
	offer, err := sess.Offer()
	if err != nil {
		r.fail(err)
		return
	}
	r.progress(StageDialling, redact.Number(r.req.To))
	invited := r.clock.Now()
	// A call forwarded while it rings is cancelled through dialCtx.
	dialCtx, dialCancel := context.WithCancelCause(ctx)
	defer dialCancel(nil)
	call, err := dialer.Dial(dialCtx, r.req.To, sip.DialOptions{
		Offer: offer,
		OnProgress: func(p sip.Progress) {
			if p.Diversion.Diverted && r.refuseDiversion() {
				r.log.Info("call forwarded; cancelling", "code", p.Code, "reasons", p.Diversion.Reasons)
				dialCancel(errDiverted)
			}
			stage := StageRinging
			if p.EarlyMedia {
				stage = StageEarly
			}
			if r.req.OnProgress != nil {
				r.req.OnProgress(Progress{Stage: stage, Detail: fmt.Sprintf("%d %s", p.Code, p.Reason), Cancel: p.Cancel})
			}
		},
		Media:      sess,
		RedactKeys: r.req.Code != nil,
	})
	if err != nil {
		r.notAnswered(err)
		if de := (*sip.DialError)(nil); errors.As(err, &de) {
			r.noteDiversion(de.Diversion)
		}
		if errors.Is(context.Cause(dialCtx), errDiverted) && ctx.Err() == nil {
			r.res.Outcome, r.res.Error = Diverted, ""
		}
		return
	}
	answered := r.clock.Now()
	r.res.AnsweredAt = &answered
	r.res.SIPCode, r.res.SIPReason = call.Status()
	r.res.SetupMS = ms(answered.Sub(invited))
	hangup := func() {
		hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := call.Hangup(hctx); err != nil {
			r.log.Info("hangup", "err", err)
		}
	}
	defer hangup()
	neg := sess.Negotiated()
	r.res.Codec = neg.Codec.Name
	if d := call.Diversion(); d.Diverted {
		r.noteDiversion(d)
		if r.refuseDiversion() {
			r.log.Info("answered call was forwarded; hanging up", "reasons", d.Reasons)
			r.res.Outcome = Diverted
			return
		}
	}
	if r.req.OnProgress != nil {
		st := call.State()
		r.req.OnProgress(Progress{Stage: StageAnswered, Detail: fmt.Sprintf("%s, telephone-event %v, far end %v", neg.Codec.Name, neg.HaveEvents, neg.Remote), Dialog: &st})
	}
	at := sess.AnsweredAt()
	if r.req.Code != nil {
		r.converseCode(ctx, sess, call, at, vm)
		return
	}
	r.converse(ctx, sess, call, at, vm)
}

// machineSink runs the answering-machine detector on the far end's audio
// (on the media session's receive goroutine) and reports its first
// verdict of a machine on a channel. It knows what prompt plays since
// when, so that the prompt's echo is not taken for a greeting.
type machineSink struct {
	clock media.Clock
	det   *voicemail.Detector
	done  bool
	ch    chan voicemail.Verdict

	mu    sync.Mutex
	sent  *voicemail.Sent // the prompt playing or last played
	since time.Time       // when it started
}

// playing notes that samples started to play now.
func (m *machineSink) playing(samples []int16) {
	if m == nil {
		return
	}
	s := voicemail.NewSent(samples)
	m.mu.Lock()
	m.sent, m.since = s, m.clock.Now()
	m.mu.Unlock()
}

// stopped notes that the prompt was cut short now: what was not sent
// cannot echo.
func (m *machineSink) stopped(samples []int16) {
	if m == nil {
		return
	}
	m.mu.Lock()
	since := m.since
	m.mu.Unlock()
	n := min(len(samples), int(m.clock.Now().Sub(since)*media.SampleRate/time.Second))
	s := voicemail.NewSent(samples[:n])
	m.mu.Lock()
	m.sent = s
	m.mu.Unlock()
}

func newMachineSink(cfg voicemail.Config, clock media.Clock) *machineSink {
	return &machineSink{clock: clock, det: voicemail.New(cfg), ch: make(chan voicemail.Verdict, 1)}
}

// Audio implements media.AudioSink.
func (m *machineSink) Audio(samples []int16) {
	if m.done {
		return
	}
	m.mu.Lock()
	echo := m.sent.Level(m.clock.Now().Sub(m.since))
	m.mu.Unlock()
	m.det.Echo(echo)
	if v := m.det.Feed(samples); v.Machine {
		m.done = true
		m.ch <- v
	}
}

// verdicts is the channel of the verdict, nil (never ready) without
// detection.
func (m *machineSink) verdicts() <-chan voicemail.Verdict {
	if m == nil {
		return nil
	}
	return m.ch
}

// refuseDiversion reports whether a forwarded call is hung up.
func (r *run) refuseDiversion() bool { return r.cfg.OnDiversion != DiversionFlag }

// noteDiversion puts a call's diversion in the result.
func (r *run) noteDiversion(d sip.Diversion) {
	if d.Diverted {
		r.res.Diverted, r.res.DiversionReasons = true, d.Reasons
	}
}

// notAnswered maps a Dial failure to the outcome.
func (r *run) notAnswered(err error) {
	var de *sip.DialError
	if !errors.As(err, &de) {
		r.fail(err)
		return
	}
	r.res.SIPCode, r.res.SIPReason, r.res.Q850Cause = de.Code, de.Reason, de.Cause
	switch de.Kind {
	case sip.KindResponse:
		r.res.Outcome = OutcomeOf(de.Code)
	case sip.KindRingTimeout:
		r.res.Outcome = NoAnswer
	case sip.KindCancelled:
		r.res.Outcome = Cancelled
	default:
		r.res.Outcome = Failed
		if de.Err != nil {
			r.res.Error = de.Err.Error()
		}
	}
}

// converse plays mode hash's prompts and decides on the keys.
func (r *run) converse(parent context.Context, sess Media, call Call, answerAt time.Duration, vm *machineSink) {
	t, end := r.newTalk(parent, sess, call, vm)
	defer end()
	r.res.Attempts = 1
	h := &hashMode{talk: t, answerAt: answerAt, askAt: sess.Now()} // the first ask's start, for its press point
	h.cur = h.play(r.req.Prompts.Ask, prompts.Ask)
	h.run(h)
}

// hashMode is mode hash: # verifies, any other key is wrong.
type hashMode struct {
	*talk
	answerAt, askAt time.Duration
}

func (h *hashMode) promptDone() { h.answer.set(h.r.cfg.AnswerTimeout) }

func (h *hashMode) digitTimeout() bool { return false } // mode hash never sets it

func (h *hashMode) answerTimeout() bool {
	r, p := h.r, h.r.req.Prompts
	if r.res.Attempts >= r.cfg.Attempts {
		h.finish(h.or(NoKey), p.Goodbye, prompts.Goodbye)
		return true
	}
	r.res.Attempts++
	h.cur = h.play(p.Ask, prompts.Ask)
	return false
}

func (h *hashMode) press(e dtmf.Event) bool {
	r, p := h.r, h.r.req.Prompts
	if why, ok := early(e.Start, h.answerAt, h.askAt, r.cfg.MinKeyDelay, p.AskPressAt); ok {
		h.early(e, e.Key.String(), h.answerAt, why)
		return false
	}
	now := r.clock.Now()
	h.keys.WriteString(e.Key.String())
	r.progress(StageKey, fmt.Sprintf("%s via %s", e.Key, e.Source))
	r.log.Info("key", "key", e.Key.String(), "source", e.Source.String(), "level_dbm0", e.LevelDBm0)
	r.res.DTMFSource, r.res.KeyAt = e.Source.String(), &now
	if e.Key.Accepted() {
		// The decision is made here; measure it before stopping the
		// prompt, which waits for the sender's next 20 ms slot (a #
		// pressed during the prompt measured up to 20 ms late).
		r.res.HashToDecisionMS = ms(h.sess.Now() - e.Start)
		h.stop(h.cur)
		h.finish(Verified, p.Success, prompts.Success)
		return true
	}
	h.wrong = WrongKey
	h.stop(h.cur)
	h.answer.clear()
	h.cur = h.play(p.WrongKey, prompts.WrongKey)
	return false
}

// mode is what mode hash and mode code decide differently, for talk.run;
// each reports whether the call is over.
type mode interface {
	promptDone()                    // talk.cur played to its end
	answerTimeout() (over bool)     // talk.answer fired
	digitTimeout() (over bool)      // talk.digit fired
	press(e dtmf.Event) (over bool) // a key press started
}

// errMaxCallDuration ends a call's context at Config.MaxCallDuration.
var errMaxCallDuration = errors.New("maximum call duration reached")

// withMaxDuration is parent ending at Config.MaxCallDuration on the run's
// clock (cause errMaxCallDuration); cancel stops its timer.
func (r *run) withMaxDuration(parent context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(parent)
	stop := r.clock.AfterFunc(r.cfg.MaxCallDuration, func() { cancel(errMaxCallDuration) })
	return ctx, func() {
		stop()
		cancel(nil)
	}
}

// alarm is a one-shot timer of a clock that can be off: C is then nil
// (never ready) for a select.
type alarm struct {
	clock media.Clock
	t     media.Timer
	armed bool
}

func newAlarm(c media.Clock) *alarm { return &alarm{clock: c} }

// set makes the alarm fire after d (re-arming it if armed).
func (a *alarm) set(d time.Duration) {
	if a.t == nil {
		a.t = a.clock.NewTimer(d)
	} else {
		a.t.Reset(d)
	}
	a.armed = true
}

// clear turns the alarm off.
func (a *alarm) clear() {
	if a.t != nil {
		a.t.Stop()
	}
	a.armed = false
}

// fired notes that C delivered: the alarm is off.
func (a *alarm) fired() { a.armed = false }

// C is the alarm's channel, nil when it is off.
func (a *alarm) C() <-chan time.Time {
	if !a.armed {
		return nil
	}
	return a.t.C()
}

// talk is a call's conversation, for both modes: it plays the prompts in
// the background, runs the mode's timers and ends the call alike for what
// the modes do not decide (a machine, a hang-up, the call's context).
type talk struct {
	r      *run
	parent context.Context // the run's
	ctx    context.Context // the call's (ends at the maximum call duration)
	sess   Media
	call   Call
	vm     *machineSink
	cur    *playing // the prompt playing, nil when none
	// answer is the answer timeout after a prompt; digit mode code's
	// timeout within a code.
	answer, digit *alarm
	keys          strings.Builder // mode hash's keys, for Result.Keys
	// wrong is the outcome once a wrong key or code was entered
	// (WrongKey, WrongCode), empty before.
	wrong Outcome
}

// newTalk starts a call's conversation; end releases it.
func (r *run) newTalk(parent context.Context, sess Media, call Call, vm *machineSink) (t *talk, end context.CancelFunc) {
	ctx, cancel := r.withMaxDuration(parent)
	t = &talk{r: r, parent: parent, ctx: ctx, sess: sess, call: call, vm: vm, answer: newAlarm(r.clock), digit: newAlarm(r.clock)}
	return t, cancel
}

// run takes what happens on the call to m until the call is over.
func (t *talk) run(m mode) {
	defer t.answer.clear()
	defer t.digit.clear()
	r := t.r
	machine, presses := t.vm.verdicts(), t.sess.Presses()
	for {
		select {
		case err := <-doneOf(t.cur):
			t.cur = nil
			switch {
			case t.ctx.Err() != nil:
				continue // the ctx.Done case decides
			case playbackFailed(err):
				r.fail(fmt.Errorf("playing prompt: %w", err))
				r.res.Keys = t.keys.String()
				return
			}
			m.promptDone()
		case <-t.answer.C():
			t.answer.fired()
			if m.answerTimeout() {
				return
			}
		case <-t.digit.C():
			t.digit.fired()
			if m.digitTimeout() {
				return
			}
		case e, ok := <-presses:
			if !ok {
				r.fail(errors.New("media session closed"))
				return
			}
			if !e.Ended && m.press(e) {
				return
			}
		case v := <-machine:
			// A machine answered: hang up now rather than after every
			// attempt (and leave it nothing to record).
			r.log.Info("answering machine", "reason", v.Reason, "at", v.At, "beep_hz", v.BeepHz)
			t.end(Voicemail)
			r.res.VoicemailReason = string(v.Reason)
			return
		case <-t.call.Done():
			t.end(t.or(HungUp))
			return
		case <-t.ctx.Done():
			if t.parent.Err() != nil {
				t.end(Cancelled)
				return
			}
			t.end(t.or(NoKey)) // sip.max_call_duration
			r.res.Error = errMaxCallDuration.Error()
			return
		}
	}
}

// or is o, or t.wrong once a wrong key or code was entered.
func (t *talk) or(o Outcome) Outcome {
	if t.wrong != "" {
		return t.wrong
	}
	return o
}

// end stops what plays and ends the call with outcome o.
func (t *talk) end(o Outcome) {
	t.stop(t.cur)
	t.r.res.Outcome, t.r.res.Keys = o, t.keys.String()
}

// finish ends the call with outcome o after the closing prompt.
func (t *talk) finish(o Outcome, closing []int16, name prompts.Name) {
	t.r.res.Outcome, t.r.res.Keys = o, t.keys.String()
	t.closing(closing, name)
}

// early records press e, shown as shown, as too early to count.
func (t *talk) early(e dtmf.Event, shown string, answerAt time.Duration, why EarlyReason) {
	r, src := t.r, e.Source.String()
	ek := EarlyKey{Key: shown, Source: src, MS: ms(max(0, e.Start-answerAt)), Reason: why}
	r.res.EarlyKeys = append(r.res.EarlyKeys, ek)
	r.progress(StageKey, fmt.Sprintf("%s via %s too early (%s): not counted", shown, src, why))
	r.log.Info("early key not counted", "key", shown, "source", src, "ms_after_answer", ek.MS, "reason", why)
}

// play runs one prompt in the background; its done reports its end.
func (t *talk) play(samples []int16, name prompts.Name) *playing {
	t.r.progress(StagePrompt, string(name))
	pctx, pcancel := context.WithCancel(t.ctx)
	pl := &playing{cancel: pcancel, samples: samples}
	t.vm.playing(samples) // its echo is not a greeting
	a := t.r.v.audio.get(samples)
	if as, ok := t.sess.(audioStarter); ok {
		pl.done = as.StartAudio(pctx, a) // no goroutine per prompt
		return pl
	}
	done := make(chan error, 1)
	pl.done = done
	go func() { done <- t.sess.PlayAudio(pctx, a) }()
	return pl
}

// audioStarter is a Media that starts a prompt without a goroutine
// (*media.Session).
type audioStarter interface {
	StartAudio(ctx context.Context, a *media.Audio) <-chan error
}

// stop cuts pl short, if it plays, and waits for it.
func (t *talk) stop(pl *playing) {
	if pl != nil {
		t.vm.stopped(pl.samples)
		t.sess.Stop()
		pl.cancel()
		<-pl.done
	}
}

// closing plays the last prompt, if any, to its end, a hang-up or the end
// of the call's context.
func (t *talk) closing(samples []int16, name prompts.Name) {
	if samples == nil {
		return
	}
	pl := t.play(samples, name)
	select {
	case <-pl.done:
	case <-t.call.Done():
		t.stop(pl)
	case <-t.ctx.Done():
		t.stop(pl)
	}
}

// playing is a prompt being played in the background.
type playing struct {
	cancel  context.CancelFunc
	done    <-chan error
	samples []int16
}

// doneOf is pl's completion channel, or nil (never ready) when nothing plays.
func doneOf(pl *playing) <-chan error {
	if pl == nil {
		return nil
	}
	return pl.done
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// playbackFailed reports whether a prompt's end is a failure rather than
// its last frame sent, a Stop or its context ended.
func playbackFailed(err error) bool {
	return err != nil && !errors.Is(err, media.ErrStopped) && !errors.Is(err, context.Canceled)
}
