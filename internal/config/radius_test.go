package config

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const goodRadiusSecret = "nas-secret-0123456789"

func TestRadiusValidation(t *testing.T) {
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "nas.secret")
	if err := os.WriteFile(secretFile, []byte(goodRadiusSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	short := filepath.Join(dir, "short.secret")
	if err := os.WriteFile(short, []byte("abc"), 0o600); err != nil {
		t.Fatal(err)
	}
	csv := filepath.Join(dir, "users.csv")
	if err := os.WriteFile(csv, []byte("user,mobile\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	enabled := func(c *Config) {
		c.Radius.Enabled = true
		c.Radius.Clients = []string{"10.0.0.0/24 file:" + secretFile}
		c.Radius.Upstream.Servers = []string{"nps.example.org:1812"}
		c.Radius.Upstream.Secret = "upstream-secret-0123456789"
		c.Directory.CSV = csv
	}
	for _, tc := range []struct {
		name   string
		mutate func(*Config)
		key    string
		want   string // "" when valid
	}{
		{"defaults_off", func(*Config) {}, "", ""},
		{"enabled", enabled, "", ""},
		{"env_secret", func(c *Config) {
			enabled(c)
			t.Setenv("TEST_NAS_SECRET", goodRadiusSecret)
			c.Radius.Clients = []string{"192.0.2.7 env:TEST_NAS_SECRET"}
		}, "", ""},
		{"server_own_secret", func(c *Config) {
			enabled(c)
			c.Radius.Upstream.Secret = ""
			c.Radius.Upstream.Servers = []string{"nps.example.org:1812 file:" + secretFile}
		}, "", ""},
		{"no_clients", func(c *Config) { enabled(c); c.Radius.Clients = nil }, "radius.clients", "at least one client"},
		{"client_no_secret_ref", func(c *Config) { enabled(c); c.Radius.Clients = []string{"10.0.0.0/24"} }, "radius.clients", `want "CIDR env:VARIABLE"`},
		{"client_inline_secret", func(c *Config) { enabled(c); c.Radius.Clients = []string{"10.0.0.0/24 s3cret-in-the-file"} }, "radius.clients", "want env:VARIABLE or file:PATH"},
		{"client_bad_cidr", func(c *Config) { enabled(c); c.Radius.Clients = []string{"10.0.0/24 file:" + secretFile} }, "radius.clients", `got "10.0.0/24 file:`},
		{"client_env_unset", func(c *Config) { enabled(c); c.Radius.Clients = []string{"10.0.0.0/24 env:HASHCALL_TEST_UNSET"} }, "radius.clients", "HASHCALL_TEST_UNSET is not set"},
		{"client_secret_short", func(c *Config) { enabled(c); c.Radius.Clients = []string{"10.0.0.0/24 file:" + short} }, "radius.clients", "shorter than 16"},
		{"client_file_missing", func(c *Config) { enabled(c); c.Radius.Clients = []string{"10.0.0.0/24 file:/nonexistent/x"} }, "radius.clients", "no such file"},
		{"no_servers", func(c *Config) { enabled(c); c.Radius.Upstream.Servers = nil }, "radius.upstream.servers", "at least one upstream"},
		{"server_no_port", func(c *Config) { enabled(c); c.Radius.Upstream.Servers = []string{"nps.example.org"} }, "radius.upstream.servers", `want "HOST:PORT"`},
		{"server_no_secret", func(c *Config) { enabled(c); c.Radius.Upstream.Secret = "" }, "radius.upstream.servers", "HASHCALL_RADIUS_UPSTREAM_SECRET"},
		{"upstream_secret_short", func(c *Config) { enabled(c); c.Radius.Upstream.Secret = "short" }, "radius.upstream.secret", "shorter than 16"},
		{"no_directory", func(c *Config) { enabled(c); c.Directory.CSV = "" }, "directory.csv", "needs a directory"},
		{"directory_missing", func(c *Config) { enabled(c); c.Directory.CSV = "/nonexistent/users.csv" }, "directory.csv", "no such file"},
		{"listen", func(c *Config) { enabled(c); c.Radius.Listen = "1812" }, "radius.listen", "want HOST:PORT such as 127.0.0.1:1812"},
		{"retries", func(c *Config) { enabled(c); c.Radius.Upstream.Retries = 11 }, "radius.upstream.retries", "want 0 to 10"},
		{"timeout", func(c *Config) { enabled(c); c.Radius.Upstream.Timeout = 0 }, "radius.upstream.timeout", "want a duration between"},
		{"call_timeout", func(c *Config) { enabled(c); c.Radius.CallTimeout = 0 }, "radius.call_timeout", "want a duration between"},
		{"status_interval", func(c *Config) { enabled(c); c.Radius.Upstream.StatusInterval = 1 }, "radius.upstream.status_interval", "want 0 (off)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Default()
			tc.mutate(c)
			err := c.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Key != tc.key || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want key %s and %q", err, tc.key, tc.want)
			}
			if strings.Contains(err.Error(), goodRadiusSecret) {
				t.Errorf("the error shows a secret: %v", err)
			}
		})
	}
}

func TestRadiusClientsAndServers(t *testing.T) {
	t.Setenv("TEST_NAS_SECRET", goodRadiusSecret)
	r := Radius{Clients: []string{"10.0.0.9/24 env:TEST_NAS_SECRET", "192.0.2.7 env:TEST_NAS_SECRET"}}
	cl, err := r.RadiusClients()
	if err != nil {
		t.Fatal(err)
	}
	if len(cl) != 2 || cl[0].Prefix != netip.MustParsePrefix("10.0.0.0/24") || cl[1].Prefix != netip.MustParsePrefix("192.0.2.7/32") ||
		string(cl[0].Secret) != goodRadiusSecret || cl[0].Ref != "env:TEST_NAS_SECRET" {
		t.Errorf("clients %+v", cl)
	}
	u := RadiusUpstream{Servers: []string{"a.example:1812", "b.example:1645 env:TEST_NAS_SECRET"}, Secret: "default-secret-0123456789"}
	sv, err := u.RadiusServers()
	if err != nil {
		t.Fatal(err)
	}
	if len(sv) != 2 || sv[0].Addr != "a.example:1812" || sv[0].Secret != u.Secret || string(sv[1].Secret) != goodRadiusSecret {
		t.Errorf("servers %+v", sv)
	}
}
