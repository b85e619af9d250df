package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// eam.* and directory.*: each bad value names its key and the expected
// form.
func TestEAMValidation(t *testing.T) {
	clearEnv(t)
	dir := t.TempDir()
	key := filepath.Join(dir, "eam-key.pem")
	if err := os.WriteFile(key, []byte("placeholder"), 0o600); err != nil {
		t.Fatal(err)
	}
	good := "eam:\n  enabled: true\n  issuer: https://mfa.example.org/eam\n  client_id: 3f8c1a2e-0b7d-4e55-9a61-5a2d0c9e7f10\n" +
		"  tenants: [72F988BF-86F1-41AF-91AB-2D7CD011DB47]\n  signing_keys: [" + key + "]\n"
	c, err := loadString(t, good)
	if err != nil {
		t.Fatalf("good: %v", err)
	}
	if c.EAM.Tenants[0] != "72f988bf-86f1-41af-91ab-2d7cd011db47" {
		t.Errorf("tenants not lower-cased: %v", c.EAM.Tenants)
	}
	for _, tc := range []struct{ name, yaml, want string }{
		{"no_issuer", "eam:\n  enabled: true\n", "eam.issuer: want an absolute https URL"},
		{"no_client_id", "eam:\n  enabled: true\n", "eam.client_id: required with eam.enabled"},
		{"no_tenants", "eam:\n  enabled: true\n", "eam.tenants: required with eam.enabled"},
		{"no_keys", "eam:\n  enabled: true\n", "eam.signing_keys: required with eam.enabled"},
		{"http_issuer", strings.Replace(good, "https://", "http://", 1), "eam.issuer: want https"},
		{"bad_tenant", "eam:\n  tenants: [contoso.onmicrosoft.com]\n", "eam.tenants: want tenant ids"},
		{"bad_enrolment", "eam:\n  enrolment: sometimes\n", "eam.enrolment: want directory, self or off"},
		{"bad_proxy", "eam:\n  trusted_proxies: [proxy.example]\n", "eam.trusted_proxies: want IPs or CIDRs"},
		{"cert_without_key", "eam:\n  tls_cert: " + key + "\n", "eam.tls_cert: set both"},
		{"public_plain_http", good + "  listen: 0.0.0.0:8443\n", "eam.listen: plain HTTP"},
		{"too_long_for_entra", good + "  max_calls: 3\n", "eam.max_calls: 3 calls of up to 1m30s each"},
		{"too_long_ring", good + "sip:\n  ring_timeout: 120s\n", "eam.max_calls: 2 calls of up to 3m each"},
		{"missing_key_file", strings.Replace(good, key, filepath.Join(dir, "nope.pem"), 1), "eam.signing_keys: stat"},
		{"ldap_scheme", "directory:\n  ldap:\n    url: http://ldap.example.org\n    base_dn: dc=example\n", "directory.ldap.url: want ldap://"},
		{"ldap_no_base", "directory:\n  ldap:\n    url: ldap://127.0.0.1:389\n", "directory.ldap.base_dn: required"},
		{"ldap_filter", "directory:\n  ldap:\n    url: ldap://127.0.0.1\n    base_dn: dc=x\n    filter: uid=%s\n", "directory.ldap.filter: want an LDAP filter"},
		{"ldaps_starttls", "directory:\n  ldap:\n    url: ldaps://127.0.0.1\n    base_dn: dc=x\n    start_tls: true\n", "directory.ldap.start_tls"},
		{"csv_missing", "directory:\n  csv: " + filepath.Join(dir, "nope.csv") + "\n", "directory.csv: stat"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := loadString(t, tc.yaml)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}
