package config

import (
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/hashcall/hashcall/internal/policy"
	"github.com/hashcall/hashcall/media"
	"github.com/hashcall/hashcall/numbermatch"
)

// Transports for [SIP.Transport].
const (
	TransportUDP = "udp"
	TransportTCP = "tcp"
	TransportTLS = "tls"
)

// Codecs for [Media.Codecs].
const (
	CodecPCMA = "PCMA" // G.711 A-law, RTP payload type 8
	CodecPCMU = "PCMU" // G.711 µ-law, RTP payload type 0
)

// Config is hashcall's whole configuration. Each leaf field is one key,
// named by the dotted path of yaml tags (sip.trunk.address) and read from
// the environment as HASHCALL_SIP_TRUNK_ADDRESS. Get one from [Load] or
// [Default].
type Config struct {
	SIP      SIP      `yaml:"sip"`
	Media    Media    `yaml:"media"`
	Verify   Verify   `yaml:"verify"`
	Prompts  Prompts  `yaml:"prompts"`
	Log      Log      `yaml:"log"`
	HTTP     HTTP     `yaml:"http"`
	Policy   Policy   `yaml:"policy"`
	Shutdown Shutdown `yaml:"shutdown"`
	Store    Store    `yaml:"store"`
	Audit    Audit    `yaml:"audit"`
	// Diagnostics is the operators' profiling listener (diagnostics.*).
	Diagnostics Diagnostics `yaml:"diagnostics"`
	// Directory finds users' phone numbers for the doors (directory.*).
	Directory Directory `yaml:"directory"`
	// EAM is the Entra ID external MFA provider (eam.*).
	EAM EAM `yaml:"eam"`
	// Radius is the RADIUS front for VPNs and RD Gateway (radius.*).
	Radius Radius `yaml:"radius"`
}

// Directory is where users' phone numbers come from (keys directory.*):
// a CSV file, LDAP, or neither.
type Directory struct {
	// CSV is a CSV file with columns user, mobile and optionally oid,
	// read again when it changes (directory.csv).
	CSV string `yaml:"csv"`
	// LDAP is an LDAP directory (directory.ldap.*).
	LDAP LDAP `yaml:"ldap"`
}

// LDAP configures the LDAP directory (keys directory.ldap.*); it is used
// when URL is set.
type LDAP struct {
	// URL is ldap://HOST[:PORT] or ldaps://HOST[:PORT] (directory.ldap.url).
	URL string `yaml:"url"`
	// StartTLS upgrades an ldap:// connection with StartTLS
	// (directory.ldap.start_tls).
	StartTLS bool `yaml:"start_tls"`
	// CAFile holds the PEM CA certificates that verify the server
	// (directory.ldap.ca_file). Empty: the system roots.
	CAFile string `yaml:"ca_file"`
	// BindDN is the DN to bind as; empty binds anonymously
	// (directory.ldap.bind_dn).
	BindDN string `yaml:"bind_dn"`
	// Password is BindDN's password (directory.ldap.password).
	Password Secret `yaml:"password"`
	// BaseDN is where users are searched (directory.ldap.base_dn).
	BaseDN string `yaml:"base_dn"`
	// Filter finds one user; %s is the escaped user principal name
	// (directory.ldap.filter).
	Filter string `yaml:"filter"`
	// Attribute holds the phone number (directory.ldap.attribute).
	Attribute string `yaml:"attribute"`
	// Timeout bounds each lookup (directory.ldap.timeout).
	Timeout time.Duration `yaml:"timeout"`
}

// Enrolment modes for [EAM.Enrolment].
const (
	EnrolDirectory = "directory"
	EnrolSelf      = "self"
	EnrolOff       = "off"
)

// DefaultEAMRedirectURIs are Entra's reply URLs for the global, US
// government and China clouds: the default of eam.redirect_uris.
var DefaultEAMRedirectURIs = []string{
	"https://login.microsoftonline.com/common/federation/externalauthprovider",
	"https://login.microsoftonline.us/common/federation/externalauthprovider",
	"https://login.partner.microsoftonline.cn/common/federation/externalauthprovider",
}

// EAM configures the Entra ID external MFA provider (keys eam.*).
type EAM struct {
	// Enabled serves the provider on Listen (eam.enabled).
	Enabled bool `yaml:"enabled"`
	// Listen is the HOST:PORT of its own listener (eam.listen).
	Listen string `yaml:"listen"`
	// Issuer is the public https URL, exactly as Entra's discovery URL
	// starts and every token's iss (eam.issuer).
	Issuer string `yaml:"issuer"`
	// ClientID is the client_id Entra sends: the app registration's
	// application id (eam.client_id).
	ClientID string `yaml:"client_id"`
	// RedirectURIs are the only redirect_uri values answered
	// (eam.redirect_uris).
	RedirectURIs []string `yaml:"redirect_uris"`
	// Tenants are the Entra tenant ids whose sign-ins are accepted
	// (eam.tenants).
	Tenants []string `yaml:"tenants"`
	// HintAudiences are the accepted aud values of the id_token_hint
	// (eam.hint_audiences); empty: eam.client_id only.
	HintAudiences []string `yaml:"hint_audiences"`
	// EntraJWKSURL is where Entra's signing keys are fetched
	// (eam.entra_jwks_url).
	EntraJWKSURL string `yaml:"entra_jwks_url"`
	// EntraJWKSFile, when set, is a file of Entra's keys used instead of
	// the URL, for offline installs (eam.entra_jwks_file).
	EntraJWKSFile string `yaml:"entra_jwks_file"`
	// HintMaxAge bounds the hint's age by its iat (eam.hint_max_age).
	HintMaxAge time.Duration `yaml:"hint_max_age"`
	// ClockSkew is allowed between Entra's clock and ours
	// (eam.clock_skew).
	ClockSkew time.Duration `yaml:"clock_skew"`
	// SigningKeys are PEM files from `hashcall keys generate`: the first
	// signs, all are published (eam.signing_keys).
	SigningKeys []string `yaml:"signing_keys"`
	// TLSCert and TLSKey, when set, serve HTTPS (eam.tls_cert, eam.tls_key).
	TLSCert string `yaml:"tls_cert"`
	TLSKey  string `yaml:"tls_key"`
	// TrustedProxies are the IPs or CIDRs of reverse proxies whose
	// X-Forwarded-For is believed (eam.trusted_proxies).
	TrustedProxies []string `yaml:"trusted_proxies"`
	// Enrolment is directory, self or off (eam.enrolment).
	Enrolment string `yaml:"enrolment"`
	// MaxCalls is the calls one sign-in may place, "Call me again"
	// included (eam.max_calls).
	MaxCalls int `yaml:"max_calls"`
	// PageDir overrides the page's logo (logo.png) and texts
	// (<locale>.json) (eam.page_dir).
	PageDir string `yaml:"page_dir"`
}

// SIP configures the user agent's signalling (keys sip.*).
type SIP struct {
	// Listen is the local IP:PORT the SIP transport binds (sip.listen).
	// Bind a concrete IP rather than 0.0.0.0: only then do UDP requests
	// leave from this port, which trunks that answer to the Via port need.
	Listen string `yaml:"listen"`
	// Transport is udp, tcp or tls (sip.transport).
	Transport string `yaml:"transport"`
	// PublicAddress is the HOST or HOST:PORT to put in Contact and Via
	// instead of the listen address, for a UA behind NAT
	// (sip.public_address). Empty: use the listen address.
	PublicAddress string `yaml:"public_address"`
	// From is the caller: a SIP user such as +441234567890 (the domain is
	// then the trunk's) or a full URI such as
	// sip:+441234567890@pbx.example.org (sip.from).
	From string `yaml:"from"`
	// DisplayName is the display name in From (sip.display_name).
	DisplayName string `yaml:"display_name"`
	// PAssertedIdentity, when set, is sent as P-Asserted-Identity: a user,
	// a sip:/sips: URI or a tel: URI (sip.p_asserted_identity).
	PAssertedIdentity string `yaml:"p_asserted_identity"`
	// RingTimeout is how long to wait for an answer after the first
	// provisional response before cancelling (sip.ring_timeout).
	RingTimeout time.Duration `yaml:"ring_timeout"`
	// MaxCallDuration ends an answered call with BYE (sip.max_call_duration).
	MaxCallDuration time.Duration `yaml:"max_call_duration"`
	// UDPReadBuffer is the receive buffer asked for the SIP UDP socket
	// (sip.udp_read_buffer): a burst of call set-ups overflows the
	// kernel's default of about 208 KiB. 0 keeps the kernel's default.
	UDPReadBuffer ByteSize `yaml:"udp_read_buffer"`
	// TrustedSources are networks, besides the trunk's and the outbound
	// proxy's own addresses, that may send us SIP requests
	// (sip.trusted_sources): CIDR prefixes or single IP addresses. Requests
	// from anywhere else get 403. See TrustedPrefixes.
	TrustedSources []string `yaml:"trusted_sources"`
	// Trunk is the trunk or PBX that calls go through (sip.trunk.*).
	Trunk Trunk `yaml:"trunk"`
	// TLS configures sip.transport tls (sip.tls.*).
	TLS TLS `yaml:"tls"`
}

// Trunk is the SIP trunk or PBX that calls go through (keys sip.trunk.*).
type Trunk struct {
	// Address is the trunk's HOST:PORT; required to place calls
	// (sip.trunk.address).
	Address string `yaml:"address"`
	// OutboundProxy, when set, is the HOST:PORT every request is sent to
	// instead of Address, such as an SBC (sip.trunk.outbound_proxy).
	OutboundProxy string `yaml:"outbound_proxy"`
	// Username is the digest username, and the AOR user when registering
	// (sip.trunk.username).
	Username string `yaml:"username"`
	// Password is the digest password (sip.trunk.password).
	Password Secret `yaml:"password"`
	// Realm, when set, limits digest answers to challenges for this realm
	// (sip.trunk.realm). Empty: answer the realm the trunk names.
	Realm string `yaml:"realm"`
	// Register makes the UA REGISTER with the trunk (sip.trunk.register).
	Register bool `yaml:"register"`
	// RegisterExpiry is the Expires asked for in REGISTER
	// (sip.trunk.register_expiry).
	RegisterExpiry time.Duration `yaml:"register_expiry"`
	// OptionsInterval is the period of OPTIONS pings to the trunk; 0 turns
	// them off (sip.trunk.options_interval).
	OptionsInterval time.Duration `yaml:"options_interval"`
}

// TLS configures SIP over TLS (keys sip.tls.*). As a TLS client the UA needs
// only to verify the trunk: against CAFile, or the system roots when it is
// empty. CertFile and KeyFile (both or neither) are our own certificate, for
// trunks that require mutual TLS and for accepting TLS connections that the
// trunk opens to us.
type TLS struct {
	// CertFile is our PEM certificate chain (sip.tls.cert_file).
	CertFile string `yaml:"cert_file"`
	// KeyFile is the PEM private key of CertFile (sip.tls.key_file).
	KeyFile string `yaml:"key_file"`
	// CAFile holds the PEM CA certificates that verify the trunk
	// (sip.tls.ca_file). Empty: the system roots.
	CAFile string `yaml:"ca_file"`
	// InsecureSkipVerify turns off verification of the trunk's certificate:
	// for a lab only (sip.tls.insecure_skip_verify).
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
}

// Media configures RTP (keys media.*).
type Media struct {
	// ListenIP is the IP that RTP sockets bind (media.listen_ip). Empty: the
	// host of sip.listen; see [Config.MediaListenIP].
	ListenIP string `yaml:"listen_ip"`
	// RTPPorts is the range RTP ports are taken from (media.rtp_ports).
	RTPPorts media.PortRange `yaml:"rtp_ports"`
	// Codecs lists PCMA and PCMU in order of preference (media.codecs).
	Codecs []string `yaml:"codecs"`
	// TelephoneEventPT is the RTP payload type offered for RFC 4733
	// telephone-event (media.telephone_event_pt).
	TelephoneEventPT int `yaml:"telephone_event_pt"`
	// SymmetricLatching makes the media session send to wherever the far
	// end's RTP comes from instead of the address in its SDP
	// (media.symmetric_latching).
	SymmetricLatching bool `yaml:"symmetric_latching"`
	// RTPMux carries every call's RTP on one shared port, the first even
	// port of RTPPorts, read and written in batches (media.rtp_mux).
	RTPMux bool `yaml:"rtp_mux"`
	// RTPMuxReadBuffer is the shared socket's receive buffer
	// (media.rtp_mux_read_buffer).
	RTPMuxReadBuffer ByteSize `yaml:"rtp_mux_read_buffer"`
}

// Verify configures the verification itself (keys verify.*).
type Verify struct {
	// AnswerTimeout is how long to wait for # after each prompt
	// (verify.answer_timeout).
	AnswerTimeout time.Duration `yaml:"answer_timeout"`
	// Attempts is how many times the prompt is played (verify.attempts).
	Attempts int `yaml:"attempts"`
	// MinKeyDelay: a key that starts sooner after the answer does not count
	// (verify.min_key_delay).
	MinKeyDelay time.Duration `yaml:"min_key_delay"`
	// Locale selects the prompt language, a tag such as en-GB
	// (verify.locale).
	Locale string `yaml:"locale"`
	// OnDiversion is what a call forwarded to another phone comes to
	// (verify.on_diversion): refuse (hang up, outcome diverted) or flag
	// (go on, diverted: true in the result).
	OnDiversion string `yaml:"on_diversion"`
	// DetectVoicemail recognises an answering machine from the audio
	// (verify.detect_voicemail): outcome voicemail, hung up at once.
	DetectVoicemail bool `yaml:"detect_voicemail"`
	// Mode is hash (press # to approve) or code (number matching: key the
	// code shown on the screen, then #), the default of requests that do
	// not say (verify.mode).
	Mode string `yaml:"mode"`
	// CodeLength is the number of digits of a code (verify.code_length).
	CodeLength int `yaml:"code_length"`
	// CodeTTL is how long a code is valid from the request
	// (verify.code_ttl).
	CodeTTL time.Duration `yaml:"code_ttl"`
	// CodeKey keys the codes' hashes (verify.code_key); empty: a random
	// key per process.
	CodeKey Secret `yaml:"code_key"`
	// DigitTimeout ends a code being keyed that gets no key for this long
	// as a wrong code (verify.digit_timeout).
	DigitTimeout time.Duration `yaml:"digit_timeout"`
}

// verify.mode values.
const (
	ModeHash = "hash"
	ModeCode = "code"
)

// verify.on_diversion values.
const (
	OnDiversionRefuse = "refuse"
	OnDiversionFlag   = "flag"
)

// Prompts configures the audio prompts (keys prompts.*).
type Prompts struct {
	// Dir, when set, is a directory of replacement prompts (prompts.dir).
	// Empty: the prompts built into the binary.
	Dir string `yaml:"dir"`
}

// Log configures logging (keys log.*).
type Log struct {
	// Level is debug, info, warn or error (log.level).
	Level string `yaml:"level"`
	// Format is text or json (log.format).
	Format string `yaml:"format"`
}

// HTTP configures the HTTP service for auth servers (keys http.*).
type HTTP struct {
	// Listen is the HOST:PORT the service binds (http.listen).
	Listen string `yaml:"listen"`
	// Tokens are the bearer tokens that callers may present (http.tokens).
	Tokens []Secret `yaml:"tokens"`
	// CallbackHosts are the hosts that result callbacks may be sent to
	// (http.callback_hosts): HOST or HOST:PORT, with an optional leading
	// "*." for any subdomain (on a dot boundary: *.example.org matches
	// a.example.org, not example.org nor evilexample.org).
	CallbackHosts []string `yaml:"callback_hosts"`
	// CallbackAddresses pin callback hosts to the addresses their
	// callbacks may connect to (http.callback_addresses): HOST=IP, one
	// address each; by default a host's addresses are what it resolves
	// to at start.
	CallbackAddresses []string `yaml:"callback_addresses"`
	// CallbackSecret signs result callbacks (http.callback_secret);
	// required, at least MinCallbackSecret bytes, with callback hosts.
	CallbackSecret Secret `yaml:"callback_secret"`
}

// Policy limits who is called and how often (keys policy.*).
type Policy struct {
	// AllowedRegions are the ISO 3166-1 alpha-2 regions whose numbers may
	// be called (policy.allowed_regions).
	AllowedRegions []string `yaml:"allowed_regions"`
	// AllowedTypes are the number types that may be called
	// (policy.allowed_types), such as mobile or fixed_line.
	AllowedTypes []string `yaml:"allowed_types"`
	// PerNumberLimit caps the calls to any one number
	// (policy.per_number_limit).
	PerNumberLimit Rate `yaml:"per_number_limit"`
	// GlobalRate caps the calls placed in all (policy.global_rate).
	GlobalRate Rate `yaml:"global_rate"`
	// PerTokenRate caps the calls placed for one bearer token of the HTTP
	// hook (policy.per_token_rate): a leaked token calls no more than this.
	// The zero Rate ("off", the default) sets no such limit.
	PerTokenRate Rate `yaml:"per_token_rate"`
	// MaxConcurrent caps the calls in progress at once
	// (policy.max_concurrent).
	MaxConcurrent int `yaml:"max_concurrent"`
	// MaxFailedCodes is how many wrong codes a number may key in 24 h
	// before requests for it are refused (policy.max_failed_codes).
	MaxFailedCodes int `yaml:"max_failed_codes"`
}

// Shutdown configures stopping (keys shutdown.*).
type Shutdown struct {
	// Grace is how long calls in progress may go on after a stop is asked
	// for (shutdown.grace).
	Grace time.Duration `yaml:"grace"`
}

// Store drivers for [Store.Driver].
const (
	StoreSQLite   = "sqlite"
	StorePostgres = "postgres"
)

// Store configures the durable state (keys store.*).
type Store struct {
	// Driver is sqlite (one node) or postgres (several nodes sharing the
	// state) (store.driver).
	Driver string `yaml:"driver"`
	// Path is the SQLite database file (store.path); its directory must
	// exist.
	Path string `yaml:"path"`
	// DSN is the PostgreSQL connection string (store.dsn), such as
	// postgres://hashcall:PASSWORD@db.example.org:5432/hashcall.
	DSN Secret `yaml:"dsn"`
	// Retention is how long final verifications are kept (store.retention).
	Retention time.Duration `yaml:"retention"`
	// Node names this node; it must stay the same across restarts and
	// differ between nodes on one PostgreSQL (store.node). Empty: the host
	// name.
	Node string `yaml:"node"`
	// Lease is how long another node waits before taking over the calls
	// of a node that stopped renewing (store.lease).
	Lease time.Duration `yaml:"lease"`
}

// Audit configures the audit log (keys audit.*).
type Audit struct {
	// Retention is how long audit rows are kept (audit.retention).
	Retention time.Duration `yaml:"retention"`
	// HMACKey keys the HMAC of the numbers in the audit log
	// (audit.hmac_key); keep it to search the log by number.
	HMACKey Secret `yaml:"hmac_key"`
}

// Diagnostics configures the profiling listener (keys diagnostics.*).
type Diagnostics struct {
	// Listen is the loopback IP:PORT serving /debug/pprof
	// (diagnostics.listen); empty: off.
	Listen string `yaml:"listen"`
}

// Radius configures the RADIUS front (keys radius.*).
type Radius struct {
	// Enabled starts the RADIUS listener in serve (radius.enabled).
	Enabled bool `yaml:"enabled"`
	// Listen is the UDP HOST:PORT the front binds (radius.listen).
	Listen string `yaml:"listen"`
	// Clients are the NASes allowed to ask, each "CIDR env:VARIABLE" or
	// "CIDR file:PATH": the source addresses and where their shared secret
	// is (radius.clients). The secret itself is never written here.
	Clients []string `yaml:"clients"`
	// RequireMessageAuthenticator drops Access-Requests without a valid
	// Message-Authenticator (radius.require_message_authenticator).
	RequireMessageAuthenticator bool `yaml:"require_message_authenticator"`
	// AnswerCache is how long answers are kept for retransmissions
	// (radius.answer_cache).
	AnswerCache time.Duration `yaml:"answer_cache"`
	// CallTimeout bounds the wait for the call's outcome; keep it below the
	// NAS's RADIUS timeout (radius.call_timeout).
	CallTimeout time.Duration `yaml:"call_timeout"`
	// ClientLimit caps the calls placed for one client (radius.client_limit).
	ClientLimit Rate `yaml:"client_limit"`
	// Upstream is the RADIUS server that checks passwords (radius.upstream.*).
	Upstream RadiusUpstream `yaml:"upstream"`
}

// RadiusUpstream configures the RADIUS servers the front forwards to (keys
// radius.upstream.*).
type RadiusUpstream struct {
	// Servers are HOST:PORT, in order of preference, each optionally
	// followed by its own secret as " env:VARIABLE" or " file:PATH"
	// (radius.upstream.servers).
	Servers []string `yaml:"servers"`
	// Secret is the shared secret of the servers that name none
	// (radius.upstream.secret).
	Secret Secret `yaml:"secret"`
	// Timeout is how long one try waits for an answer
	// (radius.upstream.timeout).
	Timeout time.Duration `yaml:"timeout"`
	// Retries is how many times a request is sent again to one server
	// that does not answer before the next is tried
	// (radius.upstream.retries).
	Retries int `yaml:"retries"`
	// StatusInterval is the period of Status-Server probes (RFC 5997); 0
	// turns them off (radius.upstream.status_interval).
	StatusInterval time.Duration `yaml:"status_interval"`
	// RequireMessageAuthenticator refuses upstream answers without one
	// (radius.upstream.require_message_authenticator).
	RequireMessageAuthenticator bool `yaml:"require_message_authenticator"`
}

// Default returns the built-in defaults. They validate, but place no calls:
// sip.trunk.address has no default.
func Default() *Config {
	return &Config{
		SIP: SIP{
			Listen:          "127.0.0.1:5070",
			Transport:       TransportUDP,
			RingTimeout:     30 * time.Second,
			MaxCallDuration: 3 * time.Minute,
			UDPReadBuffer:   4 << 20,
			TrustedSources:  []string{},
			Trunk: Trunk{
				RegisterExpiry:  600 * time.Second,
				OptionsInterval: 30 * time.Second,
			},
		},
		Media: Media{
			RTPPorts:         media.PortRange{Low: 20000, High: 20999},
			Codecs:           []string{CodecPCMA, CodecPCMU},
			TelephoneEventPT: 101,
			RTPMuxReadBuffer: 8 << 20,
		},
		Verify: Verify{
			AnswerTimeout:   10 * time.Second,
			Attempts:        3,
			MinKeyDelay:     1500 * time.Millisecond,
			Locale:          "en-GB",
			OnDiversion:     OnDiversionRefuse,
			DetectVoicemail: true,
			Mode:            ModeHash,
			CodeLength:      numbermatch.DefaultLength,
			CodeTTL:         numbermatch.DefaultTTL,
			DigitTimeout:    5 * time.Second,
		},
		Log: Log{Level: "info", Format: "text"},
		HTTP: HTTP{
			Listen:            "127.0.0.1:8080",
			Tokens:            []Secret{},
			CallbackHosts:     []string{},
			CallbackAddresses: []string{},
		},
		Policy: Policy{
			AllowedRegions: []string{"GB"},
			AllowedTypes:   []string{"mobile"},
			PerNumberLimit: Rate{N: 3, Per: 15 * time.Minute},
			GlobalRate:     Rate{N: 60, Per: time.Minute},
			MaxConcurrent:  50,
			MaxFailedCodes: policy.DefaultMaxFailed,
		},
		Shutdown: Shutdown{Grace: 60 * time.Second},
		Store: Store{
			Driver:    StoreSQLite,
			Path:      "/var/lib/hashcall/hashcall.db",
			Retention: 30 * 24 * time.Hour,
			Lease:     30 * time.Second,
		},
		Audit: Audit{Retention: 400 * 24 * time.Hour},
		Directory: Directory{LDAP: LDAP{
			Filter:    "(userPrincipalName=%s)",
			Attribute: "mobile",
			Timeout:   5 * time.Second,
		}},
		EAM: EAM{
			Listen:         "127.0.0.1:8443",
			RedirectURIs:   slices.Clone(DefaultEAMRedirectURIs),
			Tenants:        []string{},
			HintAudiences:  []string{},
			EntraJWKSURL:   "https://login.microsoftonline.com/common/discovery/v2.0/keys",
			HintMaxAge:     10 * time.Minute,
			ClockSkew:      time.Minute,
			SigningKeys:    []string{},
			TrustedProxies: []string{},
			Enrolment:      EnrolDirectory,
			MaxCalls:       2,
		},
		Radius: Radius{
			Listen:                      "127.0.0.1:1812",
			Clients:                     []string{},
			RequireMessageAuthenticator: true,
			AnswerCache:                 30 * time.Second,
			CallTimeout:                 50 * time.Second,
			ClientLimit:                 Rate{N: 60, Per: time.Minute},
			Upstream: RadiusUpstream{
				Servers:        []string{},
				Timeout:        3 * time.Second,
				Retries:        1,
				StatusInterval: 30 * time.Second,
			},
		},
	}
}

// MediaListenIP returns the IP that RTP sockets bind: media.listen_ip, or
// else the host of sip.listen. It is the zero Addr when neither is a valid
// IP, which [Config.Validate] rules out.
func (c *Config) MediaListenIP() netip.Addr {
	if c.Media.ListenIP != "" {
		a, _ := netip.ParseAddr(c.Media.ListenIP)
		return a
	}
	host, _, err := net.SplitHostPort(c.SIP.Listen)
	if err != nil {
		return netip.Addr{}
	}
	if host == "" {
		return netip.IPv4Unspecified()
	}
	a, _ := netip.ParseAddr(host)
	return a
}

// SlogLevel returns log.level as a slog.Level (info for an unknown level).
func (l Log) SlogLevel() slog.Level {
	switch l.Level {
	case "debug":
		return slog.LevelDebug
	case "warn":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	}
	return slog.LevelInfo
}

// TrustedPrefixes returns sip.trusted_sources as prefixes; a single address
// is a /32 (IPv4) or /128 (IPv6). It skips what does not parse, which
// Validate reports.
func (s SIP) TrustedPrefixes() []netip.Prefix {
	out := make([]netip.Prefix, 0, len(s.TrustedSources))
	for _, v := range s.TrustedSources {
		if p, err := parsePrefix(v); err == nil {
			out = append(out, p)
		}
	}
	return out
}

// parsePrefix reads one sip.trusted_sources entry: "192.0.2.0/24",
// "2001:db8::/32" or an address without a zone.
func parsePrefix(v string) (netip.Prefix, error) {
	v = strings.TrimSpace(v)
	if p, err := netip.ParsePrefix(v); err == nil {
		if p.Addr().Is4In6() {
			return netip.Prefix{}, errors.New("an IPv4-mapped IPv6 prefix: write the IPv4 prefix")
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(v)
	if err != nil {
		return netip.Prefix{}, errors.New("not a CIDR prefix or an IP address")
	}
	if a.Zone() != "" {
		return netip.Prefix{}, errors.New("an address with a zone")
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}
