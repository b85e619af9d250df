package service

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/hashcall/hashcall/internal/policy"
	"github.com/hashcall/hashcall/verify"
)

// Error is a refusal the caller can act on: the HTTP status and code the API
// answers with, a message that says what is wrong, and when to retry (429).
// The doors in front of the service (the HTTP hook, RADIUS, the Entra page)
// map it to their own protocol.
type Error struct {
	Status     int
	Code       string
	Message    string
	RetryAfter time.Duration
	// Rule is the policy rule that refused the request, if one did.
	Rule string
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

func apiError(status int, code, msg string) *Error {
	return &Error{Status: status, Code: code, Message: msg}
}

// Create requests a verification on behalf of scope (the caller's identity:
// a token's digest for the HTTP hook, "radius" or "eam" for the other
// doors). idemKey, when not empty, makes a retry of the same request
// (RequestDigest) with the same key within 24 h return the same
// verification; another request under a used key is refused (422
// idempotency_key_reused). The per-number and global quota is spent only
// when the call is placed. It returns once the call has been started; the
// verification's outcome comes from Wait.
func (s *Service) Create(ctx context.Context, scope, idemKey string, req CreateRequest) (Verification, error) {
	if s.Draining() {
		return Verification{}, apiError(http.StatusServiceUnavailable, "draining", "shutting down: not taking new verifications")
	}
	s.mu.Lock()
	rules := s.rules
	s.mu.Unlock()
	num, err := policy.Parse(req.To, rules.DefaultRegion())
	if err != nil {
		return Verification{}, apiError(http.StatusBadRequest, "bad_number", "to: "+err.Error())
	}
	if req.CallbackURL != "" {
		if err := s.guard.AllowURL(req.CallbackURL); err != nil {
			return Verification{}, apiError(http.StatusBadRequest, "callback_not_allowed", "callback_url: the host is not in http.callback_hosts")
		}
	}
	locale := req.Locale
	if locale == "" {
		locale = s.opts.DefaultLocale
	}
	digest := RequestDigest(http.MethodPost, num.E164, locale, req.Reference, req.CallbackURL)
	// Idempotency: the same key within 24 h returns the same verification.
	if len(idemKey) > 255 {
		return Verification{}, apiError(http.StatusBadRequest, "bad_request", "Idempotency-Key: at most 255 characters")
	}
	if idemKey != "" {
		idemKey = scope + "\x00" + idemKey
		// Only one request per key at a time: a retry that arrives while
		// the first is still being handled waits for it, then returns its
		// verification (and neither places a call nor counts against the
		// limits).
		e, first, done := s.claimIdempotency(ctx, idemKey)
		if e != nil {
			if first != digest {
				s.metrics.refusals.WithLabelValues("idempotency_key_reused").Inc()
				s.log.Info("verification refused", "to", num.Masked, "rule", "idempotency_key_reused", "status", http.StatusUnprocessableEntity, "id", e.v.ID)
				return Verification{}, errIdempotencyReused
			}
			return e.snapshot(), nil
		}
		if done == nil {
			return Verification{}, ctx.Err() // the client went away
		}
		defer done()
	}
	set, err := s.opts.Prompts(locale)
	if err != nil {
		return Verification{}, apiError(http.StatusBadRequest, "bad_locale", "locale: "+err.Error())
	}
	if !s.opts.Ready() {
		return Verification{}, apiError(http.StatusServiceUnavailable, "trunk_down", "the trunk is down; no call was placed")
	}
	if ref := rules.Check(num); ref != nil {
		return Verification{}, s.refuse(num, ref)
	}
	// The quota is held now and spent only once the call is placed: a
	// refusal below (no call slot, a drain) gives it back.
	quota, ref := s.limiter.Reserve(num.E164)
	if ref != nil {
		return Verification{}, s.refuse(num, ref)
	}
	defer quota.Cancel() // a no-op once committed
	if !s.slots.acquire(ctx, s.opts.QueueWait) {
		return Verification{}, s.refuse(num, &policy.Refusal{Status: http.StatusTooManyRequests, Rule: policy.RuleConcurrent,
			Message: fmt.Sprintf("%d calls are in progress (policy.max_concurrent)", s.opts.MaxConcurrent), RetryAfter: 5 * time.Second})
	}
	e := &entry{
		v: Verification{
			ID: newID(), Status: StatusQueued, To: num.Masked, Locale: set.Locale,
			Reference: req.Reference, CallbackURL: req.CallbackURL, CreatedAt: time.Now().UTC(),
		},
		e164:  num.E164,
		scope: scope,
		done:  make(chan struct{}),
	}
	// Set before e is published: DELETE and Drain read e.cancel.
	cctx, cancel := context.WithCancelCause(s.base)
	e.cancel = cancel
	s.mu.Lock()
	if s.Draining() {
		// The drain began while this request waited for a call slot: Drain
		// may already have stopped waiting for calls, so none may start.
		s.mu.Unlock()
		cancel(nil)
		s.slots.release()
		return Verification{}, apiError(http.StatusServiceUnavailable, "draining", "shutting down: not taking new verifications")
	}
	// Counted under s.mu, before Drain (which sets draining under s.mu)
	// starts waiting for the calls in flight.
	s.calls.Add(1)
	if idemKey != "" {
		s.idem[idemKey] = idemRecord{id: e.v.ID, digest: digest, expires: time.Now().Add(retention)}
	}
	s.entries[e.v.ID] = e
	s.purgeLocked()
	quota.Commit()
	s.mu.Unlock()
	s.log.Info("verification requested", "id", e.v.ID, "to", num.Masked, "reference", req.Reference, "locale", set.Locale)
	s.start(cctx, e, set)
	return e.snapshot(), nil
}

// refuse counts and logs a policy refusal and returns it as an *Error.
func (s *Service) refuse(num policy.Number, ref *policy.Refusal) *Error {
	s.metrics.refusals.WithLabelValues(ref.Rule).Inc()
	s.log.Info("verification refused", "to", num.Masked, "rule", ref.Rule, "status", ref.Status)
	code := "policy_refused"
	if ref.Status == http.StatusTooManyRequests {
		code = "rate_limited"
	}
	return &Error{Status: ref.Status, Code: code, Message: ref.Rule + ": " + ref.Message, RetryAfter: ref.RetryAfter, Rule: ref.Rule}
}

var errIdempotencyReused = apiError(http.StatusUnprocessableEntity, "idempotency_key_reused",
	"Idempotency-Key: already used for another request (number, locale, reference or callback_url differ); use a new key for a new request")

// RequestDigest is what an Idempotency-Key is bound to: a SHA-256 over the
// method, the number in E.164, the locale (as requested, or the default),
// the reference and the callback URL, each length-prefixed so that no two
// requests share a digest. A retry with the same key must have the same
// digest.
func RequestDigest(method, e164, locale, reference, callbackURL string) [32]byte {
	h := sha256.New()
	for _, f := range []string{method, e164, strings.ToLower(locale), reference, callbackURL} {
		var n [4]byte
		binary.BigEndian.PutUint32(n[:], uint32(len(f)))
		h.Write(n[:])
		h.Write([]byte(f))
	}
	var d [32]byte
	h.Sum(d[:0])
	return d
}

var errNotFound = apiError(http.StatusNotFound, "not_found", "no verification with that id")

// lookup returns the verification id if scope created it. Another scope's
// verification is not found, exactly as an unknown id.
func (s *Service) lookup(scope, id string) *entry {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.entries[id]
	if e == nil || e.scope != scope {
		return nil
	}
	return e
}

// Wait returns the verification id of scope once it is final, or after wait
// with its current status (wait 0: at once). It returns ctx's error if ctx
// ends first.
func (s *Service) Wait(ctx context.Context, scope, id string, wait time.Duration) (Verification, error) {
	e := s.lookup(scope, id)
	if e == nil {
		return Verification{}, errNotFound
	}
	if wait > 0 {
		timer := time.NewTimer(wait)
		defer timer.Stop()
		select {
		case <-e.done:
		case <-timer.C:
		case <-ctx.Done():
			return Verification{}, ctx.Err()
		}
	}
	return e.snapshot(), nil
}

// Cancel ends the verification id of scope (CANCEL while ringing, BYE once
// answered) and waits up to 10 s for its final outcome; final says whether
// the returned verification is final.
func (s *Service) Cancel(ctx context.Context, scope, id string) (v Verification, final bool, err error) {
	e := s.lookup(scope, id)
	if e == nil {
		return Verification{}, false, errNotFound
	}
	select {
	case <-e.done:
		return e.snapshot(), true, nil // already final: nothing to cancel
	default:
	}
	s.log.Info("verification cancel requested", "id", e.v.ID)
	if e.cancel != nil {
		e.cancel(verify.ErrCancelled)
	}
	timer := time.NewTimer(10 * time.Second)
	defer timer.Stop()
	select {
	case <-e.done:
		return e.snapshot(), true, nil
	case <-timer.C:
		return e.snapshot(), false, nil
	case <-ctx.Done():
		return Verification{}, false, ctx.Err()
	}
}
