package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os/signal"
	"strings"
	"syscall"
	"time"

	sipgosip "github.com/emiago/sipgo/sip"
	"github.com/spf13/cobra"

	"github.com/hashcall/hashcall/dtmf"
	"github.com/hashcall/hashcall/internal/phone"
	"github.com/hashcall/hashcall/media"
	"github.com/hashcall/hashcall/numbermatch"
	"github.com/hashcall/hashcall/prompts"
	"github.com/hashcall/hashcall/sip"
	"github.com/hashcall/hashcall/verify"
)

func newDemoCommand() *cobra.Command {
	var (
		method  string
		key     string
		locale  string
		verbose bool
		code    bool
		wrong   bool
	)
	cmd := &cobra.Command{
		Use:   "demo [--dtmf rfc4733|inband|info] [--key K | --code [--wrong-code]]",
		Short: "Run a complete verification call over 127.0.0.1 against a simulated phone",
		Long: `Run a complete verification over 127.0.0.1 with no configuration and no PBX:
an in-process simulated phone (a SIP user agent with real RTP) answers,
listens a moment into the prompt and presses the key by the chosen method,
and hashcall places a real call to it and decides with the real detector.
With --code the call is mode code (number matching): the demo draws a code
and shows it, as a sign-in screen would, and the phone keys it, then #
(--wrong-code: a wrong one).
Exit status 0 only when the call is verified.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(key) != 1 || !dtmf.Key(key[0]).Valid() {
				return exitError{2, fmt.Errorf("--key %q: want one of 0-9 * # A-D", key)}
			}
			switch method {
			case phone.MethodRFC4733, phone.MethodInband, phone.MethodInfo:
			default:
				return exitError{2, fmt.Errorf("--dtmf %q: want rfc4733, inband or info", method)}
			}
			set, err := prompts.Load("", locale)
			if err != nil {
				return exitError{2, err}
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			logLevel := slog.LevelWarn
			if verbose {
				logLevel = slog.LevelDebug
			}
			logger := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: logLevel}))
			sipgosip.SetDefaultLogger(logger.With("component", "sipgo"))
			if wrong && !code {
				return exitError{2, errors.New("--wrong-code needs --code")}
			}
			dc := demoCode{on: code, wrong: wrong}
			res, err := runDemo(ctx, cmd.ErrOrStderr(), logger, set, method, dtmf.Key(key[0]), dc)
			if err != nil {
				return exitError{2, err}
			}
			fmt.Fprintln(cmd.OutOrStdout(), res.Outcome)
			if res.Outcome != verify.Verified {
				return exitError{code: 1}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&method, "dtmf", phone.MethodRFC4733, "how the simulated phone presses the key: rfc4733, inband or info")
	cmd.Flags().StringVar(&key, "key", "#", "the key the simulated phone presses")
	cmd.Flags().StringVar(&locale, "locale", "en-GB", "prompt locale")
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "log SIP and RTP at debug level")
	cmd.Flags().BoolVar(&code, "code", false, "mode code: the phone keys the code shown, then #")
	cmd.Flags().BoolVar(&wrong, "wrong-code", false, "with --code: the phone keys a wrong code")
	return cmd
}

// demoCode is the demo's mode code: on, and whether the phone keys a wrong
// code.
type demoCode struct{ on, wrong bool }

func runDemo(ctx context.Context, progress io.Writer, logger *slog.Logger, set *prompts.Set, method string, key dtmf.Key, dc demoCode) (verify.Result, error) {
	lo := netip.MustParseAddr("127.0.0.1")
	// The simulated phone presses as a callee does: a moment after the ask
	// prompt said "press the hash key" (the early-key guard ignores keys
	// before it).
	after := max(verify.DefaultMinKeyDelay, set.AskPressAt) + 700*time.Millisecond
	var (
		keys string
		cr   *verify.CodeRequest
	)
	if dc.on {
		code, err := numbermatch.Generate(nil, numbermatch.DefaultLength)
		if err != nil {
			return verify.Result{}, err
		}
		// The demo is the sign-in screen: it shows the code.
		fmt.Fprintf(progress, "the sign-in screen shows the code %s\n", code)
		cr = &verify.CodeRequest{Secret: numbermatch.NewRandomHasher().Seal(code, time.Now().Add(numbermatch.DefaultTTL))}
		keys = code
		if dc.wrong {
			keys = code[:len(code)-1] + string(rune('0'+(code[len(code)-1]-'0'+1)%10))
		}
		keys += "#"
		after = max(verify.DefaultMinKeyDelay, set.AskCodePressAt) + 700*time.Millisecond
	}
	ph, err := phone.Start(ctx, phone.Config{Method: method, Key: key, Keys: keys, After: after, Logger: logger,
		Ports: media.PortRange{Low: 40000, High: 40999}})
	if err != nil {
		return verify.Result{}, err
	}
	defer ph.Close()
	what := key.String()
	if dc.on {
		what = "a code"
		if dc.wrong {
			what = "a wrong code"
		}
	}
	fmt.Fprintf(progress, "simulated phone listening on %s, will key %s by %s\n", ph.Addr(), what, method)
	ua, err := sip.NewUA(ctx, sip.Config{
		Listen: "127.0.0.1:0",
		Trunk:  sip.Trunk{Address: ph.Addr(), OptionsInterval: -1},
		From:   "hashcall", DisplayName: "hashcall demo",
		RingTimeout: 10 * time.Second,
		Logger:      logger,
	})
	if err != nil {
		return verify.Result{}, err
	}
	defer ua.Close()
	v := &verify.Verifier{UA: ua, Logger: logger, Config: verify.Config{
		AnswerTimeout: 5 * time.Second, Attempts: 2, MaxCallDuration: time.Minute,
		Media: media.SessionConfig{IP: lo, Ports: media.PortRange{Low: 41000, High: 41999}, Logger: logger},
	}}
	res := v.Run(ctx, verify.Request{To: "100", Prompts: set, OnProgress: printProgress(progress), Code: cr})
	printResult(progress, res)
	return res, nil
}

// printProgress writes one line per call step.
func printProgress(w io.Writer) func(verify.Progress) {
	start := time.Now()
	return func(p verify.Progress) {
		fmt.Fprintf(w, "%7.3fs  %-11s %s\n", time.Since(start).Seconds(), p.Stage, p.Detail)
	}
}

func printResult(w io.Writer, r verify.Result) {
	fmt.Fprintf(w, "outcome %s: sip %d %s", r.Outcome, r.SIPCode, r.SIPReason)
	if r.Codec != "" {
		fmt.Fprintf(w, ", codec %s", r.Codec)
	}
	if r.DTMFSource != "" {
		fmt.Fprintf(w, ", key by %s", r.DTMFSource)
	}
	if r.Outcome == verify.Verified {
		fmt.Fprintf(w, ", call set-up %.0f ms, # to decision %.1f ms", r.SetupMS, r.HashToDecisionMS)
	}
	if r.Diverted {
		fmt.Fprintf(w, ", forwarded (%s)", strings.Join(r.DiversionReasons, ", "))
	}
	if r.VoicemailReason != "" {
		fmt.Fprintf(w, ", answering machine (%s)", r.VoicemailReason)
	}
	if r.Error != "" {
		fmt.Fprintf(w, " (%s)", r.Error)
	}
	fmt.Fprintln(w)
}
