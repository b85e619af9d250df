package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"time"

	sipgosip "github.com/emiago/sipgo/sip"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/hashcall/hashcall/internal/config"
	"github.com/hashcall/hashcall/internal/directory"
	"github.com/hashcall/hashcall/internal/policy"
	"github.com/hashcall/hashcall/internal/radius"
	"github.com/hashcall/hashcall/media"
	"github.com/hashcall/hashcall/sip"
	"github.com/hashcall/hashcall/verify"
)

// loadConfig loads and validates the configuration; its errors are usage
// errors (exit 2).
func loadConfig(path string) (*config.Config, error) {
	cfg, err := config.Load(path)
	if err != nil {
		return nil, exitError{2, err}
	}
	return cfg, nil
}

// newLogger builds the slog logger from log.level and log.format, and makes
// it the one sipgo logs through too.
func newLogger(w io.Writer, c config.Log, verbose bool) *slog.Logger {
	level := c.SlogLevel()
	if verbose {
		level = slog.LevelDebug
	}
	opts := &slog.HandlerOptions{Level: level}
	var l *slog.Logger
	if c.Format == "json" {
		l = slog.New(slog.NewJSONHandler(w, opts))
	} else {
		l = slog.New(slog.NewTextHandler(w, opts))
	}
	sipgosip.SetDefaultLogger(l.With("component", "sipgo"))
	return l
}

// sipConfig maps the configuration onto the user agent's.
func sipConfig(c *config.Config, logger *slog.Logger) (sip.Config, error) {
	s := c.SIP
	sc := sip.Config{
		Listen:            s.Listen,
		Transport:         s.Transport,
		PublicAddress:     s.PublicAddress,
		From:              s.From,
		DisplayName:       s.DisplayName,
		PAssertedIdentity: s.PAssertedIdentity,
		RingTimeout:       s.RingTimeout,
		UDPReadBuffer:     int(s.UDPReadBuffer),
		TrustedSources:    s.TrustedPrefixes(),
		Trunk: sip.Trunk{
			Address:         s.Trunk.Address,
			OutboundProxy:   s.Trunk.OutboundProxy,
			Username:        s.Trunk.Username,
			Password:        string(s.Trunk.Password),
			Realm:           s.Trunk.Realm,
			Register:        s.Trunk.Register,
			RegisterExpiry:  s.Trunk.RegisterExpiry,
			OptionsInterval: s.Trunk.OptionsInterval,
		},
		UserAgent: "hashcall/" + versionString(),
		Logger:    logger,
	}
	if s.Transport == config.TransportTLS {
		client := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: s.TLS.InsecureSkipVerify} //nolint:gosec // an explicit, documented option
		if s.TLS.CAFile != "" {
			pem, err := os.ReadFile(s.TLS.CAFile)
			if err != nil {
				return sip.Config{}, fmt.Errorf("sip.tls.ca_file: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return sip.Config{}, fmt.Errorf("sip.tls.ca_file: %s holds no PEM certificate", s.TLS.CAFile)
			}
			client.RootCAs = pool
		}
		if s.TLS.CertFile != "" {
			cert, err := tls.LoadX509KeyPair(s.TLS.CertFile, s.TLS.KeyFile)
			if err != nil {
				return sip.Config{}, fmt.Errorf("sip.tls.cert_file/key_file: %w", err)
			}
			client.Certificates = []tls.Certificate{cert}
			sc.ServerTLS = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
		}
		sc.TLS = client
	}
	return sc, nil
}

// verifyConfig maps the configuration onto the verification flow's.
func verifyConfig(c *config.Config, logger *slog.Logger) (verify.Config, error) {
	var codecs []media.Codec
	for _, name := range c.Media.Codecs {
		codec, err := media.ParseCodec(name)
		if err != nil {
			return verify.Config{}, fmt.Errorf("media.codecs: %w", err)
		}
		codecs = append(codecs, codec)
	}
	return verify.Config{
		AnswerTimeout:   c.Verify.AnswerTimeout,
		Attempts:        c.Verify.Attempts,
		MinKeyDelay:     c.Verify.MinKeyDelay,
		DigitTimeout:    c.Verify.DigitTimeout,
		MaxCallDuration: c.SIP.MaxCallDuration,
		OnDiversion:     verify.DiversionPolicy(c.Verify.OnDiversion),
		NoVoicemail:     !c.Verify.DetectVoicemail,
		Media: media.SessionConfig{
			IP:      c.MediaListenIP(),
			Ports:   c.Media.RTPPorts,
			Codecs:  codecs,
			EventPT: uint8(c.Media.TelephoneEventPT),
			Latch:   c.Media.SymmetricLatching,
			Logger:  logger,
		},
	}, nil
}

// openMux binds the shared RTP port when media.rtp_mux is on (the low
// port of media.rtp_ports, which config keeps even) and hands it to the
// calls' media; close runs after the last call (nil when off).
func openMux(c *config.Config, vc *verify.Config, logger *slog.Logger) (*media.Mux, error) {
	if !c.Media.RTPMux {
		return nil, nil
	}
	// Not the command's context: calls ending in the shutdown grace still
	// need their media; the caller closes the mux after them.
	m, err := media.ListenMux(context.Background(), media.MuxConfig{
		Addr:       netip.AddrPortFrom(c.MediaListenIP(), c.Media.RTPPorts.Low),
		ReadBuffer: int(c.Media.RTPMuxReadBuffer),
		Logger:     logger,
	})
	if err != nil {
		return nil, fmt.Errorf("media.rtp_mux: %w", err)
	}
	vc.Media.Mux = m
	return m, nil
}

// startUA starts the user agent and, with registration on, waits up to
// wait for it to register.
func startUA(ctx context.Context, sc sip.Config, wait time.Duration) (*sip.UA, error) {
	ua, err := sip.NewUA(ctx, sc)
	if err != nil {
		return nil, err
	}
	if sc.Trunk.Register && wait > 0 {
		deadline := time.Now().Add(wait)
		for {
			if _, reg := ua.TrunkState(); reg {
				break
			}
			if time.Now().After(deadline) {
				ua.Close()
				return nil, fmt.Errorf("not registered at %s after %v (see the log for the registrar's answer)", sc.Trunk.Address, wait)
			}
			select {
			case <-ctx.Done():
				ua.Close()
				return nil, ctx.Err()
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	return ua, nil
}

// radiusOptions maps radius.* and directory.* onto the RADIUS front's
// options, reading the clients' and servers' secrets.
func radiusOptions(c *config.Config, logger *slog.Logger, reg prometheus.Registerer) (radius.Options, error) {
	r := c.Radius
	clients, err := r.RadiusClients()
	if err != nil {
		return radius.Options{}, fmt.Errorf("radius.clients: %w", err)
	}
	servers, err := r.Upstream.RadiusServers()
	if err != nil {
		return radius.Options{}, fmt.Errorf("radius.upstream.servers: %w", err)
	}
	dir, err := directory.OpenCSV(c.Directory.CSV)
	if err != nil {
		return radius.Options{}, err
	}
	o := radius.Options{
		Listen:                              r.Listen,
		RequireMessageAuthenticator:         r.RequireMessageAuthenticator,
		UpstreamRequireMessageAuthenticator: r.Upstream.RequireMessageAuthenticator,
		AnswerCache:                         r.AnswerCache,
		CallTimeout:                         r.CallTimeout,
		ClientLimit:                         policy.Rate{N: r.ClientLimit.N, Per: r.ClientLimit.Per},
		Timeout:                             r.Upstream.Timeout,
		Tries:                               r.Upstream.Retries + 1,
		StatusInterval:                      r.Upstream.StatusInterval,
		// The store's enrolments go before the CSV export once they exist.
		Directory:  directory.Chain{dir},
		Locale:     c.Verify.Locale,
		Logger:     logger,
		Registerer: reg,
	}
	for _, cl := range clients {
		o.Clients = append(o.Clients, radius.Client{Name: cl.Prefix.String(), Prefix: cl.Prefix, Secret: []byte(cl.Secret)})
	}
	for _, s := range servers {
		o.Upstreams = append(o.Upstreams, radius.Upstream{Addr: s.Addr, Secret: []byte(s.Secret)})
	}
	return o, nil
}
