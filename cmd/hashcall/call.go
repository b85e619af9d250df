package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/hashcall/hashcall/prompts"
	"github.com/hashcall/hashcall/verify"
)

func newCallCommand() *cobra.Command {
	var (
		cfgPath string
		asJSON  bool
		locale  string
		verbose bool
	)
	cmd := &cobra.Command{
		Use:   "call [--config FILE] [--json] [--locale L] NUMBER",
		Short: "Place one verification call through the configured trunk",
		Long: `Place one verification call: ring NUMBER through the trunk, play the prompt,
and wait for #. Progress lines go to stderr; with --json the result is one
JSON object on stdout. Exit status: 0 verified, 1 any other outcome, 2 a usage
or configuration error.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := loadConfig(cfgPath)
			if err != nil {
				return err
			}
			if err := cfg.RequireTrunk(); err != nil {
				return exitError{2, err}
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
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			ua, err := startUA(ctx, sc, 10*time.Second)
			if err != nil {
				return exitError{2, err}
			}
			defer ua.Close()
			v := &verify.Verifier{UA: ua, Config: vc, Logger: logger}
			res := v.Run(ctx, verify.Request{To: args[0], Prompts: set, OnProgress: printProgress(cmd.ErrOrStderr())})
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
	return cmd
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
