package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/hashcall/hashcall/internal/policy"
	"github.com/hashcall/hashcall/prompts"
	"github.com/hashcall/hashcall/verify"
)

func newCallCommand() *cobra.Command {
	var (
		cfgPath  string
		asJSON   bool
		locale   string
		verbose  bool
		noPolicy bool
	)
	cmd := &cobra.Command{
		Use:   "call [--config FILE] [--json] [--locale L] [--no-policy] NUMBER",
		Short: "Place one verification call through the configured trunk",
		Long: `Place one verification call: ring NUMBER through the trunk, play the prompt,
and wait for #. Progress lines go to stderr; with --json the result is one
JSON object on stdout. The toll-fraud policy applies as in the daemon
(policy.allowed_regions and policy.allowed_types; premium-rate, shared-cost and
unknown-type numbers are never called) unless --no-policy is given; the rate
limits are the daemon's own and do not apply to one call from the command line.
Exit status: 0 verified, 1 any other outcome, 2 a usage or configuration error
or a number the policy refuses (no call is placed).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := loadConfig(cfgPath)
			if err != nil {
				return err
			}
			if err := cfg.RequireTrunk(); err != nil {
				return exitError{2, err}
			}
			to := args[0]
			if !noPolicy {
				e164, err := checkPolicy(rulesOf(cfg), to)
				if err != nil {
					return exitError{2, err}
				}
				to = e164
			}
			if locale == "" {
				locale = cfg.Verify.Locale
			}
			set, err := prompts.Load(cfg.Prompts.Dir, locale)
			if err != nil {
				return exitError{2, err}
			}
			logger := newLogger(cmd.ErrOrStderr(), cfg.Log, verbose)
			sc, err := sipConfig(cfg, logger)
			if err != nil {
				return exitError{2, err}
			}
			sc.Trunk.OptionsInterval = -1 // one call: no pings
			vc, err := verifyConfig(cfg, logger)
			if err != nil {
				return exitError{2, err}
			}
			if mux, err := openMux(cfg, &vc, logger); err != nil {
				return exitError{2, err}
			} else if mux != nil {
				defer mux.Close()
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			ua, err := startUA(ctx, sc, 10*time.Second)
			if err != nil {
				return exitError{2, err}
			}
			defer ua.Close()
			v := &verify.Verifier{UA: ua, Config: vc, Logger: logger}
			res := v.Run(ctx, verify.Request{To: to, Prompts: set, OnProgress: printProgress(cmd.ErrOrStderr())})
			printResult(cmd.ErrOrStderr(), res)
			if asJSON {
				b, err := json.Marshal(res)
				if err != nil {
					return exitError{2, err}
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s\n", b)
			}
			if res.Outcome != verify.Verified {
				return exitError{code: 1}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&cfgPath, "config", "", "configuration file (default ./hashcall.yaml, then /etc/hashcall/hashcall.yaml)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the result as one JSON object on stdout")
	cmd.Flags().StringVar(&locale, "locale", "", "prompt locale (default verify.locale)")
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "log SIP (numbers masked) and RTP at debug level")
	cmd.Flags().BoolVar(&noPolicy, "no-policy", false, "call NUMBER as given, without the toll-fraud policy (allowed regions and types)")
	return cmd
}

// errPolicy is wrapped by checkPolicy's refusals.
var errPolicy = errors.New("refused by the toll-fraud policy")

// checkPolicy parses number as the daemon does and applies the number
// rules; it returns the number in E.164, or why it may not be called.
func checkPolicy(rules policy.Rules, number string) (string, error) {
	n, err := policy.Parse(number, rules.DefaultRegion())
	if err != nil {
		return "", fmt.Errorf("%w: %w (--no-policy calls it as given)", errPolicy, err)
	}
	if ref := rules.Check(n); ref != nil {
		return "", fmt.Errorf("%w: %s: %s: %s; no call placed (--no-policy calls it anyway)", errPolicy, n.Masked, ref.Rule, ref.Message)
	}
	return n.E164, nil
}

func newConfigCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "config", Short: "Configuration tools"}
	var cfgPath string
	check := &cobra.Command{
		Use:   "check [--config FILE]",
		Short: "Validate the configuration and print it with secrets masked",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(cfgPath)
			if err != nil {
				return err
			}
			if err := prompts.Check(cfg.Prompts.Dir, []string{cfg.Verify.Locale}); err != nil {
				return exitError{2, err}
			}
			b, err := cfg.YAML()
			if err != nil {
				return exitError{2, errors.Join(errors.New("printing the configuration"), err)}
			}
			_, err = cmd.OutOrStdout().Write(b)
			return err
		},
	}
	check.Flags().StringVar(&cfgPath, "config", "", "configuration file")
	cmd.AddCommand(check)
	return cmd
}
