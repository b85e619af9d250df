package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"

	"github.com/hashcall/hashcall/internal/config"
	"github.com/hashcall/hashcall/internal/policy"
	"github.com/hashcall/hashcall/internal/radius"
	"github.com/hashcall/hashcall/internal/service"
	"github.com/hashcall/hashcall/internal/store"
	"github.com/hashcall/hashcall/numbermatch"
	"github.com/hashcall/hashcall/prompts"
	"github.com/hashcall/hashcall/verify"
)

func newServeCommand() *cobra.Command {
	var (
		cfgPath string
		verbose bool
	)
	cmd := &cobra.Command{
		Use:   "serve [--config FILE]",
		Short: "Run the daemon: the local HTTP hook that auth services ask for verification calls",
		Long: `Run hashcall as a daemon. Auth services POST /v1/verifications with a bearer token
(http.tokens) and read the outcome by long-poll (GET /v1/verifications/{id}?wait=30s)
or a signed callback. /healthz, /readyz and /metrics (Prometheus) need no token.
With radius.enabled, it also answers RADIUS (radius.listen): a front for VPNs,
RD Gateway and Wi-Fi that forwards to the existing RADIUS server and calls the
user on its Access-Accept.

SIGTERM or SIGINT drains: /readyz fails, new requests get 503, calls in flight
finish (up to shutdown.grace, then BYE with outcome cancelled), callbacks are
flushed, and the process exits 0. SIGHUP reloads http.tokens, policy.* and
sip.trusted_sources, and resolves the trunk's and outbound proxy's names again
(radius.* and eam.* need a restart).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return serve(cmd.Context(), cfgPath, verbose, cmd.ErrOrStderr())
		},
	}
	cmd.Flags().StringVar(&cfgPath, "config", "", "configuration file (default ./hashcall.yaml, then /etc/hashcall/hashcall.yaml)")
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "log at debug level (SIP with numbers masked)")
	return cmd
}

func rulesOf(c *config.Config) policy.Rules {
	return policy.Rules{
		Regions:   c.Policy.AllowedRegions,
		Types:     c.Policy.AllowedTypes,
		PerNumber: policy.Rate{N: c.Policy.PerNumberLimit.N, Per: c.Policy.PerNumberLimit.Per},
		Global:    policy.Rate{N: c.Policy.GlobalRate.N, Per: c.Policy.GlobalRate.Per},
		PerToken:  policy.Rate{N: c.Policy.PerTokenRate.N, Per: c.Policy.PerTokenRate.Per},
	}
}

func tokensOf(c *config.Config) []string {
	out := make([]string, 0, len(c.HTTP.Tokens))
	for _, t := range c.HTTP.Tokens {
		out = append(out, string(t))
	}
	return out
}

// promptCache loads each locale's prompts once.
type promptCache struct {
	dir string
	mu  sync.Mutex
	m   map[string]*prompts.Set
}

func (p *promptCache) get(locale string) (*prompts.Set, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if s, ok := p.m[locale]; ok {
		return s, nil
	}
	s, err := prompts.Load(p.dir, locale)
	if err != nil {
		return nil, err
	}
	p.m[locale] = s
	p.m[s.Locale] = s
	return s, nil
}

func serve(parent context.Context, cfgPath string, verbose bool, logs io.Writer) error {
	cfg, err := loadConfig(cfgPath)
	if err != nil {
		return err
	}
	if err := cfg.RequireTrunk(); err != nil {
		return exitError{2, err}
	}
	if len(cfg.HTTP.Tokens) == 0 {
		return exitError{2, errors.New("http.tokens: at least one bearer token is required (HASHCALL_HTTP_TOKENS=token1,token2)")}
	}
	if err := cfg.RequireAuditKey(); err != nil {
		return exitError{2, err}
	}
	logger := newLogger(logs, cfg.Log, verbose)
	cache := &promptCache{dir: cfg.Prompts.Dir, m: map[string]*prompts.Set{}}
	if _, err := cache.get(cfg.Verify.Locale); err != nil {
		return exitError{2, err}
	}
	if err := prompts.Check(cfg.Prompts.Dir, nil); err != nil {
		return exitError{2, err}
	}
	sc, err := sipConfig(cfg, logger)
	if err != nil {
		return exitError{2, err}
	}
	vc, err := verifyConfig(cfg, logger)
	if err != nil {
		return exitError{2, err}
	}
	mux, err := openMux(cfg, &vc, logger)
	if err != nil {
		return exitError{2, err}
	}
	ctx, stop := signal.NotifyContext(parent, syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if mux != nil {
		defer mux.Close() // after the calls: deferred first, run last
		reg.MustRegister(muxCollector{mux})
	}
	st, err := openStore(ctx, cfg, logger, reg)
	if err != nil {
		return err
	}
	defer st.Close()
	ua, err := startUA(ctx, sc, 0)
	if err != nil {
		return exitError{2, err}
	}
	defer ua.Close()
	stopDiag, err := startDiagnostics(ctx, cfg.Diagnostics.Listen, logger)
	if err != nil {
		return exitError{2, err}
	}
	defer stopDiag()
	hasher := numbermatch.NewRandomHasher()
	if k := cfg.Verify.CodeKey; k != "" {
		if hasher, err = numbermatch.NewHasher([]byte(k)); err != nil {
			return exitError{2, fmt.Errorf("verify.code_key: %w", err)}
		}
	}
	if err := reg.Register(sipCollector{ua}); err != nil {
		return exitError{2, fmt.Errorf("metrics: %w", err)}
	}
	var front *radius.Server
	var checks []service.Check
	if cfg.Radius.Enabled {
		// front is set below, before anything serves /readyz.
		checks = append(checks, service.Check{Name: "radius_upstream", Ready: func() bool { return front != nil && front.Ready() }})
	}
	svc, err := service.New(&verify.Verifier{UA: ua, Config: vc, Logger: logger}, service.Options{
		Tokens:            tokensOf(cfg),
		CallbackHosts:     cfg.HTTP.CallbackHosts,
		CallbackAddresses: cfg.HTTP.CallbackAddresses,
		CallbackSecret:    string(cfg.HTTP.CallbackSecret),
		Rules:             rulesOf(cfg),
		MaxConcurrent:     cfg.Policy.MaxConcurrent,
		Mode:              cfg.Verify.Mode,
		CodeLength:        cfg.Verify.CodeLength,
		CodeTTL:           cfg.Verify.CodeTTL,
		CodeHasher:        hasher,
		MaxFailedCodes:    cfg.Policy.MaxFailedCodes,
		Failures:          store.Failures{S: st, Window: policy.FailureWindow},
		DefaultLocale:     cfg.Verify.Locale,
		Prompts:           cache.get,
		Ready:             ua.Ready,
		Checks:            checks,
		Store:             st,
		Hangup: func(ctx context.Context, d store.Dialog) error {
			if d.Early {
				return ua.CancelFromState(ctx, service.CancelState(d))
			}
			return ua.ByeFromState(ctx, service.DialogState(d))
		},
		Retention: store.Retention{Verifications: cfg.Store.Retention, Audit: cfg.Audit.Retention,
			RateWindow: max(cfg.Policy.PerNumberLimit.Per, cfg.Policy.GlobalRate.Per, cfg.Policy.PerTokenRate.Per)},
		Logger:     logger,
		Registerer: reg,
		Gatherer:   reg,
	})
	if err != nil {
		return exitError{2, err}
	}
	if err := svc.Start(ctx); err != nil {
		return exitError{2, err}
	}
	defer svc.Close()
	var eamSrv *eamServer
	eamErr := make(<-chan error)
	if cfg.EAM.Enabled {
		p, err := newEAM(cfg, svc, reg, logger)
		if err != nil {
			return exitError{2, err}
		}
		if eamSrv, err = startEAM(cfg, p, logger); err != nil {
			return exitError{2, err}
		}
		eamErr = eamSrv.errc
		logger.Info("entra external MFA serving", "listen", eamSrv.addr, "issuer", cfg.EAM.Issuer,
			"tls", cfg.EAM.TLSCert != "", "enrolment", cfg.EAM.Enrolment)
	}
	if cfg.Radius.Enabled {
		ro, err := radiusOptions(cfg, logger, reg)
		if err != nil {
			return exitError{2, err}
		}
		front, err = radius.Listen(ro, svc)
		if err != nil {
			return exitError{2, err}
		}
		defer front.Close()
		logger.Info("radius front listening", "addr", front.Addr().String(), "clients", len(ro.Clients), "upstreams", len(ro.Upstreams))
	}
	ln, err := net.Listen("tcp", cfg.HTTP.Listen)
	if err != nil {
		return exitError{2, fmt.Errorf("http.listen %s: %w", cfg.HTTP.Listen, err)}
	}
	srv := &http.Server{
		Handler:           svc.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      90 * time.Second, // long-polls last up to 60 s
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	logger.Info("hashcall serving", "http", ln.Addr().String(), "sip", ua.Addr().String(), "transport", cfg.SIP.Transport,
		"trunk", cfg.SIP.Trunk.Address, "register", cfg.SIP.Trunk.Register, "version", versionString())

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case err := <-serveErr:
			return exitError{2, fmt.Errorf("http server: %w", err)}
		case err := <-eamErr:
			return exitError{2, fmt.Errorf("eam server: %w", err)}
		case <-hup:
			next, err := config.Load(cfgPath)
			if err != nil {
				logger.Error("reload refused: the configuration has errors; keeping the current one", "err", err)
				continue
			}
			if len(next.HTTP.Tokens) == 0 {
				logger.Error("reload refused: http.tokens is empty; keeping the current tokens")
				continue
			}
			svc.Reload(tokensOf(next), rulesOf(next))
			// The trunk's address itself needs a restart; its name is
			// resolved again, and sip.trusted_sources taken anew.
			if err := ua.ReloadTrust(ctx, next.SIP.TrustedPrefixes()); err != nil {
				logger.Warn("reload: trusted SIP sources", "err", err)
			}
		case <-ctx.Done():
			logger.Info("shutting down: draining", "grace", cfg.Shutdown.Grace)
			if eamSrv != nil {
				// No new sign-ins; pages being polled get a closed
				// connection, their calls are drained below.
				ectx, ecancel := context.WithTimeout(context.Background(), 5*time.Second)
				if err := eamSrv.shutdown(ectx); err != nil {
					logger.Warn("eam shutdown", "err", err)
				}
				ecancel()
			}
			// Callbacks get up to config.CallbackFlush beyond the grace
			// period (the systemd unit's TimeoutStopSec allows for it).
			dctx, cancel := context.WithTimeout(context.Background(), cfg.Shutdown.Grace+config.CallbackFlush)
			svc.Drain(dctx, cfg.Shutdown.Grace)
			cancel()
			if front != nil {
				// After the drain: the NASes waiting on calls have their answers.
				front.Close()
			}
			sctx, scancel := context.WithTimeout(context.Background(), config.HTTPShutdown)
			err := srv.Shutdown(sctx)
			scancel()
			if err != nil {
				logger.Warn("http shutdown", "err", err)
			}
			logger.Info("stopped")
			return nil
		}
	}
}
