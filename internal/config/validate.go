package config

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/hashcall/hashcall/internal/policy"
	"github.com/hashcall/hashcall/numbermatch"
)

// maxHeaderValue bounds the values that end up in SIP headers.
const maxHeaderValue = 256

// MaxShutdownGrace is the longest shutdown.grace accepted. A stop then
// takes up to the grace, 30 s more for callbacks and 5 s for the HTTP
// server: the systemd unit's TimeoutStopSec must be at least
// MaxShutdownGrace + StopOverhead.
const MaxShutdownGrace = time.Hour

// After shutdown.grace, hashcall serve gives callbacks CallbackFlush to be
// delivered, then the HTTP server HTTPShutdown to close: a stop takes up
// to the grace + StopOverhead.
const (
	CallbackFlush = 30 * time.Second
	HTTPShutdown  = 5 * time.Second
	StopOverhead  = CallbackFlush + HTTPShutdown
)

// minSecretLen is the shortest bearer token or callback secret accepted.
const minSecretLen = 16

// NumberTypes are the values accepted in policy.allowed_types: the number
// types of libphonenumber, in snake case.
var NumberTypes = []string{
	"mobile", "fixed_line", "fixed_line_or_mobile", "voip", "toll_free", "premium_rate",
	"shared_cost", "personal_number", "pager", "uan", "voicemail",
}

// normalize puts enumerated values in their canonical case, so that UDP,
// pcma, WARN and en_gb are accepted.
func (c *Config) normalize() {
	c.SIP.Transport = strings.ToLower(strings.TrimSpace(c.SIP.Transport))
	for i, s := range c.Media.Codecs {
		c.Media.Codecs[i] = strings.ToUpper(s)
	}
	c.Log.Level = strings.ToLower(strings.TrimSpace(c.Log.Level))
	if c.Log.Level == "warning" {
		c.Log.Level = "warn"
	}
	c.Log.Format = strings.ToLower(strings.TrimSpace(c.Log.Format))
	c.Verify.OnDiversion = strings.ToLower(strings.TrimSpace(c.Verify.OnDiversion))
	c.Verify.Mode = strings.ToLower(strings.TrimSpace(c.Verify.Mode))
	c.Verify.Locale = canonicalLocale(strings.TrimSpace(c.Verify.Locale))
	for i, s := range c.Policy.AllowedRegions {
		c.Policy.AllowedRegions[i] = strings.ToUpper(s)
	}
	for i, s := range c.Policy.AllowedTypes {
		c.Policy.AllowedTypes[i] = strings.ToLower(s)
	}
	c.EAM.Enrolment = strings.ToLower(strings.TrimSpace(c.EAM.Enrolment))
	for i, s := range c.EAM.Tenants {
		c.EAM.Tenants[i] = strings.ToLower(strings.TrimSpace(s))
	}
}

// canonicalLocale writes a language tag as en-GB: language lower case,
// script title case, region upper case; "_" becomes "-".
func canonicalLocale(s string) string {
	parts := strings.Split(strings.ReplaceAll(s, "_", "-"), "-")
	for i, p := range parts {
		switch {
		case i == 0:
			parts[i] = strings.ToLower(p)
		case len(p) == 4:
			parts[i] = strings.ToUpper(p[:1]) + strings.ToLower(p[1:])
		default:
			parts[i] = strings.ToUpper(p)
		}
	}
	return strings.Join(parts, "-")
}

// Validate checks every key and returns all problems joined, one
// [FieldError] per line. Enumerated values must be in canonical case (udp,
// PCMA, info, en-GB), as [Load] leaves them. Besides the values themselves it
// checks that files named by prompts.dir and, with sip.transport tls, by
// sip.tls.* exist and parse. It does not require sip.trunk.address; see
// [Config.RequireTrunk].
func (c *Config) Validate() error {
	fes := c.validate()
	if len(fes) == 0 {
		return nil
	}
	errs := make([]error, len(fes))
	for i, fe := range fes {
		errs[i] = fe
	}
	return errors.Join(errs...)
}

// RequireTrunk returns an error unless sip.trunk.address is set: placing
// calls needs it, whereas other uses of the configuration (such as replaying
// captures) do not.
func (c *Config) RequireTrunk() error {
	if c.SIP.Trunk.Address == "" {
		return &FieldError{
			Key: "sip.trunk.address",
			Err: errors.New("required to place calls: set it to the HOST:PORT of your trunk or PBX, such as pbx.example.org:5060 (or set " + EnvVar("sip.trunk.address") + ")"),
		}
	}
	return nil
}

type checker struct{ errs []*FieldError }

func (ck *checker) add(key string, err error) {
	if err != nil {
		ck.errs = append(ck.errs, &FieldError{Key: key, Err: err})
	}
}

func (ck *checker) addf(key, format string, args ...any) {
	ck.add(key, fmt.Errorf(format, args...))
}

func (c *Config) validate() []*FieldError {
	var ck checker
	c.validateSIP(&ck)
	c.validateMedia(&ck)
	c.validateVerify(&ck)
	c.validateMisc(&ck)
	c.validateHTTP(&ck)
	c.validatePolicy(&ck)
	c.validateStore(&ck)
	c.validateDiagnostics(&ck)
	c.validateDirectory(&ck)
	c.validateEAM(&ck)
	c.validateRadius(&ck)
	return ck.errs
}

// validateDiagnostics: profiles show call data in memory and cost CPU, so
// the listener is loopback only (reach it over SSH).
func (c *Config) validateDiagnostics(ck *checker) {
	l := c.Diagnostics.Listen
	if l == "" {
		return
	}
	ap, err := netip.ParseAddrPort(l)
	if err != nil || !ap.Addr().IsLoopback() {
		ck.addf("diagnostics.listen", "want a loopback IP:PORT such as 127.0.0.1:6060 (profiles are not for the network), got %s", quote(l))
	}
}

func (c *Config) validateSIP(ck *checker) {
	s := &c.SIP
	// Port 0 binds a free port (Contact and Via carry the one chosen).
	if _, err := netip.ParseAddrPort(s.Listen); err != nil {
		ck.addf("sip.listen", "want IP:PORT such as 127.0.0.1:5070 or [::1]:5070, got %s", quote(s.Listen))
	}
	if !slices.Contains([]string{TransportUDP, TransportTCP, TransportTLS}, s.Transport) {
		ck.addf("sip.transport", "want udp, tcp or tls, got %s", quote(s.Transport))
	}
	if s.PublicAddress != "" {
		if err := checkHostOptionalPort(s.PublicAddress); err != nil {
			ck.addf("sip.public_address", "want HOST or HOST:PORT such as 203.0.113.10 or sip.example.org:5060 (%v), got %s", err, quote(s.PublicAddress))
		}
	}
	ck.add("sip.from", checkHeaderValue(s.From, checkFrom))
	ck.add("sip.display_name", checkHeaderValue(s.DisplayName, func(v string) error {
		if strings.ContainsAny(v, `"\`) {
			return fmt.Errorf(`must not contain " or \, got %s`, quote(v))
		}
		return nil
	}))
	ck.add("sip.p_asserted_identity", checkHeaderValue(s.PAssertedIdentity, checkIdentity))
	checkDuration(ck, "sip.ring_timeout", s.RingTimeout, time.Second, 5*time.Minute)
	checkDuration(ck, "sip.max_call_duration", s.MaxCallDuration, 10*time.Second, 2*time.Hour)
	if b := s.UDPReadBuffer; b != 0 && (b < 64<<10 || b > 256<<20) {
		ck.addf("sip.udp_read_buffer", "want 0 (the kernel's default) or 64KiB to 256MiB, got %s", b)
	}

	for _, v := range s.TrustedSources {
		if _, err := parsePrefix(v); err != nil {
			ck.addf("sip.trusted_sources", "want CIDR prefixes or IP addresses such as 192.0.2.0/24, 2001:db8::/32 or 198.51.100.7 (%v), got %s", err, quote(v))
		}
	}
	t := &s.Trunk
	if t.Address != "" {
		if err := checkHostPort(t.Address); err != nil {
			ck.addf("sip.trunk.address", "want HOST:PORT such as pbx.example.org:5060 (%v), got %s", err, quote(t.Address))
		}
	}
	if t.OutboundProxy != "" {
		if err := checkHostPort(t.OutboundProxy); err != nil {
			ck.addf("sip.trunk.outbound_proxy", "want HOST:PORT such as sbc.example.org:5060 (%v), got %s", err, quote(t.OutboundProxy))
		}
	}
	noQuotes := func(v string) error {
		if strings.ContainsAny(v, `"\`) {
			return fmt.Errorf(`must not contain " or \, got %s`, quote(v))
		}
		return nil
	}
	ck.add("sip.trunk.username", checkHeaderValue(t.Username, noQuotes))
	ck.add("sip.trunk.realm", checkHeaderValue(t.Realm, noQuotes))
	if t.Password != "" {
		if t.Username == "" {
			ck.addf("sip.trunk.password", "set without sip.trunk.username")
		}
		ck.add("sip.trunk.password", checkSecret(string(t.Password), 1))
	}
	if t.Realm != "" && t.Username == "" {
		ck.addf("sip.trunk.realm", "set without sip.trunk.username")
	}
	if t.Register {
		if t.Address == "" {
			ck.addf("sip.trunk.register", "registering needs sip.trunk.address")
		}
		if t.Username == "" {
			ck.addf("sip.trunk.register", "registering needs sip.trunk.username (the user of the address-of-record)")
		}
	}
	checkDuration(ck, "sip.trunk.register_expiry", t.RegisterExpiry, time.Minute, 24*time.Hour)
	if t.RegisterExpiry%time.Second != 0 {
		ck.addf("sip.trunk.register_expiry", "want whole seconds (Expires counts seconds), got %s", formatDuration(t.RegisterExpiry))
	}
	if t.OptionsInterval != 0 {
		if t.OptionsInterval < time.Second || t.OptionsInterval > time.Hour {
			ck.addf("sip.trunk.options_interval", "want 0 (off) or a duration between 1s and 1h such as 30s, got %s", formatDuration(t.OptionsInterval))
		}
	}

	if s.Transport == TransportTLS {
		c.validateTLS(ck)
	}
}

func (c *Config) validateTLS(ck *checker) {
	t := &c.SIP.TLS
	switch {
	case t.CertFile != "" && t.KeyFile == "":
		ck.addf("sip.tls.key_file", "required with sip.tls.cert_file")
	case t.CertFile == "" && t.KeyFile != "":
		ck.addf("sip.tls.cert_file", "required with sip.tls.key_file")
	case t.CertFile != "":
		if _, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile); err != nil {
			ck.addf("sip.tls.cert_file", "with sip.tls.key_file: %w", err)
		}
	}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		switch {
		case err != nil:
			ck.add("sip.tls.ca_file", err)
		case !x509.NewCertPool().AppendCertsFromPEM(pem):
			ck.addf("sip.tls.ca_file", "no PEM certificate in %s", t.CAFile)
		}
		if t.InsecureSkipVerify {
			ck.addf("sip.tls.insecure_skip_verify", "contradicts sip.tls.ca_file: either verify the trunk against the CA or do not verify it")
		}
	}
}

func (c *Config) validateMedia(ck *checker) {
	m := &c.Media
	if m.RTPMux && m.SymmetricLatching {
		ck.addf("media.rtp_mux", "cannot be combined with media.symmetric_latching: latching needs a port per call to tell whose call a packet from an unknown address is; turn one of them off")
	}
	if b := m.RTPMuxReadBuffer; b != 0 && (b < 64<<10 || b > 256<<20) {
		ck.addf("media.rtp_mux_read_buffer", "want 0 (the kernel's default) or 64KiB to 256MiB, got %s", b)
	}
	if m.ListenIP != "" {
		if _, err := netip.ParseAddr(m.ListenIP); err != nil {
			ck.addf("media.listen_ip", "want an IP address such as 192.0.2.10, got %s", quote(m.ListenIP))
		}
	}
	if err := m.RTPPorts.Check(); err != nil {
		ck.add("media.rtp_ports", err)
	} else {
		if n := c.Policy.MaxConcurrent; n > 0 && !m.RTPMux && m.RTPPorts.Pairs() < n {
			ck.addf("media.rtp_ports", "%s holds %d RTP/RTCP port pairs, fewer than policy.max_concurrent (%d)", m.RTPPorts, m.RTPPorts.Pairs(), n)
		}
		if lp, err := netip.ParseAddrPort(c.SIP.Listen); err == nil && c.SIP.Transport == TransportUDP &&
			lp.Port() >= m.RTPPorts.Low && lp.Port() <= m.RTPPorts.High {
			if mip := c.MediaListenIP(); !mip.IsValid() || mip == lp.Addr() || mip.IsUnspecified() || lp.Addr().IsUnspecified() {
				ck.addf("sip.listen", "port %d is inside media.rtp_ports %s", lp.Port(), m.RTPPorts)
			}
		}
	}
	bad := len(m.Codecs) == 0
	for i, codec := range m.Codecs {
		if codec != CodecPCMA && codec != CodecPCMU || slices.Contains(m.Codecs[:i], codec) {
			bad = true
		}
	}
	if bad {
		ck.addf("media.codecs", "want a list of PCMA, PCMU (each at most once, in order of preference), got %s", quoteList(m.Codecs))
	}
	if m.TelephoneEventPT < 96 || m.TelephoneEventPT > 127 {
		ck.addf("media.telephone_event_pt", "want a dynamic payload type 96 to 127 such as 101, got %d", m.TelephoneEventPT)
	}
}

var localeRE = regexp.MustCompile(`^[a-z]{2,3}(-[A-Z][a-z]{3})?(-([A-Z]{2}|[0-9]{3}))?$`)

func (c *Config) validateVerify(ck *checker) {
	v := &c.Verify
	checkDuration(ck, "verify.answer_timeout", v.AnswerTimeout, 100*time.Millisecond, 2*time.Minute)
	checkDuration(ck, "verify.min_key_delay", v.MinKeyDelay, 500*time.Millisecond, 10*time.Second)
	if v.Attempts < 1 || v.Attempts > 5 {
		ck.addf("verify.attempts", "want 1 to 5, got %d", v.Attempts)
	}
	if v.OnDiversion != OnDiversionRefuse && v.OnDiversion != OnDiversionFlag {
		ck.addf("verify.on_diversion", "want refuse or flag, got %s", quote(v.OnDiversion))
	}
	if v.Mode != ModeHash && v.Mode != ModeCode {
		ck.addf("verify.mode", "want hash or code, got %s", quote(v.Mode))
	}
	if v.CodeLength < numbermatch.MinLength || v.CodeLength > numbermatch.MaxLength {
		ck.addf("verify.code_length", "want %d to %d digits, got %d", numbermatch.MinLength, numbermatch.MaxLength, v.CodeLength)
	}
	checkDuration(ck, "verify.code_ttl", v.CodeTTL, 30*time.Second, numbermatch.MaxTTL)
	checkDuration(ck, "verify.digit_timeout", v.DigitTimeout, time.Second, 30*time.Second)
	if k := len(v.CodeKey); k > 0 && k < numbermatch.MinKeySize {
		ck.addf("verify.code_key", "want at least %d bytes (openssl rand -hex 32) or empty for a random key per process, got %d bytes", numbermatch.MinKeySize, k)
	}
	if !localeRE.MatchString(v.Locale) {
		ck.addf("verify.locale", "want a language tag such as en-GB, cy-GB or de, got %s", quote(v.Locale))
	}
	if v.Attempts >= 1 && v.AnswerTimeout > 0 && c.SIP.MaxCallDuration > 0 {
		if need := time.Duration(v.Attempts) * v.AnswerTimeout; c.SIP.MaxCallDuration <= need {
			ck.addf("sip.max_call_duration", "%s leaves no time to play the prompts: verify.attempts × verify.answer_timeout alone is %s",
				formatDuration(c.SIP.MaxCallDuration), formatDuration(need))
		}
	}
}

func (c *Config) validateMisc(ck *checker) {
	if d := c.Prompts.Dir; d != "" {
		st, err := os.Stat(d)
		switch {
		case err != nil:
			ck.add("prompts.dir", err)
		case !st.IsDir():
			ck.addf("prompts.dir", "%s is not a directory", d)
		}
	}
	if !slices.Contains([]string{"debug", "info", "warn", "error"}, c.Log.Level) {
		ck.addf("log.level", "want debug, info, warn or error, got %s", quote(c.Log.Level))
	}
	if c.Log.Format != "text" && c.Log.Format != "json" {
		ck.addf("log.format", "want text or json, got %s", quote(c.Log.Format))
	}
	checkDuration(ck, "shutdown.grace", c.Shutdown.Grace, time.Second, MaxShutdownGrace)
}

func (c *Config) validateHTTP(ck *checker) {
	h := &c.HTTP
	if err := checkListen(h.Listen); err != nil {
		ck.addf("http.listen", "want HOST:PORT such as 127.0.0.1:8080 or :8080 (%v), got %s", err, quote(h.Listen))
	}
	for i, tok := range h.Tokens {
		if err := checkSecret(string(tok), minSecretLen); err != nil {
			ck.addf("http.tokens", "token %d: %w", i+1, err)
		}
		if slices.Contains(h.Tokens[:i], tok) {
			ck.addf("http.tokens", "token %d: the same as an earlier one", i+1)
		}
	}
	for _, host := range h.CallbackHosts {
		rest, wild := strings.CutPrefix(host, "*.")
		if err := checkHostOptionalPort(rest); err != nil || strings.ContainsAny(host, "/@") || strings.Contains(rest, "*") {
			ck.addf("http.callback_hosts", "want HOST or HOST:PORT such as auth.example.org or *.example.org, without a scheme or path, got %s", quote(host))
			continue
		}
		name := rest
		if hh, _, err := net.SplitHostPort(rest); err == nil {
			name = hh
		}
		if _, err := netip.ParseAddr(strings.Trim(name, "[]")); err == nil && wild {
			ck.addf("http.callback_hosts", "a wildcard needs a domain name (*.example.org), not an address, got %s", quote(host))
		}
	}
	switch {
	case len(h.CallbackHosts) > 0 && h.CallbackSecret == "":
		ck.addf("http.callback_secret", "required when http.callback_hosts is not empty: callbacks are signed with it; want at least %d bytes of random (openssl rand -hex 32), best in HASHCALL_HTTP_CALLBACK_SECRET", MinCallbackSecret)
	case len(h.CallbackHosts) > 0 && len(h.CallbackSecret) < MinCallbackSecret:
		ck.addf("http.callback_secret", "shorter than %d bytes (callbacks are signed with it; openssl rand -hex 32 makes one)", MinCallbackSecret)
	case h.CallbackSecret != "":
		ck.add("http.callback_secret", checkSecret(string(h.CallbackSecret), MinCallbackSecret))
	}
	for _, a := range h.CallbackAddresses {
		host, _, err := ParseCallbackAddress(a)
		if err != nil {
			ck.add("http.callback_addresses", err)
			continue
		}
		if !slices.ContainsFunc(h.CallbackHosts, func(c string) bool {
			return strings.EqualFold(strings.TrimSuffix(c, "."), host) || strings.HasPrefix(strings.ToLower(c), host+":")
		}) {
			ck.addf("http.callback_addresses", "%s: the host %s is not listed (by name, without *.) in http.callback_hosts", quote(a), host)
		}
	}
}

// MinCallbackSecret is the shortest http.callback_secret accepted (bytes)
// when callbacks are possible: the size of the HMAC-SHA256 output, so the
// key is not the weak part of the signature.
const MinCallbackSecret = 32

// ParseCallbackAddress reads an http.callback_addresses entry, HOST=IP,
// into the host (lower case, no trailing dot) and the address.
func ParseCallbackAddress(s string) (host string, ip netip.Addr, err error) {
	h, a, ok := strings.Cut(s, "=")
	host = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(h)), ".")
	if !ok || host == "" || strings.ContainsAny(host, "*/:@[] ") {
		return "", netip.Addr{}, fmt.Errorf("want HOST=IP such as auth.example.org=192.0.2.10, got %s", quote(s))
	}
	ip, err = netip.ParseAddr(strings.TrimSpace(a))
	if err != nil {
		return "", netip.Addr{}, fmt.Errorf("want HOST=IP such as auth.example.org=192.0.2.10, got %s (%w)", quote(s), err)
	}
	return host, ip.Unmap(), nil
}

func (c *Config) validateStore(ck *checker) {
	st := &c.Store
	switch st.Driver {
	case StoreSQLite:
		if st.Path == "" || !filepath.IsAbs(st.Path) {
			ck.addf("store.path", "want the absolute path of the SQLite file, such as /var/lib/hashcall/hashcall.db, got %s", quote(st.Path))
		}
	case StorePostgres:
		if st.DSN == "" {
			ck.addf("store.dsn", "required with store.driver postgres: a connection string such as postgres://hashcall:PASSWORD@db.example.org:5432/hashcall (or set %s)", EnvVar("store.dsn"))
		}
	default:
		ck.addf("store.driver", "want sqlite or postgres, got %s", quote(st.Driver))
	}
	if st.Node != "" {
		if err := checkHeaderValue(st.Node, nil); err != nil || len(st.Node) > 64 || strings.ContainsAny(st.Node, " \t") {
			ck.addf("store.node", "want a name of at most 64 characters without spaces, such as hashcall-a, got %s", quote(st.Node))
		}
	}
	checkDuration(ck, "store.retention", st.Retention, time.Hour, 10*365*24*time.Hour)
	checkDuration(ck, "store.lease", st.Lease, 5*time.Second, 10*time.Minute)
	checkDuration(ck, "audit.retention", c.Audit.Retention, 24*time.Hour, 20*365*24*time.Hour)
	if c.Audit.HMACKey != "" {
		ck.add("audit.hmac_key", checkSecret(string(c.Audit.HMACKey), minSecretLen))
	}
}

// RequireAuditKey returns an error unless audit.hmac_key is set: the
// daemon writes the audit log, which holds numbers only as HMACs under it.
func (c *Config) RequireAuditKey() error {
	if c.Audit.HMACKey == "" {
		return &FieldError{
			Key: "audit.hmac_key",
			Err: errors.New("required by serve: a random secret of at least 16 characters that keys the numbers' HMACs in the audit log (or set " + EnvVar("audit.hmac_key") + ")"),
		}
	}
	return nil
}

func (c *Config) validatePolicy(ck *checker) {
	p := &c.Policy
	bad := len(p.AllowedRegions) == 0
	for _, r := range p.AllowedRegions {
		if len(r) != 2 || r[0] < 'A' || r[0] > 'Z' || r[1] < 'A' || r[1] > 'Z' {
			bad = true
		}
	}
	if bad {
		ck.addf("policy.allowed_regions", "want a list of ISO 3166-1 region codes such as GB, IE, got %s", quoteList(p.AllowedRegions))
	}
	bad = len(p.AllowedTypes) == 0
	for _, t := range p.AllowedTypes {
		if !slices.Contains(NumberTypes, t) {
			bad = true
		}
	}
	if bad {
		ck.addf("policy.allowed_types", "want a list of %s, got %s", strings.Join(NumberTypes, ", "), quoteList(p.AllowedTypes))
	}
	ck.add("policy.per_number_limit", p.PerNumberLimit.check())
	ck.add("policy.global_rate", p.GlobalRate.check())
	if p.PerTokenRate != (Rate{}) {
		ck.add("policy.per_token_rate", p.PerTokenRate.check())
	}
	if p.MaxConcurrent < 1 || p.MaxConcurrent > 10000 {
		ck.addf("policy.max_concurrent", "want 1 to 10000, got %d", p.MaxConcurrent)
	}
	if p.MaxFailedCodes < 1 || p.MaxFailedCodes > policy.MaxMaxFailedCodes {
		ck.addf("policy.max_failed_codes", "want 1 to %d wrong codes per number in 24 h, got %d", policy.MaxMaxFailedCodes, p.MaxFailedCodes)
	}
}

func checkDuration(ck *checker, key string, d, lo, hi time.Duration) {
	if d < lo || d > hi {
		ck.addf(key, "want a duration between %s and %s, got %s", formatDuration(lo), formatDuration(hi), formatDuration(d))
	}
}

// checkHeaderValue checks a value that goes into a SIP header: no control
// characters (CR, LF and NUL would let it forge headers), valid UTF-8, at
// most maxHeaderValue bytes; then more runs any further check. An empty
// value is fine.
func checkHeaderValue(v string, more func(string) error) error {
	if v == "" {
		return nil
	}
	if !utf8.ValidString(v) {
		return errors.New("want UTF-8 text (it goes into a SIP header)")
	}
	if strings.IndexFunc(v, isControl) >= 0 {
		return fmt.Errorf("must not contain CR, LF, NUL or other control characters (it goes into a SIP header), got %s", quote(v))
	}
	if len(v) > maxHeaderValue {
		return fmt.Errorf("longer than %d bytes (it goes into a SIP header)", maxHeaderValue)
	}
	if more != nil {
		return more(v)
	}
	return nil
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) }

// checkSecret checks a secret without ever quoting it.
func checkSecret(v string, minLen int) error {
	switch {
	case v == Mask:
		return fmt.Errorf("is the redaction placeholder %s, not the secret itself", Mask)
	case strings.ContainsAny(v, "\r\n\x00"):
		return errors.New("contains a line break or NUL (a trailing newline from a secrets file?)")
	case len(v) < minLen:
		return fmt.Errorf("shorter than %d characters", minLen)
	case len(v) > 1024:
		return errors.New("longer than 1024 bytes")
	case minLen > 1 && strings.IndexFunc(v, func(r rune) bool { return r <= ' ' || r == 0x7f || r == ',' }) >= 0:
		return errors.New("contains a space, comma or control character")
	}
	return nil
}

// SIP URI user: unreserved / escaped / user-unreserved (RFC 3261 25.1).
func isUserChar(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' ||
		strings.ContainsRune("-_.!~*'()&=+$,;?/%", r)
}

const fromWant = "want a SIP user such as +441234567890 or a URI such as sip:+441234567890@pbx.example.org"

func checkFrom(v string) error {
	return checkSIPUser(v, fromWant, " (put the display name in sip.display_name)")
}

func checkIdentity(v string) error {
	const want = "want a SIP user, a sip: URI such as sip:+441234567890@pbx.example.org or a tel: URI such as tel:+441234567890"
	if rest, ok := cutPrefixFold(v, "tel:"); ok {
		num, _, _ := strings.Cut(rest, ";")
		if num == "" || strings.IndexFunc(num, func(r rune) bool {
			return !(r >= '0' && r <= '9' || r >= 'A' && r <= 'F' || r >= 'a' && r <= 'f' || strings.ContainsRune("+*#-.()", r))
		}) >= 0 {
			return fmt.Errorf("%s, got %s", want, quote(v))
		}
		return nil
	}
	return checkSIPUser(v, want, "")
}

// checkSIPUser checks that v is a SIP user or sip: URI without a display
// name; the error says want, with nameHint when v has a display name.
func checkSIPUser(v, want, nameHint string) error {
	if strings.ContainsAny(v, "<>\"") {
		return fmt.Errorf("%s%s, got %s", want, nameHint, quote(v))
	}
	if err := checkUserOrSIPURI(v); err != nil {
		return fmt.Errorf("%s (%v), got %s", want, err, quote(v))
	}
	return nil
}

// checkUserOrSIPURI accepts a bare user part or sip:/sips: user@host[:port]
// with optional ;parameters.
func checkUserOrSIPURI(v string) error {
	rest, isURI := cutPrefixFold(v, "sip:")
	if !isURI {
		rest, isURI = cutPrefixFold(v, "sips:")
	}
	if !isURI {
		if strings.IndexFunc(v, func(r rune) bool { return !isUserChar(r) }) >= 0 {
			return errors.New("a user has no spaces, @ or colon")
		}
		return nil
	}
	user, hostpart, ok := strings.Cut(rest, "@")
	if !ok || user == "" {
		return errors.New("the URI needs user@host")
	}
	if strings.IndexFunc(user, func(r rune) bool { return !isUserChar(r) }) >= 0 {
		return errors.New("bad character in the user part")
	}
	hostport, params, _ := strings.Cut(hostpart, ";")
	if strings.IndexFunc(params, func(r rune) bool {
		return !(isUserChar(r) || r == '[' || r == ']' || r == ':')
	}) >= 0 || strings.Contains(params, "?") {
		return errors.New("bad URI parameters")
	}
	if err := checkHostOptionalPort(hostport); err != nil {
		return fmt.Errorf("host: %w", err)
	}
	return nil
}

func cutPrefixFold(s, prefix string) (string, bool) {
	if len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix) {
		return s[len(prefix):], true
	}
	return s, false
}

// checkHostPort checks HOST:PORT with a DNS name or an IP (IPv6 in
// brackets) and a port 1 to 65535.
func checkHostPort(s string) error {
	host, err := splitPort(s)
	if err != nil {
		return err
	}
	return checkHost(host)
}

// splitPort returns the host of HOST:PORT once its port is checked.
func splitPort(s string) (host string, err error) {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return "", errors.New("no port")
	}
	return host, checkPort(port)
}

// checkListen checks a HOST:PORT to listen on: the host may be empty (all
// interfaces), any IP or a DNS name.
func checkListen(s string) error {
	host, err := splitPort(s)
	if err != nil {
		return err
	}
	if _, err := netip.ParseAddr(host); host == "" || err == nil {
		return nil
	}
	return checkHost(host)
}

// checkHostOptionalPort checks HOST or HOST:PORT; a bare IPv6 address is
// accepted too.
func checkHostOptionalPort(s string) error {
	if a, err := netip.ParseAddr(s); err == nil {
		if a.IsUnspecified() {
			return errors.New("an unspecified address")
		}
		return nil
	}
	if strings.Contains(s, ":") {
		return checkHostPort(s)
	}
	return checkHost(s)
}

func checkPort(p string) error {
	n, err := strconv.ParseUint(p, 10, 16)
	if err != nil || n == 0 || strings.HasPrefix(p, "+") {
		return errors.New("port 1 to 65535")
	}
	return nil
}

// checkHost accepts an IP (not 0.0.0.0 or ::) or a DNS name.
func checkHost(h string) error {
	if h == "" {
		return errors.New("no host")
	}
	if a, err := netip.ParseAddr(h); err == nil {
		if a.IsUnspecified() {
			return errors.New("an unspecified address")
		}
		return nil
	}
	name := strings.TrimSuffix(h, ".")
	if len(name) == 0 || len(name) > 253 {
		return errors.New("bad host name")
	}
	for _, label := range strings.Split(name, ".") {
		if len(label) == 0 || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return errors.New("bad host name")
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
				return errors.New("bad host name")
			}
		}
	}
	return nil
}

func quoteList(items []string) string {
	q := make([]string, len(items))
	for i, s := range items {
		q[i] = quote(s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// promptAllowance is what the budget of eam.max_calls counts for playing
// the ask prompt once (the shipped ask prompts last about 7 s; a
// replacement in prompts.dir longer than this eats into the margin).
const promptAllowance = 10 * time.Second

// EntraBudget is how long an EAM sign-in may take in all: Entra drops its
// side about five minutes after sending the user to the provider, so the
// calls must end well inside that.
const EntraBudget = 4 * time.Minute

// EAMCallTime is the longest one verification call can take before its
// outcome: ringing, then every attempt's prompt and wait.
func (c *Config) EAMCallTime() time.Duration {
	return c.SIP.RingTimeout + time.Duration(c.Verify.Attempts)*(promptAllowance+c.Verify.AnswerTimeout)
}

var guidRe = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// checkURL checks an absolute https URL (http only for a loopback host)
// without a query or fragment.
func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return errors.New("want an absolute https URL without user, query or fragment")
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if ip, err := netip.ParseAddr(u.Hostname()); (err == nil && ip.IsLoopback()) || u.Hostname() == "localhost" {
			return nil
		}
	}
	return errors.New("want https (http only for a loopback host)")
}

func checkFile(ck *checker, key, path string) {
	if path == "" {
		return
	}
	st, err := os.Stat(path)
	switch {
	case err != nil:
		ck.add(key, err)
	case st.IsDir():
		ck.addf(key, "%s is a directory, want a file", path)
	}
}

func (c *Config) validateDirectory(ck *checker) {
	d := &c.Directory
	checkFile(ck, "directory.csv", d.CSV)
	l := &d.LDAP
	if l.URL == "" {
		return
	}
	u, err := url.Parse(l.URL)
	if err != nil || (u.Scheme != "ldap" && u.Scheme != "ldaps") || u.Host == "" || (u.Path != "" && u.Path != "/") {
		ck.addf("directory.ldap.url", "want ldap://HOST[:PORT] or ldaps://HOST[:PORT], got %s", quote(l.URL))
	} else if l.StartTLS && u.Scheme == "ldaps" {
		ck.addf("directory.ldap.start_tls", "StartTLS is for ldap:// URLs; ldaps:// is TLS already")
	}
	if l.BaseDN == "" {
		ck.addf("directory.ldap.base_dn", "required with directory.ldap.url, such as ou=people,dc=example,dc=org")
	}
	if strings.Count(l.Filter, "%s") != 1 || !strings.HasPrefix(l.Filter, "(") || !strings.HasSuffix(l.Filter, ")") {
		ck.addf("directory.ldap.filter", "want an LDAP filter in parentheses with one %%s for the user, such as (userPrincipalName=%%s), got %s", quote(l.Filter))
	}
	if l.Attribute == "" || strings.ContainsAny(l.Attribute, " ()=*") {
		ck.addf("directory.ldap.attribute", "want an attribute name such as mobile, got %s", quote(l.Attribute))
	}
	if l.Password != "" {
		ck.add("directory.ldap.password", checkSecret(string(l.Password), 1))
	}
	checkFile(ck, "directory.ldap.ca_file", l.CAFile)
	checkDuration(ck, "directory.ldap.timeout", l.Timeout, 100*time.Millisecond, time.Minute)
}

func (c *Config) validateEAM(ck *checker) {
	e := &c.EAM
	if !slices.Contains([]string{EnrolDirectory, EnrolSelf, EnrolOff}, e.Enrolment) {
		ck.addf("eam.enrolment", "want directory, self or off, got %s", quote(e.Enrolment))
	}
	if e.MaxCalls < 1 || e.MaxCalls > 5 {
		ck.addf("eam.max_calls", "want 1 to 5, got %d", e.MaxCalls)
	} else if total := time.Duration(e.MaxCalls) * c.EAMCallTime(); e.Enabled && total > EntraBudget {
		ck.addf("eam.max_calls", "%d calls of up to %s each (sip.ring_timeout + verify.attempts × (prompt + verify.answer_timeout)) "+
			"take up to %s, more than the %s a sign-in has before Entra gives up: lower eam.max_calls, sip.ring_timeout, verify.attempts or verify.answer_timeout",
			e.MaxCalls, formatDuration(c.EAMCallTime()), formatDuration(total), formatDuration(EntraBudget))
	}
	checkDuration(ck, "eam.hint_max_age", e.HintMaxAge, time.Minute, time.Hour)
	checkDuration(ck, "eam.clock_skew", e.ClockSkew, 0, 10*time.Minute)
	for _, p := range e.TrustedProxies {
		if _, err := netip.ParsePrefix(p); err != nil {
			if _, err := netip.ParseAddr(p); err != nil {
				ck.addf("eam.trusted_proxies", "want IPs or CIDRs such as 10.0.0.0/8, got %s", quote(p))
			}
		}
	}
	if (e.TLSCert == "") != (e.TLSKey == "") {
		ck.addf("eam.tls_cert", "set both eam.tls_cert and eam.tls_key, or neither")
	}
	checkFile(ck, "eam.tls_cert", e.TLSCert)
	checkFile(ck, "eam.tls_key", e.TLSKey)
	checkFile(ck, "eam.entra_jwks_file", e.EntraJWKSFile)
	for _, k := range e.SigningKeys {
		checkFile(ck, "eam.signing_keys", k)
	}
	if d := e.PageDir; d != "" {
		if st, err := os.Stat(d); err != nil || !st.IsDir() {
			ck.addf("eam.page_dir", "want a directory, got %s", quote(d))
		}
	}
	for _, u := range e.RedirectURIs {
		if err := checkURL(u); err != nil {
			ck.addf("eam.redirect_uris", "%v, got %s", err, quote(u))
		}
	}
	if e.EntraJWKSURL != "" {
		if err := checkURL(e.EntraJWKSURL); err != nil {
			ck.addf("eam.entra_jwks_url", "%v, got %s", err, quote(e.EntraJWKSURL))
		}
	}
	for _, t := range e.Tenants {
		if !guidRe.MatchString(t) {
			ck.addf("eam.tenants", "want tenant ids (GUIDs such as 72f988bf-86f1-41af-91ab-2d7cd011db47), got %s", quote(t))
		}
	}
	if !e.Enabled {
		return
	}
	if err := checkListen(e.Listen); err != nil {
		ck.addf("eam.listen", "want HOST:PORT such as 127.0.0.1:8443 or :443 (%v), got %s", err, quote(e.Listen))
	}
	if err := checkURL(e.Issuer); err != nil {
		ck.addf("eam.issuer", "%v, got %s: the public URL Entra's browser reaches", err, quote(e.Issuer))
	}
	if e.ClientID == "" {
		ck.addf("eam.client_id", "required with eam.enabled: the application (client) id of the app registration")
	}
	if len(e.Tenants) == 0 {
		ck.addf("eam.tenants", "required with eam.enabled: at least one tenant id")
	}
	if len(e.RedirectURIs) == 0 {
		ck.addf("eam.redirect_uris", "required with eam.enabled (the default is Entra's three reply URLs)")
	}
	if len(e.SigningKeys) == 0 {
		ck.addf("eam.signing_keys", "required with eam.enabled: make one with `hashcall keys generate --out FILE`")
	}
	if e.EntraJWKSURL == "" && e.EntraJWKSFile == "" {
		ck.addf("eam.entra_jwks_url", "set eam.entra_jwks_url or eam.entra_jwks_file")
	}
	if e.TLSCert == "" && len(e.TrustedProxies) == 0 {
		host, _, err := net.SplitHostPort(e.Listen)
		if ip, perr := netip.ParseAddr(host); err == nil && (perr != nil || !ip.IsLoopback()) {
			ck.addf("eam.listen", "plain HTTP on %s: set eam.tls_cert and eam.tls_key, or listen on loopback behind a TLS proxy (eam.trusted_proxies)", e.Listen)
		}
	}
}
