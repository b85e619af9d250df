package service

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/hashcall/hashcall/internal/policy"
	"github.com/hashcall/hashcall/internal/store"
	"github.com/hashcall/hashcall/numbermatch"
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

var (
	errDraining          = apiError(http.StatusServiceUnavailable, "draining", "shutting down: not taking new verifications")
	errStoreDown         = apiError(http.StatusServiceUnavailable, "store_unavailable", "the store does not answer; no call was placed")
	errIdempotencyReused = apiError(http.StatusUnprocessableEntity, "idempotency_key_reused",
		"Idempotency-Key: already used for another request (number, locale, reference or callback_url differ); use a new key for a new request")
	errNotFound = apiError(http.StatusNotFound, "not_found", "no verification with that id")
)

const (
	// idempotencyTTL is how long an Idempotency-Key is bound.
	idempotencyTTL = 24 * time.Hour
	// storeOpTimeout bounds a store write that must not be lost with the
	// request's context.
	storeOpTimeout = 10 * time.Second
)

// newCode draws e's code (numbermatch, crypto/rand), keeps it as a keyed
// hash for the call and in e.v.Code for the screen while in progress, and
// has the call count each wrong code against the number.
func (s *Service) newCode(e *entry, num policy.Number) error {
	code, err := numbermatch.Generate(nil, s.opts.CodeLength)
	if err != nil {
		return fmt.Errorf("service: %w", err)
	}
	expires := e.v.CreatedAt.Add(s.opts.CodeTTL)
	e.v.Code, e.v.CodeExpiresAt = code, &expires
	e.code = &verify.CodeRequest{
		Secret: s.opts.CodeHasher.Seal(code, expires),
		Failed: func() bool {
			s.metrics.wrongCodes.Inc()
			n, err := s.opts.Failures.AddFailure(num.E164)
			if err != nil {
				s.log.Error("counting a wrong code", "id", e.v.ID, "to", num.Masked, "err", err)
				return false // closed: the count is unknown
			}
			if n >= s.opts.MaxFailedCodes {
				s.log.Info("wrong code limit reached", "id", e.v.ID, "to", num.Masked, "failed_codes", n, "rule", policy.RuleFailedCodes)
				return false
			}
			return true
		},
	}
	return nil
}

// RequestDigest is what an Idempotency-Key is bound to: a SHA-256 over the
// method, the number in E.164, the locale (as requested, or the default),
// the reference, the callback URL and the mode (as requested, or the
// default; mode hash adds nothing, so hash requests digest as before modes
// existed), each length-prefixed so that no two requests share a digest.
// A retry with the same key must have the same digest.
func RequestDigest(method, e164, locale, reference, callbackURL, mode string) [32]byte {
	h := sha256.New()
	fields := []string{method, e164, strings.ToLower(locale), reference, callbackURL}
	if mode != "" && mode != ModeHash {
		fields = append(fields, mode)
	}
	for _, f := range fields {
		var n [4]byte
		binary.BigEndian.PutUint32(n[:], uint32(len(f)))
		h.Write(n[:])
		h.Write([]byte(f))
	}
	var d [32]byte
	h.Sum(d[:0])
	return d
}

// Verifications is the verification API the other doors (RADIUS, EAM)
// use; *Service is one.
type Verifications interface {
	Create(ctx context.Context, scope, idemKey string, req CreateRequest) (Verification, error)
	Wait(ctx context.Context, scope, id string, wait time.Duration) (Verification, error)
	Cancel(ctx context.Context, scope, id string) (Verification, bool, error)
}

var _ Verifications = (*Service)(nil)

// Create requests a verification on behalf of scope (the caller's identity:
// a token's digest for the HTTP hook, "radius" or "eam" for the other
// doors). idemKey, when not empty, makes a retry of the same request
// (RequestDigest) with the same key within 24 h return the same
// verification, on any node and after a restart; another request under a
// used key is refused (422 idempotency_key_reused). The per-number and
// global quota is spent only when the call is placed: it is counted in the
// transaction that commits the verification, once the call slot is held.
// It returns once the verification is committed to the store and its call
// started; the outcome comes from Wait.
func (s *Service) Create(ctx context.Context, scope, idemKey string, req CreateRequest) (Verification, error) {
	return s.createScoped(ctx, scope, idemKey, req, false)
}

// createForToken is Create for a bearer token of the HTTP hook: the
// token's own window (policy.per_token_rate) is counted too.
func (s *Service) createForToken(ctx context.Context, scope, idemKey string, req CreateRequest) (Verification, error) {
	return s.createScoped(ctx, scope, idemKey, req, true)
}

func (s *Service) createScoped(ctx context.Context, scope, idemKey string, req CreateRequest, token bool) (Verification, error) {
	if s.Draining() {
		return Verification{}, errDraining
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
	if len(idemKey) > 255 {
		return Verification{}, apiError(http.StatusBadRequest, "bad_request", "Idempotency-Key: at most 255 characters")
	}
	locale := req.Locale
	if locale == "" {
		locale = s.opts.DefaultLocale
	}
	mode := req.Mode
	if mode == "" {
		mode = s.opts.Mode
	}
	rd := RequestDigest(http.MethodPost, num.E164, locale, req.Reference, req.CallbackURL, mode)
	dig := hex.EncodeToString(rd[:])
	if idemKey != "" {
		// One request per key at a time on this node: a retry that arrives
		// while the first is being handled waits for it, then finds its
		// verification (the store settles races between nodes).
		done := s.claimIdempotency(ctx, scope+"\x00"+idemKey)
		if done == nil {
			return Verification{}, ctx.Err() // the client went away
		}
		defer done()
		sv, err := s.store.LookupKey(ctx, scope, idemKey, dig)
		switch {
		case err == nil:
			return s.current(scope, sv), nil
		case errors.Is(err, store.ErrIdempotencyReused):
			return Verification{}, s.keyReused(ctx, scope, num)
		case !errors.Is(err, store.ErrNotFound):
			s.log.Error("store: idempotency lookup", "err", err)
			return Verification{}, errStoreDown
		}
	}
	set, err := s.opts.Prompts(locale)
	if err != nil {
		return Verification{}, apiError(http.StatusBadRequest, "bad_locale", "locale: "+err.Error())
	}
	if !s.opts.Ready() {
		return Verification{}, apiError(http.StatusServiceUnavailable, "trunk_down", "the trunk is down; no call was placed")
	}
	if ref := rules.Check(num); ref != nil {
		return Verification{}, s.refuse(ctx, scope, num, ref)
	}
	// Wrong codes keyed on this number lock it, whatever the mode: NIST SP
	// 800-63B rev 4 §3.2.2 (a new code must not reset the count).
	if ref := policy.CheckFailures(s.opts.Failures, num.E164, s.opts.MaxFailedCodes, policy.FailureWindow, s.opts.Clock()); ref != nil {
		return Verification{}, s.refuse(ctx, scope, num, ref)
	}
	if !s.slots.acquire(ctx, s.opts.QueueWait) {
		return Verification{}, s.refuse(ctx, scope, num, &policy.Refusal{Status: http.StatusTooManyRequests, Rule: policy.RuleConcurrent,
			Message: fmt.Sprintf("%d calls are in progress (policy.max_concurrent)", s.opts.MaxConcurrent), RetryAfter: 5 * time.Second})
	}
	// Counted under s.mu, before Drain (which sets draining under s.mu)
	// starts waiting for the calls in flight: a verification committed
	// below always gets its call, or its final outcome.
	s.mu.Lock()
	if s.Draining() {
		s.mu.Unlock()
		s.slots.release()
		return Verification{}, errDraining
	}
	s.calls.Add(1)
	s.mu.Unlock()
	placed := false
	defer func() {
		if !placed {
			s.slots.release()
			s.calls.Done()
		}
	}()

	numberKey := s.store.NumberHMAC(num.E164)
	id := newID()
	e := &entry{
		v: Verification{
			ID: id, Status: StatusQueued, To: num.Masked, Locale: set.Locale, Mode: mode,
			Reference: req.Reference, CallbackURL: req.CallbackURL, CreatedAt: time.Now().UTC(),
		},
		e164:      num.E164,
		numberKey: numberKey,
		scope:     scope,
		done:      make(chan struct{}),
	}
	if mode == ModeCode {
		if err := s.newCode(e, num); err != nil {
			return Verification{}, err
		}
	}
	c := store.Create{
		ID: id, Scope: scope, Status: StatusQueued,
		Request: store.Request{To: num.Masked, Locale: set.Locale, Mode: mode, Reference: req.Reference, CallbackURL: req.CallbackURL, NumberHMAC: numberKey},
		IdemKey: idemKey, Digest: dig, IdemTTL: idempotencyTTL,
		Limits: []store.Limit{
			{Kind: "number", Key: numberKey, N: rules.PerNumber.N, Per: rules.PerNumber.Per},
			{Kind: "global", Key: "", N: rules.Global.N, Per: rules.Global.Per},
		},
	}
	if token && rules.PerToken.N > 0 {
		c.Limits = append(c.Limits, store.Limit{Kind: "token", Key: scope, N: rules.PerToken.N, Per: rules.PerToken.Per})
	}
	sv, created, err := s.store.Create(ctx, c)
	var le *store.LimitError
	switch {
	case errors.As(err, &le):
		return Verification{}, s.refuse(ctx, scope, num, limitRefusal(le, rules))
	case errors.Is(err, store.ErrIdempotencyReused):
		return Verification{}, s.keyReused(ctx, scope, num)
	case err != nil:
		s.log.Error("store: create", "err", err)
		return Verification{}, errStoreDown
	case !created:
		return s.current(scope, sv), nil // another request took the key first
	}
	// Set before e is published: DELETE and Drain read e.cancel.
	cctx, cancel := context.WithCancelCause(s.base)
	e.cancel = cancel
	s.mu.Lock()
	s.entries[id] = e
	s.purgeLocked()
	s.mu.Unlock()
	s.log.Info("verification requested", "id", id, "to", num.Masked, "reference", req.Reference, "locale", set.Locale)
	placed = true
	s.start(cctx, e, set)
	return e.snapshot(), nil
}

// keyReused counts, logs and audits a reused Idempotency-Key.
func (s *Service) keyReused(ctx context.Context, scope string, num policy.Number) *Error {
	s.metrics.refusals.WithLabelValues("idempotency_key_reused").Inc()
	s.log.Info("verification refused", "to", num.Masked, "rule", "idempotency_key_reused", "status", http.StatusUnprocessableEntity)
	s.audit(ctx, scope, num, "idempotency_key_reused", http.StatusUnprocessableEntity, errIdempotencyReused.Message)
	return errIdempotencyReused
}

// audit appends a refusal's audit row.
func (s *Service) audit(ctx context.Context, scope string, num policy.Number, rule string, status int, msg string) {
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), storeOpTimeout)
	defer cancel()
	if err := s.store.Audit(actx, store.AuditEvent{Event: store.EventRefusal, Scope: scope, E164: num.E164, Masked: num.Masked,
		Rule: rule, Detail: map[string]any{"status": status, "message": msg}}); err != nil {
		s.log.Error("store: audit of a refusal", "rule", rule, "err", err)
	}
}

// limitRefusal words a full window as the policy rule it enforces.
func limitRefusal(le *store.LimitError, r policy.Rules) *policy.Refusal {
	if le.Kind == "token" {
		return &policy.Refusal{Status: http.StatusTooManyRequests, Rule: policy.RulePerToken,
			Message:    fmt.Sprintf("%d calls for this token in the last %v (policy.per_token_rate %d/%v)", le.Count, r.PerToken.Per, r.PerToken.N, r.PerToken.Per),
			RetryAfter: le.RetryAfter}
	}
	if le.Kind == "number" {
		return &policy.Refusal{Status: http.StatusTooManyRequests, Rule: policy.RulePerNumber,
			Message:    fmt.Sprintf("this number was called %d times in the last %v (policy.per_number_limit %d/%v)", le.Count, r.PerNumber.Per, r.PerNumber.N, r.PerNumber.Per),
			RetryAfter: le.RetryAfter}
	}
	return &policy.Refusal{Status: http.StatusTooManyRequests, Rule: policy.RuleGlobal,
		Message:    fmt.Sprintf("%d calls in the last %v (policy.global_rate %d/%v)", le.Count, r.Global.Per, r.Global.N, r.Global.Per),
		RetryAfter: le.RetryAfter}
}

// refuse counts, logs and audits a policy refusal and returns it as an
// *Error.
func (s *Service) refuse(ctx context.Context, scope string, num policy.Number, ref *policy.Refusal) *Error {
	s.metrics.refusals.WithLabelValues(ref.Rule).Inc()
	s.log.Info("verification refused", "to", num.Masked, "rule", ref.Rule, "status", ref.Status)
	s.audit(ctx, scope, num, ref.Rule, ref.Status, ref.Message)
	code := "policy_refused"
	switch {
	case ref.Rule == policy.RuleFailedCodes:
		code = "too_many_failures"
	case ref.Status == http.StatusTooManyRequests:
		code = "rate_limited"
	}
	return &Error{Status: ref.Status, Code: code, Message: ref.Rule + ": " + ref.Message, RetryAfter: ref.RetryAfter, Rule: ref.Rule}
}

// lookup returns this node's entry for id if scope created it.
func (s *Service) lookup(scope, id string) *entry {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.entries[id]
	if e == nil || e.scope != scope {
		return nil
	}
	return e
}

// stored returns the verification id from the store if scope created it.
// Another scope's verification is not found, exactly as an unknown id.
func (s *Service) stored(ctx context.Context, scope, id string) (store.Verification, error) {
	sv, err := s.store.Get(ctx, id)
	switch {
	case errors.Is(err, store.ErrNotFound) || (err == nil && sv.Scope != scope):
		return store.Verification{}, errNotFound
	case err != nil:
		s.log.Error("store: get", "id", id, "err", err)
		return store.Verification{}, errStoreDown
	}
	return sv, nil
}

// Wait returns the verification id of scope once it is final, or after wait
// with its current status (wait 0: at once). A call this node runs is
// awaited in memory; one another node runs is awaited through the store's
// notices (PostgreSQL LISTEN/NOTIFY), with polling as the fallback. It returns ctx's error if ctx ends
// first.
func (s *Service) Wait(ctx context.Context, scope, id string, wait time.Duration) (Verification, error) {
	if e := s.lookup(scope, id); e != nil {
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
	sv, err := s.stored(ctx, scope, id)
	if err != nil || sv.Final || wait <= 0 {
		return s.view(sv), err
	}
	// The outcome is announced (LISTEN/NOTIFY on PostgreSQL); the store is
	// polled too, every PollInterval, or every few seconds while the
	// notices are known to arrive.
	notice, unwatch := s.store.WatchFinal(id)
	defer unwatch()
	timer := time.NewTimer(wait)
	defer timer.Stop()
	poll := func() time.Duration {
		if s.store.Notifying() {
			return max(s.opts.PollInterval, 5*time.Second)
		}
		return s.opts.PollInterval
	}
	tick := time.NewTimer(poll())
	defer tick.Stop()
	for {
		select {
		case <-timer.C:
			return s.view(sv), nil
		case <-ctx.Done():
			return Verification{}, ctx.Err()
		case <-notice:
		case <-tick.C:
			tick.Reset(poll())
		}
		final, err := s.store.Final(ctx, id)
		if err != nil || final {
			sv2, err := s.stored(ctx, scope, id)
			if err != nil {
				return Verification{}, err
			}
			sv = sv2
			if sv.Final {
				return s.view(sv), nil
			}
		}
	}
}

// Cancel ends the verification id of scope (CANCEL while ringing, BYE once
// answered) and waits up to 10 s for its final outcome; final says whether
// the returned verification is final. Only the node running the call can
// end it; elsewhere the verification is returned as it stands.
func (s *Service) Cancel(ctx context.Context, scope, id string) (v Verification, final bool, err error) {
	e := s.lookup(scope, id)
	if e == nil {
		sv, err := s.stored(ctx, scope, id)
		if err != nil {
			return Verification{}, false, err
		}
		return s.view(sv), sv.Final, nil
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

// current is the verification as this node knows it best: from memory
// when it runs here (with what only memory holds, such as mode code's code
// while in progress), else as stored.
func (s *Service) current(scope string, sv store.Verification) Verification {
	if e := s.lookup(scope, sv.ID); e != nil {
		return e.snapshot()
	}
	return s.view(sv)
}

// view is a stored verification as the API shows it.
func (s *Service) view(sv store.Verification) Verification {
	v := Verification{
		ID: sv.ID, Status: sv.Status, To: sv.Request.To, Locale: sv.Request.Locale, Reference: sv.Request.Reference,
		CallbackURL: sv.Request.CallbackURL, CreatedAt: sv.CreatedAt, CompletedAt: sv.CompletedAt, Result: sv.Result, Mode: sv.Request.Mode,
	}
	if sv.Final {
		v.Status = StatusCompleted
	}
	return v
}
