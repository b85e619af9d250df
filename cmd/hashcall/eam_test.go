package main

import (
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hashcall/hashcall/internal/config"
	"github.com/hashcall/hashcall/internal/directory"
	"github.com/hashcall/hashcall/internal/service"
	"github.com/hashcall/hashcall/internal/store"
	"github.com/hashcall/hashcall/prompts"
)

// eam.* and directory.* map onto a working provider.
func TestNewEAMFromConfig(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "k.pem")
	if _, stderr, code := run(t, "keys", "generate", "--out", key); code != 0 {
		t.Fatal(stderr)
	}
	csv := filepath.Join(dir, "users.csv")
	if err := os.WriteFile(csv, []byte("user,mobile\nalice@contoso.example,+447700900001\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.EAM.Enabled = true
	cfg.EAM.Issuer = "https://mfa.example.org/eam"
	cfg.EAM.ClientID = "9a1b2c3d-4e5f-4a6b-8c7d-0e1f2a3b4c5d"
	cfg.EAM.Tenants = []string{"5d3c1a70-2b6e-4c8f-9a0d-7e1f2b3c4d5e"}
	cfg.EAM.SigningKeys = []string{key}
	cfg.EAM.TrustedProxies = []string{"10.0.0.0/8", "127.0.0.1"}
	cfg.Directory.CSV = csv
	cfg.Directory.LDAP.URL = "ldap://127.0.0.1:1"
	cfg.Directory.LDAP.BaseDN = "dc=contoso,dc=example"
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	d, err := directoryOf(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if chain, ok := d.(directory.Chain); !ok || len(chain) != 2 {
		t.Fatalf("directory %T %v: want the CSV then LDAP", d, d)
	}
	if e, err := d.Lookup(t.Context(), "alice@contoso.example"); err != nil || e.Number != "+447700900001" {
		t.Fatalf("lookup: %+v, %v", e, err)
	}
	reg := prometheus.NewRegistry()
	st, err := store.Open(t.Context(), store.Options{Path: filepath.Join(t.TempDir(), "hashcall.db"), AuditKey: []byte("audit-key-0123456789")})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	svc, err := service.New(nil, service.Options{Store: st, Prompts: func(l string) (*prompts.Set, error) { return prompts.Load("", l) }, Registerer: reg, Gatherer: reg})
	if err != nil {
		t.Fatal(err)
	}
	p, err := newEAM(cfg, svc, reg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(p.Handler())
	defer srv.Close()
	res, err := srv.Client().Get(srv.URL + "/eam/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var d2 struct {
		Issuer string `json:"issuer"`
		Auth   string `json:"authorization_endpoint"`
	}
	if err := json.NewDecoder(res.Body).Decode(&d2); err != nil {
		t.Fatal(err)
	}
	if d2.Issuer != cfg.EAM.Issuer || d2.Auth != cfg.EAM.Issuer+"/authorize" {
		t.Errorf("discovery %+v", d2)
	}
	// A key file that is not one is named by its key.
	bad := *cfg
	bad.EAM.SigningKeys = []string{csv}
	if _, err := newEAM(&bad, svc, prometheus.NewRegistry(), slog.New(slog.DiscardHandler)); err == nil || !strings.HasPrefix(err.Error(), "eam.signing_keys: ") {
		t.Errorf("newEAM with a CSV as signing key: %v, want an eam.signing_keys error", err)
	}
}
