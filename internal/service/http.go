package service

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/hashcall/hashcall/internal/policy"
	"github.com/hashcall/hashcall/verify"
)

// OpenAPI is the OpenAPI 3 document of the API, served at /openapi.yaml.
//
//go:embed openapi.yaml
var OpenAPI []byte

// maxBody bounds request bodies.
const maxBody = 16 << 10

// maxWait is the longest long-poll.
const maxWait = 60 * time.Second

// Route is one operation of the API.
type Route struct{ Method, Path string }

// Routes are the API's operations, as the OpenAPI document lists them.
func Routes() []Route {
	return []Route{
		{"POST", "/v1/verifications"},
		{"GET", "/v1/verifications/{id}"},
		{"DELETE", "/v1/verifications/{id}"},
		{"GET", "/healthz"},
		{"GET", "/readyz"},
		{"GET", "/metrics"},
		{"GET", "/openapi.yaml"},
	}
}

// Handler returns the HTTP handler.
func (s *Service) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("POST /v1/verifications", s.auth(s.create))
	mux.Handle("GET /v1/verifications/{id}", s.auth(s.get))
	mux.Handle("DELETE /v1/verifications/{id}", s.auth(s.cancel))
	mux.HandleFunc("/v1/verifications", methodNotAllowed("POST"))
	mux.HandleFunc("/v1/verifications/{id}", methodNotAllowed("GET, DELETE"))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", s.ready)
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.opts.Gatherer, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /openapi.yaml", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/yaml")
		_, _ = w.Write(OpenAPI)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		writeError(w, http.StatusNotFound, "not_found", "no such endpoint")
	})
	return mux
}

func methodNotAllowed(allow string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Allow", allow)
		writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", "allowed: "+allow)
	}
}

type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	var b errorBody
	b.Error.Code, b.Error.Message = code, msg
	writeJSON(w, status, b)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// auth requires a valid bearer token.
func (s *Service) auth(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.authorized(r) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="hashcall"`)
			writeError(w, http.StatusUnauthorized, "unauthorized", "missing or wrong bearer token")
			return
		}
		h(w, r)
	})
}

func (s *Service) ready(w http.ResponseWriter, _ *http.Request) {
	switch {
	case s.Draining():
		writeError(w, http.StatusServiceUnavailable, "draining", "shutting down")
	case !s.opts.Ready():
		writeError(w, http.StatusServiceUnavailable, "trunk_down", "the trunk does not answer (OPTIONS) or we are not registered")
	default:
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	}
}

// CreateRequest is the body of POST /v1/verifications.
type CreateRequest struct {
	To          string `json:"to"`
	Locale      string `json:"locale,omitempty"`
	Reference   string `json:"reference,omitempty"`
	CallbackURL string `json:"callback_url,omitempty"`
}

// DecodeCreate reads and checks a create request body. Its errors are the
// client's: the message says what is wrong.
func DecodeCreate(body []byte) (CreateRequest, error) {
	var req CreateRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return req, fmt.Errorf("body: want a JSON object such as {\"to\":\"+447700900123\"}: %v", err)
	}
	if dec.More() {
		return req, errors.New("body: want a single JSON object")
	}
	if req.To == "" {
		return req, errors.New("to: required, an E.164 number such as +447700900123")
	}
	if len(req.Reference) > 128 {
		return req, fmt.Errorf("reference: at most 128 characters, got %d", len(req.Reference))
	}
	for _, r := range req.Reference {
		if !unicode.IsPrint(r) {
			return req, errors.New("reference: printable characters only")
		}
	}
	if len(req.Locale) > 35 {
		return req, errors.New("locale: want a tag such as en-GB")
	}
	if req.CallbackURL != "" {
		u, err := url.Parse(req.CallbackURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil || len(req.CallbackURL) > 2048 {
			return req, errors.New("callback_url: want an absolute http(s) URL without credentials")
		}
	}
	return req, nil
}

func (s *Service) create(w http.ResponseWriter, r *http.Request) {
	if s.Draining() {
		writeError(w, http.StatusServiceUnavailable, "draining", "shutting down: not taking new verifications")
		return
	}
	body, err := readBody(w, r)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeError(w, http.StatusRequestEntityTooLarge, "body_too_large", fmt.Sprintf("body larger than %d bytes", maxBody))
			return
		}
		writeError(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	req, err := DecodeCreate(body)
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	s.mu.Lock()
	rules := s.rules
	s.mu.Unlock()
	num, err := policy.Parse(req.To, rules.DefaultRegion())
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_number", "to: "+err.Error())
		return
	}
	if req.CallbackURL != "" && !s.callbackAllowed(req.CallbackURL) {
		writeError(w, http.StatusBadRequest, "callback_not_allowed", "callback_url: the host is not in http.callback_hosts")
		return
	}
	// Idempotency: the same key within 24 h returns the same verification.
	idemKey := r.Header.Get("Idempotency-Key")
	if len(idemKey) > 255 {
		writeError(w, http.StatusBadRequest, "bad_request", "Idempotency-Key: at most 255 characters")
		return
	}
	if idemKey != "" {
		idemKey = tokenScope(r) + "\x00" + idemKey
		// Only one request per key at a time: a retry that arrives while
		// the first is still being handled waits for it, then returns its
		// verification (and neither places a call nor counts against the
		// limits).
		e, done := s.claimIdempotency(r.Context(), idemKey)
		if e != nil {
			writeJSON(w, http.StatusAccepted, e.snapshot())
			return
		}
		if done == nil {
			return // the client went away
		}
		defer done()
	}
	locale := req.Locale
	if locale == "" {
		locale = s.opts.DefaultLocale
	}
	set, err := s.opts.Prompts(locale)
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_locale", "locale: "+err.Error())
		return
	}
	if !s.opts.Ready() {
		writeError(w, http.StatusServiceUnavailable, "trunk_down", "the trunk is down; no call was placed")
		return
	}
	if ref := rules.Check(num); ref != nil {
		s.refuse(w, num, ref)
		return
	}
	if ref := s.limiter.Allow(num.E164); ref != nil {
		s.refuse(w, num, ref)
		return
	}
	if !s.slots.acquire(r.Context(), s.opts.QueueWait) {
		s.refuse(w, num, &policy.Refusal{Status: http.StatusTooManyRequests, Rule: policy.RuleConcurrent,
			Message: fmt.Sprintf("%d calls are in progress (policy.max_concurrent)", s.opts.MaxConcurrent), RetryAfter: 5 * time.Second})
		return
	}
	e := &entry{
		v: Verification{
			ID: newID(), Status: StatusQueued, To: num.Masked, Locale: set.Locale,
			Reference: req.Reference, CallbackURL: req.CallbackURL, CreatedAt: time.Now().UTC(),
		},
		e164: num.E164,
		done: make(chan struct{}),
	}
	// Set before e is published: DELETE and Drain read e.cancel.
	ctx, cancel := context.WithCancelCause(s.base)
	e.cancel = cancel
	s.mu.Lock()
	if s.Draining() {
		// The drain began while this request waited for a call slot: Drain
		// may already have stopped waiting for calls, so none may start.
		s.mu.Unlock()
		cancel(nil)
		s.slots.release()
		writeError(w, http.StatusServiceUnavailable, "draining", "shutting down: not taking new verifications")
		return
	}
	// Counted under s.mu, before Drain (which sets draining under s.mu)
	// starts waiting for the calls in flight.
	s.calls.Add(1)
	if idemKey != "" {
		s.idem[idemKey] = idemRecord{id: e.v.ID, expires: time.Now().Add(retention)}
	}
	s.entries[e.v.ID] = e
	s.purgeLocked()
	s.mu.Unlock()
	s.log.Info("verification requested", "id", e.v.ID, "to", num.Masked, "reference", req.Reference, "locale", set.Locale)
	s.start(ctx, e, set)
	writeJSON(w, http.StatusAccepted, e.snapshot())
}

func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	var b bytes.Buffer
	_, err := b.ReadFrom(r.Body)
	return b.Bytes(), err
}

// tokenScope keys idempotency by the caller's token, so two clients' keys
// never collide.
func tokenScope(r *http.Request) string {
	h := r.Header.Get("Authorization")
	sum := hashTokens([]string{h})
	if len(sum) == 0 {
		return ""
	}
	return string(sum[0][:8])
}

func (s *Service) refuse(w http.ResponseWriter, num policy.Number, ref *policy.Refusal) {
	s.metrics.refusals.WithLabelValues(ref.Rule).Inc()
	s.log.Info("verification refused", "to", num.Masked, "rule", ref.Rule, "status", ref.Status)
	code := "policy_refused"
	if ref.Status == http.StatusTooManyRequests {
		code = "rate_limited"
		w.Header().Set("Retry-After", strconv.Itoa(int(ref.RetryAfter.Round(time.Second)/time.Second)))
	}
	writeError(w, ref.Status, code, ref.Rule+": "+ref.Message)
}

// claimIdempotency returns the verification of key, waiting first for a
// request with the same key that is being handled. When there is none it
// claims the key and returns done, to be called when the request has been
// answered; both are nil when ctx ends first.
func (s *Service) claimIdempotency(ctx context.Context, key string) (e *entry, done func()) {
	for {
		s.mu.Lock()
		if rec, ok := s.idem[key]; ok && time.Now().Before(rec.expires) {
			if e := s.entries[rec.id]; e != nil {
				s.mu.Unlock()
				return e, nil
			}
		}
		busy, ok := s.idemBusy[key]
		if !ok {
			ch := make(chan struct{})
			s.idemBusy[key] = ch
			s.mu.Unlock()
			return nil, func() {
				s.mu.Lock()
				delete(s.idemBusy, key)
				s.mu.Unlock()
				close(ch)
			}
		}
		s.mu.Unlock()
		select {
		case <-busy:
		case <-ctx.Done():
			return nil, nil
		}
	}
}

// purgeLocked forgets completed verifications and idempotency keys older
// than the retention.
func (s *Service) purgeLocked() {
	now := time.Now()
	for k, rec := range s.idem {
		if now.After(rec.expires) {
			delete(s.idem, k)
		}
	}
	for id, e := range s.entries {
		e.mu.Lock()
		old := e.v.CompletedAt != nil && now.Sub(*e.v.CompletedAt) > retention
		e.mu.Unlock()
		if old {
			delete(s.entries, id)
		}
	}
}

func (s *Service) lookup(id string) *entry {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.entries[id]
}

func (s *Service) get(w http.ResponseWriter, r *http.Request) {
	e := s.lookup(r.PathValue("id"))
	if e == nil {
		writeError(w, http.StatusNotFound, "not_found", "no verification with that id")
		return
	}
	if ws := r.URL.Query().Get("wait"); ws != "" {
		d, err := parseWait(ws)
		if err != nil {
			writeError(w, http.StatusBadRequest, "bad_request", err.Error())
			return
		}
		timer := time.NewTimer(d)
		defer timer.Stop()
		select {
		case <-e.done:
		case <-timer.C:
		case <-r.Context().Done():
			return
		}
	}
	writeJSON(w, http.StatusOK, e.snapshot())
}

// parseWait reads ?wait=30s (or plain seconds), capped at 60 s.
func parseWait(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil {
		n, nerr := strconv.Atoi(s)
		if nerr != nil {
			return 0, fmt.Errorf("wait: want a duration such as 30s, got %q", s)
		}
		d = time.Duration(n) * time.Second
	}
	if d < 0 {
		return 0, fmt.Errorf("wait: must not be negative")
	}
	return min(d, maxWait), nil
}

func (s *Service) cancel(w http.ResponseWriter, r *http.Request) {
	e := s.lookup(r.PathValue("id"))
	if e == nil {
		writeError(w, http.StatusNotFound, "not_found", "no verification with that id")
		return
	}
	select {
	case <-e.done:
		writeJSON(w, http.StatusOK, e.snapshot()) // already final: nothing to cancel
		return
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
		writeJSON(w, http.StatusOK, e.snapshot())
	case <-timer.C:
		writeJSON(w, http.StatusAccepted, e.snapshot())
	case <-r.Context().Done():
	}
}

// callbackAllowed reports whether the callback URL's host is listed.
func (s *Service) callbackAllowed(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil {
		return false
	}
	for _, h := range s.opts.CallbackHosts {
		if strings.EqualFold(h, u.Hostname()) || strings.EqualFold(h, u.Host) {
			return true
		}
	}
	return false
}
