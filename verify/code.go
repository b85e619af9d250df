package verify

import (
	"context"
	"fmt"
	"time"

	"github.com/hashcall/hashcall/dtmf"
	"github.com/hashcall/hashcall/numbermatch"
	"github.com/hashcall/hashcall/prompts"
)

// Mode code (number matching): the callee keys the code the auth service
// shows on the screen, then #. The code is checked against its keyed hash
// (numbermatch.Secret, constant time, expiry, single use); * clears what
// was keyed; a wrong code plays the wrong-code prompt and asks again, up to
// Config.Attempts asks; the early-key guard applies to every key as in
// mode hash. The code's digits are never spoken, logged, reported as
// progress nor put in the result: keys of a code show as "digit".

// CodeRequest makes a verification mode code.
type CodeRequest struct {
	// Secret is the code as kept: its keyed hash, length and expiry.
	Secret *numbermatch.Secret
	// Failed, when set, records one wrong code against the number
	// (policy.max_failed_codes, counted across calls and codes) and
	// reports whether the number may still try: false ends the call with
	// outcome WrongCode.
	Failed func() bool
}

// DefaultDigitTimeout is Config.DigitTimeout's default
// (verify.digit_timeout).
const DefaultDigitTimeout = 5 * time.Second

// codeStep is what one input of the code flow comes to.
type codeStep int

const (
	codeNothing  codeStep = iota // nothing changes (a timer that is not due, silence while keying)
	codeEarly                    // a key too early to count (the early-key guard)
	codeDigit                    // a key of the code, kept
	codeCleared                  // * cleared the entry
	codeVerified                 // the right code and #
	codeWrong                    // a wrong code; ask again
	codeFailed                   // a wrong code, and no attempt (or failure) left
	codeExpired                  // the code expired (verify.code_ttl) or was used
	codeAskAgain                 // silence after an ask: ask again
	codeNoKey                    // silence after the last ask
)

var codeStepNames = [...]string{"nothing", "early", "digit", "cleared", "verified", "wrong", "failed", "expired", "ask_again", "no_key"}

func (s codeStep) String() string { return codeStepNames[s] }

// Why a code was wrong, for the log and the progress (never the digits).
const (
	wrongMismatch     = "mismatch"
	wrongTooMany      = "too_many_digits"
	wrongDigitTimeout = "digit_timeout"
)

// codeResult is a step with its reason: the early-key reason, or why a
// code was wrong.
type codeResult struct {
	step  codeStep
	early EarlyReason
	why   string
	// outOfFailures: the number has no failed codes left
	// (policy.max_failed_codes).
	outOfFailures bool
}

// codeFlow decides mode code from the keys and the timers; it does no I/O,
// so that its rules are tested with made-up times. Times are on the media
// clock (answer, ask, key starts); the code's expiry is checked on the wall
// clock wall.
type codeFlow struct {
	secret       *numbermatch.Secret
	failed       func() bool
	wall         func() time.Time
	attempts     int
	digitTimeout time.Duration
	minKeyDelay  time.Duration
	pressAt      time.Duration // the first ask's press point
	answer, ask  time.Duration // the answer and the first ask's start

	entry   [numbermatch.MaxLength]byte
	n       int
	lastKey time.Duration
	attempt int // asks so far
	wrong   int // wrong codes keyed
}

func newCodeFlow(cr *CodeRequest, cfg Config, wall func() time.Time, pressAt, answer, ask time.Duration) *codeFlow {
	return &codeFlow{
		secret: cr.Secret, failed: cr.Failed, wall: wall,
		attempts: cfg.Attempts, digitTimeout: cfg.DigitTimeout, minKeyDelay: cfg.MinKeyDelay,
		pressAt: pressAt, answer: answer, ask: ask, attempt: 1,
	}
}

// key takes the start of a key press (start on the media clock).
func (f *codeFlow) key(k dtmf.Key, start time.Duration) codeResult {
	if why, ok := early(start, f.answer, f.ask, f.minKeyDelay, f.pressAt); ok {
		return codeResult{step: codeEarly, early: why}
	}
	switch k {
	case keyStar:
		f.n = 0
		return codeResult{step: codeCleared}
	case dtmf.KeyHash:
		n := f.n
		f.n = 0
		switch f.secret.Check(f.entry[:n], f.wall()) {
		case numbermatch.Match:
			return codeResult{step: codeVerified}
		case numbermatch.Expired, numbermatch.Used:
			return codeResult{step: codeExpired}
		}
		return f.wrongCode(wrongMismatch)
	}
	// A digit (A–D too: they never match, as the code is decimal).
	if f.n == f.secret.Length() {
		f.n = 0
		return f.wrongCode(wrongTooMany)
	}
	f.entry[f.n] = byte(k)
	f.n++
	f.lastKey = start
	return codeResult{step: codeDigit}
}

// keying reports whether a code is being keyed (digits without # yet).
func (f *codeFlow) keying() bool { return f.n > 0 }

// deadline is when the entry times out (verify.digit_timeout after its
// last key), if one is being keyed.
func (f *codeFlow) deadline() (time.Duration, bool) {
	return f.lastKey + f.digitTimeout, f.n > 0
}

// timeout takes the digit timer firing at now: an entry whose last key is
// digitTimeout old is a wrong code.
func (f *codeFlow) timeout(now time.Duration) codeResult {
	if d, ok := f.deadline(); !ok || now < d {
		return codeResult{}
	}
	f.n = 0
	return f.wrongCode(wrongDigitTimeout)
}

// silence takes the answer timeout after an ask (or the wrong-code
// prompt): ask again, or give up after the last attempt.
func (f *codeFlow) silence() codeResult {
	if f.n > 0 {
		return codeResult{} // the digit timer decides
	}
	if f.attempt >= f.attempts {
		return codeResult{step: codeNoKey}
	}
	f.attempt++
	return codeResult{step: codeAskAgain}
}

// wrongCode counts a wrong code against the number and the call.
func (f *codeFlow) wrongCode(why string) codeResult {
	f.wrong++
	more := f.failed == nil || f.failed()
	if !more {
		return codeResult{step: codeFailed, why: why, outOfFailures: true}
	}
	if f.attempt >= f.attempts {
		return codeResult{step: codeFailed, why: why}
	}
	f.attempt++
	return codeResult{step: codeWrong, why: why}
}

// maskKey is how a key of a code shows in logs, progress and the result
// (dtmf.Key.Redacted).
func maskKey(k dtmf.Key) string { return k.Redacted() }

// keyStar clears what was keyed of a code.
const keyStar dtmf.Key = '*'

// converseCode is converse for mode code: it plays mode code's prompts and
// decides on the code keyed.
func (r *run) converseCode(parent context.Context, sess Media, call Call, answerAt time.Duration, vm *machineSink) {
	t, end := r.newTalk(parent, sess, call, vm)
	defer end()
	p := r.req.Prompts
	r.res.Attempts = 1
	c := &codeMode{talk: t, answerAt: answerAt}
	c.flow = newCodeFlow(r.req.Code, r.cfg, r.clock.Now, p.AskCodePressAt, answerAt, sess.Now())
	c.cur = c.play(p.AskCode, prompts.AskCode)
	c.run(c)
}

// codeMode is mode code: codeFlow decides, codeMode plays and logs.
type codeMode struct {
	*talk
	flow     *codeFlow
	answerAt time.Duration
	next     []int16 // the ask that follows the wrong-code prompt
}

// armDigit sets the digit timer to the entry's deadline, if one is keyed.
func (c *codeMode) armDigit() {
	c.digit.clear()
	if d, ok := c.flow.deadline(); ok {
		c.digit.set(max(0, d-c.sess.Now()))
	}
}

// idle starts the answer timeout when nothing plays and nothing is being
// keyed.
func (c *codeMode) idle() {
	if c.cur == nil && !c.flow.keying() {
		c.answer.set(c.r.cfg.AnswerTimeout)
	}
}

// stopAll stops the prompt and its follow-up.
func (c *codeMode) stopAll() {
	c.stop(c.cur)
	c.cur, c.next = nil, nil
	c.answer.clear()
}

// rejected handles a wrong code: the prompt and a new ask, or the end.
func (c *codeMode) rejected(res codeResult, src string) (over bool) {
	r, p := c.r, c.r.req.Prompts
	r.res.WrongCodes++
	c.wrong = WrongCode
	r.log.Info("wrong code", "why", res.why, "source", src, "attempt", r.res.Attempts, "no_failures_left", res.outOfFailures)
	r.progress(StageKey, "wrong code ("+res.why+")")
	c.stopAll()
	if res.step == codeFailed {
		c.finish(WrongCode, p.CodeFailed, prompts.CodeFailed)
		return true
	}
	r.res.Attempts++
	c.cur, c.next = c.play(p.WrongCode, prompts.WrongCode), p.AskCode
	return false
}

func (c *codeMode) promptDone() {
	if c.next != nil {
		c.cur, c.next = c.play(c.next, prompts.AskCode), nil
		return
	}
	c.idle()
}

func (c *codeMode) answerTimeout() bool {
	r, p := c.r, c.r.req.Prompts
	switch res := c.flow.silence(); res.step {
	case codeNoKey:
		c.finish(c.or(NoKey), p.Goodbye, prompts.Goodbye)
		return true
	case codeAskAgain:
		r.res.Attempts++
		c.cur = c.play(p.AskCode, prompts.AskCode)
	}
	return false
}

func (c *codeMode) digitTimeout() bool {
	if res := c.flow.timeout(c.sess.Now()); res.step == codeWrong || res.step == codeFailed {
		return c.rejected(res, "")
	}
	c.armDigit()
	return false
}

func (c *codeMode) press(e dtmf.Event) bool {
	r, p := c.r, c.r.req.Prompts
	src, shown := e.Source.String(), maskKey(e.Key)
	res := c.flow.key(e.Key, e.Start)
	switch res.step {
	case codeEarly:
		c.early(e, shown, c.answerAt, res.early)
	case codeDigit, codeCleared:
		// Barge-in: keying stops the prompt and its follow-up.
		c.stopAll()
		r.progress(StageKey, fmt.Sprintf("%s via %s", shown, src))
		c.armDigit()
		c.idle()
	case codeVerified:
		// Measured when decided, before stopping the prompt (see
		// hashMode.press).
		r.res.HashToDecisionMS = ms(c.sess.Now() - e.Start)
		c.stop(c.cur)
		now := r.clock.Now()
		r.res.KeyAt = &now
		r.res.DTMFSource = src
		r.progress(StageKey, fmt.Sprintf("# via %s: the code matches", src))
		c.finish(Verified, p.Success, prompts.Success)
		return true
	case codeExpired:
		c.stop(c.cur)
		r.res.DTMFSource = src
		r.res.Error = "the code expired or was used (verify.code_ttl)"
		r.log.Info("code expired or used", "source", src)
		c.finish(WrongCode, p.CodeFailed, prompts.CodeFailed)
		return true
	case codeWrong, codeFailed:
		r.res.DTMFSource = src
		c.armDigit()
		return c.rejected(res, src)
	}
	return false
}
