package service

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hashcall/hashcall/internal/config"
)

// ErrCallbackHost is wrapped by the errors of a callback URL whose host is
// not in http.callback_hosts.
var ErrCallbackHost = errors.New("the host is not in http.callback_hosts")

// ErrCallbackAddress is wrapped by the errors of a callback connection to
// an address that is not one of the allowed host's addresses (DNS
// rebinding, or a name that now resolves elsewhere).
var ErrCallbackAddress = errors.New("callback address not allowed")

// hostPattern is one entry of http.callback_hosts: HOST, HOST:PORT,
// *.DOMAIN or *.DOMAIN:PORT, or an IP literal with an optional port.
type hostPattern struct {
	host     string     // lower case, no trailing dot; for a wildcard the domain after "*."
	wildcard bool       // "*.": any name that ends in "."+host
	ip       netip.Addr // valid for an IP literal
	port     string     // "" for any port
}

// parseHostPattern reads one http.callback_hosts entry.
func parseHostPattern(s string) (hostPattern, error) {
	var p hostPattern
	host := strings.TrimSpace(s)
	if h, port, err := net.SplitHostPort(host); err == nil {
		host, p.port = h, port
	}
	host = strings.TrimSuffix(strings.ToLower(strings.Trim(host, "[]")), ".")
	if rest, ok := strings.CutPrefix(host, "*."); ok {
		p.wildcard, host = true, rest
	}
	if host == "" || strings.ContainsAny(host, "*/@ ") {
		return p, fmt.Errorf("callback host %q: want HOST, HOST:PORT or *.DOMAIN", s)
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		if p.wildcard {
			return p, fmt.Errorf("callback host %q: a wildcard needs a domain name, not an address", s)
		}
		p.ip = ip.Unmap()
	}
	p.host = host
	return p, nil
}

// normalHost is a URL's or dial address's host as patterns compare it.
func normalHost(h string) string {
	return strings.TrimSuffix(strings.ToLower(strings.Trim(h, "[]")), ".")
}

// matches reports whether host (normalised) and port are allowed by p. A
// wildcard matches on a label boundary: *.example.org matches
// a.example.org and a.b.example.org, never example.org itself nor
// evilexample.org.
func (p hostPattern) matches(host, port string) bool {
	if p.port != "" && p.port != port {
		return false
	}
	if p.ip.IsValid() {
		ip, err := netip.ParseAddr(host)
		return err == nil && ip.Unmap() == p.ip
	}
	if p.wildcard {
		if _, err := netip.ParseAddr(host); err == nil {
			return false // a wildcard names domains, never addresses
		}
		return len(host) > len(p.host)+1 && strings.HasSuffix(host, "."+p.host) && !strings.HasSuffix(host, ".."+p.host)
	}
	return host == p.host
}

// MatchCallbackHost reports whether hostport (a URL's host, with or
// without a port) is allowed by the http.callback_hosts entries patterns;
// defaultPort is the scheme's port, used when hostport has none. It is the
// one home of the host matching rule.
func MatchCallbackHost(patterns []string, hostport, defaultPort string) bool {
	host, port := hostport, defaultPort
	if h, p, err := net.SplitHostPort(hostport); err == nil {
		host, port = h, p
	}
	host = normalHost(host)
	for _, s := range patterns {
		if p, err := parseHostPattern(s); err == nil && p.matches(host, port) {
			return true
		}
	}
	return false
}

// CallbackGuard decides where result callbacks may go. The URL's host must
// match http.callback_hosts (a string check when the verification is
// requested); then, when the callback connects, the address it connects to
// must be one of the allowed host's addresses (a net.Dialer Control
// function), so a name that resolves to another address by then (DNS
// rebinding) reaches nothing. The addresses of a named host are those
// listed for it in http.callback_addresses, or else what it resolves to
// when the guard is made (or, for a name that did not resolve then, or one
// that matches a wildcard, when it is first called back): they are pinned
// from then on. IP literals allow exactly themselves. Redirects are never
// followed.
type CallbackGuard struct {
	patterns []hostPattern
	resolver *net.Resolver
	// OnBlocked, when set, is called with "address" or "redirect" for
	// each connection or redirect refused (metrics).
	onBlocked func(reason string)

	mu     sync.Mutex
	pinned map[string][]netip.Addr // name → its allowed addresses
}

// maxPinned bounds the names pinned for wildcard entries.
const maxPinned = 4096

// NewCallbackGuard returns the guard of the http.callback_hosts entries
// hosts. addresses are http.callback_addresses entries, HOST=IP (one
// address each; repeat the host for more), pinning a listed host to those
// addresses instead of what it resolves to. Names without listed
// addresses are resolved now with resolver (nil: the system's), within
// ctx; one that does not resolve is resolved when it is first called back.
func NewCallbackGuard(ctx context.Context, hosts, addresses []string, resolver *net.Resolver) (*CallbackGuard, error) {
	if resolver == nil {
		resolver = net.DefaultResolver
	}
	g := &CallbackGuard{resolver: resolver, pinned: map[string][]netip.Addr{}}
	for _, h := range hosts {
		p, err := parseHostPattern(h)
		if err != nil {
			return nil, err
		}
		g.patterns = append(g.patterns, p)
	}
	for _, a := range addresses {
		host, ip, err := config.ParseCallbackAddress(a)
		if err != nil {
			return nil, err
		}
		if !slices.ContainsFunc(g.patterns, func(p hostPattern) bool { return !p.wildcard && !p.ip.IsValid() && p.host == host }) {
			return nil, fmt.Errorf("callback address %q: %s is not a host name listed in http.callback_hosts", a, host)
		}
		if !slices.Contains(g.pinned[host], ip) {
			g.pinned[host] = append(g.pinned[host], ip)
		}
	}
	for _, p := range g.patterns {
		if p.wildcard || p.ip.IsValid() || g.pinned[p.host] != nil {
			continue
		}
		if addrs, err := g.lookup(ctx, p.host); err == nil {
			g.pinned[p.host] = addrs
		}
	}
	return g, nil
}

func (g *CallbackGuard) lookup(ctx context.Context, host string) ([]netip.Addr, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	addrs, err := g.resolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil, err
	}
	out := make([]netip.Addr, 0, len(addrs))
	for _, a := range addrs {
		out = append(out, a.Unmap())
	}
	return out, nil
}

// AllowURL checks a callback URL's host against http.callback_hosts (the
// string; the address is checked when the callback connects).
func (g *CallbackGuard) AllowURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("callback_url: %w", err)
	}
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	host := normalHost(u.Hostname())
	for _, p := range g.patterns {
		if p.matches(host, port) {
			return nil
		}
	}
	return fmt.Errorf("callback_url: %w", ErrCallbackHost)
}

// allowed returns the addresses a connection for host (from the dial
// address) may go to, pinning a name's addresses on first use.
func (g *CallbackGuard) allowed(ctx context.Context, host string) ([]netip.Addr, error) {
	host = normalHost(host)
	if ip, err := netip.ParseAddr(host); err == nil {
		ip = ip.Unmap()
		if slices.ContainsFunc(g.patterns, func(p hostPattern) bool { return p.ip == ip }) {
			return []netip.Addr{ip}, nil
		}
		return nil, fmt.Errorf("%w: %s is not in http.callback_hosts", ErrCallbackAddress, ip)
	}
	if !slices.ContainsFunc(g.patterns, func(p hostPattern) bool { return !p.ip.IsValid() && p.matches(host, p.port) }) {
		return nil, fmt.Errorf("%w: %s is not in http.callback_hosts", ErrCallbackAddress, host)
	}
	g.mu.Lock()
	addrs, ok := g.pinned[host]
	g.mu.Unlock()
	if ok {
		return addrs, nil
	}
	addrs, err := g.lookup(ctx, host)
	if err != nil {
		return nil, err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if first, ok := g.pinned[host]; ok { // another callback pinned it meanwhile
		return first, nil
	}
	if len(g.pinned) >= maxPinned {
		clear(g.pinned) // wildcard names only; listed names are pinned again on use
	}
	g.pinned[host] = addrs
	return addrs, nil
}

func (g *CallbackGuard) blocked(reason string) {
	if g.onBlocked != nil {
		g.onBlocked(reason)
	}
}

// DialContext connects to addr (HOST:PORT of a callback URL) only at one
// of the host's allowed addresses: the check is in the dialer's Control
// function, on the address actually connected to, after resolution.
func (g *CallbackGuard) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	allowed, err := g.allowed(ctx, host)
	if err != nil {
		if errors.Is(err, ErrCallbackAddress) {
			g.blocked("address")
		}
		return nil, err
	}
	d := &net.Dialer{
		Timeout:   10 * time.Second,
		KeepAlive: 30 * time.Second,
		Resolver:  g.resolver,
		Control: func(_, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return fmt.Errorf("%w: %s: %v", ErrCallbackAddress, address, err)
			}
			if !slices.Contains(allowed, ap.Addr().Unmap()) {
				g.blocked("address")
				return fmt.Errorf("%w: %s is at %s, not at an allowed address of it (%v)", ErrCallbackAddress, host, ap.Addr(), allowed)
			}
			return nil
		},
	}
	return d.DialContext(ctx, network, addr)
}

// Client returns an HTTP client for callbacks: connections only through
// DialContext, no proxy (a proxy would connect for us, unchecked), and
// redirects never followed (the 3xx is the answer).
func (g *CallbackGuard) Client(timeout time.Duration) *http.Client {
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			Proxy:                 nil,
			DialContext:           g.DialContext,
			ForceAttemptHTTP2:     true,
			TLSHandshakeTimeout:   10 * time.Second,
			ResponseHeaderTimeout: timeout,
			MaxIdleConnsPerHost:   4,
			IdleConnTimeout:       90 * time.Second,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error {
			g.blocked("redirect")
			return http.ErrUseLastResponse
		},
	}
}
