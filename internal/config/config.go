package config

import (
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"
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
	SIP      SIP      `yaml:"sip" mapstructure:"sip"`
	Media    Media    `yaml:"media" mapstructure:"media"`
	Verify   Verify   `yaml:"verify" mapstructure:"verify"`
	Prompts  Prompts  `yaml:"prompts" mapstructure:"prompts"`
	Log      Log      `yaml:"log" mapstructure:"log"`
	HTTP     HTTP     `yaml:"http" mapstructure:"http"`
	Policy   Policy   `yaml:"policy" mapstructure:"policy"`
	Shutdown Shutdown `yaml:"shutdown" mapstructure:"shutdown"`
	// Diagnostics is the operators' profiling listener (diagnostics.*).
	Diagnostics Diagnostics `yaml:"diagnostics" mapstructure:"diagnostics"`
	// Directory finds users' phone numbers for the doors (directory.*).
	Directory Directory `yaml:"directory" mapstructure:"directory"`
	// EAM is the Entra ID external MFA provider (eam.*).
	EAM EAM `yaml:"eam" mapstructure:"eam"`
	// Radius is the RADIUS front for VPNs and RD Gateway (radius.*).
	Radius Radius `yaml:"radius" mapstructure:"radius"`
}

// Directory is where users' phone numbers come from (keys directory.*):
// a CSV file, LDAP, or neither.
type Directory struct {
	// CSV is a CSV file with columns user, mobile and optionally oid,
	// read again when it changes (directory.csv).
	CSV string `yaml:"csv" mapstructure:"csv"`
	// LDAP is an LDAP directory (directory.ldap.*).
	LDAP LDAP `yaml:"ldap" mapstructure:"ldap"`
}

// LDAP configures the LDAP directory (keys directory.ldap.*); it is used
// when URL is set.
type LDAP struct {
	// URL is ldap://HOST[:PORT] or ldaps://HOST[:PORT] (directory.ldap.url).
	URL string `yaml:"url" mapstructure:"url"`
	// StartTLS upgrades an ldap:// connection with StartTLS
	// (directory.ldap.start_tls).
	StartTLS bool `yaml:"start_tls" mapstructure:"start_tls"`
	// CAFile holds the PEM CA certificates that verify the server
	// (directory.ldap.ca_file). Empty: the system roots.
	CAFile string `yaml:"ca_file" mapstructure:"ca_file"`
	// BindDN is the DN to bind as; empty binds anonymously
	// (directory.ldap.bind_dn).
	BindDN string `yaml:"bind_dn" mapstructure:"bind_dn"`
	// Password is BindDN's password (directory.ldap.password).
	Password Secret `yaml:"password" mapstructure:"password"`
	// BaseDN is where users are searched (directory.ldap.base_dn).
	BaseDN string `yaml:"base_dn" mapstructure:"base_dn"`
	// Filter finds one user; %s is the escaped user principal name
	// (directory.ldap.filter).
	Filter string `yaml:"filter" mapstructure:"filter"`
	// Attribute holds the phone number (directory.ldap.attribute).
	Attribute string `yaml:"attribute" mapstructure:"attribute"`
	// Timeout bounds each lookup (directory.ldap.timeout).
	Timeout time.Duration `yaml:"timeout" mapstructure:"timeout"`
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
	Enabled bool `yaml:"enabled" mapstructure:"enabled"`
	// Listen is the HOST:PORT of its own listener (eam.listen).
	Listen string `yaml:"listen" mapstructure:"listen"`
	// Issuer is the public https URL, exactly as Entra's discovery URL
	// starts and every token's iss (eam.issuer).
	Issuer string `yaml:"issuer" mapstructure:"issuer"`
	// ClientID is the client_id Entra sends: the app registration's
	// application id (eam.client_id).
	ClientID string `yaml:"client_id" mapstructure:"client_id"`
	// RedirectURIs are the only redirect_uri values answered
	// (eam.redirect_uris).
	RedirectURIs []string `yaml:"redirect_uris" mapstructure:"redirect_uris"`
	// Tenants are the Entra tenant ids whose sign-ins are accepted
	// (eam.tenants).
	Tenants []string `yaml:"tenants" mapstructure:"tenants"`
	// HintAudiences are the accepted aud values of the id_token_hint
	// (eam.hint_audiences); empty: eam.client_id only.
	HintAudiences []string `yaml:"hint_audiences" mapstructure:"hint_audiences"`
	// EntraJWKSURL is where Entra's signing keys are fetched
	// (eam.entra_jwks_url).
	EntraJWKSURL string `yaml:"entra_jwks_url" mapstructure:"entra_jwks_url"`
	// EntraJWKSFile, when set, is a file of Entra's keys used instead of
	// the URL, for offline installs (eam.entra_jwks_file).
	EntraJWKSFile string `yaml:"entra_jwks_file" mapstructure:"entra_jwks_file"`
	// HintMaxAge bounds the hint's age by its iat (eam.hint_max_age).
	HintMaxAge time.Duration `yaml:"hint_max_age" mapstructure:"hint_max_age"`
	// ClockSkew is allowed between Entra's clock and ours
	// (eam.clock_skew).
	ClockSkew time.Duration `yaml:"clock_skew" mapstructure:"clock_skew"`
	// SigningKeys are PEM files from `hashcall keys generate`: the first
	// signs, all are published (eam.signing_keys).
	SigningKeys []string `yaml:"signing_keys" mapstructure:"signing_keys"`
	// TLSCert and TLSKey, when set, serve HTTPS (eam.tls_cert, eam.tls_key).
	TLSCert string `yaml:"tls_cert" mapstructure:"tls_cert"`
	TLSKey  string `yaml:"tls_key" mapstructure:"tls_key"`
	// TrustedProxies are the IPs or CIDRs of reverse proxies whose
	// X-Forwarded-For is believed (eam.trusted_proxies).
	TrustedProxies []string `yaml:"trusted_proxies" mapstructure:"trusted_proxies"`
	// Enrolment is directory, self or off (eam.enrolment).
	Enrolment string `yaml:"enrolment" mapstructure:"enrolment"`
	// MaxCalls is the calls one sign-in may place, "Call me again"
	// included (eam.max_calls).
	MaxCalls int `yaml:"max_calls" mapstructure:"max_calls"`
	// PageDir overrides the page's logo (logo.png) and texts
	// (<locale>.json) (eam.page_dir).
	PageDir string `yaml:"page_dir" mapstructure:"page_dir"`
}

// SIP configures the user agent's signalling (keys sip.*).
type SIP struct {
	// Listen is the local IP:PORT the SIP transport binds (sip.listen).
	// Bind a concrete IP rather than 0.0.0.0: only then do UDP requests
	// leave from this port, which trunks that answer to the Via port need.
	Listen string `yaml:"listen" mapstructure:"listen"`
	// Transport is udp, tcp or tls (sip.transport).
	Transport string `yaml:"transport" mapstructure:"transport"`
	// PublicAddress is the HOST or HOST:PORT to put in Contact and Via
	// instead of the listen address, for a UA behind NAT
	// (sip.public_address). Empty: use the listen address.
	PublicAddress string `yaml:"public_address" mapstructure:"public_address"`
	// From is the caller: a SIP user such as +441234567890 (the domain is
	// then the trunk's) or a full URI such as
	// sip:+441234567890@pbx.example.org (sip.from).
	From string `yaml:"from" mapstructure:"from"`
	// DisplayName is the display name in From (sip.display_name).
	DisplayName string `yaml:"display_name" mapstructure:"display_name"`
	// PAssertedIdentity, when set, is sent as P-Asserted-Identity: a user,
	// a sip:/sips: URI or a tel: URI (sip.p_asserted_identity).
	PAssertedIdentity string `yaml:"p_asserted_identity" mapstructure:"p_asserted_identity"`
	// RingTimeout is how long to wait for an answer after the first
	// provisional response before cancelling (sip.ring_timeout).
	RingTimeout time.Duration `yaml:"ring_timeout" mapstructure:"ring_timeout"`
	// MaxCallDuration ends an answered call with BYE (sip.max_call_duration).
	MaxCallDuration time.Duration `yaml:"max_call_duration" mapstructure:"max_call_duration"`
	// UDPReadBuffer is the receive buffer asked for the SIP UDP socket
	// (sip.udp_read_buffer): a burst of call set-ups overflows the
	// kernel's default of about 208 KiB. 0 keeps the kernel's default.
	UDPReadBuffer ByteSize `yaml:"udp_read_buffer" mapstructure:"udp_read_buffer"`
	// TrustedSources are networks, besides the trunk's and the outbound
	// proxy's own addresses, that may send us SIP requests
	// (sip.trusted_sources): CIDR prefixes or single IP addresses. Requests
	// from anywhere else get 403. See TrustedPrefixes.
	TrustedSources []string `yaml:"trusted_sources" mapstructure:"trusted_sources"`
	// Trunk is the trunk or PBX that calls go through (sip.trunk.*).
	Trunk Trunk `yaml:"trunk" mapstructure:"trunk"`
	// TLS configures sip.transport tls (sip.tls.*).
	TLS TLS `yaml:"tls" mapstructure:"tls"`
}

// Trunk is the SIP trunk or PBX that calls go through (keys sip.trunk.*).
type Trunk struct {
	// Address is the trunk's HOST:PORT; required to place calls
	// (sip.trunk.address).
	Address string `yaml:"address" mapstructure:"address"`
	// OutboundProxy, when set, is the HOST:PORT every request is sent to
	// instead of Address, such as an SBC (sip.trunk.outbound_proxy).
	OutboundProxy string `yaml:"outbound_proxy" mapstructure:"outbound_proxy"`
	// Username is the digest username, and the AOR user when registering
	// (sip.trunk.username).
	Username string `yaml:"username" mapstructure:"username"`
	// Password is the digest password (sip.trunk.password).
	Password Secret `yaml:"password" mapstructure:"password"`
	// Realm, when set, limits digest answers to challenges for this realm
	// (sip.trunk.realm). Empty: answer the realm the trunk names.
	Realm string `yaml:"realm" mapstructure:"realm"`
	// Register makes the UA REGISTER with the trunk (sip.trunk.register).
	Register bool `yaml:"register" mapstructure:"register"`
	// RegisterExpiry is the Expires asked for in REGISTER
	// (sip.trunk.register_expiry).
	RegisterExpiry time.Duration `yaml:"register_expiry" mapstructure:"register_expiry"`
	// OptionsInterval is the period of OPTIONS pings to the trunk; 0 turns
	// them off (sip.trunk.options_interval).
	OptionsInterval time.Duration `yaml:"options_interval" mapstructure:"options_interval"`
}

// TLS configures SIP over TLS (keys sip.tls.*). As a TLS client the UA needs
// only to verify the trunk: against CAFile, or the system roots when it is
// empty. CertFile and KeyFile (both or neither) are our own certificate, for
// trunks that require mutual TLS and for accepting TLS connections that the
// trunk opens to us.
type TLS struct {
	// CertFile is our PEM certificate chain (sip.tls.cert_file).
	CertFile string `yaml:"cert_file" mapstructure:"cert_file"`
	// KeyFile is the PEM private key of CertFile (sip.tls.key_file).
	KeyFile string `yaml:"key_file" mapstructure:"key_file"`
	// CAFile holds the PEM CA certificates that verify the trunk
	// (sip.tls.ca_file). Empty: the system roots.
	CAFile string `yaml:"ca_file" mapstructure:"ca_file"`
	// InsecureSkipVerify turns off verification of the trunk's certificate:
	// for a lab only (sip.tls.insecure_skip_verify).
	InsecureSkipVerify bool `yaml:"insecure_skip_verify" mapstructure:"insecure_skip_verify"`
}

// Media configures RTP (keys media.*).
type Media struct {
	// ListenIP is the IP that RTP sockets bind (media.listen_ip). Empty: the
	// host of sip.listen; see [Config.MediaListenIP].
	ListenIP string `yaml:"listen_ip" mapstructure:"listen_ip"`
	// RTPPorts is the range RTP ports are taken from (media.rtp_ports).
	RTPPorts PortRange `yaml:"rtp_ports" mapstructure:"rtp_ports"`
	// Codecs lists PCMA and PCMU in order of preference (media.codecs).
	Codecs []string `yaml:"codecs" mapstructure:"codecs"`
	// TelephoneEventPT is the RTP payload type offered for RFC 4733
	// telephone-event (media.telephone_event_pt).
	TelephoneEventPT int `yaml:"telephone_event_pt" mapstructure:"telephone_event_pt"`
	// SymmetricLatching makes the media session send to wherever the far
	// end's RTP comes from instead of the address in its SDP
	// (media.symmetric_latching).
	SymmetricLatching bool `yaml:"symmetric_latching" mapstructure:"symmetric_latching"`
}

// Verify configures the verification itself (keys verify.*).
type Verify struct {
	// AnswerTimeout is how long to wait for # after each prompt
	// (verify.answer_timeout).
	AnswerTimeout time.Duration `yaml:"answer_timeout" mapstructure:"answer_timeout"`
	// Attempts is how many times the prompt is played (verify.attempts).
	Attempts int `yaml:"attempts" mapstructure:"attempts"`
	// MinKeyDelay: a key that starts sooner after the answer does not count
	// (verify.min_key_delay).
	MinKeyDelay time.Duration `yaml:"min_key_delay" mapstructure:"min_key_delay"`
	// Locale selects the prompt language, a tag such as en-GB
	// (verify.locale).
	Locale string `yaml:"locale" mapstructure:"locale"`
	// OnDiversion is what a call forwarded to another phone comes to
	// (verify.on_diversion): refuse (hang up, outcome diverted) or flag
	// (go on, diverted: true in the result).
	OnDiversion string `yaml:"on_diversion" mapstructure:"on_diversion"`
	// DetectVoicemail recognises an answering machine from the audio
	// (verify.detect_voicemail): outcome voicemail, hung up at once.
	DetectVoicemail bool `yaml:"detect_voicemail" mapstructure:"detect_voicemail"`
}

// verify.on_diversion values.
const (
	OnDiversionRefuse = "refuse"
	OnDiversionFlag   = "flag"
)

// Prompts configures the audio prompts (keys prompts.*).
type Prompts struct {
	// Dir, when set, is a directory of replacement prompts (prompts.dir).
	// Empty: the prompts built into the binary.
	Dir string `yaml:"dir" mapstructure:"dir"`
}

// Log configures logging (keys log.*).
type Log struct {
	// Level is debug, info, warn or error (log.level).
	Level string `yaml:"level" mapstructure:"level"`
	// Format is text or json (log.format).
	Format string `yaml:"format" mapstructure:"format"`
}

// HTTP configures the HTTP service for auth servers (keys http.*).
type HTTP struct {
	// Listen is the HOST:PORT the service binds (http.listen).
	Listen string `yaml:"listen" mapstructure:"listen"`
	// Tokens are the bearer tokens that callers may present (http.tokens).
	Tokens []Secret `yaml:"tokens" mapstructure:"tokens"`
	// CallbackHosts are the hosts that result callbacks may be sent to
	// (http.callback_hosts): HOST or HOST:PORT, with an optional leading
	// "*." for any subdomain (on a dot boundary: *.example.org matches
	// a.example.org, not example.org nor evilexample.org).
	CallbackHosts []string `yaml:"callback_hosts" mapstructure:"callback_hosts"`
	// CallbackAddresses pin callback hosts to the addresses their
	// callbacks may connect to (http.callback_addresses): HOST=IP, one
	// address each; by default a host's addresses are what it resolves
	// to at start.
	CallbackAddresses []string `yaml:"callback_addresses" mapstructure:"callback_addresses"`
	// CallbackSecret signs result callbacks (http.callback_secret);
	// required, at least MinCallbackSecret bytes, with callback hosts.
	CallbackSecret Secret `yaml:"callback_secret" mapstructure:"callback_secret"`
}

// Policy limits who is called and how often (keys policy.*).
type Policy struct {
	// AllowedRegions are the ISO 3166-1 alpha-2 regions whose numbers may
	// be called (policy.allowed_regions).
	AllowedRegions []string `yaml:"allowed_regions" mapstructure:"allowed_regions"`
	// AllowedTypes are the number types that may be called
	// (policy.allowed_types), such as mobile or fixed_line.
	AllowedTypes []string `yaml:"allowed_types" mapstructure:"allowed_types"`
	// PerNumberLimit caps the calls to any one number
	// (policy.per_number_limit).
	PerNumberLimit Rate `yaml:"per_number_limit" mapstructure:"per_number_limit"`
	// GlobalRate caps the calls placed in all (policy.global_rate).
	GlobalRate Rate `yaml:"global_rate" mapstructure:"global_rate"`
	// MaxConcurrent caps the calls in progress at once
	// (policy.max_concurrent).
	MaxConcurrent int `yaml:"max_concurrent" mapstructure:"max_concurrent"`
}

// Shutdown configures stopping (keys shutdown.*).
type Shutdown struct {
	// Grace is how long calls in progress may go on after a stop is asked
	// for (shutdown.grace).
	Grace time.Duration `yaml:"grace" mapstructure:"grace"`
}

// Diagnostics configures the profiling listener (keys diagnostics.*).
type Diagnostics struct {
	// Listen is the loopback IP:PORT serving /debug/pprof
	// (diagnostics.listen); empty: off.
	Listen string `yaml:"listen" mapstructure:"listen"`
}

// Radius configures the RADIUS front (keys radius.*).
type Radius struct {
	// Enabled starts the RADIUS listener in serve (radius.enabled).
	Enabled bool `yaml:"enabled" mapstructure:"enabled"`
	// Listen is the UDP HOST:PORT the front binds (radius.listen).
	Listen string `yaml:"listen" mapstructure:"listen"`
	// Clients are the NASes allowed to ask, each "CIDR env:VARIABLE" or
	// "CIDR file:PATH": the source addresses and where their shared secret
	// is (radius.clients). The secret itself is never written here.
	Clients []string `yaml:"clients" mapstructure:"clients"`
	// RequireMessageAuthenticator drops Access-Requests without a valid
	// Message-Authenticator (radius.require_message_authenticator).
	RequireMessageAuthenticator bool `yaml:"require_message_authenticator" mapstructure:"require_message_authenticator"`
	// AnswerCache is how long answers are kept for retransmissions
	// (radius.answer_cache).
	AnswerCache time.Duration `yaml:"answer_cache" mapstructure:"answer_cache"`
	// CallTimeout bounds the wait for the call's outcome; keep it below the
	// NAS's RADIUS timeout (radius.call_timeout).
	CallTimeout time.Duration `yaml:"call_timeout" mapstructure:"call_timeout"`
	// ClientLimit caps the calls placed for one client (radius.client_limit).
	ClientLimit Rate `yaml:"client_limit" mapstructure:"client_limit"`
	// Upstream is the RADIUS server that checks passwords (radius.upstream.*).
	Upstream RadiusUpstream `yaml:"upstream" mapstructure:"upstream"`
}

// RadiusUpstream configures the RADIUS servers the front forwards to (keys
// radius.upstream.*).
type RadiusUpstream struct {
	// Servers are HOST:PORT, in order of preference, each optionally
	// followed by its own secret as " env:VARIABLE" or " file:PATH"
	// (radius.upstream.servers).
	Servers []string `yaml:"servers" mapstructure:"servers"`
	// Secret is the shared secret of the servers that name none
	// (radius.upstream.secret).
	Secret Secret `yaml:"secret" mapstructure:"secret"`
	// Timeout is how long one try waits for an answer
	// (radius.upstream.timeout).
	Timeout time.Duration `yaml:"timeout" mapstructure:"timeout"`
	// Retries is how many times a request is sent again to one server
	// that does not answer before the next is tried
	// (radius.upstream.retries).
	Retries int `yaml:"retries" mapstructure:"retries"`
	// StatusInterval is the period of Status-Server probes (RFC 5997); 0
	// turns them off (radius.upstream.status_interval).
	StatusInterval time.Duration `yaml:"status_interval" mapstructure:"status_interval"`
	// RequireMessageAuthenticator refuses upstream answers without one
	// (radius.upstream.require_message_authenticator).
	RequireMessageAuthenticator bool `yaml:"require_message_authenticator" mapstructure:"require_message_authenticator"`
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
			RTPPorts:         PortRange{Low: 20000, High: 20999},
			Codecs:           []string{CodecPCMA, CodecPCMU},
			TelephoneEventPT: 101,
		},
		Verify: Verify{
			AnswerTimeout:   10 * time.Second,
			Attempts:        3,
			MinKeyDelay:     1500 * time.Millisecond,
			Locale:          "en-GB",
			OnDiversion:     OnDiversionRefuse,
			DetectVoicemail: true,
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
		},
		Shutdown: Shutdown{Grace: 60 * time.Second},
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
