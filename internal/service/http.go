package service

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"
	"unicode"

	"github.com/prometheus/client_golang/prometheus/promhttp"
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

func (s *Service) ready(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	switch {
	case s.Draining():
		writeError(w, http.StatusServiceUnavailable, "draining", "shutting down")
	case s.store.Ping(ctx) != nil:
		writeError(w, http.StatusServiceUnavailable, "store_unavailable", "the store does not answer")
	case !s.opts.Ready():
		writeError(w, http.StatusServiceUnavailable, "trunk_down", "the trunk does not answer (OPTIONS) or we are not registered")
	default:
		for _, c := range s.opts.Checks {
			if !c.Ready() {
				writeError(w, http.StatusServiceUnavailable, c.Name+"_down", c.Name+" is not ready")
				return
			}
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	}
}

// CreateRequest is the body of POST /v1/verifications.
type CreateRequest struct {
	To          string `json:"to"`
	Locale      string `json:"locale,omitempty"`
	Reference   string `json:"reference,omitempty"`
	CallbackURL string `json:"callback_url,omitempty"`
	// Mode is hash or code; empty: verify.mode.
	Mode string `json:"mode,omitempty"`
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
	if req.Mode != "" && req.Mode != ModeHash && req.Mode != ModeCode {
		return req, errors.New("mode: want hash or code")
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
	v, err := s.createForToken(r.Context(), tokenScope(r), r.Header.Get("Idempotency-Key"), req)
	if err != nil {
		writeAPIError(w, err)
		return
	}
	writeJSON(w, http.StatusAccepted, v)
}

// writeAPIError answers with err's status and code (an *Error), or 500.
func writeAPIError(w http.ResponseWriter, err error) {
	var ae *Error
	if !errors.As(err, &ae) {
		writeError(w, http.StatusInternalServerError, "internal", "internal error")
		return
	}
	if ae.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(ae.RetryAfter.Round(time.Second)/time.Second)))
	}
	writeError(w, ae.Status, ae.Code, ae.Message)
}

func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	var b bytes.Buffer
	_, err := b.ReadFrom(r.Body)
	return b.Bytes(), err
}

// tokenScope names the caller's token: idempotency keys are kept per scope
// (two clients' keys never collide) and a verification is visible only in
// the scope that created it.
func tokenScope(r *http.Request) string {
	h := r.Header.Get("Authorization")
	sum := hashTokens([]string{h})
	if len(sum) == 0 {
		return ""
	}
	return hex.EncodeToString(sum[0][:8]) // text: the store keeps it
}

// claimIdempotency waits for a request with the same key that is being
// handled on this node, then claims the key and returns done, to be called
// when the request has been answered; nil when ctx ends first.
func (s *Service) claimIdempotency(ctx context.Context, key string) (done func()) {
	for {
		s.mu.Lock()
		busy, ok := s.idemBusy[key]
		if !ok {
			ch := make(chan struct{})
			s.idemBusy[key] = ch
			s.mu.Unlock()
			return func() {
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
			return nil
		}
	}
}

// purgeLocked forgets the verifications finished more than memoryFor ago
// (the store still has them).
func (s *Service) purgeLocked() {
	now := time.Now()
	for id, e := range s.entries {
		e.mu.Lock()
		old := e.v.CompletedAt != nil && now.Sub(*e.v.CompletedAt) > memoryFor
		e.mu.Unlock()
		if old {
			delete(s.entries, id)
		}
	}
}

func (s *Service) get(w http.ResponseWriter, r *http.Request) {
	if s.lookup(tokenScope(r), r.PathValue("id")) == nil {
		if _, err := s.stored(r.Context(), tokenScope(r), r.PathValue("id")); err != nil {
			writeAPIError(w, err)
			return
		}
	}
	var wait time.Duration
	if ws := r.URL.Query().Get("wait"); ws != "" {
		d, err := parseWait(ws)
		if err != nil {
			writeError(w, http.StatusBadRequest, "bad_request", err.Error())
			return
		}
		wait = d
	}
	v, err := s.Wait(r.Context(), tokenScope(r), r.PathValue("id"), wait)
	if err != nil {
		if r.Context().Err() != nil {
			return // the client went away
		}
		writeAPIError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
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
	v, final, err := s.Cancel(r.Context(), tokenScope(r), r.PathValue("id"))
	if err != nil {
		if r.Context().Err() != nil {
			return
		}
		writeAPIError(w, err)
		return
	}
	status := http.StatusOK
	if !final {
		status = http.StatusAccepted
	}
	writeJSON(w, status, v)
}
