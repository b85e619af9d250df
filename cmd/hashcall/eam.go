package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hashcall/hashcall/internal/config"
	"github.com/hashcall/hashcall/internal/directory"
	"github.com/hashcall/hashcall/internal/eam"
	"github.com/hashcall/hashcall/internal/service"
)

// directoryOf builds the directory of directory.csv and directory.ldap.*
// (both: the CSV first), or nil when neither is set.
func directoryOf(c *config.Config) (directory.Directory, error) {
	var chain directory.Chain
	if c.Directory.CSV != "" {
		d, err := directory.OpenCSV(c.Directory.CSV)
		if err != nil {
			return nil, err
		}
		chain = append(chain, d)
	}
	if l := c.Directory.LDAP; l.URL != "" {
		tc := &tls.Config{MinVersion: tls.VersionTLS12}
		if l.CAFile != "" {
			pem, err := os.ReadFile(l.CAFile)
			if err != nil {
				return nil, fmt.Errorf("directory.ldap.ca_file: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("directory.ldap.ca_file: %s holds no PEM certificate", l.CAFile)
			}
			tc.RootCAs = pool
		}
		d, err := directory.NewLDAP(directory.LDAPConfig{URL: l.URL, StartTLS: l.StartTLS, TLS: tc, BindDN: l.BindDN,
			Password: string(l.Password), BaseDN: l.BaseDN, Filter: l.Filter, Attribute: l.Attribute, Timeout: l.Timeout})
		if err != nil {
			return nil, err
		}
		chain = append(chain, d)
	}
	if len(chain) == 0 {
		return nil, nil
	}
	return chain, nil
}

// newEAM builds the Entra ID external MFA provider from eam.*.
func newEAM(c *config.Config, svc *service.Service, reg prometheus.Registerer, logger *slog.Logger) (*eam.Provider, error) {
	e := c.EAM
	var keys []*eam.SigningKey
	for _, p := range e.SigningKeys {
		k, err := eam.LoadSigningKey(p)
		if err != nil {
			return nil, fmt.Errorf("eam.signing_keys: %w", err)
		}
		keys = append(keys, k)
	}
	var src eam.KeySource = &eam.URLKeys{URL: e.EntraJWKSURL}
	if e.EntraJWKSFile != "" {
		src = &eam.FileKeys{Path: e.EntraJWKSFile}
	}
	auds := e.HintAudiences
	if len(auds) == 0 {
		auds = []string{e.ClientID}
	}
	var proxies []netip.Prefix
	for _, s := range e.TrustedProxies {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil {
				return nil, fmt.Errorf("eam.trusted_proxies: %w", err)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		proxies = append(proxies, p)
	}
	dir, err := directoryOf(c)
	if err != nil {
		return nil, err
	}
	// Enrolments and (nonce, state) claims are in the durable store: they
	// survive restarts and hold across nodes.
	store := eam.StoreBacked{Store: svc.Store()}
	return eam.New(eam.Options{
		Issuer: e.Issuer, ClientID: e.ClientID, RedirectURIs: e.RedirectURIs,
		Hints:       &eam.HintVerifier{Keys: src, Tenants: e.Tenants, Audiences: auds, MaxAge: e.HintMaxAge, Skew: e.ClockSkew},
		SigningKeys: keys, Enrolment: e.Enrolment, Directory: dir, Enrolments: store, Claims: store, Service: svc,
		Regions: c.Policy.AllowedRegions, DefaultLocale: c.Verify.Locale, MaxCalls: e.MaxCalls,
		PageDir: e.PageDir, TrustedProxies: proxies, Logger: logger, Registerer: reg,
	})
}

// eamServer is the provider's own listener.
type eamServer struct {
	srv  *http.Server
	addr string
	errc chan error
}

func startEAM(c *config.Config, p *eam.Provider, logger *slog.Logger) (*eamServer, error) {
	ln, err := net.Listen("tcp", c.EAM.Listen)
	if err != nil {
		return nil, fmt.Errorf("eam.listen %s: %w", c.EAM.Listen, err)
	}
	s := &eamServer{addr: ln.Addr().String(), errc: make(chan error, 1), srv: &http.Server{
		Handler:           p.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second, // done waits up to 25 s for a call's outcome
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}}
	if c.EAM.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(c.EAM.TLSCert, c.EAM.TLSKey)
		if err != nil {
			ln.Close()
			return nil, fmt.Errorf("eam.tls_cert/eam.tls_key: %w", err)
		}
		s.srv.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
		ln = tls.NewListener(ln, s.srv.TLSConfig)
	}
	go func() {
		err := s.srv.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		s.errc <- err
	}()
	return s, nil
}

func (s *eamServer) shutdown(ctx context.Context) error {
	err := s.srv.Shutdown(ctx)
	<-s.errc
	return err
}
