package directory

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashcall/hashcall/internal/testpeers"
	"github.com/hashcall/hashcall/internal/testwait"
)

// A real OpenLDAP (Debian slapd) per test: cn=config built by slapadd -n0
// from an LDIF written here, an mdb database in a temporary folder, the
// users added with slapadd, TLS with a certificate made here, on
// 127.0.0.1 from ldapPortBase; slapd is ended by its PID.
const ldapPortBase = 49100

const (
	ldapBase     = "dc=contoso,dc=example"
	ldapReaderDN = "cn=hashcall,ou=services,dc=contoso,dc=example"
	ldapReaderPW = "reader-pw-0123456789"
)

type slapd struct {
	url    string
	caPool *x509.CertPool
}

func startSlapd(t *testing.T) *slapd {
	t.Helper()
	if testing.Short() {
		t.Skip("real slapd: not in -short mode")
	}
	bin := testpeers.File(t, "/usr/sbin/slapd", "slapd")
	slapadd := testpeers.File(t, "/usr/sbin/slapadd", "slapd")
	testpeers.File(t, "/etc/ldap/schema/inetorgperson.ldif", "slapd")
	dir := t.TempDir()
	certFile, keyFile, pool := writeCert(t, dir)
	db := filepath.Join(dir, "db")
	cfgDir := filepath.Join(dir, "slapd.d")
	for _, d := range []string{db, cfgDir} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	config := `dn: cn=config
objectClass: olcGlobal
cn: config
olcTLSCertificateFile: ` + certFile + `
olcTLSCertificateKeyFile: ` + keyFile + `
olcPidFile: ` + filepath.Join(dir, "slapd.pid") + `

dn: cn=module{0},cn=config
objectClass: olcModuleList
cn: module{0}
olcModulePath: /usr/lib/ldap
olcModuleLoad: back_mdb

dn: cn=schema,cn=config
objectClass: olcSchemaConfig
cn: schema

include: file:///etc/ldap/schema/core.ldif
include: file:///etc/ldap/schema/cosine.ldif
include: file:///etc/ldap/schema/inetorgperson.ldif

dn: cn={3}ad,cn=schema,cn=config
objectClass: olcSchemaConfig
cn: {3}ad
olcAttributeTypes: ( 1.2.840.113556.1.4.656 NAME 'userPrincipalName' EQUALITY caseIgnoreMatch SUBSTR caseIgnoreSubstringsMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
olcObjectClasses: ( 1.3.6.1.4.1.32473.1.1 NAME 'hashcallTestUser' AUXILIARY MAY userPrincipalName )

dn: olcDatabase={0}config,cn=config
objectClass: olcDatabaseConfig
olcDatabase: {0}config
olcAccess: {0}to * by * none

dn: olcDatabase={1}mdb,cn=config
objectClass: olcDatabaseConfig
objectClass: olcMdbConfig
olcDatabase: {1}mdb
olcDbDirectory: ` + db + `
olcSuffix: ` + ldapBase + `
olcRootDN: cn=admin,` + ldapBase + `
olcDbIndex: userPrincipalName eq
olcAccess: {0}to attrs=userPassword by anonymous auth by * none
olcAccess: {1}to * by dn.exact="` + ldapReaderDN + `" read by * none
`
	data := `dn: ` + ldapBase + `
objectClass: dcObject
objectClass: organization
dc: contoso
o: Contoso

dn: ou=services,` + ldapBase + `
objectClass: organizationalUnit
ou: services

dn: ou=people,` + ldapBase + `
objectClass: organizationalUnit
ou: people

dn: ` + ldapReaderDN + `
objectClass: person
objectClass: simpleSecurityObject
cn: hashcall
sn: reader
userPassword: ` + ldapReaderPW + `

dn: uid=alice,ou=people,` + ldapBase + `
objectClass: inetOrgPerson
objectClass: hashcallTestUser
uid: alice
cn: Alice
sn: Example
userPrincipalName: alice@contoso.example
mobile: +447700900001
telephoneNumber: +441632960001

dn: uid=bob,ou=people,` + ldapBase + `
objectClass: inetOrgPerson
objectClass: hashcallTestUser
uid: bob
cn: Bob
sn: Example
userPrincipalName: bob@contoso.example
telephoneNumber: +441632960002

dn: uid=star,ou=people,` + ldapBase + `
objectClass: inetOrgPerson
objectClass: hashcallTestUser
uid: star
cn: Star
sn: Example
userPrincipalName: *)(uid=*
mobile: +447700900003
`
	for _, step := range []struct {
		name, ldif string
		db         string
	}{{"config.ldif", config, "0"}, {"data.ldif", data, "1"}} {
		p := filepath.Join(dir, step.name)
		if err := os.WriteFile(p, []byte(step.ldif), 0o600); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command(slapadd, "-n"+step.db, "-F", cfgDir, "-l", p).CombinedOutput(); err != nil {
			t.Fatalf("slapadd -n%s %s: %v\n%s", step.db, step.name, err, out)
		}
	}
	port := freeTCP(t, ldapPortBase)
	url := "ldap://127.0.0.1:" + strconv.Itoa(port)
	logPath := filepath.Join(dir, "slapd.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-d", "256", "-h", url+"/", "-F", cfgDir)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = testpeers.ChildAttr()
	if err := cmd.Start(); err != nil {
		t.Fatalf("slapd: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Logf("started slapd (pid %d) on %s", cmd.Process.Pid, url)
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("slapd log:\n%s", b)
		}
	})
	// slapd prints "slapd starting" before its listener thread listens, and
	// nothing once it does: its port is polled.
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	exited := false
	if err := testwait.Until(ctx, func() bool {
		select {
		case <-done:
			exited = true
			return true
		default:
		}
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil
	}); err != nil {
		t.Fatalf("slapd does not listen on %d: %v", port, err)
	}
	if exited {
		b, _ := os.ReadFile(logPath)
		t.Fatalf("slapd exited:\n%s", b)
	}
	return &slapd{url: url, caPool: pool}
}

func freeTCP(t *testing.T, base int) int {
	t.Helper()
	for p := base; p < base+100; p++ {
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err == nil {
			l.Close()
			return p
		}
	}
	t.Fatalf("no free TCP port from %d", base)
	return 0
}

// writeCert writes a self-signed certificate for 127.0.0.1 and its key.
func writeCert(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{netip.MustParseAddr("127.0.0.1").AsSlice()},
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	p8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p8}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

func TestLDAP(t *testing.T) {
	s := startSlapd(t)
	tlsConf := &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: s.caPool}
	ctx := context.Background()
	for _, mode := range []struct {
		name     string
		startTLS bool
	}{{"plain", false}, {"starttls", true}} {
		t.Run(mode.name, func(t *testing.T) {
			d, err := NewLDAP(LDAPConfig{URL: s.url, StartTLS: mode.startTLS, TLS: tlsConf, BindDN: ldapReaderDN,
				Password: ldapReaderPW, BaseDN: ldapBase})
			if err != nil {
				t.Fatal(err)
			}
			for _, tc := range []struct{ name, key, want string }{
				{"upn", "alice@contoso.example", "+447700900001"},
				{"upn_case", "Alice@CONTOSO.example", "+447700900001"},
				{"no_mobile", "bob@contoso.example", ""},
				{"unknown", "mallory@contoso.example", ""},
				{"wildcard_escaped", "*", ""},
				{"injection_escaped", "*)(uid=*", "+447700900003"}, // only the user literally named so
				{"oid_not_asked", "00000000-0000-4000-8000-00000000a11c", ""},
			} {
				t.Run(tc.name, func(t *testing.T) {
					e, err := d.Lookup(ctx, tc.key)
					if tc.want == "" {
						if !errors.Is(err, ErrNotFound) {
							t.Fatalf("Lookup(%q) = %+v, %v; want ErrNotFound", tc.key, e, err)
						}
						return
					}
					if err != nil || e.Number != tc.want {
						t.Fatalf("Lookup(%q) = %+v, %v; want %s", tc.key, e, err, tc.want)
					}
				})
			}
		})
	}
	t.Run("other_attribute", func(t *testing.T) {
		d, _ := NewLDAP(LDAPConfig{URL: s.url, BindDN: ldapReaderDN, Password: ldapReaderPW, BaseDN: ldapBase, Attribute: "telephoneNumber"})
		if e, err := d.Lookup(ctx, "bob@contoso.example"); err != nil || e.Number != "+441632960002" {
			t.Fatalf("%+v, %v", e, err)
		}
	})
	t.Run("wrong_password", func(t *testing.T) {
		d, _ := NewLDAP(LDAPConfig{URL: s.url, BindDN: ldapReaderDN, Password: "wrong-password", BaseDN: ldapBase})
		if _, err := d.Lookup(ctx, "alice@contoso.example"); !errors.Is(err, ErrLDAP) || errors.Is(err, ErrNotFound) {
			t.Fatalf("err %v, want ErrLDAP", err)
		}
	})
	t.Run("anonymous_sees_nothing", func(t *testing.T) {
		d, _ := NewLDAP(LDAPConfig{URL: s.url, BaseDN: ldapBase})
		if _, err := d.Lookup(ctx, "alice@contoso.example"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("err %v, want ErrNotFound", err)
		}
	})
	t.Run("starttls_untrusted", func(t *testing.T) {
		d, _ := NewLDAP(LDAPConfig{URL: s.url, StartTLS: true, BindDN: ldapReaderDN, Password: ldapReaderPW, BaseDN: ldapBase})
		if _, err := d.Lookup(ctx, "alice@contoso.example"); !errors.Is(err, ErrLDAP) || !strings.Contains(err.Error(), "StartTLS") {
			t.Fatalf("err %v, want a StartTLS error", err)
		}
	})
	t.Run("server_down", func(t *testing.T) {
		d, _ := NewLDAP(LDAPConfig{URL: fmt.Sprintf("ldap://127.0.0.1:%d", freeTCP(t, ldapPortBase+50)), BaseDN: ldapBase, Timeout: time.Second})
		if _, err := d.Lookup(ctx, "alice@contoso.example"); !errors.Is(err, ErrLDAP) {
			t.Fatalf("err %v, want ErrLDAP", err)
		}
	})
}

func TestNewLDAPErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		c    LDAPConfig
	}{
		{"scheme", LDAPConfig{URL: "http://x", BaseDN: "dc=x"}},
		{"no_base", LDAPConfig{URL: "ldap://x"}},
		{"filter", LDAPConfig{URL: "ldap://x", BaseDN: "dc=x", Filter: "(uid=%s)(cn=%s)"}},
		{"ldaps_starttls", LDAPConfig{URL: "ldaps://x", BaseDN: "dc=x", StartTLS: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := NewLDAP(tc.c); !errors.Is(err, ErrLDAP) {
				t.Errorf("err %v, want ErrLDAP", err)
			}
		})
	}
}
