package config

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"time"
)

// RadiusClient is one entry of radius.clients with its secret read.
type RadiusClient struct {
	Prefix netip.Prefix
	Secret Secret
	// Ref is where the secret came from ("env:NAME" or "file:PATH").
	Ref string
}

// RadiusServer is one entry of radius.upstream.servers with its secret.
type RadiusServer struct {
	Addr   string
	Secret Secret
}

const (
	clientWant = `want "CIDR env:VARIABLE" or "CIDR file:PATH" such as "10.0.0.0/24 env:VPN_RADIUS_SECRET"`
	serverWant = `want "HOST:PORT", optionally followed by " env:VARIABLE" or " file:PATH", such as "nps1.example.org:1812"`
	// minRadiusSecret: RFC 6614 and the BlastRADIUS advice ask for long
	// random secrets; 16 is the floor here.
	minRadiusSecret = 16
)

// readSecretRef reads the secret that ref ("env:NAME" or "file:PATH")
// points to. A file's trailing newline is dropped.
func readSecretRef(ref string) (Secret, error) {
	kind, arg, ok := strings.Cut(ref, ":")
	if !ok || arg == "" {
		return "", errors.New("want env:VARIABLE or file:PATH")
	}
	var v string
	switch kind {
	case "env":
		v = os.Getenv(arg)
		if v == "" {
			return "", fmt.Errorf("the environment variable %s is not set", arg)
		}
	case "file":
		b, err := os.ReadFile(arg)
		if err != nil {
			return "", err
		}
		v = strings.TrimRight(string(b), "\r\n")
	default:
		return "", errors.New("want env:VARIABLE or file:PATH")
	}
	if err := checkSecret(v, minRadiusSecret); err != nil {
		return "", fmt.Errorf("the secret in %s: %w", ref, err)
	}
	return Secret(v), nil
}

// RadiusClients parses radius.clients and reads their secrets.
func (r Radius) RadiusClients() ([]RadiusClient, error) {
	var out []RadiusClient
	for i, e := range r.Clients {
		f := strings.Fields(e)
		if len(f) != 2 {
			return nil, fmt.Errorf("entry %d: %s, got %s", i+1, clientWant, quote(e))
		}
		p, err := netip.ParsePrefix(f[0])
		if err != nil {
			a, aerr := netip.ParseAddr(f[0])
			if aerr != nil {
				return nil, fmt.Errorf("entry %d: %s, got %s", i+1, clientWant, quote(e))
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		sec, err := readSecretRef(f[1])
		if err != nil {
			return nil, fmt.Errorf("entry %d (%s): %w", i+1, f[0], err)
		}
		out = append(out, RadiusClient{Prefix: p.Masked(), Secret: sec, Ref: f[1]})
	}
	return out, nil
}

// RadiusServers parses radius.upstream.servers and reads their secrets
// (radius.upstream.secret for those that name none).
func (u RadiusUpstream) RadiusServers() ([]RadiusServer, error) {
	var out []RadiusServer
	for i, e := range u.Servers {
		f := strings.Fields(e)
		if len(f) < 1 || len(f) > 2 || checkHostPort(f[0]) != nil {
			return nil, fmt.Errorf("entry %d: %s, got %s", i+1, serverWant, quote(e))
		}
		s := RadiusServer{Addr: f[0], Secret: u.Secret}
		if len(f) == 2 {
			sec, err := readSecretRef(f[1])
			if err != nil {
				return nil, fmt.Errorf("entry %d (%s): %w", i+1, f[0], err)
			}
			s.Secret = sec
		}
		if s.Secret == "" {
			return nil, fmt.Errorf("entry %d (%s): no secret: set radius.upstream.secret (%s) or name one after the address", i+1, f[0], EnvVar("radius.upstream.secret"))
		}
		out = append(out, s)
	}
	return out, nil
}

func (c *Config) validateRadius(ck *checker) {
	r := &c.Radius
	if c.Directory.CSV != "" {
		if _, err := os.Stat(c.Directory.CSV); err != nil {
			ck.add("directory.csv", err)
		}
	}
	if err := checkListen(r.Listen); err != nil {
		ck.addf("radius.listen", "want HOST:PORT such as 127.0.0.1:1812 (%v), got %s", err, quote(r.Listen))
	}
	checkDuration(ck, "radius.answer_cache", r.AnswerCache, time.Second, 5*time.Minute)
	checkDuration(ck, "radius.call_timeout", r.CallTimeout, 5*time.Second, 5*time.Minute)
	if r.ClientLimit.N < 0 {
		ck.addf("radius.client_limit", "%s", rateWant)
	}
	u := &r.Upstream
	checkDuration(ck, "radius.upstream.timeout", u.Timeout, 100*time.Millisecond, time.Minute)
	if u.Retries < 0 || u.Retries > 10 {
		ck.addf("radius.upstream.retries", "want 0 to 10, got %d", u.Retries)
	}
	if u.StatusInterval != 0 && (u.StatusInterval < 100*time.Millisecond || u.StatusInterval > time.Hour) {
		ck.addf("radius.upstream.status_interval", "want 0 (off) or a duration between 100ms and 1h such as 30s, got %s", formatDuration(u.StatusInterval))
	}
	if u.Secret != "" {
		ck.add("radius.upstream.secret", checkSecret(string(u.Secret), minRadiusSecret))
	}
	if _, err := r.RadiusClients(); err != nil {
		ck.add("radius.clients", err)
	}
	if _, err := u.RadiusServers(); err != nil {
		ck.add("radius.upstream.servers", err)
	}
	if !r.Enabled {
		return
	}
	if len(r.Clients) == 0 {
		ck.addf("radius.clients", "the RADIUS front needs at least one client: %s", clientWant)
	}
	if len(u.Servers) == 0 {
		ck.addf("radius.upstream.servers", "the RADIUS front needs at least one upstream server: %s", serverWant)
	}
	if c.Directory.CSV == "" {
		ck.addf("directory.csv", "the RADIUS front needs a directory of users' numbers: the path of a CSV file with the columns user,mobile")
	}
}
