// Package verify runs one verification call: dial through the trunk, play
// the ask prompt once answered, and decide on the keys the callee presses.
// A # at any time after the answer (during the prompt too) verifies; any
// other key plays the wrong-key prompt and keeps waiting; silence repeats
// the ask up to the configured number of attempts.
//
// It is used by `hashcall call`, `hashcall demo` and the HTTP service.
package verify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/hashcall/hashcall/internal/redact"
	"github.com/hashcall/hashcall/media"
	"github.com/hashcall/hashcall/prompts"
	"github.com/hashcall/hashcall/sip"
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
)

// Outcomes lists every outcome.
func Outcomes() []Outcome {
	return []Outcome{Verified, WrongKey, NoKey, HungUp, NoAnswer, Busy, Declined, Unreachable, Failed, Cancelled}
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
	Keys       string     `json:"keys,omitempty"` // every key heard, in order
	Attempts   int        `json:"attempts,omitempty"`
	// SetupMS is from sending the INVITE to the 200.
	SetupMS float64 `json:"setup_ms,omitempty"`
	// HashToDecisionMS is from the start of the # (first tone sample or
	// first event packet, on the media clock) to the decision. The
	// decision comes once the # has lasted the minimum duration, usually
	// before the key is released.
	HashToDecisionMS float64 `json:"hash_to_decision_ms,omitempty"`
	// RTPDropped counts received RTP packets dropped, by reason.
	RTPDropped map[string]uint64 `json:"rtp_dropped,omitempty"`
	Error      string            `json:"error,omitempty"`
}

// Config is the verification behaviour.
type Config struct {
	AnswerTimeout   time.Duration // after the ask prompt ends; default 10 s
	Attempts        int           // ask prompts at most; default 3
	MaxCallDuration time.Duration // from the answer; default 3 min
	Media           media.SessionConfig
}

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
}

// Request is one verification.
type Request struct {
	To      string // the number to call (digits, optional leading +)
	Prompts *prompts.Set
	// OnProgress, when set, sees each step. It must not block.
	OnProgress func(Progress)
}

// Verifier places verification calls through a SIP user agent.
type Verifier struct {
	UA     *sip.UA
	Config Config
	Logger *slog.Logger

	audio promptAudio // the prompts, encoded once for every call
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
	r := &run{v: v, cfg: cfg, req: req, log: log.With("to", redact.Number(req.To))}
	r.res.To = redact.Number(req.To)
	r.res.StartedAt = time.Now()
	r.execute(ctx)
	r.res.EndedAt = time.Now()
	r.progress(StageOutcome, string(r.res.Outcome))
	r.log.Info("verification finished", "outcome", r.res.Outcome, "sip_code", r.res.SIPCode, "dtmf_source", r.res.DTMFSource, "keys", r.res.Keys, "err", r.res.Error)
	return r.res
}

type run struct {
	v   *Verifier
	cfg Config
	req Request
	log *slog.Logger
	res Result
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
	sess, err := media.Listen(ctx, r.cfg.Media)
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
	offer, err := sess.Local().Offer()
	if err != nil {
		r.fail(err)
		return
	}
	var mu sync.Mutex // Local is used from SIP handler goroutines too
	var neg media.Negotiated
	r.progress(StageDialling, redact.Number(r.req.To))
	invited := time.Now()
	call, err := r.v.UA.Dial(ctx, r.req.To, sip.DialOptions{
		Offer: offer,
		OnProgress: func(p sip.Progress) {
			if p.EarlyMedia {
				r.progress(StageEarly, fmt.Sprintf("%d %s", p.Code, p.Reason))
			} else {
				r.progress(StageRinging, fmt.Sprintf("%d %s", p.Code, p.Reason))
			}
		},
		OnOffer: func(o []byte) ([]byte, error) {
			mu.Lock()
			defer mu.Unlock()
			ans, neg, err := sess.Local().Answer(o)
			if err != nil {
				return nil, err
			}
			if err := sess.Update(neg); err != nil {
				return nil, err
			}
			return ans, nil
		},
		Current: func() []byte {
			mu.Lock()
			defer mu.Unlock()
			b, _ := sess.Local().Current()
			return b
		},
		OnInfo: sess.Info,
		OnAnswer: func(answer []byte) error {
			// Start media before our ACK: the far end may send its key
			// (RTP or SIP INFO) the moment the ACK reaches it.
			mu.Lock()
			defer mu.Unlock()
			n, err := sess.Local().ParseAnswer(answer)
			if err != nil {
				return fmt.Errorf("answer SDP: %w", err)
			}
			if err := sess.Start(n); err != nil {
				return err
			}
			neg = n
			return nil
		},
	})
	if err != nil {
		r.notAnswered(err)
		return
	}
	answered := time.Now()
	r.res.AnsweredAt = &answered
	r.res.SIPCode, r.res.SIPReason = call.Code, call.Reason
	r.res.SetupMS = ms(answered.Sub(invited))
	hangup := func() {
		hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := call.Hangup(hctx); err != nil {
			r.log.Info("hangup", "err", err)
		}
	}
	defer hangup()
	r.res.Codec = neg.Codec.Name
	r.progress(StageAnswered, fmt.Sprintf("%s, telephone-event %v, far end %v", neg.Codec.Name, neg.HaveEvents, neg.Remote))
	r.converse(ctx, sess, call)
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

// converse plays the prompts and decides on the keys.
func (r *run) converse(parent context.Context, sess *media.Session, call *sip.Call) {
	ctx, cancel := context.WithTimeout(parent, r.cfg.MaxCallDuration)
	defer cancel()
	p := r.req.Prompts
	presses := sess.Presses()
	var keys strings.Builder
	wrong := false

	// play runs one prompt in the background; done reports its end.
	play := func(samples []int16, name prompts.Name) *playing {
		r.progress(StagePrompt, string(name))
		pctx, pcancel := context.WithCancel(ctx)
		pl := &playing{cancel: pcancel, done: make(chan error, 1)}
		a := r.v.audio.get(samples)
		go func() { pl.done <- sess.PlayAudio(pctx, a) }()
		return pl
	}
	stop := func(pl *playing) {
		if pl != nil {
			sess.Stop()
			pl.cancel()
			<-pl.done
		}
	}
	finish := func(o Outcome, closing []int16, name prompts.Name) {
		r.res.Outcome = o
		r.res.Keys = keys.String()
		if closing != nil {
			pl := play(closing, name)
			select {
			case <-pl.done:
			case <-call.Done():
				stop(pl)
			case <-ctx.Done():
				stop(pl)
			}
		}
	}

	attempt := 1
	r.res.Attempts = 1
	cur := play(p.Ask, prompts.Ask)
	var timer <-chan time.Time
	for {
		select {
		case err := <-doneOf(cur):
			cur = nil
			if ctx.Err() != nil {
				continue // the ctx.Done case decides
			}
			if err != nil && !errors.Is(err, media.ErrStopped) && !errors.Is(err, context.Canceled) {
				r.fail(fmt.Errorf("playing prompt: %w", err))
				r.res.Keys = keys.String()
				return
			}
			timer = time.After(r.cfg.AnswerTimeout)
		case <-timer:
			timer = nil
			if attempt >= r.cfg.Attempts {
				o := NoKey
				if wrong {
					o = WrongKey
				}
				finish(o, p.Goodbye, prompts.Goodbye)
				return
			}
			attempt++
			r.res.Attempts = attempt
			cur = play(p.Ask, prompts.Ask)
		case e, ok := <-presses:
			if !ok {
				r.fail(errors.New("media session closed"))
				return
			}
			if e.Ended {
				continue
			}
			now := time.Now()
			keys.WriteString(e.Key.String())
			r.progress(StageKey, fmt.Sprintf("%s via %s", e.Key, e.Source))
			r.log.Info("key", "key", e.Key.String(), "source", e.Source.String(), "level_dbm0", e.LevelDBm0)
			if e.Key.Accepted() {
				// The decision is made here; measure it before stopping the
				// prompt, which waits for the sender's next 20 ms slot (a #
				// pressed during the prompt measured up to 20 ms late).
				r.res.HashToDecisionMS = ms(sess.Now() - e.Start)
				stop(cur)
				r.res.KeyAt = &now
				r.res.DTMFSource = e.Source.String()
				finish(Verified, p.Success, prompts.Success)
				return
			}
			wrong = true
			r.res.DTMFSource = e.Source.String()
			r.res.KeyAt = &now
			stop(cur)
			timer = nil
			cur = play(p.WrongKey, prompts.WrongKey)
		case <-call.Done():
			stop(cur)
			r.res.Keys = keys.String()
			r.res.Outcome = HungUp
			if wrong {
				r.res.Outcome = WrongKey
			}
			return
		case <-ctx.Done():
			stop(cur)
			r.res.Keys = keys.String()
			if parent.Err() == nil {
				// sip.max_call_duration
				o := NoKey
				if wrong {
					o = WrongKey
				}
				r.res.Outcome = o
				r.res.Error = "maximum call duration reached"
				return
			}
			r.res.Outcome = Cancelled
			return
		}
	}
}

// playing is a prompt being played in the background.
type playing struct {
	cancel context.CancelFunc
	done   chan error
}

// doneOf is pl's completion channel, or nil (never ready) when nothing plays.
func doneOf(pl *playing) <-chan error {
	if pl == nil {
		return nil
	}
	return pl.done
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
