package eam

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// Errors of HintVerifier.Verify, matched with errors.Is.
var (
	ErrHintMalformed = errors.New("id_token_hint: not a compact RS256 JWS")
	ErrHintSignature = errors.New("id_token_hint: bad signature or unknown key")
	ErrHintIssuer    = errors.New("id_token_hint: issuer or tenant not accepted")
	ErrHintAudience  = errors.New("id_token_hint: audience not accepted")
	ErrHintAge       = errors.New("id_token_hint: too old or from the future (iat)")
	ErrHintClaims    = errors.New("id_token_hint: missing claims")
)

// Hint is what a verified id_token_hint says about the user.
type Hint struct {
	TID string // tenant id
	OID string // the user's object id: with TID, who the user is
	Sub string // echoed as the response's sub
	// PreferredUsername is the UPN, for display and the directory lookup.
	PreferredUsername string
	IssuedAt          time.Time
	Audience          string
}

// KeySource finds Entra's public signing key by kid.
type KeySource interface {
	Key(ctx context.Context, kid string) (*jose.JSONWebKey, error)
}

// EntraIssuer returns the v2.0 issuer of a tenant:
// https://login.microsoftonline.com/{tid}/v2.0.
func EntraIssuer(tid string) string { return "https://login.microsoftonline.com/" + tid + "/v2.0" }

// HintVerifier checks the id_token_hint Entra sends with the authorization
// request. Entra issues the hint already expired (it is a statement of who
// signed in, not a credential), so exp and nbf are not checked; the hint's
// age is bounded by iat instead.
type HintVerifier struct {
	Keys      KeySource
	Tenants   []string // accepted tid values, lower case
	Audiences []string // accepted aud values
	MaxAge    time.Duration
	Skew      time.Duration
	Now       func() time.Time
}

type hintClaims struct {
	Iss               string           `json:"iss"`
	Aud               jwt.Audience     `json:"aud"`
	Sub               string           `json:"sub"`
	TID               string           `json:"tid"`
	OID               string           `json:"oid"`
	PreferredUsername string           `json:"preferred_username"`
	Iat               *jwt.NumericDate `json:"iat"`
}

// Verify checks raw's signature (RS256 only, key by kid), issuer, tenant,
// audience and age.
func (v *HintVerifier) Verify(ctx context.Context, raw string) (Hint, error) {
	if len(raw) > 16<<10 {
		return Hint{}, fmt.Errorf("%w: longer than 16 KiB", ErrHintMalformed)
	}
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		return Hint{}, fmt.Errorf("%w: %w", ErrHintMalformed, err)
	}
	if len(tok.Headers) != 1 || tok.Headers[0].KeyID == "" {
		return Hint{}, fmt.Errorf("%w: no kid in the header", ErrHintMalformed)
	}
	key, err := v.Keys.Key(ctx, tok.Headers[0].KeyID)
	if err != nil {
		return Hint{}, fmt.Errorf("%w: %w", ErrHintSignature, err)
	}
	var c hintClaims
	if err := tok.Claims(key.Key, &c); err != nil {
		return Hint{}, fmt.Errorf("%w: %w", ErrHintSignature, err)
	}
	tid := strings.ToLower(c.TID)
	if tid == "" || !slices.Contains(v.Tenants, tid) {
		return Hint{}, fmt.Errorf("%w: tid %q is not in eam.tenants", ErrHintIssuer, c.TID)
	}
	if c.Iss != EntraIssuer(c.TID) {
		return Hint{}, fmt.Errorf("%w: iss %q is not %s", ErrHintIssuer, c.Iss, EntraIssuer(c.TID))
	}
	aud := ""
	for _, a := range c.Aud {
		if slices.Contains(v.Audiences, a) {
			aud = a
			break
		}
	}
	if aud == "" {
		return Hint{}, fmt.Errorf("%w: aud %q is not in eam.hint_audiences", ErrHintAudience, []string(c.Aud))
	}
	if c.Iat == nil {
		return Hint{}, fmt.Errorf("%w: iat", ErrHintClaims)
	}
	now := time.Now()
	if v.Now != nil {
		now = v.Now()
	}
	iat := c.Iat.Time()
	if iat.After(now.Add(v.Skew)) || now.Sub(iat) > v.MaxAge+v.Skew {
		return Hint{}, fmt.Errorf("%w: issued at %s, now %s (eam.hint_max_age %s)", ErrHintAge,
			iat.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339), v.MaxAge)
	}
	if c.Sub == "" || c.OID == "" {
		return Hint{}, fmt.Errorf("%w: sub and oid are required", ErrHintClaims)
	}
	return Hint{TID: tid, OID: strings.ToLower(c.OID), Sub: c.Sub, PreferredUsername: c.PreferredUsername,
		IssuedAt: iat, Audience: aud}, nil
}

// ErrUnknownKey is returned by a KeySource that has no key with the kid.
var ErrUnknownKey = errors.New("no key with that kid")

// keySet finds a signing key in a set: RSA keys for signatures only.
func keySet(set *jose.JSONWebKeySet, kid string) (*jose.JSONWebKey, error) {
	for _, k := range set.Key(kid) {
		if k.Use != "" && k.Use != "sig" {
			continue
		}
		if !k.Valid() || !k.IsPublic() {
			continue
		}
		return &k, nil
	}
	return nil, fmt.Errorf("%w %q", ErrUnknownKey, kid)
}

// parseJWKS reads a key set (RFC 7517 §5), skipping keys it cannot use
// (another key type, a malformed entry): one odd key in Entra's set must
// not stop the others from verifying.
func parseJWKS(data []byte) (*jose.JSONWebKeySet, error) {
	var raw struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("JWKS: %w", err)
	}
	var set jose.JSONWebKeySet
	for _, r := range raw.Keys {
		var k jose.JSONWebKey
		if err := json.Unmarshal(r, &k); err != nil {
			continue
		}
		set.Keys = append(set.Keys, k)
	}
	if len(set.Keys) == 0 {
		return nil, errors.New("JWKS: no usable keys")
	}
	return &set, nil
}

// FileKeys is Entra's key set from a file (eam.entra_jwks_file), read
// again when it changes: for offline installs and tests.
type FileKeys struct {
	Path string

	mu  sync.Mutex
	mod time.Time
	set *jose.JSONWebKeySet
}

// Key returns the key with kid.
func (f *FileKeys) Key(_ context.Context, kid string) (*jose.JSONWebKey, error) {
	st, err := os.Stat(f.Path)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.set == nil || !st.ModTime().Equal(f.mod) {
		data, err := os.ReadFile(f.Path)
		if err != nil {
			return nil, err
		}
		set, err := parseJWKS(data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f.Path, err)
		}
		f.set, f.mod = set, st.ModTime()
	}
	return keySet(f.set, kid)
}

// URLKeys is Entra's key set fetched from a URL (eam.entra_jwks_url) and
// cached for TTL; a kid it does not know makes it fetch again at once
// (Entra rolls its keys), but not more than once per MinRefresh, so that
// forged kids cannot make it hammer the URL.
type URLKeys struct {
	URL        string
	Client     *http.Client
	TTL        time.Duration // default 24 h
	MinRefresh time.Duration // default 1 min
	Now        func() time.Time

	mu      sync.Mutex
	set     *jose.JSONWebKeySet
	fetched time.Time
}

// Key returns the key with kid.
func (u *URLKeys) Key(ctx context.Context, kid string) (*jose.JSONWebKey, error) {
	now := time.Now()
	if u.Now != nil {
		now = u.Now()
	}
	ttl, minRefresh := u.TTL, u.MinRefresh
	if ttl <= 0 {
		ttl = 24 * time.Hour
	}
	if minRefresh <= 0 {
		minRefresh = time.Minute
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.set != nil && now.Sub(u.fetched) < ttl {
		k, err := keySet(u.set, kid)
		if err == nil || now.Sub(u.fetched) < minRefresh {
			return k, err
		}
	}
	set, err := u.fetch(ctx)
	if err != nil {
		if u.set != nil { // keep answering from the last good set
			if k, kerr := keySet(u.set, kid); kerr == nil {
				return k, nil
			}
		}
		return nil, err
	}
	u.set, u.fetched = set, now
	return keySet(set, kid)
}

func (u *URLKeys) fetch(ctx context.Context) (*jose.JSONWebKeySet, error) {
	c := u.Client
	if c == nil {
		c = &http.Client{Timeout: 10 * time.Second}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.URL, nil)
	if err != nil {
		return nil, err
	}
	res, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("entra keys %s: %w", u.URL, err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("entra keys %s: %s", u.URL, res.Status)
	}
	data, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("entra keys %s: %w", u.URL, err)
	}
	set, err := parseJWKS(data)
	if err != nil {
		return nil, fmt.Errorf("entra keys %s: %w", u.URL, err)
	}
	return set, nil
}
