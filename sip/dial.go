package sip

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"

	"github.com/hashcall/hashcall/dtmf"
	"github.com/hashcall/hashcall/internal/redact"
)

// Kind says why a call was not answered.
type Kind int

// Kinds of Dial failure.
const (
	// KindResponse: the far end answered with a final non-2xx response
	// (Code, Reason and Cause say which).
	KindResponse Kind = iota + 1
	// KindRingTimeout: our ring timeout ran out and the call was cancelled.
	KindRingTimeout
	// KindCancelled: the caller's context was cancelled.
	KindCancelled
	// KindAuth: the trunk kept rejecting our credentials, or wanted some
	// and none are configured.
	KindAuth
	// KindTransport: the request could not be sent or no response came.
	KindTransport
)

func (k Kind) String() string {
	switch k {
	case KindResponse:
		return "response"
	case KindRingTimeout:
		return "ring_timeout"
	case KindCancelled:
		return "cancelled"
	case KindAuth:
		return "auth"
	case KindTransport:
		return "transport"
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// DialError is why Dial returned without a call.
type DialError struct {
	Kind   Kind
	Code   int    // final SIP status code, 0 if none came
	Reason string // its reason phrase
	Cause  int    // Q.850 cause from a Reason header, 0 if none
	// Diversion is what the responses said about the call being forwarded.
	Diversion Diversion
	Err       error
}

func (e *DialError) Error() string {
	var b strings.Builder
	b.WriteString("sip: call not answered: ")
	b.WriteString(e.Kind.String())
	if e.Code != 0 {
		fmt.Fprintf(&b, " %d %s", e.Code, e.Reason)
	}
	if e.Cause != 0 {
		fmt.Fprintf(&b, " (Q.850 cause %d)", e.Cause)
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

func (e *DialError) Unwrap() error { return e.Err }

// Causes the dial context is cancelled with.
var (
	errRingTimeout = errors.New("sip: ring timeout")
	errAuthFailed  = errors.New("sip: the trunk rejected our credentials")
	// ErrHangup is the cause a Call's context carries when we hung up.
	ErrHangup = errors.New("sip: hung up by us")
)

// Progress is a provisional response seen while the call rings.
type Progress struct {
	Code       int
	Reason     string
	EarlyMedia bool // a 183 (or 18x) with SDP: announcements, never the answer
	// Diversion is the call's diversion so far, this response included.
	Diversion Diversion
	// Cancel is what a CANCEL of the INVITE needs, should this process
	// stop while the call rings.
	Cancel *CancelState
}

// DialOptions are the per-call parameters and hooks of Dial.
type DialOptions struct {
	// Offer is our SDP offer, sent in the INVITE.
	Offer []byte
	// RingTimeout overrides the UA's ring timeout when positive.
	RingTimeout time.Duration
	// OnProgress sees every provisional response (100 excepted).
	OnProgress func(Progress)
	// Media is the call's media session, as the dialog drives it; nil:
	// offers within the dialog are refused (488) and SIP INFO keys dropped.
	Media Media
	// RedactKeys logs SIP INFO keys as dtmf.Key.Redacted shows them
	// (verify mode code: the digits are a secret).
	RedactKeys bool
}

// Media is the media side of a call as the SIP dialog needs it: the SDP
// answer, re-offers and SIP INFO keys. media.Session implements it under
// its own lock, as the methods are called from the SIP handlers'
// goroutines.
type Media interface {
	// StartAnswer takes the 200's SDP before our ACK goes out, so media
	// can start before the far end (which waits for the ACK) sends
	// anything. An error hangs the call up and fails Dial.
	StartAnswer(answer []byte) error
	// AnswerOffer answers an SDP offer in a re-INVITE or UPDATE within the
	// dialog (hold, session refresh, media moved, RFC 3264 §8, RFC 3311).
	AnswerOffer(offer []byte) ([]byte, error)
	// CurrentSDP returns our current SDP, for a re-INVITE or UPDATE
	// without an offer (RFC 3261 §14.2: the offer goes in our 200).
	CurrentSDP() []byte
	// Info takes a key the far end sent by SIP INFO (application/dtmf-relay
	// or application/dtmf).
	Info(key dtmf.Key, d time.Duration)
}

// Call is an answered call.
type Call struct {
	ua     *UA
	sess   *sipgo.DialogClientSession
	callID string
	ref    string // callRef(callID): how logs name the call
	opts   DialOptions

	// Answer is the SDP of the 200 OK.
	Answer []byte
	// Code and Reason are those of the 200.
	Code   int
	Reason string

	mu       sync.Mutex
	earlySDP []byte      // the last SDP of a provisional response
	dialog   dialogState // up from the answer until the end
	diverted Diversion
	ended    bool
	remote   bool
	done     chan struct{}
}

// Diversion returns what the provisional responses and the 200 said about
// the call being forwarded.
func (c *Call) Diversion() Diversion {
	c.mu.Lock()
	defer c.mu.Unlock()
	return Diversion{Diverted: c.diverted.Diverted, Reasons: slices.Clone(c.diverted.Reasons)}
}

// noteDiversion adds r's diversion headers to the call's and returns the
// result.
func (c *Call) noteDiversion(r *sip.Response) Diversion {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.diverted.add(r)
	return Diversion{Diverted: c.diverted.Diverted, Reasons: slices.Clone(c.diverted.Reasons)}
}

// Done is closed when the call has ended, by our BYE or the far end's.
func (c *Call) Done() <-chan struct{} { return c.done }

// RemoteHangup reports whether the far end hung up (sent BYE).
func (c *Call) RemoteHangup() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.remote
}

// CallID is the call's SIP Call-ID.
func (c *Call) CallID() string { return c.callID }

func (c *Call) end(remote bool) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ended {
		return false
	}
	c.ended, c.remote = true, remote
	c.dialog.up = false
	close(c.done)
	return true
}

// Hangup sends BYE, unless the far end already hung up, and waits for its
// answer or ctx.
func (c *Call) Hangup(ctx context.Context) error {
	if !c.end(false) {
		return nil
	}
	defer c.ua.forget(c.callID)
	if err := c.sess.Bye(ctx); err != nil {
		return fmt.Errorf("sip: bye: %w", err)
	}
	return nil
}

// validNumber: what may stand in the user part of the Request-URI.
func validNumber(n string) error {
	if n == "" || len(n) > 32 {
		return fmt.Errorf("number must be 1 to 32 characters, got %d", len(n))
	}
	for i, r := range n {
		switch {
		case r >= '0' && r <= '9', r == '*':
		case r == '+' && i == 0:
		default:
			return fmt.Errorf("number %q: only digits, * and a leading + are allowed", redact.Number(n))
		}
	}
	return nil
}

// Dial places a call to number through the trunk and waits until it is
// answered, fails, rings past the ring timeout (then it is cancelled) or ctx
// is cancelled (then it is cancelled too). On success the call is
// acknowledged and up. A 200 that crosses our CANCEL is acknowledged and
// hung up at once, and Dial reports the cancel.
func (u *UA) Dial(ctx context.Context, number string, opts DialOptions) (*Call, error) {
	if u.trunkHost == "" {
		return nil, &DialError{Kind: KindTransport, Err: errors.New("no trunk address configured (sip.trunk.address)")}
	}
	if err := validNumber(number); err != nil {
		return nil, &DialError{Kind: KindTransport, Err: err}
	}
	req, err := u.invite(number, opts.Offer)
	if err != nil {
		return nil, &DialError{Kind: KindTransport, Err: err}
	}
	id := req.CallID().Value()
	call := &Call{ua: u, callID: id, ref: callRef(id), opts: opts, done: make(chan struct{})}
	call.dialog.callID = id
	call.dialog.localTag, _ = req.From().Params.Get("tag")
	// The Call-ID lets whoever reads it address requests to the call: it
	// is logged at debug level only, info lines name the call by its ref.
	log := u.log.With("to", redact.Number(number), "call", call.ref)
	u.log.Debug("new call", "call", call.ref, "call_id", id)
	u.remember(call)

	ring := opts.RingTimeout
	if ring <= 0 {
		ring = u.cfg.RingTimeout
	}
	ringCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	timer := time.AfterFunc(ring, func() { cancel(errRingTimeout) })
	defer timer.Stop()

	log.Info("dialling", "ring_timeout", ring)
	u.logMsg("send", req)
	sess, err := u.dialog.WriteInvite(ringCtx, req)
	if err != nil {
		u.forget(call.callID)
		return nil, &DialError{Kind: KindTransport, Err: fmt.Errorf("sending INVITE: %w", err)}
	}
	call.sess = sess

	var (
		challenges int
		staleUsed  bool
		authErr    error
	)
	onResponse := func(r *sip.Response) error {
		u.logMsg("recv", r)
		switch {
		case r.StatusCode == 100:
		case r.IsProvisional():
			p := Progress{Code: r.StatusCode, Reason: r.Reason, EarlyMedia: len(r.Body()) > 0, Diversion: call.noteDiversion(r),
				Cancel: cancelState(sess.InviteRequest)}
			if p.EarlyMedia {
				call.mu.Lock()
				call.earlySDP = r.Body()
				call.mu.Unlock()
			}
			log.Info("progress", "code", p.Code, "reason", p.Reason, "early_media", p.EarlyMedia, "diverted", p.Diversion.Diverted)
			if opts.OnProgress != nil {
				opts.OnProgress(p)
			}
		case r.StatusCode == 401 || r.StatusCode == 407:
			challenges++
			if u.cfg.Trunk.Password == "" {
				authErr = errors.New("the trunk asks for authentication and no credentials are configured (sip.trunk.username, sip.trunk.password)")
				return authErr
			}
			if err := u.checkRealm(r); err != nil {
				authErr = err
				return authErr
			}
			// One challenge is normal; one more is allowed only for a stale
			// nonce (RFC 7616 §3.3 stale=true). Anything else means wrong
			// credentials: stop rather than loop.
			if challenges == 2 && !staleUsed && isStale(r) {
				staleUsed = true
				return nil
			}
			if challenges > 1 {
				authErr = errAuthFailed
				return authErr
			}
		}
		return nil
	}
	for {
		err = sess.WaitAnswer(ringCtx, sipgo.AnswerOptions{
			OnResponse: onResponse,
			Username:   u.cfg.Trunk.Username,
			Password:   u.cfg.Trunk.Password,
		})
		// sipgo gives up reading after 11 responses: carriers that repeat
		// 18x trip it. The transaction is still alive; read on.
		if tooManyResponses(err) && ringCtx.Err() == nil {
			continue
		}
		break
	}
	if err == nil {
		return u.answered(ctx, call, log)
	}
	// Not answered.
	defer u.forget(call.callID)
	res := sess.InviteResponse
	if res != nil && res.IsSuccess() {
		// A 200 crossed our CANCEL: acknowledge it and hang up at once.
		log.Info("200 crossed our CANCEL; acknowledging and hanging up")
		if aerr := sess.Ack(context.WithoutCancel(ctx)); aerr == nil {
			bctx, bcancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			_ = sess.Bye(bctx)
			bcancel()
		}
	} else if ringCtx.Err() != nil {
		// We cancelled, and a 200 may still be on its way: one that crossed
		// our CANCEL at a far end that then answered the CANCEL with 481
		// (RFC 3261 §9.2: its INVITE transaction ended with the 200). sipgo
		// then ends the INVITE transaction and drops that 200; its
		// retransmissions (§13.3.1.4) reach lateAnswer.
		u.awaitLate(call.callID, sess)
	}
	de := &DialError{Err: err}
	if res != nil && !res.IsProvisional() {
		de.Code, de.Reason, de.Cause = res.StatusCode, res.Reason, reasonCause(res)
		call.noteDiversion(res)
	}
	var dr *sipgo.ErrDialogResponse
	var drv sipgo.ErrDialogResponse
	switch cause := context.Cause(ringCtx); {
	case authErr != nil:
		de.Kind, de.Err = KindAuth, authErr
	case errors.Is(cause, errRingTimeout):
		de.Kind, de.Err = KindRingTimeout, errRingTimeout
	case ctx.Err() != nil:
		de.Kind, de.Err = KindCancelled, context.Cause(ctx)
	case errors.As(err, &dr) || errors.As(err, &drv):
		if dr == nil {
			dr = &drv
		}
		de.Kind, de.Err = KindResponse, nil
		de.Code, de.Reason, de.Cause = dr.Res.StatusCode, dr.Res.Reason, reasonCause(dr.Res)
		if de.Code == 401 || de.Code == 407 {
			de.Kind, de.Err = KindAuth, errAuthFailed
		}
	default:
		de.Kind = KindTransport
	}
	if dr != nil && dr.Res != nil {
		call.noteDiversion(dr.Res)
	}
	de.Diversion = call.Diversion()
	log.Info("not answered", "kind", de.Kind, "code", de.Code, "reason", de.Reason, "q850", de.Cause, "err", de.Err)
	return nil, de
}

func (u *UA) answered(ctx context.Context, call *Call, log interface {
	Info(string, ...any)
}) (*Call, error) {
	sess := call.sess
	res := sess.InviteResponse
	call.Answer = res.Body()
	if len(call.Answer) == 0 {
		// Some gateways put the SDP in a 183 only and send the 200 without
		// it (strictly that needs 100rel); the 183's SDP is then the answer.
		call.mu.Lock()
		call.Answer = call.earlySDP
		call.mu.Unlock()
	}
	call.Code, call.Reason = res.StatusCode, res.Reason
	call.noteDiversion(res)
	var answerErr error
	if call.opts.Media != nil {
		answerErr = call.opts.Media.StartAnswer(call.Answer)
	}
	// In-dialog requests (an INFO right after our ACK) are taken from now,
	// from the far end of this dialog only: its tag is the 200's To tag.
	call.mu.Lock()
	call.dialog.remoteTag, _ = res.To().Params.Get("tag")
	call.dialog.up = true
	call.mu.Unlock()
	if err := sess.Ack(context.WithoutCancel(ctx)); err != nil {
		// The ACK could not be written (the socket failed), so neither can
		// a BYE, and sipgo refuses one for a dialog it has not confirmed.
		// The far end ends its leg itself when no ACK comes (RFC 3261
		// §13.3.1.4: it gives up retransmitting the 200 after 64*T1 and
		// sends BYE).
		log.Info("ACK not sent", "err", err)
		call.end(false)
		u.forget(call.callID)
		return nil, &DialError{Kind: KindTransport, Code: res.StatusCode, Reason: res.Reason, Err: fmt.Errorf("sending ACK: %w", err)}
	}
	if answerErr != nil {
		log.Info("answer refused; hanging up", "err", answerErr)
		hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		_ = call.Hangup(hctx)
		cancel()
		return nil, &DialError{Kind: KindTransport, Code: res.StatusCode, Reason: res.Reason, Err: answerErr}
	}
	log.Info("answered", "code", res.StatusCode)
	return call, nil
}

// invite builds the INVITE.
func (u *UA) invite(number string, offer []byte) (*sip.Request, error) {
	req := sip.NewRequest(sip.INVITE, u.trunkURI(number))
	id, err := newCallID()
	if err != nil {
		return nil, err
	}
	tag, err := newTag()
	if err != nil {
		return nil, err
	}
	callID := sip.CallIDHeader(id)
	req.AppendHeader(&callID)
	fromURI, err := u.identityURI(u.cfg.From)
	if err != nil {
		return nil, fmt.Errorf("sip.from: %w", err)
	}
	from := &sip.FromHeader{DisplayName: u.cfg.DisplayName, Address: fromURI, Params: sip.NewParams()}
	from.Params.Add("tag", tag)
	req.AppendHeader(from)
	to := &sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: number, Host: u.trunkHost}}
	req.AppendHeader(to)
	if pai := u.cfg.PAssertedIdentity; pai != "" {
		uri, err := u.identityURI(pai)
		if err != nil {
			return nil, fmt.Errorf("sip.p_asserted_identity: %w", err)
		}
		req.AppendHeader(sip.NewHeader("P-Asserted-Identity", "<"+uri.String()+">"))
	}
	req.AppendHeader(sip.NewHeader("Allow", "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE"))
	req.AppendHeader(sip.NewHeader("User-Agent", u.cfg.UserAgent))
	if offer != nil {
		req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
		req.SetBody(offer)
	}
	if err := u.route(req); err != nil {
		return nil, err
	}
	req.SetTransport(u.transportName())
	return req, nil
}

// identityURI turns a From/PAI setting into a URI: a full sip: URI as is,
// otherwise a user part at the trunk's host.
func (u *UA) identityURI(v string) (sip.Uri, error) {
	if v == "" {
		v = "hashcall"
	}
	if strings.HasPrefix(v, "sip:") || strings.HasPrefix(v, "sips:") {
		var uri sip.Uri
		if err := sip.ParseUri(v, &uri); err != nil {
			return sip.Uri{}, fmt.Errorf("%q is not a SIP URI: %w", v, err)
		}
		return uri, nil
	}
	host := u.trunkHost
	if host == "" {
		host = u.host
	}
	return sip.Uri{Scheme: "sip", User: v, Host: host}, nil
}

// checkRealm refuses a digest challenge for another realm than
// sip.trunk.realm, when that is set: our credentials are not sent to
// whatever challenges us.
func (u *UA) checkRealm(r *sip.Response) error {
	want := u.cfg.Trunk.Realm
	if want == "" {
		return nil
	}
	for _, name := range []string{"WWW-Authenticate", "Proxy-Authenticate"} {
		for _, h := range r.GetHeaders(name) {
			c, err := digest.ParseChallenge(h.Value())
			if err != nil {
				return fmt.Errorf("unreadable digest challenge: %w", err)
			}
			if c.Realm != want {
				return fmt.Errorf("the trunk challenged for realm %q, not sip.trunk.realm %q: credentials not sent", c.Realm, want)
			}
		}
	}
	return nil
}

func isStale(r *sip.Response) bool {
	for _, name := range []string{"WWW-Authenticate", "Proxy-Authenticate"} {
		for _, h := range r.GetHeaders(name) {
			if c, err := digest.ParseChallenge(h.Value()); err == nil && c.Stale {
				return true
			}
		}
	}
	return false
}

// reasonCause returns the Q.850 cause of a Reason header (RFC 3326), or 0.
func reasonCause(r *sip.Response) int {
	for _, h := range r.GetHeaders("Reason") {
		if c := ParseQ850(h.Value()); c != 0 {
			return c
		}
	}
	return 0
}

// ParseQ850 returns the cause of a Reason header value such as
// `Q.850;cause=17;text="User busy"`, or 0 when it has none. Several
// comma-separated reasons may share one header (RFC 3326 §2).
func ParseQ850(v string) int {
	for _, reason := range strings.Split(v, ",") {
		parts := strings.Split(reason, ";")
		if !strings.EqualFold(strings.TrimSpace(parts[0]), "Q.850") {
			continue
		}
		for _, p := range parts[1:] {
			k, val, ok := strings.Cut(strings.TrimSpace(p), "=")
			if ok && strings.EqualFold(strings.TrimSpace(k), "cause") {
				if n, err := strconv.Atoi(strings.TrimSpace(val)); err == nil && n > 0 && n < 128 {
					return n
				}
			}
		}
	}
	return 0
}

// sipgoTooManyResponses is the text of the error sipgo's
// DialogClientSession.WaitAnswer returns after 11 responses
// (dialog_client.go, a plain fmt.Errorf: sipgo has no type or sentinel for
// it). TestSipgoTooManyResponsesText pins it to the sipgo in go.mod.
const sipgoTooManyResponses = "more than 10 responses received"

// tooManyResponses reports whether err is sipgo's "more than 10 responses"
// error; the one place that reads sipgo's message text.
func tooManyResponses(err error) bool {
	return err != nil && err.Error() == sipgoTooManyResponses
}

// lateDialog is the dialog of a call we cancelled, kept for a late 2xx,
// and the timer that forgets it.
type lateDialog struct {
	sess  *sipgo.DialogClientSession
	timer *time.Timer
}

// awaitLate keeps the dialog of a call we cancelled for 64*T1, the time a
// far end retransmits an unacknowledged 2xx (RFC 3261 §13.3.1.4). Close
// stops the timers and waits for those already firing.
func (u *UA) awaitLate(id string, sess *sipgo.DialogClientSession) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.closed {
		return
	}
	u.forgetLateLocked(id)
	u.lateWG.Add(1)
	t := time.AfterFunc(64*sip.T1, func() {
		defer u.lateWG.Done()
		u.mu.Lock()
		if l, ok := u.late[id]; ok && l.sess == sess {
			delete(u.late, id)
		}
		u.mu.Unlock()
	})
	u.late[id] = lateDialog{sess: sess, timer: t}
}

// forgetLateLocked removes the late dialog of id and stops its timer; u.mu
// is held. It returns the dialog, nil when there was none.
func (u *UA) forgetLateLocked(id string) *sipgo.DialogClientSession {
	l, ok := u.late[id]
	if !ok {
		return nil
	}
	delete(u.late, id)
	if l.timer.Stop() {
		u.lateWG.Done() // its function will not run
	}
	return l.sess
}

// lateAnswer sees the responses that match no client transaction. A 2xx to
// the INVITE of a call we cancelled (see awaitLate) is acknowledged and hung
// up at once, as in Dial when a 200 crosses our CANCEL; others are dropped
// (retransmissions).
func (u *UA) lateAnswer(r *sip.Response) {
	var sess *sipgo.DialogClientSession
	id := ""
	if h := r.CallID(); h != nil && r.IsSuccess() && r.CSeq() != nil && r.CSeq().MethodName == sip.INVITE {
		id = h.Value()
		u.mu.Lock()
		sess = u.forgetLateLocked(id)
		u.mu.Unlock()
	}
	if sess == nil {
		u.log.Debug("response matches no transaction; dropped", "response", r.StartLine())
		return
	}
	u.logMsg("recv", r)
	ref := callRef(id)
	u.log.Info("200 came after our CANCEL failed; acknowledging and hanging up", "call", ref)
	sess.InviteResponse = r
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := sess.Ack(ctx); err != nil {
		u.log.Info("ACK of a late 200", "call", ref, "err", err)
		return
	}
	if err := sess.Bye(ctx); err != nil {
		u.log.Info("BYE of a late 200", "call", ref, "err", err)
	}
}

func (u *UA) remember(c *Call) {
	u.mu.Lock()
	u.calls[c.callID] = c
	u.mu.Unlock()
}

func (u *UA) forget(id string) {
	u.mu.Lock()
	delete(u.calls, id)
	u.mu.Unlock()
}

func (u *UA) lookup(id string) *Call {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.calls[id]
}
