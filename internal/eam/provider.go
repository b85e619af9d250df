package eam

import (
	"bytes"
	"context"
	"crypto/rand"
	"embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/nyaruka/phonenumbers"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/hashcall/hashcall/internal/directory"
	"github.com/hashcall/hashcall/internal/policy"
	"github.com/hashcall/hashcall/internal/service"
	"github.com/hashcall/hashcall/verify"
)

// maxSessions bounds the sign-ins held at once (each lives SessionTTL).
const maxSessions = 10000

// Scope is the caller scope the provider's verifications run under.
const Scope = "eam"

// The claims of every id_token (Microsoft's external method provider
// reference): acr a single value, amr an array of exactly one.
const (
	ACR = "possessionorinherence"
	AMR = "tel"
)

// Enrolment modes (eam.enrolment).
const (
	EnrolDirectory = "directory"
	EnrolSelf      = "self"
	EnrolOff       = "off"
)

// Options configure the provider.
type Options struct {
	// Issuer is the public base URL, character for character the iss of
	// every token (eam.issuer); the endpoints live under its path.
	Issuer       string
	ClientID     string   // eam.client_id
	RedirectURIs []string // eam.redirect_uris (Entra's reply URLs)
	Hints        *HintVerifier
	// SigningKeys: the first signs, all are published (eam.signing_keys).
	SigningKeys []*SigningKey
	Enrolment   string              // directory (default), self or off
	Directory   directory.Directory // may be nil
	Enrolments  Enrolments
	Claims      Claims
	Service     service.Verifications
	// Regions are the regions offered for self-enrolment
	// (policy.allowed_regions; the first is the default).
	Regions       []string
	DefaultLocale string
	MaxCalls      int           // calls per sign-in, "Call me again" included; default 2
	SessionTTL    time.Duration // how long a sign-in may take; default 5 min
	TokenTTL      time.Duration // the id_token's exp - iat; default 10 min
	// PageDir overrides the logo (logo.png) and texts (<locale>.json).
	PageDir        string
	TrustedProxies []netip.Prefix
	Logger         *slog.Logger
	Registerer     prometheus.Registerer
	Now            func() time.Time
}

// Provider is the external MFA provider: discovery, keys, the
// authorization endpoint and the user's page.
type Provider struct {
	o        Options
	prefix   string // the issuer's path, without a trailing /
	log      *slog.Logger
	texts    map[string]texts
	logo     []byte
	discover []byte
	jwks     []byte
	signer   jose.Signer
	tmpl     *template.Template
	refused  *prometheus.CounterVec
	results  *prometheus.CounterVec

	mu       sync.Mutex
	sessions map[string]*session
}

//go:embed templates static
var assets embed.FS

// New checks opts and returns the provider.
func New(opts Options) (*Provider, error) {
	u, err := url.Parse(opts.Issuer)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("eam: issuer %q: want an https URL without query or fragment", opts.Issuer)
	}
	if opts.ClientID == "" {
		return nil, errors.New("eam: no client_id")
	}
	if len(opts.SigningKeys) == 0 {
		return nil, errors.New("eam: no signing key")
	}
	if opts.Hints == nil || opts.Service == nil || opts.Claims == nil || opts.Enrolments == nil {
		return nil, errors.New("eam: Hints, Service, Claims and Enrolments are required")
	}
	if len(opts.RedirectURIs) == 0 {
		return nil, errors.New("eam: no redirect_uris")
	}
	if opts.Enrolment == "" {
		opts.Enrolment = EnrolDirectory
	}
	if opts.MaxCalls <= 0 {
		opts.MaxCalls = 2
	}
	if opts.SessionTTL <= 0 {
		opts.SessionTTL = 5 * time.Minute
	}
	if opts.TokenTTL <= 0 {
		opts.TokenTTL = 10 * time.Minute
	}
	if opts.DefaultLocale == "" || messages[opts.DefaultLocale] == nil {
		opts.DefaultLocale = Locales[0]
	}
	if len(opts.Regions) == 0 {
		opts.Regions = []string{"GB"}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	p := &Provider{o: opts, prefix: strings.TrimSuffix(u.Path, "/"), log: opts.Logger.With("component", "eam"), sessions: map[string]*session{}}
	if p.texts, err = loadTexts(opts.PageDir); err != nil {
		return nil, fmt.Errorf("eam.page_dir: %w", err)
	}
	if opts.PageDir != "" {
		if b, err := os.ReadFile(filepath.Join(opts.PageDir, "logo.png")); err == nil {
			p.logo = b
		}
	}
	if p.logo == nil {
		p.logo, _ = assets.ReadFile("static/logo.png")
	}
	sk := opts.SigningKeys[0]
	p.signer, err = jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: sk.Key, KeyID: sk.KeyID}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return nil, fmt.Errorf("eam: signer: %w", err)
	}
	if p.jwks, err = json.Marshal(JWKS(opts.SigningKeys)); err != nil {
		return nil, fmt.Errorf("eam: JWKS: %w", err)
	}
	if p.discover, err = json.Marshal(p.Discovery()); err != nil {
		return nil, err
	}
	p.tmpl, err = template.New("").Funcs(template.FuncMap{}).ParseFS(assets, "templates/*.html")
	if err != nil {
		return nil, err
	}
	reg := opts.Registerer
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	p.refused = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "hashcall_eam_refused_total",
		Help: "Authorization requests refused before any call, by reason."}, []string{"reason"})
	p.results = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "hashcall_eam_signins_total",
		Help: "Sign-ins answered to Entra, by result (verified, access_denied, temporarily_unavailable)."}, []string{"result"})
	for _, c := range []prometheus.Collector{p.refused, p.results} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// Discovery is the OpenID Provider metadata (OIDC Discovery 1.0 §3).
type Discovery struct {
	Issuer                string   `json:"issuer"`
	AuthorizationEndpoint string   `json:"authorization_endpoint"`
	JWKSURI               string   `json:"jwks_uri"`
	ScopesSupported       []string `json:"scopes_supported"`
	ResponseTypes         []string `json:"response_types_supported"`
	ResponseModes         []string `json:"response_modes_supported"`
	SubjectTypes          []string `json:"subject_types_supported"`
	SigningAlgs           []string `json:"id_token_signing_alg_values_supported"`
	ClaimsSupported       []string `json:"claims_supported"`
	ClaimsParameter       bool     `json:"claims_parameter_supported"`
	RequestParameter      bool     `json:"request_parameter_supported"`
	RequestURIParameter   bool     `json:"request_uri_parameter_supported"`
}

// Discovery returns the provider's metadata.
func (p *Provider) Discovery() Discovery {
	base := strings.TrimSuffix(p.o.Issuer, "/")
	return Discovery{
		Issuer:                p.o.Issuer,
		AuthorizationEndpoint: base + "/authorize",
		JWKSURI:               base + "/keys",
		ScopesSupported:       []string{"openid"},
		ResponseTypes:         []string{"id_token"},
		ResponseModes:         []string{"form_post"},
		SubjectTypes:          []string{"public"},
		SigningAlgs:           []string{"RS256"},
		ClaimsSupported:       []string{"iss", "aud", "sub", "nonce", "iat", "exp", "acr", "amr", "jti"},
		ClaimsParameter:       true,
	}
}

// Handler serves the provider's endpoints under the issuer's path.
func (p *Provider) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+p.prefix+"/.well-known/openid-configuration", p.static(p.discover, "application/json"))
	mux.HandleFunc("GET "+p.prefix+"/keys", p.static(p.jwks, "application/json"))
	mux.HandleFunc("POST "+p.prefix+"/authorize", p.authorize)
	mux.HandleFunc("GET "+p.prefix+"/authorize", p.authorize)
	mux.HandleFunc("GET "+p.prefix+"/s/{id}", p.page)
	mux.HandleFunc("GET "+p.prefix+"/s/{id}/status", p.status)
	mux.HandleFunc("POST "+p.prefix+"/s/{id}/call", p.call)
	mux.HandleFunc("POST "+p.prefix+"/s/{id}/cancel", p.cancel)
	mux.HandleFunc("POST "+p.prefix+"/s/{id}/done", p.done)
	mux.HandleFunc("GET "+p.prefix+"/static/{file}", p.asset)
	return securityHeaders(mux)
}

// securityHeaders sets the headers every answer carries: nothing cached,
// no framing, no sniffing, no referrer (the page's URL is a capability).
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		if h.Get("Cache-Control") == "" {
			h.Set("Cache-Control", "no-store")
		}
		next.ServeHTTP(w, r)
	})
}

func (p *Provider) static(body []byte, ctype string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", ctype)
		w.Header().Set("Content-Length", fmt.Sprint(len(body)))
		w.Header().Set("Cache-Control", "public, max-age=3600")
		_, _ = w.Write(body)
	}
}

func (p *Provider) asset(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("file")
	var (
		body  []byte
		ctype string
	)
	switch name {
	case "page.js", "post.js":
		body, _ = assets.ReadFile("static/" + name)
		ctype = "text/javascript; charset=utf-8"
	case "page.css":
		body, _ = assets.ReadFile("static/" + name)
		ctype = "text/css; charset=utf-8"
	case "logo.png":
		body, ctype = p.logo, "image/png"
	}
	if body == nil {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("Cache-Control", "public, max-age=3600")
	_, _ = w.Write(body)
}

// authRequest is the authorization request's parameters that the response
// needs.
type authRequest struct {
	ClientID        string
	RedirectURI     string
	Nonce           string
	State           string
	ClientRequestID string
}

// session is one sign-in, from the authorization request to the answer
// posted back to Entra.
type session struct {
	id      string
	created time.Time
	req     authRequest
	hint    Hint
	locale  string
	ip      string

	mu       sync.Mutex
	e164     string // the number being called or to call
	masked   string
	enrol    bool // e164 is to be enrolled once a call to it is verified
	calls    int
	verID    string
	last     *service.Verification // the last verification seen
	outcome  string                // final outcome of the last call, "" while one runs
	verified bool
	answered bool // the answer has been posted back to Entra
	notice   string
}

func (p *Provider) newSessionID() string {
	var b [24]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func (p *Provider) session(r *http.Request) *session {
	id := r.PathValue("id")
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.sessions[id]
	if s == nil || p.o.Now().Sub(s.created) > p.o.SessionTTL {
		return nil
	}
	return s
}

// pageSession is the request's session for a page; without one (unknown
// or expired) it answers the expired page and returns nil.
func (p *Provider) pageSession(w http.ResponseWriter, r *http.Request) *session {
	s := p.session(r)
	if s == nil {
		p.errorPage(w, http.StatusNotFound, pickLocale(r.Header.Get("Accept-Language"), p.o.DefaultLocale), "expired")
	}
	return s
}

// refuse answers a request that cannot be trusted with an error page: none
// of its parameters are posted anywhere.
func (p *Provider) refuse(w http.ResponseWriter, r *http.Request, status int, reason string, err error, locale string) {
	p.refused.WithLabelValues(reason).Inc()
	p.log.Warn("eam: authorization request refused", "reason", reason, "err", err,
		"client_request_id", clean(r.FormValue("client-request-id")), "ip", p.clientIP(r))
	p.errorPage(w, status, locale, "bad_request")
}

func (p *Provider) errorPage(w http.ResponseWriter, status int, locale, msg string) {
	t := p.texts[locale]
	p.render(w, status, "error.html", map[string]any{"T": t, "Lang": locale, "Message": t.T(msg), "Base": p.prefix}, "")
}

// render writes a template with the page's Content-Security-Policy; formTo
// is the one origin forms may post to besides ours.
func (p *Provider) render(w http.ResponseWriter, status int, name string, data any, formTo string) {
	var buf bytes.Buffer
	if err := p.tmpl.ExecuteTemplate(&buf, name, data); err != nil {
		p.log.Error("eam: template", "name", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	formAction := "'self'"
	if formTo != "" {
		formAction += " " + formTo
	}
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "+
		"form-action "+formAction+"; frame-ancestors 'none'; base-uri 'none'")
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// clean bounds a value that goes into logs.
func clean(s string) string {
	if len(s) > 64 {
		s = s[:64]
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, s)
}

// clientIP is the address the request came from: the peer, or with the
// peer a trusted proxy, the last address in X-Forwarded-For that is not a
// trusted proxy.
func (p *Provider) clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	if !p.trusted(host) {
		return host
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		h := strings.TrimSpace(hops[i])
		if h == "" {
			continue
		}
		if !p.trusted(h) {
			return h
		}
	}
	return host
}

func (p *Provider) trusted(ip string) bool {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return false
	}
	a = a.Unmap()
	for _, pf := range p.o.TrustedProxies {
		if pf.Contains(a) {
			return true
		}
	}
	return false
}

func hasToken(list, tok string) bool { return slices.Contains(strings.Fields(list), tok) }

// authorize is the authorization endpoint (OIDC Core 1.0 §3.2.2, response
// mode form_post).
func (p *Provider) authorize(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	locale := pickLocale(r.Header.Get("Accept-Language"), p.o.DefaultLocale)
	if err := r.ParseForm(); err != nil {
		p.refuse(w, r, http.StatusBadRequest, "malformed", err, locale)
		return
	}
	f := r.Form
	req := authRequest{
		ClientID: f.Get("client_id"), RedirectURI: f.Get("redirect_uri"),
		Nonce: f.Get("nonce"), State: f.Get("state"), ClientRequestID: clean(f.Get("client-request-id")),
	}
	// Who may be answered first: nothing is posted to a redirect_uri
	// that is not Entra's, nor for a client that is not ours.
	if req.ClientID != p.o.ClientID {
		p.refuse(w, r, http.StatusBadRequest, "client_id", fmt.Errorf("client_id %q is not eam.client_id", clean(req.ClientID)), locale)
		return
	}
	if !slices.Contains(p.o.RedirectURIs, req.RedirectURI) {
		p.refuse(w, r, http.StatusBadRequest, "redirect_uri", fmt.Errorf("redirect_uri %q is not in eam.redirect_uris", clean(req.RedirectURI)), locale)
		return
	}
	switch {
	case !hasToken(f.Get("scope"), "openid"):
		p.refuse(w, r, http.StatusBadRequest, "scope", errors.New("scope: want openid"), locale)
		return
	case f.Get("response_type") != "id_token":
		p.refuse(w, r, http.StatusBadRequest, "response_type", errors.New("response_type: want id_token"), locale)
		return
	case f.Get("response_mode") != "form_post":
		p.refuse(w, r, http.StatusBadRequest, "response_mode", errors.New("response_mode: want form_post"), locale)
		return
	case req.Nonce == "" || req.State == "" || len(req.Nonce) > 512 || len(req.State) > 4096:
		p.refuse(w, r, http.StatusBadRequest, "nonce_state", errors.New("nonce and state are required"), locale)
		return
	}
	hint, err := p.o.Hints.Verify(r.Context(), f.Get("id_token_hint"))
	if err != nil {
		reason := "hint"
		switch {
		case errors.Is(err, ErrHintSignature):
			reason = "hint_signature"
		case errors.Is(err, ErrHintIssuer):
			reason = "hint_tenant"
		case errors.Is(err, ErrHintAudience):
			reason = "hint_audience"
		case errors.Is(err, ErrHintAge):
			reason = "hint_age"
		}
		p.refuse(w, r, http.StatusBadRequest, reason, err, locale)
		return
	}
	// Each (nonce, state) once: kept as long as a hint with it is accepted.
	fresh, err := p.o.Claims.Claim(r.Context(), req.Nonce, req.State, hint.IssuedAt.Add(p.o.Hints.MaxAge+2*p.o.Hints.Skew+time.Minute))
	if err != nil {
		p.log.Error("eam: claim store", "err", err)
		p.errorPage(w, http.StatusServiceUnavailable, locale, "unavailable")
		return
	}
	if !fresh {
		p.refuse(w, r, http.StatusBadRequest, "replay", errors.New("(nonce, state) used before"), locale)
		return
	}
	s := &session{id: p.newSessionID(), created: p.o.Now(), req: req, hint: hint, locale: locale, ip: p.clientIP(r)}
	p.mu.Lock()
	for id, old := range p.sessions {
		if p.o.Now().Sub(old.created) > p.o.SessionTTL {
			delete(p.sessions, id)
		}
	}
	full := len(p.sessions) >= maxSessions
	if !full {
		p.sessions[s.id] = s
	}
	p.mu.Unlock()
	if full {
		p.log.Warn("eam: too many sign-ins in progress", "max", maxSessions)
		s.mu.Lock()
		p.answerError(w, s, "temporarily_unavailable", "too many sign-ins in progress")
		s.mu.Unlock()
		return
	}

	e164, from := p.numberOf(r.Context(), hint)
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case e164 != "":
		s.e164, s.enrol = e164, from == "directory"
		if errCode := p.startCall(r.Context(), s); errCode != "" {
			p.answerError(w, s, errCode, "the call could not be placed")
			return
		}
	case p.o.Enrolment == EnrolSelf:
		// The page asks for a number.
	default:
		p.log.Info("eam: no number for the user", "tid", hint.TID, "oid", hint.OID, "enrolment", p.o.Enrolment)
		p.answerError(w, s, "access_denied", "no phone number is enrolled for the user")
		return
	}
	http.Redirect(w, r, p.prefix+"/s/"+s.id, http.StatusSeeOther)
}

// numberOf finds the user's number: enrolled, or (enrolment directory or
// self) in the directory by object id, then by UPN. from says which.
func (p *Provider) numberOf(ctx context.Context, h Hint) (e164, from string) {
	n, err := p.o.Enrolments.Enrolled(ctx, h.TID, h.OID)
	if err == nil && n != "" {
		return n, "enrolled"
	}
	if err != nil && !errors.Is(err, ErrNotEnrolled) {
		p.log.Error("eam: enrolment store", "err", err)
	}
	if p.o.Directory == nil || p.o.Enrolment == EnrolOff {
		return "", ""
	}
	for _, key := range []string{h.OID, h.PreferredUsername} {
		if key == "" {
			continue
		}
		e, err := p.o.Directory.Lookup(ctx, key)
		if err == nil {
			num, perr := policy.Parse(e.Number, p.o.Regions[0])
			if perr != nil {
				p.log.Warn("eam: the directory's number does not parse", "user", e.User, "err", perr)
				return "", ""
			}
			return num.E164, "directory"
		}
		if !errors.Is(err, directory.ErrNotFound) {
			p.log.Error("eam: directory", "err", err)
			return "", ""
		}
	}
	return "", ""
}

// startCall asks the service for a call to s.e164 (s.mu held). It returns
// "" when the call started, else the error code to answer Entra with.
func (p *Provider) startCall(ctx context.Context, s *session) string {
	v, err := p.o.Service.Create(ctx, Scope, fmt.Sprintf("%s-%d", s.id, s.calls), service.CreateRequest{
		To: s.e164, Locale: s.locale, Reference: "eam:" + s.req.ClientRequestID,
	})
	if err != nil {
		var se *service.Error
		code := "access_denied"
		if errors.As(err, &se) {
			p.log.Info("eam: call refused", "code", se.Code, "rule", se.Rule, "client_request_id", s.req.ClientRequestID)
			if se.Status >= 500 || se.Status == http.StatusTooManyRequests {
				code = "temporarily_unavailable"
			}
		} else {
			p.log.Error("eam: create", "err", err)
			code = "temporarily_unavailable"
		}
		return code
	}
	s.calls++
	s.verID, s.last, s.outcome, s.masked = v.ID, &v, "", v.To
	return ""
}

// refresh reads the current verification and, once it is final, records
// the outcome and any enrolment (s.mu held).
func (p *Provider) refresh(ctx context.Context, s *session) {
	if s.verID == "" || s.outcome != "" {
		return
	}
	v, err := p.o.Service.Wait(ctx, Scope, s.verID, 0)
	if err != nil {
		return
	}
	s.last = &v
	if v.Status != service.StatusCompleted || v.Result == nil {
		return
	}
	s.outcome = string(v.Outcome)
	if v.Outcome == verify.Verified {
		s.verified = true
		if s.enrol {
			if err := p.o.Enrolments.Enrol(ctx, s.hint.TID, s.hint.OID, s.e164, s.verID); err != nil {
				p.log.Error("eam: enrolment store", "err", err)
			} else {
				p.log.Info("audit: eam enrolment recorded", "tid", s.hint.TID, "oid", s.hint.OID, "to", s.masked,
					"verification", s.verID, "client_request_id", s.req.ClientRequestID)
			}
			s.enrol = false
		}
	}
}

// view is what the page and the status endpoint show.
type view struct {
	Stage    string `json:"stage"` // need_number, calling, ringing, answered, verified, or the failed outcome
	Text     string `json:"text"`
	Final    bool   `json:"final"`
	Verified bool   `json:"verified"`
	Retry    bool   `json:"retry"`
	Finish   bool   `json:"finish"` // the page should post to done now
}

func (p *Provider) viewOf(s *session) view {
	t := p.texts[s.locale]
	switch {
	case s.verID == "":
		return view{Stage: "need_number", Text: t.T("enrol_intro")}
	case s.verified:
		return view{Stage: "verified", Text: t.T("verified"), Final: true, Verified: true, Finish: true}
	case s.outcome != "":
		retry := s.calls < p.o.MaxCalls && s.outcome != string(verify.Cancelled)
		text := t.T(s.outcome)
		if !retry {
			text += " " + t.T("no_more_calls")
		}
		return view{Stage: s.outcome, Text: text, Final: true, Retry: retry, Finish: !retry}
	}
	st := service.StatusCalling
	if s.last != nil {
		st = s.last.Status
	}
	switch st {
	case service.StatusRinging:
		return view{Stage: "ringing", Text: t.T("ringing")}
	case service.StatusAnswered:
		return view{Stage: "answered", Text: t.T("answered")}
	}
	return view{Stage: "calling", Text: t.T("calling_status")}
}

func lastDigits(e164 string, n int) string {
	if len(e164) < n {
		return e164
	}
	return e164[len(e164)-n:]
}

type region struct {
	Code     string
	Dial     int
	Selected bool
}

func (p *Provider) page(w http.ResponseWriter, r *http.Request) {
	s := p.pageSession(w, r)
	if s == nil {
		return
	}
	s.mu.Lock()
	p.refresh(r.Context(), s)
	v := p.viewOf(s)
	data := map[string]any{
		"T": p.texts[s.locale], "Lang": s.locale, "Base": p.prefix, "ID": s.id,
		"User": s.hint.PreferredUsername, "View": v, "Notice": s.notice, "Self": s.verID == "",
		"Ending": lastDigits(s.e164, 3), "Answered": s.answered,
	}
	if s.verID == "" {
		var regions []region
		for i, code := range p.o.Regions {
			regions = append(regions, region{Code: code, Dial: phonenumbers.GetCountryCodeForRegion(code), Selected: i == 0})
		}
		data["Regions"] = regions
	}
	s.notice = ""
	s.mu.Unlock()
	p.render(w, http.StatusOK, "page.html", data, "")
}

func (p *Provider) status(w http.ResponseWriter, r *http.Request) {
	s := p.session(r)
	if s == nil {
		http.Error(w, `{"stage":"expired"}`, http.StatusNotFound)
		return
	}
	s.mu.Lock()
	p.refresh(r.Context(), s)
	v := p.viewOf(s)
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// call places another call ("Call me again"), or with self-enrolment the
// first call to the number the user entered.
func (p *Provider) call(w http.ResponseWriter, r *http.Request) {
	s := p.pageSession(w, r)
	if s == nil {
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 4<<10)
	_ = r.ParseForm()
	back := p.prefix + "/s/" + s.id
	s.mu.Lock()
	defer s.mu.Unlock()
	p.refresh(r.Context(), s)
	if s.answered {
		http.Redirect(w, r, back, http.StatusSeeOther)
		return
	}
	t := p.texts[s.locale]
	switch {
	case s.verID == "" && p.o.Enrolment == EnrolSelf:
		regionCode := r.PostFormValue("region")
		if !slices.Contains(p.o.Regions, regionCode) {
			regionCode = p.o.Regions[0]
		}
		num, err := policy.Parse(r.PostFormValue("number"), regionCode)
		if err != nil {
			s.notice = t.T("bad_number")
			http.Redirect(w, r, back, http.StatusSeeOther)
			return
		}
		s.e164, s.enrol = num.E164, true
		if code := p.startCall(r.Context(), s); code != "" {
			// Refused by policy (premium rate, another country…): nothing
			// is called or enrolled; the user may enter another number.
			p.log.Info("audit: eam self-enrolment refused", "tid", s.hint.TID, "oid", s.hint.OID, "to", num.Masked,
				"client_request_id", s.req.ClientRequestID)
			s.e164, s.enrol = "", false
			s.notice = t.T("refused_number")
			if code == "temporarily_unavailable" {
				s.notice = t.T("unavailable")
			}
			http.Redirect(w, r, back, http.StatusSeeOther)
			return
		}
		p.log.Info("eam: self-enrolment call", "tid", s.hint.TID, "oid", s.hint.OID, "to", num.Masked)
	case s.outcome != "" && !s.verified && s.calls < p.o.MaxCalls:
		if code := p.startCall(r.Context(), s); code != "" {
			p.answerError(w, s, code, "the call could not be placed")
			return
		}
	}
	http.Redirect(w, r, back, http.StatusSeeOther)
}

// cancel ends the call and answers Entra access_denied.
func (p *Provider) cancel(w http.ResponseWriter, r *http.Request) {
	s := p.pageSession(w, r)
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.answered {
		p.errorPage(w, http.StatusGone, s.locale, "expired")
		return
	}
	if s.verID != "" && s.outcome == "" {
		_, _, _ = p.o.Service.Cancel(r.Context(), Scope, s.verID)
	}
	p.answerError(w, s, "access_denied", "the user cancelled")
}

// done answers Entra once the sign-in has an outcome: the id_token when
// verified, access_denied when the calls are used up.
func (p *Provider) done(w http.ResponseWriter, r *http.Request) {
	s := p.pageSession(w, r)
	if s == nil {
		return
	}
	// Without script the user presses "Check again" while the call may
	// still run: wait for its outcome (up to doneWait) before answering.
	s.mu.Lock()
	verID, running := s.verID, s.verID != "" && s.outcome == ""
	s.mu.Unlock()
	if running {
		_, _ = p.o.Service.Wait(r.Context(), Scope, verID, doneWait)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.answered {
		p.errorPage(w, http.StatusGone, s.locale, "expired")
		return
	}
	p.refresh(r.Context(), s)
	v := p.viewOf(s)
	switch {
	case s.verified:
		p.answerToken(w, s)
	case v.Final && !v.Retry:
		p.answerError(w, s, "access_denied", "the call was not verified: "+s.outcome)
	default:
		http.Redirect(w, r, p.prefix+"/s/"+s.id, http.StatusSeeOther)
	}
}

// doneWait bounds how long done waits for a call's outcome.
const doneWait = 25 * time.Second

// idTokenClaims are the response's claims.
type idTokenClaims struct {
	Issuer   string           `json:"iss"`
	Audience string           `json:"aud"`
	Subject  string           `json:"sub"`
	Nonce    string           `json:"nonce"`
	IssuedAt *jwt.NumericDate `json:"iat"`
	Expiry   *jwt.NumericDate `json:"exp"`
	ACR      string           `json:"acr"`
	AMR      []string         `json:"amr"`
	ID       string           `json:"jti"`
}

// token signs the id_token of a verified sign-in and returns it with its
// jti.
func (p *Provider) token(s *session) (string, string, error) {
	now := p.o.Now()
	var b [16]byte
	_, _ = rand.Read(b[:])
	jti := base64.RawURLEncoding.EncodeToString(b[:])
	raw, err := jwt.Signed(p.signer).Claims(idTokenClaims{
		Issuer: p.o.Issuer, Audience: s.req.ClientID, Subject: s.hint.Sub, Nonce: s.req.Nonce,
		IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(p.o.TokenTTL)),
		ACR: ACR, AMR: []string{AMR}, ID: jti,
	}).Serialize()
	return raw, jti, err
}

func (p *Provider) answerToken(w http.ResponseWriter, s *session) {
	raw, jti, err := p.token(s)
	if err != nil {
		p.log.Error("eam: signing", "err", err)
		p.answerError(w, s, "temporarily_unavailable", "signing failed")
		return
	}
	p.audit(s, "verified", jti, "")
	p.post(w, s, map[string]string{"id_token": raw, "state": s.req.State})
}

// answerError posts error (access_denied or temporarily_unavailable) with
// state back to Entra (OIDC Core 1.0 §3.1.2.6).
func (p *Provider) answerError(w http.ResponseWriter, s *session, code, desc string) {
	p.audit(s, code, "", desc)
	p.post(w, s, map[string]string{"error": code, "error_description": desc, "state": s.req.State})
}

type field struct{ Name, Value string }

// post renders the page that posts fields to the redirect_uri (form_post
// response mode): submitted by script, or by its button without one.
func (p *Provider) post(w http.ResponseWriter, s *session, fields map[string]string) {
	s.answered = true
	var fs []field
	for _, k := range []string{"id_token", "error", "error_description", "state"} {
		if v, ok := fields[k]; ok {
			fs = append(fs, field{k, v})
		}
	}
	origin := ""
	if u, err := url.Parse(s.req.RedirectURI); err == nil {
		origin = u.Scheme + "://" + u.Host
	}
	p.render(w, http.StatusOK, "post.html", map[string]any{
		"T": p.texts[s.locale], "Lang": s.locale, "Base": p.prefix, "Action": s.req.RedirectURI, "Fields": fs,
	}, origin)
}

func (p *Provider) audit(s *session, result, jti, desc string) {
	p.results.WithLabelValues(result).Inc()
	p.log.Info("audit: eam sign-in", "result", result, "client_request_id", s.req.ClientRequestID, "jti", jti,
		"tid", s.hint.TID, "oid", s.hint.OID, "to", s.masked, "verification", s.verID, "calls", s.calls,
		"outcome", s.outcome, "ip", s.ip, "description", desc)
}
