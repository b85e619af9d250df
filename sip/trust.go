package sip

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
)

// Trusted sources. hashcall only places calls through its trunk, so every
// request it should ever receive (the far end's INFO, re-INVITE, UPDATE or
// BYE, the trunk's OPTIONS) comes from the trunk or the outbound proxy.
// Requests from anywhere else get 403 (an ACK is dropped: it has no
// response) and are counted (Stats.Untrusted), before anything looks at
// them; OPTIONS included, so strangers learn neither that hashcall runs
// nor what it supports.
//
// On UDP a request must come from the address and port the trunk (or the
// proxy) is configured at: that is where a proxy or SBC sends its requests
// from (it answers ours there). On TCP and TLS any port of those addresses
// is allowed, as the trunk may open its own connection. A hostname is
// resolved (A and AAAA) when the user agent starts and on ReloadTrust.
// Trunks that signal from other addresses or ports (several SBCs, SRV
// targets) are listed in Config.TrustedSources as CIDR prefixes, which
// allow every port.
//
// Responses are checked too, before sipgo parses them (readFilter): a
// stranger who read our INVITE could otherwise answer it with a forged 200
// and its own SDP, or end it with a forged 4xx. On UDP a stranger's
// response is dropped (its requests go on to the handlers, which answer
// 403); on TCP and TLS everything a stranger's connection carries is
// dropped, as a stream cannot be split into messages before parsing.

// trustSet is what the source of a request is checked against.
type trustSet struct {
	exact []netip.AddrPort // the trunk's and the proxy's addresses and ports (UDP)
	hosts []netip.Addr     // their addresses, any port (TCP, TLS)
	nets  []netip.Prefix   // Config.TrustedSources
}

func (t *trustSet) allows(network string, src netip.AddrPort) bool {
	a := src.Addr().Unmap()
	for _, p := range t.nets {
		if p.Contains(a) {
			return true
		}
	}
	if network == "udp" {
		return slices.Contains(t.exact, netip.AddrPortFrom(a, src.Port()))
	}
	return slices.Contains(t.hosts, a)
}

// ErrTrustedSources: a trusted source could not be resolved. Requests
// from it are refused until a reload resolves it.
var ErrTrustedSources = errors.New("sip: trusted source not resolved")

// resolveTrust resolves the trunk and outbound proxy addresses and returns
// the set with nets; it always returns a usable set, with the addresses
// that did resolve, and an error naming those that did not.
func (u *UA) resolveTrust(ctx context.Context, nets []netip.Prefix) (*trustSet, error) {
	t := &trustSet{}
	for _, p := range nets {
		t.nets = append(t.nets, p.Masked())
	}
	var errs []error
	for _, name := range []string{u.cfg.Trunk.Address, u.cfg.Trunk.OutboundProxy} {
		if name == "" {
			continue
		}
		host, port, err := splitHostPort(name, defaultPort(u.transport))
		if err != nil {
			errs = append(errs, fmt.Errorf("%w: %q: %w", ErrTrustedSources, name, err))
			continue
		}
		var addrs []netip.Addr
		if a, err := netip.ParseAddr(host); err == nil {
			addrs = []netip.Addr{a}
		} else {
			rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			addrs, err = net.DefaultResolver.LookupNetIP(rctx, "ip", host)
			cancel()
			if err != nil {
				errs = append(errs, fmt.Errorf("%w: %q: %w", ErrTrustedSources, name, err))
				continue
			}
		}
		for _, a := range addrs {
			a = a.Unmap()
			t.hosts = append(t.hosts, a)
			t.exact = append(t.exact, netip.AddrPortFrom(a, uint16(port)))
		}
	}
	return t, errors.Join(errs...)
}

// ReloadTrust resolves the trunk and outbound proxy addresses again and
// replaces Config.TrustedSources with nets (SIGHUP). What does not resolve
// is not trusted until the next reload; the error says what.
func (u *UA) ReloadTrust(ctx context.Context, nets []netip.Prefix) error {
	t, err := u.resolveTrust(ctx, nets)
	u.trust.Store(t)
	u.log.Info("trusted sources", "addresses", len(t.exact), "prefixes", len(t.nets), "err", err)
	return err
}

// readFilter sees every datagram and every read of a connection before
// sipgo parses it, with the address it came from.
func (u *UA) readFilter(p sip.TransportReadProps, data []byte) ([]byte, error) {
	src, ok := addrPortOf(p.RemoteAddr)
	if t := u.trust.Load(); ok && t != nil && t.allows(u.network, src) {
		return data, nil
	}
	if strings.EqualFold(p.Transport, "udp") {
		if !isRequestLine(data) {
			u.counts.stranger(untrustedResponse)
			return nil, nil
		}
		return data, nil // a request: the handlers answer it with 403
	}
	u.counts.stranger(untrustedStream)
	return nil, nil
}

// isRequestLine reports whether sipgo's parser takes the datagram data for
// a request: its start line (up to the first CR) has three space-separated
// parts, the last without spaces and beginning with "sip" or "SIP" (sipgo
// parser.go isRequest, checked before isResponse). Only those may pass from
// a stranger; anything else is dropped. Looking for a "SIP/" prefix
// instead is not enough: sipgo parses any start line whose first word
// begins with "sip" or "SIP" as a response ("sip/2.0 200 OK", "SIP 200
// OK"), so such a forged 200 reached the transaction layer and answered
// the call.
func isRequestLine(data []byte) bool {
	line := data
	if i := bytes.IndexByte(line, '\r'); i >= 0 {
		line = line[:i]
	}
	_, rest, ok := bytes.Cut(line, []byte(" "))
	if !ok {
		return false
	}
	_, last, ok := bytes.Cut(rest, []byte(" "))
	if !ok || len(last) < 3 || bytes.IndexByte(last, ' ') >= 0 {
		return false
	}
	switch string(last[:3]) {
	case "sip", "SIP":
		return true
	}
	return false
}

func addrPortOf(a net.Addr) (netip.AddrPort, bool) {
	switch a := a.(type) {
	case *net.UDPAddr:
		return a.AddrPort(), true
	case *net.TCPAddr:
		return a.AddrPort(), true
	case nil:
		return netip.AddrPort{}, false
	}
	ap, err := netip.ParseAddrPort(a.String())
	return ap, err == nil
}

// trusted reports whether req comes from a trusted source. The source is
// the address the message arrived from (never its Via, which the sender
// writes).
func (u *UA) trusted(req *sip.Request) bool {
	src, err := netip.ParseAddrPort(req.MessageData.Source())
	if err != nil {
		return false
	}
	t := u.trust.Load()
	return t != nil && t.allows(u.network, src)
}
