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
	"github.com/hashcall/hashcall/prompts"
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
	// CallbackRetryFor bounds the callback retries; default 5 min.
	CallbackRetryFor time.Duration
	Logger           *slog.Logger
	Registerer       prometheus.Registerer
	Gatherer         prometheus.Gatherer
}

// Check is a dependency /readyz reports: while Ready returns false, /readyz
// answers 503 with the code Name+"_down".
type Check struct {
	Name  string
	Ready func() bool
}

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
	ID          string     `json:"id"`
	Status      string     `json:"status"`
	To          string     `json:"to"` // masked
	Locale      string     `json:"locale"`
	Reference   string     `json:"reference,omitempty"`
	CallbackURL string     `json:"callback_url,omitempty"`
	CreatedAt   time.Time  `json:"created_at"`
	CompletedAt *time.Time `json:"completed_at,omitempty"`
	*verify.Result
}

// entry is the service's record of a verification.
type entry struct {
	mu     sync.Mutex
	v      Verification
	e164   string
	scope  string // who created it: only they can read or cancel it
	cancel context.CancelCauseFunc
	done   chan struct{}
}

func (e *entry) snapshot() Verification {
	e.mu.Lock()
	defer e.mu.Unlock()
	v := e.v
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
	limiter *policy.Limiter
	guard   *CallbackGuard
	cbc     *http.Client

	mu      sync.Mutex
	tokens  [][32]byte
	rules   policy.Rules
	entries map[string]*entry
	idem    map[string]idemRecord
	// idemBusy holds the Idempotency-Keys of requests being handled; the
	// channel is closed when the request has been answered.
	idemBusy map[string]chan struct{}

	slots    *slots
	draining atomic.Bool
	base     context.Context
	stopBase context.CancelFunc
	calls    sync.WaitGroup
	cbs      sync.WaitGroup
	cbStop   chan struct{}
	cbOnce   sync.Once
}

type idemRecord struct {
	id      string
	digest  [32]byte // RequestDigest of the request that created id
	expires time.Time
}

// MinCallbackSecret is the shortest callback secret accepted with callback
// hosts (bytes); the one home of the figure is internal/config.
const MinCallbackSecret = config.MinCallbackSecret

// ErrCallbackSecret: callback hosts are configured without a long enough
// secret to sign callbacks with.
var ErrCallbackSecret = fmt.Errorf("http.callback_secret: required, at least %d bytes, when http.callback_hosts is not empty (callbacks are signed with it)", MinCallbackSecret)

// retention is how long completed verifications and idempotency keys live.
const retention = 24 * time.Hour

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
	s := &Service{
		opts:     opts,
		caller:   caller,
		log:      opts.Logger.With("component", "http"),
		metrics:  m,
		limiter:  policy.NewLimiter(opts.Rules, nil),
		rules:    opts.Rules,
		entries:  map[string]*entry{},
		idem:     map[string]idemRecord{},
		idemBusy: map[string]chan struct{}{},
		slots:    newSlots(opts.MaxConcurrent),
		cbStop:   make(chan struct{}),
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
	return s, nil
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
	s.limiter.SetRules(rules)
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
	return s.caller.Run(ctx, verify.Request{To: e.e164, Prompts: set, OnProgress: func(p verify.Progress) {
		switch p.Stage {
		case verify.StageDialling:
			e.setStatus(StatusCalling)
		case verify.StageRinging, verify.StageEarly:
			e.setStatus(StatusRinging)
		case verify.StageAnswered:
			e.setStatus(StatusAnswered)
		}
	}})
}

// complete records the result, counts it, writes the audit record and
// queues the callback. The metrics are updated before waiters see the
// result, so that a scrape after a long-poll returns counts the call.
func (s *Service) complete(e *entry, res verify.Result) {
	s.metrics.observe(res)
	s.metrics.active.Dec()
	now := time.Now()
	e.mu.Lock()
	res.To = e.v.To
	e.v.Result = &res
	e.v.Status = StatusCompleted
	e.v.CompletedAt = &now
	v := e.v
	e.mu.Unlock()
	close(e.done)
	s.log.Info("audit: verification completed",
		"id", v.ID, "reference", v.Reference, "to", v.To, "outcome", res.Outcome,
		"sip_code", res.SIPCode, "sip_reason", res.SIPReason, "q850_cause", res.Q850Cause,
		"dtmf_source", res.DTMFSource, "codec", res.Codec, "keys", res.Keys, "attempts", res.Attempts,
		"started_at", res.StartedAt, "answered_at", res.AnsweredAt, "ended_at", res.EndedAt,
		"setup_ms", res.SetupMS, "hash_to_decision_ms", res.HashToDecisionMS, "error", res.Error)
	if v.CallbackURL != "" {
		s.cbs.Add(1)
		go func() {
			defer s.cbs.Done()
			defer func() {
				if p := recover(); p != nil {
					s.metrics.panics.Inc()
					s.metrics.callbacks.WithLabelValues("failed").Inc()
					s.log.Error("callback panicked", "id", v.ID, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
				}
			}()
			s.callback(e.snapshot())
		}()
	}
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
	// Callbacks: stop waiting between retries, make the last attempts.
	s.cbOnce.Do(func() { close(s.cbStop) })
	cbDone := make(chan struct{})
	go func() { s.cbs.Wait(); close(cbDone) }()
	select {
	case <-cbDone:
	case <-ctx.Done():
		s.log.Warn("callbacks not all delivered before exit")
	}
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
