package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"

	"github.com/hashcall/hashcall/internal/config"
	"github.com/hashcall/hashcall/internal/store"
)

// openStore opens the configured store (store.*, audit.hmac_key).
func openStore(ctx context.Context, cfg *config.Config, logger *slog.Logger, reg prometheus.Registerer) (*store.Store, error) {
	s, err := store.Open(ctx, store.Options{
		Driver:     cfg.Store.Driver,
		Path:       cfg.Store.Path,
		DSN:        string(cfg.Store.DSN),
		Node:       cfg.Store.Node,
		Lease:      cfg.Store.Lease,
		AuditKey:   []byte(cfg.Audit.HMACKey),
		Logger:     logger,
		Registerer: reg,
	})
	if err != nil {
		return nil, exitError{2, fmt.Errorf("store (store.driver %s): %w", cfg.Store.Driver, err)}
	}
	return s, nil
}

func newAuditCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Check or export the audit log",
	}
	var cfgPath string
	verify := &cobra.Command{
		Use:   "verify [--config FILE]",
		Short: "Check the audit log's hash chain; print the first broken row and exit 1",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := openConfiguredStore(cmd.Context(), cfgPath)
			if err != nil {
				return err
			}
			defer s.Close()
			n, err := s.VerifyAudit(cmd.Context())
			var be *store.BrokenError
			if errors.As(err, &be) {
				fmt.Fprintf(cmd.OutOrStdout(), "audit log broken at row %d: %s (%d rows before it are intact)\n", be.Seq, be.Reason, n)
				if be.Row != nil {
					b, _ := json.Marshal(be.Row)
					fmt.Fprintf(cmd.OutOrStdout(), "%s\n", b)
				}
				return exitError{1, nil}
			}
			if err != nil {
				return exitError{2, err}
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "audit log intact: %d rows\n", n)
			return err
		},
	}
	var since string
	export := &cobra.Command{
		Use:   "export [--config FILE] [--since TIME]",
		Short: "Write the audit rows as JSON lines",
		Long: `Write the audit rows at or after --since as JSON lines, oldest first. --since is
an RFC 3339 time or date (2026-03-01T00:00:00Z, 2026-03-01) or a duration back from
now (720h); empty exports everything. Each row has the number masked (to) and as an
HMAC-SHA256 keyed with audit.hmac_key (to_hmac), and the chain's hashes.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			from, err := parseSince(since, time.Now())
			if err != nil {
				return exitError{2, err}
			}
			s, err := openConfiguredStore(cmd.Context(), cfgPath)
			if err != nil {
				return err
			}
			defer s.Close()
			enc := json.NewEncoder(cmd.OutOrStdout())
			if err := s.ExportAudit(cmd.Context(), from, func(r store.AuditRecord) error { return enc.Encode(r) }); err != nil {
				return exitError{2, err}
			}
			return nil
		},
	}
	export.Flags().StringVar(&since, "since", "", "RFC 3339 time, date or duration back from now")
	for _, c := range []*cobra.Command{verify, export} {
		c.Flags().StringVar(&cfgPath, "config", "", "configuration file (default ./hashcall.yaml, then /etc/hashcall/hashcall.yaml)")
		cmd.AddCommand(c)
	}
	return cmd
}

func openConfiguredStore(ctx context.Context, cfgPath string) (*store.Store, error) {
	cfg, err := loadConfig(cfgPath)
	if err != nil {
		return nil, err
	}
	return openStore(ctx, cfg, slog.New(slog.DiscardHandler), nil)
}

// parseSince reads --since: RFC 3339, a date, or a duration before now.
func parseSince(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("--since: want an RFC 3339 time (2026-03-01T00:00:00Z), a date (2026-03-01) or a duration (720h), got %q", s)
}
