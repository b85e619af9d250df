// Package service is hashcall's local HTTP hook: auth services (a RADIUS
// server, an identity provider, a web app) ask it for a verification call
// and read the outcome by long-poll or signed callback. It guards the phone
// bill (policy: allowed regions and number types, rate limits spent only
// by calls really placed, a cap on concurrent calls), binds each
// Idempotency-Key to its request (RequestDigest), keeps each verification
// visible to the token that created it only, sends callbacks only to the
// allowed hosts' addresses (CallbackGuard), contains a panic to its own
// call, exposes Prometheus metrics, and drains gracefully.
package service

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hashcall/hashcall/internal/config"
	"github.com/hashcall/hashcall/internal/policy"
	"github.com/hashcall/hashcall/internal/store"
	"github.com/hashcall/hashcall/numbermatch"
	"github.com/hashcall/hashcall/prompts"
	"github.com/hashcall/hashcall/sip"
	"github.com/hashcall/hashcall/verify"
)

// Caller places one verification call; *verify.Verifier is one.
type Caller interface {
	Run(ctx context.Context, req verify.Request) verify.Result
}

// Options configure the service.
type Options struct {
	Tokens        []string
	CallbackHosts []string
	// CallbackAddresses pin callback hosts to addresses, HOST=IP
	// (http.callback_addresses); see CallbackGuard.
	CallbackAddresses []string
	// CallbackResolver resolves callback hosts; nil is the system's.
	CallbackResolver *net.Resolver
	// CallbackSecret signs callbacks; New refuses callback hosts without
	// one of at least MinCallbackSecret bytes.
	CallbackSecret string
	Rules          policy.Rules
	MaxConcurrent  int           // calls at once; default 50
	QueueWait      time.Duration // how long a request waits for a free call slot before 429; default 2 s
	DefaultLocale  string
	// Prompts returns the prompt set of a locale (checked at start-up).
	Prompts func(locale string) (*prompts.Set, error)
	// Ready reports whether the trunk is reachable or registered.
	Ready func() bool
	// Checks are more dependencies /readyz requires (not Create), such as
	// the RADIUS front's upstream server.
	Checks []Check
	// Mode is the default verification mode, ModeHash (the default) or
	// ModeCode, for requests that do not give one (verify.mode).
	Mode string
	// CodeLength is the digits of a code (verify.code_length); default
	// numbermatch.DefaultLength.
	CodeLength int
	// CodeTTL is how long a code is valid (verify.code_ttl); default
	// numbermatch.DefaultTTL.
	CodeTTL time.Duration
	// CodeHasher keeps the codes as keyed hashes (verify.code_key); nil: a
	// random key for this service.
	CodeHasher *numbermatch.Hasher
	// Failures counts wrong codes per number (policy.max_failed_codes);
	// nil: in memory (tests); serve passes the store's (store.Failures).
	Failures policy.FailureCounter
	// MaxFailedCodes is the wrong codes a number may key in
	// policy.FailureWindow before its requests are refused (422
	// too_many_failures); default policy.DefaultMaxFailed.
	MaxFailedCodes int
	// Clock is the time Failures' window is read at; nil: time.Now. (The
	// window itself is Failures' own.)
	Clock func() time.Time
	// CallbackRetryFor bounds the callback retries; default 5 min.
	CallbackRetryFor time.Duration
	// Store holds the verifications, idempotency keys, rate windows,
	// callbacks and audit log (required).
	Store *store.Store
	// Retention says how long the store keeps what (store.retention,
	// audit.retention); zero fields keep rows for ever.
	Retention store.Retention
	// PollInterval is how often a long-poll for a call another node runs
	// reads the store, and how often due callbacks are looked for;
	// default 250 ms.
	PollInterval time.Duration
	// Hangup ends an interrupted call from its stored state: a BYE for an
	// answered dialog, a CANCEL for a call still ringing (d.Early). Nil:
	// nothing is sent, and that is logged.
	Hangup     func(ctx context.Context, d store.Dialog) error
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	Gatherer   prometheus.Gatherer
}

// Check is a dependency /readyz reports: while Ready returns false, /readyz
// answers 503 with the code Name+"_down".
type Check struct {
	Name  string
	Ready func() bool
}

// Verification modes (verify.mode, the request's "mode").
const (
	ModeHash = "hash" // press # to approve
	ModeCode = "code" // number matching: key the code shown on the screen, then #
)

// Statuses of a verification.
const (
	StatusQueued    = "queued"
	StatusCalling   = "calling"
	StatusRinging   = "ringing"
	StatusAnswered  = "answered"
	StatusCompleted = "completed"
)

// Verification is one requested call, as the API shows it. Once completed
// the call's result is inline (outcome, sip_code, dtmf_source, times, …).
type Verification struct {
	ID          string `json:"id"`
	Status      string `json:"status"`
	To          string `json:"to"` // masked
	Locale      string `json:"locale"`
	Reference   string `json:"reference,omitempty"`
	CallbackURL string `json:"callback_url,omitempty"`
	// Mode is hash or code.
	Mode string `json:"mode"`
	// Code is the code to show on the sign-in screen (mode code), only
	// while the verification is in progress and the code valid: it is
	// never in a completed verification, a callback or a log.
	Code string `json:"code,omitempty"`
	// CodeExpiresAt is when the code stops being valid (mode code).
	CodeExpiresAt *time.Time `json:"code_expires_at,omitempty"`
	CreatedAt     time.Time  `json:"created_at"`
	CompletedAt   *time.Time `json:"completed_at,omitempty"`
	*verify.Result
}

// entry is the service's record of a verification.
type entry struct {
	mu        sync.Mutex
	v         Verification
	e164      string
	numberKey string // the number's HMAC in the store
	scope     string // who created it: only they can read or cancel it
	cancel    context.CancelCauseFunc
	done      chan struct{}
	code      *verify.CodeRequest // mode code's secret, nil in mode hash
}

func (e *entry) snapshot() Verification {
	e.mu.Lock()
	defer e.mu.Unlock()
	v := e.v
	if v.CodeExpiresAt != nil && !time.Now().Before(*v.CodeExpiresAt) {
		v.Code = ""
	}
	if v.Result != nil {
		r := *v.Result
		v.Result = &r
	}
	return v
}

func (e *entry) setStatus(s string) {
	e.mu.Lock()
	if e.v.Status != StatusCompleted {
		e.v.Status = s
	}
	e.mu.Unlock()
}

// Service is the HTTP hook.
type Service struct {
	opts    Options
	caller  Caller
	log     *slog.Logger
	metrics *metrics
	store   *store.Store
	guard   *CallbackGuard
	cbc     *http.Client

	mu     sync.Mutex
	tokens [][32]byte
	rules  policy.Rules
	// entries are the verifications this node runs, and those it
	// finished in the last memoryFor: the fast path for waiting. The
	// store is the truth.
	entries map[string]*entry
	// idemBusy holds the Idempotency-Keys of requests being handled; the
	// channel is closed when the request has been answered.
	idemBusy map[string]chan struct{}

	slots    *slots
	draining atomic.Bool
	base     context.Context
	stopBase context.CancelFunc
	calls    sync.WaitGroup
	// Background loops (callbacks, leases, purge) run in bg until
	// stopBG; Close waits for them.
	bg        sync.WaitGroup
	bgCtx     context.Context
	stopBG    context.CancelFunc
	cbWake    chan struct{}
	statuses  chan statusUpdate
	closeOnce sync.Once
}

// memoryFor is how long a finished verification stays in memory.
const memoryFor = 10 * time.Minute

// MinCallbackSecret is the shortest callback secret accepted with callback
// hosts (bytes); the one home of the figure is internal/config.
const MinCallbackSecret = config.MinCallbackSecret

// ErrCallbackSecret: callback hosts are configured without a long enough
// secret to sign callbacks with.
var ErrCallbackSecret = fmt.Errorf("http.callback_secret: required, at least %d bytes, when http.callback_hosts is not empty (callbacks are signed with it)", MinCallbackSecret)

// New returns the service.
func New(caller Caller, opts Options) (*Service, error) {
	if opts.MaxConcurrent <= 0 {
		opts.MaxConcurrent = 50
	}
	if opts.QueueWait <= 0 {
		opts.QueueWait = 2 * time.Second
	}
	if len(opts.CallbackHosts) > 0 && len(opts.CallbackSecret) < MinCallbackSecret {
		return nil, fmt.Errorf("service: %w", ErrCallbackSecret)
	}
	switch opts.Mode {
	case "":
		opts.Mode = ModeHash
	case ModeHash, ModeCode:
	default:
		return nil, fmt.Errorf("service: mode %q: want hash or code", opts.Mode)
	}
	if opts.CodeLength == 0 {
		opts.CodeLength = numbermatch.DefaultLength
	}
	if opts.CodeLength < numbermatch.MinLength || opts.CodeLength > numbermatch.MaxLength {
		return nil, fmt.Errorf("service: %w, got %d", numbermatch.ErrLength, opts.CodeLength)
	}
	if opts.CodeTTL <= 0 {
		opts.CodeTTL = numbermatch.DefaultTTL
	}
	if opts.CodeTTL > numbermatch.MaxTTL {
		return nil, fmt.Errorf("service: code TTL %v is over the %v maximum", opts.CodeTTL, numbermatch.MaxTTL)
	}
	if opts.CodeHasher == nil {
		opts.CodeHasher = numbermatch.NewRandomHasher()
	}
	if opts.Failures == nil {
		opts.Failures = policy.NewMemoryFailures(policy.FailureWindow, nil)
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	if opts.MaxFailedCodes <= 0 {
		opts.MaxFailedCodes = policy.DefaultMaxFailed
	}
	if opts.CallbackRetryFor <= 0 {
		opts.CallbackRetryFor = 5 * time.Minute
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Ready == nil {
		opts.Ready = func() bool { return true }
	}
	if opts.DefaultLocale == "" {
		opts.DefaultLocale = "en-GB"
	}
	if opts.Registerer == nil {
		reg := prometheus.NewRegistry()
		opts.Registerer, opts.Gatherer = reg, reg
	}
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, err
	}
	if opts.Prompts == nil {
		return nil, errors.New("service: no prompts")
	}
	if opts.Store == nil {
		return nil, errors.New("service: no store")
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = 250 * time.Millisecond
	}
	s := &Service{
		opts:     opts,
		caller:   caller,
		log:      opts.Logger.With("component", "http"),
		metrics:  m,
		store:    opts.Store,
		rules:    opts.Rules,
		entries:  map[string]*entry{},
		idemBusy: map[string]chan struct{}{},
		slots:    newSlots(opts.MaxConcurrent),
		cbWake:   make(chan struct{}, 1),
		statuses: make(chan statusUpdate, 1024),
	}
	rctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	s.guard, err = NewCallbackGuard(rctx, opts.CallbackHosts, opts.CallbackAddresses, opts.CallbackResolver)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("service: http.callback_hosts: %w", err)
	}
	s.guard.onBlocked = func(reason string) { m.callbackBlocked.WithLabelValues(reason).Inc() }
	s.cbc = s.guard.Client(10 * time.Second)
	s.tokens = hashTokens(opts.Tokens)
	s.base, s.stopBase = context.WithCancel(context.Background())
	s.bgCtx, s.stopBG = context.WithCancel(context.Background())
	return s, nil
}

// Store is the service's store, for the doors that keep their own state
// in it (enrolments, single-use claims).
func (s *Service) Store() *store.Store { return s.store }

// Start recovers what a previous run of this node left (its verifications
// that are not final become interrupted, their callbacks are queued and
// their answered calls are hung up) and starts the background work:
// callbacks, lease renewal and the take-over of dead nodes' calls, and the
// retention purge. Close stops it.
func (s *Service) Start(ctx context.Context) error {
	if err := s.recoverOrphans(ctx, true); err != nil {
		return fmt.Errorf("service: recovery: %w", err)
	}
	s.bg.Add(4)
	go s.statusWriter()
	go s.dispatchCallbacks()
	go s.leaseLoop()
	go s.purgeLoop()
	return nil
}

// Close stops the background work and waits for it. Calls in flight are
// not touched: Drain ends them first.
func (s *Service) Close() {
	s.closeOnce.Do(func() {
		s.stopBG()
		s.log.Info("background work stopping: callbacks being posted finish")
		s.bg.Wait()
	})
}

// recoverOrphans marks interrupted the verifications left without a live
// owner: with own, every one this node owned (at its start); and every one
// whose owner's lease has expired.
func (s *Service) recoverOrphans(ctx context.Context, own bool) error {
	orphans, err := s.store.ClaimOrphans(ctx, own)
	if err != nil {
		return err
	}
	for _, o := range orphans {
		s.mu.Lock()
		_, running := s.entries[o.ID]
		s.mu.Unlock()
		if running {
			continue // ours and alive: the renewal was late
		}
		now := time.Now().UTC()
		res := verify.Result{Outcome: verify.Interrupted, To: o.Request.To, StartedAt: o.CreatedAt, EndedAt: now,
			Error: "hashcall stopped during the call (node " + o.Node + ")"}
		if o.Dialog != nil && !o.Dialog.Early {
			res.SIPCode = 200
		}
		v := s.view(o.Verification)
		v.Status, v.Result, v.CompletedAt = StatusCompleted, &res, &now
		switch err := s.commit(ctx, v, o.Scope, "", o.Request.NumberHMAC); {
		case errors.Is(err, store.ErrFinal):
			continue // another node (or the late call) got there first
		case err != nil:
			return err
		}
		s.metrics.observe(res)
		s.log.Warn("verification interrupted", "id", o.ID, "node", o.Node, "to", o.Request.To, "answered", o.Dialog != nil)
		if o.Dialog != nil {
			// Off the start path: a far end that does not answer must not
			// hold the others up.
			s.bg.Add(1)
			go func() {
				defer s.bg.Done()
				s.hangup(s.bgCtx, o.ID, *o.Dialog)
			}()
		}
	}
	return nil
}

func (s *Service) hangup(ctx context.Context, id string, d store.Dialog) {
	if s.opts.Hangup == nil {
		s.log.Warn("no BYE or CANCEL sent for an interrupted call: no SIP user agent to send it", "id", id)
		return
	}
	hctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := s.opts.Hangup(hctx, d); err != nil {
		s.log.Warn("hanging up an interrupted call failed", "id", id, "err", err)
		return
	}
	s.log.Info("interrupted call hung up", "id", id, "cancel", d.Early)
}

// leaseLoop renews this node's leases (every third of a lease) and looks
// for the calls of nodes whose leases expired (every second, or more often
// for short leases), so a dead node's calls are taken over within about a
// second of the lease's end.
func (s *Service) leaseLoop() {
	defer s.bg.Done()
	lease := s.store.Lease()
	t := time.NewTicker(min(max(lease/10, 50*time.Millisecond), time.Second))
	defer t.Stop()
	var renewed time.Time
	for {
		select {
		case <-s.bgCtx.Done():
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(s.bgCtx, storeOpTimeout)
		if time.Since(renewed) >= lease/3 {
			if err := s.store.RenewLeases(ctx, s.running()); err != nil {
				s.log.Error("store: renewing leases", "err", err)
			} else {
				renewed = time.Now()
			}
		}
		if err := s.recoverOrphans(ctx, false); err != nil && s.bgCtx.Err() == nil {
			s.log.Error("store: taking over interrupted calls", "err", err)
		}
		cancel()
		s.wakeCallbacks()
	}
}

// running returns the ids of the calls this node runs.
func (s *Service) running() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ids []string
	for id, e := range s.entries {
		select {
		case <-e.done:
		default:
			ids = append(ids, id)
		}
	}
	return ids
}

// purgeLoop applies the retention at start and hourly.
func (s *Service) purgeLoop() {
	defer s.bg.Done()
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		ctx, cancel := context.WithTimeout(s.bgCtx, time.Minute)
		p, err := s.store.Purge(ctx, s.opts.Retention)
		cancel()
		switch {
		case err != nil && s.bgCtx.Err() == nil:
			s.log.Error("store: purge", "err", err)
		case p.Verifications > 0 || p.Audit > 0:
			s.log.Info("store: purged", "verifications", p.Verifications, "audit_rows", p.Audit)
		}
		select {
		case <-s.bgCtx.Done():
			return
		case <-t.C:
		}
	}
}

func hashTokens(tokens []string) [][32]byte {
	out := make([][32]byte, 0, len(tokens))
	for _, t := range tokens {
		if t != "" {
			out = append(out, sha256.Sum256([]byte(t)))
		}
	}
	return out
}

// Reload replaces the tokens and the policy rules (SIGHUP). Calls in
// progress are not affected; the rate-limit history is kept.
func (s *Service) Reload(tokens []string, rules policy.Rules) {
	s.mu.Lock()
	s.tokens = hashTokens(tokens)
	s.rules = rules
	s.mu.Unlock()
	s.log.Info("reloaded tokens and policy", "tokens", len(tokens), "regions", rules.Regions, "types", rules.Types)
}

// authorized compares the bearer token with every configured token in
// constant time (hashes first, so lengths do not leak either).
func (s *Service) authorized(r *http.Request) bool {
	const prefix = "Bearer "
	h := r.Header.Get("Authorization")
	if len(h) <= len(prefix) || !equalFoldASCII(h[:len(prefix)], prefix) {
		return false
	}
	given := sha256.Sum256([]byte(h[len(prefix):]))
	s.mu.Lock()
	tokens := s.tokens
	s.mu.Unlock()
	ok := 0
	for i := range tokens {
		ok |= subtle.ConstantTimeCompare(given[:], tokens[i][:])
	}
	return ok == 1
}

func equalFoldASCII(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i]|0x20, b[i]|0x20
		if x != y {
			return false
		}
	}
	return true
}

func newID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return "vrf_" + hex.EncodeToString(b[:])
}

// start launches the call of a new verification in ctx, which e.cancel
// cancels; s.calls counts it already.
func (s *Service) start(ctx context.Context, e *entry, set *prompts.Set) {
	cancel := e.cancel
	s.metrics.active.Inc()
	go func() {
		defer s.calls.Done()
		defer s.slots.release()
		defer cancel(nil)
		s.complete(e, s.run(ctx, e, set))
	}()
}

// run places the call. A panic in it ends only this call: its outcome is
// failed with error "internal", and the panic is logged with its stack and
// counted (hashcall_call_panics_total).
func (s *Service) run(ctx context.Context, e *entry, set *prompts.Set) (res verify.Result) {
	defer func() {
		if p := recover(); p != nil {
			s.metrics.panics.Inc()
			s.log.Error("call panicked", "id", e.v.ID, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			res = verify.Result{Outcome: verify.Failed, Error: "internal"}
		}
	}()
	return s.caller.Run(ctx, verify.Request{To: e.e164, Prompts: set, Code: e.code, OnProgress: func(p verify.Progress) {
		switch p.Stage {
		case verify.StageDialling:
			s.progress(e, StatusCalling)
		case verify.StageRinging, verify.StageEarly:
			s.progress(e, StatusRinging)
			if p.Cancel != nil {
				s.saveCancel(e, *p.Cancel)
			}
		case verify.StageAnswered:
			s.progress(e, StatusAnswered)
			if p.Dialog != nil {
				s.saveDialog(e, *p.Dialog)
			}
		}
	}})
}

// progress records a call's progress in memory and, off the call path, in
// the store (a long-poll on another node shows it): one writer keeps the
// updates in order; when it falls behind, updates are dropped (the final
// outcome is what counts).
func (s *Service) progress(e *entry, status string) {
	e.setStatus(status)
	e.mu.Lock()
	id := e.v.ID
	e.mu.Unlock()
	select {
	case s.statuses <- statusUpdate{id: id, status: status}:
	default:
		s.log.Warn("store: status update dropped (the writer is behind)", "id", id, "status", status)
	}
}

type statusUpdate struct {
	id, status string
	dialog     *store.Dialog
}

// saveDialog stores an answered call's dialog (off the call path, after
// its status), so a BYE can end it should this node stop during the call.
func (s *Service) saveDialog(e *entry, d sip.DialogState) {
	e.mu.Lock()
	id := e.v.ID
	e.mu.Unlock()
	sd := &store.Dialog{CallID: d.CallID, LocalTag: d.LocalTag, RemoteTag: d.RemoteTag, LocalURI: d.From, RemoteURI: d.To,
		RemoteTarget: d.RemoteTarget, RouteSet: d.RouteSet, CSeq: d.CSeq, Transport: d.Transport, LocalContact: d.LocalContact}
	select {
	case s.statuses <- statusUpdate{id: id, dialog: sd}:
	default:
		s.log.Warn("store: dialog not stored (the writer is behind)", "id", id)
	}
}

// saveCancel stores what a CANCEL of a ringing call needs (replaced by the
// dialog once answered).
func (s *Service) saveCancel(e *entry, c sip.CancelState) {
	e.mu.Lock()
	id := e.v.ID
	e.mu.Unlock()
	sd := &store.Dialog{Early: true, CallID: c.CallID, RequestURI: c.RequestURI, Via: c.Via, LocalURI: c.From, RemoteURI: c.To,
		CSeq: c.CSeq, RouteSet: c.Route, Transport: c.Transport, Destination: c.Destination}
	select {
	case s.statuses <- statusUpdate{id: id, dialog: sd}:
	default:
		s.log.Warn("store: ringing call's state not stored (the writer is behind)", "id", id)
	}
}

// CancelState is a stored ringing call as the sip package sends a CANCEL
// from it.
func CancelState(d store.Dialog) sip.CancelState {
	return sip.CancelState{RequestURI: d.RequestURI, Via: d.Via, From: d.LocalURI, To: d.RemoteURI, CallID: d.CallID,
		CSeq: d.CSeq, Route: d.RouteSet, Transport: d.Transport, Destination: d.Destination}
}

// DialogState is a stored dialog as the sip package sends a BYE from it.
func DialogState(d store.Dialog) sip.DialogState {
	return sip.DialogState{CallID: d.CallID, LocalTag: d.LocalTag, RemoteTag: d.RemoteTag, From: d.LocalURI, To: d.RemoteURI,
		RemoteTarget: d.RemoteTarget, RouteSet: d.RouteSet, CSeq: d.CSeq, Transport: d.Transport, LocalContact: d.LocalContact}
}

// statusWriter writes the progress updates until Close.
func (s *Service) statusWriter() {
	defer s.bg.Done()
	write := func(u statusUpdate) {
		ctx, cancel := context.WithTimeout(context.Background(), storeOpTimeout)
		defer cancel()
		var err error
		if u.dialog != nil {
			err = s.store.SaveDialog(ctx, u.id, *u.dialog)
		} else {
			err = s.store.SetStatus(ctx, u.id, u.status)
		}
		if err != nil {
			s.log.Warn("store: progress", "id", u.id, "err", err)
		}
	}
	for {
		select {
		case <-s.bgCtx.Done():
			// Write what is queued before going.
			for {
				select {
				case u := <-s.statuses:
					write(u)
				default:
					return
				}
			}
		case u := <-s.statuses:
			write(u)
		}
	}
}

// complete commits the result with its audit row and queued callback,
// then counts it and wakes the waiters. The metrics are updated before
// waiters see the result, so that a scrape after a long-poll counts the
// call.
func (s *Service) complete(e *entry, res verify.Result) {
	now := time.Now().UTC()
	e.mu.Lock()
	res.To = e.v.To
	v := e.v
	v.Result, v.Status, v.CompletedAt = &res, StatusCompleted, &now
	v.Code = "" // shown while in progress only
	e.code = nil
	e.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), storeOpTimeout)
	err := s.commit(ctx, v, e.scope, e.e164, e.numberKey)
	cancel()
	if errors.Is(err, store.ErrFinal) {
		// Another node marked it interrupted (our lease lapsed): the store
		// is the truth.
		sctx, scancel := context.WithTimeout(context.Background(), storeOpTimeout)
		if sv, gerr := s.store.Get(sctx, v.ID); gerr == nil {
			v = s.view(sv)
			res = *v.Result
		}
		scancel()
		s.log.Warn("verification was already final in the store", "id", v.ID, "outcome", v.Result.Outcome)
	} else if err != nil {
		s.log.Error("store: the outcome could not be committed; it becomes interrupted at the next start", "id", v.ID, "err", err)
	}
	s.metrics.observe(res)
	s.metrics.active.Dec()
	s.log.Info("audit: verification completed",
		"id", v.ID, "reference", v.Reference, "to", v.To, "outcome", res.Outcome,
		"sip_code", res.SIPCode, "sip_reason", res.SIPReason, "q850_cause", res.Q850Cause,
		"dtmf_source", res.DTMFSource, "codec", res.Codec, "keys", res.Keys, "attempts", res.Attempts,
		"started_at", res.StartedAt, "answered_at", res.AnsweredAt, "ended_at", res.EndedAt,
		"setup_ms", res.SetupMS, "hash_to_decision_ms", res.HashToDecisionMS, "mode", v.Mode, "wrong_codes", res.WrongCodes, "error", res.Error)
	e.mu.Lock()
	e.v = v
	e.mu.Unlock()
	close(e.done)
	s.wakeCallbacks()
}

// commit writes a final verification to the store, with its audit row and
// callback, retrying a store that does not answer for a little while.
func (s *Service) commit(ctx context.Context, v Verification, scope, e164, numberKey string) error {
	res := *v.Result
	c := store.Complete{ID: v.ID, Status: StatusCompleted, Result: res,
		Audit: store.AuditEvent{Event: store.EventOutcome, Scope: scope, E164: e164, NumberHMAC: numberKey, Masked: v.To,
			Outcome: string(res.Outcome), Detail: auditDetail(v)}}
	if v.CallbackURL != "" {
		body, err := json.Marshal(v)
		if err != nil {
			return err
		}
		c.Callback = &store.Callback{URL: v.CallbackURL, Body: body, Deadline: time.Now().Add(s.opts.CallbackRetryFor)}
	}
	var err error
	backoff := 100 * time.Millisecond
	for range 5 {
		if err = s.store.Complete(ctx, c); err == nil || errors.Is(err, store.ErrFinal) || errors.Is(err, store.ErrNotFound) {
			return err
		}
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return err
		}
		backoff *= 2
	}
	return err
}

// auditDetail is what an outcome's audit row records beyond the outcome.
func auditDetail(v Verification) map[string]any {
	r := v.Result
	d := map[string]any{"reference": v.Reference, "sip_code": r.SIPCode, "started_at": r.StartedAt, "ended_at": r.EndedAt}
	for k, val := range map[string]any{"sip_reason": r.SIPReason, "dtmf_source": r.DTMFSource, "codec": r.Codec, "keys": r.Keys, "error": r.Error} {
		if val != "" {
			d[k] = val
		}
	}
	if r.Q850Cause != 0 {
		d["q850_cause"] = r.Q850Cause
	}
	if r.AnsweredAt != nil {
		d["answered_at"] = *r.AnsweredAt
	}
	return d
}

// Drain stops taking new verifications (readyz fails, requests get 503),
// lets calls in flight finish for up to grace, then cancels the rest (BYE,
// outcome cancelled) and waits for them, then flushes callbacks until ctx
// ends. It returns when every verification has a final outcome.
func (s *Service) Drain(ctx context.Context, grace time.Duration) {
	// Under s.mu: a request either registered its call (s.calls.Add)
	// before this, or sees draining and places none.
	s.mu.Lock()
	s.draining.Store(true)
	s.mu.Unlock()
	s.log.Info("draining", "grace", grace)
	done := make(chan struct{})
	go func() { s.calls.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(grace):
		s.log.Warn("grace period over: cancelling calls in flight")
		s.mu.Lock()
		for _, e := range s.entries {
			if e.cancel != nil {
				e.cancel(errShutdown)
			}
		}
		s.mu.Unlock()
		<-done
	}
	// Callbacks: one more attempt at those due; what is left stays queued
	// in the store for the next start or another node.
	s.Close()
	s.deliverDue(ctx, ctx)
	s.stopBase()
}

var errShutdown = errors.New("shutting down")

// Draining reports whether Drain has begun.
func (s *Service) Draining() bool { return s.draining.Load() }

// sign returns the X-Hashcall-Signature value for body at time t:
// t=<unix>,v1=<hex HMAC-SHA256 of "t.body">.
func sign(secret string, t time.Time, body []byte) string {
	ts := fmt.Sprint(t.Unix())
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(ts))
	m.Write([]byte("."))
	m.Write(body)
	return "t=" + ts + ",v1=" + hex.EncodeToString(m.Sum(nil))
}

// slots caps concurrent calls; acquire waits a little for a free one.
type slots struct {
	mu   sync.Mutex
	n    int
	max  int
	free chan struct{}
	// onWait, when set (tests, under mu), is called once when an acquire
	// finds no free slot and waits.
	onWait func()
}

func newSlots(n int) *slots { return &slots{max: n, free: make(chan struct{})} }

func (s *slots) acquire(ctx context.Context, wait time.Duration) bool {
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		s.mu.Lock()
		if s.n < s.max {
			s.n++
			s.mu.Unlock()
			return true
		}
		ch := s.free
		if s.onWait != nil {
			s.onWait()
			s.onWait = nil
		}
		s.mu.Unlock()
		select {
		case <-ch:
		case <-timer.C:
			return false
		case <-ctx.Done():
			return false
		}
	}
}

func (s *slots) release() {
	s.mu.Lock()
	s.n--
	close(s.free)
	s.free = make(chan struct{})
	s.mu.Unlock()
}
