package main

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/hashcall/hashcall/internal/eam"
)

func newKeysCommand() *cobra.Command {
	keys := &cobra.Command{
		Use:   "keys",
		Short: "Manage the keys that sign Entra ID external MFA tokens",
	}
	var (
		out  string
		cn   string
		days int
	)
	gen := &cobra.Command{
		Use:   "generate --out FILE",
		Short: "Make an RSA 3072 signing key and a self-signed certificate for eam.signing_keys",
		Long: `Write a new RSA 3072 private key and a self-signed certificate for it (published as
x5c in the JWKS) to FILE, as PEM, readable by its owner only. It prints the key id
(kid). FILE must not exist.

Rollover: generate a new key, list it first in eam.signing_keys with the old one
second, reload; remove the old one a day later (Entra caches the keys for about a day).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return exitError{2, errors.New("--out: required, the file to write")}
			}
			if days < 1 || days > 3650 {
				return exitError{2, fmt.Errorf("--days: want 1 to 3650, got %d", days)}
			}
			pem, err := eam.GenerateKey(nil, cn, time.Now(), time.Duration(days)*24*time.Hour)
			if err != nil {
				return err
			}
			k, err := eam.ParseSigningKey(pem)
			if err != nil {
				return err
			}
			f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
			if err != nil {
				return exitError{2, fmt.Errorf("--out: %w", err)}
			}
			if _, err := f.Write(pem); err != nil {
				f.Close()
				return err
			}
			if err := f.Close(); err != nil {
				return err
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "wrote %s: RSA %d, certificate valid until %s, kid %s\n",
				out, eam.KeyBits, k.Certs[0].NotAfter.UTC().Format(time.DateOnly), k.KeyID)
			return err
		},
	}
	gen.Flags().StringVar(&out, "out", "", "the PEM file to write (must not exist)")
	gen.Flags().StringVar(&cn, "cn", "hashcall external MFA", "the certificate's common name")
	gen.Flags().IntVar(&days, "days", 730, "the certificate's validity in days")
	keys.AddCommand(gen)
	return keys
}
