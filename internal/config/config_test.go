package config

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/big"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashcall/hashcall/media"
	"go.yaml.in/yaml/v3"
)

// clearEnv blanks every HASHCALL_ variable for the test (blank counts as
// unset), so the machine's environment cannot leak into it.
func clearEnv(t *testing.T) {
	t.Helper()
	for _, f := range fields {
		t.Setenv(f.env, "")
	}
}

// decodeFile sets c from a file's values alone: no environment, no
// normalising, no validation.
func decodeFile(c *Config, path string, data []byte) []error {
	leaves, errs := readYAML(path, data)
	for key, l := range leaves {
		if err := fieldByKey[key].set(c, l.node); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func loadString(t *testing.T, content string) (*Config, error) {
	t.Helper()
	return Load(writeFile(t, t.TempDir(), "hashcall.yaml", content))
}

func mustLoad(t *testing.T, content string) *Config {
	t.Helper()
	c, err := loadString(t, content)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return c
}

func TestDefaultValidates(t *testing.T) {
	if err := Default().Validate(); err != nil {
		t.Fatalf("Default().Validate() = %v", err)
	}
	if err := Default().RequireTrunk(); err == nil || !strings.Contains(err.Error(), "sip.trunk.address") {
		t.Fatalf("Default().RequireTrunk() = %v, want an error naming sip.trunk.address", err)
	}
}

func TestKeysAndTags(t *testing.T) {
	want := []string{
		"sip.listen", "sip.transport", "sip.public_address", "sip.trunk.address", "sip.trunk.outbound_proxy",
		"sip.trunk.username", "sip.trunk.password", "sip.trunk.register", "sip.from", "sip.display_name",
		"sip.ring_timeout", "sip.max_call_duration", "sip.trusted_sources", "media.rtp_ports", "media.codecs", "media.telephone_event_pt",
		"media.symmetric_latching", "media.rtp_mux", "media.rtp_mux_read_buffer", "verify.answer_timeout", "verify.attempts", "verify.locale", "verify.on_diversion", "verify.detect_voicemail", "prompts.dir",
		"verify.mode", "verify.code_length", "verify.code_ttl", "verify.code_key", "verify.digit_timeout", "policy.max_failed_codes",
		"sip.p_asserted_identity", "sip.trunk.realm", "sip.trunk.register_expiry", "sip.trunk.options_interval",
		"sip.tls.cert_file", "sip.tls.key_file", "sip.tls.ca_file", "sip.tls.insecure_skip_verify",
		"media.listen_ip", "log.level", "log.format", "http.listen", "http.tokens", "http.callback_hosts",
		"http.callback_secret", "policy.allowed_regions", "policy.allowed_types", "policy.per_number_limit",
		"policy.global_rate", "policy.max_concurrent", "shutdown.grace",
		"store.driver", "store.path", "store.dsn", "store.retention", "store.node", "store.lease",
		"audit.retention", "audit.hmac_key",
	}
	keys := Keys()
	for _, k := range want {
		if !slices.Contains(keys, k) {
			t.Errorf("key %s missing", k)
		}
	}
	envs := map[string]string{}
	for _, f := range fields {
		if other, dup := envs[f.env]; dup {
			t.Errorf("%s and %s share %s", f.key, other, f.env)
		}
		envs[f.env] = f.key
	}
	if got := EnvVar("sip.trunk.password"); got != "HASHCALL_SIP_TRUNK_PASSWORD" {
		t.Errorf("EnvVar = %q", got)
	}
	if got := EnvVar("nope"); got != "" {
		t.Errorf("EnvVar(nope) = %q", got)
	}
	secrets := []string{}
	for _, f := range fields {
		if f.secret {
			secrets = append(secrets, f.key)
		}
	}
	if want := []string{"sip.trunk.password", "verify.code_key", "http.tokens", "http.callback_secret", "store.dsn", "audit.hmac_key", "directory.ldap.password", "radius.upstream.secret"}; !slices.Equal(secrets, want) {
		t.Errorf("secret keys = %v, want %v", secrets, want)
	}
	// Every field has a yaml tag, its one name; viper never decodes into
	// Config, so a mapstructure tag would be dead (remove them with
	// sed -i -E 's/ mapstructure:"[^"]*"//g' internal/config/config.go).
	var check func(reflect.Type)
	check = func(rt reflect.Type) {
		for i := range rt.NumField() {
			sf := rt.Field(i)
			if y, m := sf.Tag.Get("yaml"), sf.Tag.Get("mapstructure"); y == "" || m != "" {
				t.Errorf("%s.%s: yaml %q, mapstructure %q", rt.Name(), sf.Name, y, m)
			}
			if sf.Type.Kind() == reflect.Struct && !reflect.PointerTo(sf.Type).Implements(textUnmarshalerType) {
				check(sf.Type)
			}
		}
	}
	check(reflect.TypeFor[Config]())
}

// The documented sample sets every key, each to its default.
func TestSampleConfigIsDefaults(t *testing.T) {
	clearEnv(t)
	const path = "../../configs/hashcall.yaml"
	c, err := Load(path)
	if err != nil {
		t.Fatalf("Load(%s): %v", path, err)
	}
	if !reflect.DeepEqual(c, Default()) {
		t.Errorf("Load(%s) differs from Default():\n got %+v\nwant %+v", path, c, Default())
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	leaves, errs := readYAML(path, data)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	for _, k := range Keys() {
		if _, set := leaves[k]; !set {
			t.Errorf("%s does not set %s", path, k)
		}
	}
}

func TestExamples(t *testing.T) {
	clearEnv(t)
	paths, err := filepath.Glob("../../configs/examples/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]func(*Config) bool{
		"asterisk.yaml": func(c *Config) bool {
			return c.SIP.PAssertedIdentity == "+441234567890" && c.SIP.Trunk.Username == "hashcall" && c.SIP.From == "+441234567890"
		},
		"freeswitch.yaml": func(c *Config) bool { return c.SIP.Trunk.Address == "freeswitch.example.org:5080" },
		"kamailio.yaml": func(c *Config) bool {
			return c.SIP.Trunk.Register && c.SIP.Trunk.RegisterExpiry == 600*time.Second && c.SIP.Trunk.Realm != ""
		},
		"cisco-cube.yaml": func(c *Config) bool {
			return c.SIP.Transport == TransportTCP && strings.HasPrefix(c.SIP.PAssertedIdentity, "sip:")
		},
	}
	for name := range want {
		if !slices.Contains(paths, "../../configs/examples/"+name) {
			t.Errorf("example %s missing", name)
		}
	}
	for _, p := range paths {
		t.Run(filepath.Base(p), func(t *testing.T) {
			c, err := Load(p)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if err := c.RequireTrunk(); err != nil {
				t.Errorf("RequireTrunk: %v", err)
			}
			if ok := want[filepath.Base(p)]; ok != nil && !ok(c) {
				t.Errorf("unexpected values: %+v", c.SIP)
			}
		})
	}
	// The registering example with its password from the environment.
	t.Setenv("HASHCALL_SIP_TRUNK_PASSWORD", "s3cret-from-env")
	c, err := Load("../../configs/examples/kamailio.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if c.SIP.Trunk.Password != "s3cret-from-env" {
		t.Errorf("password not taken from the environment")
	}
}

func TestEnvOverridesFileOverridesDefaults(t *testing.T) {
	clearEnv(t)
	path := writeFile(t, t.TempDir(), "h.yaml", `
sip:
  ring_timeout: 20s
  max_call_duration: 2m
  trunk:
    address: pbx.example.org:5060
`)
	t.Setenv("HASHCALL_SIP_RING_TIMEOUT", "40s")           // in the file: env wins
	t.Setenv("HASHCALL_SIP_TRUNK_USERNAME", "hashcall")    // not in the file
	t.Setenv("HASHCALL_SIP_TRUNK_PASSWORD", "p@ss word 1") // not in the file
	t.Setenv("HASHCALL_SIP_TRUNK_REGISTER", "true")
	t.Setenv("HASHCALL_VERIFY_ATTEMPTS", "2")
	t.Setenv("HASHCALL_MEDIA_RTP_PORTS", "30000-30999")
	t.Setenv("HASHCALL_POLICY_GLOBAL_RATE", "10/1s")
	t.Setenv("HASHCALL_SIP_TRANSPORT", "TCP")
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if c.SIP.RingTimeout != 40*time.Second {
		t.Errorf("ring_timeout = %v, want 40s from the environment", c.SIP.RingTimeout)
	}
	if c.SIP.MaxCallDuration != 2*time.Minute {
		t.Errorf("max_call_duration = %v, want 2m from the file", c.SIP.MaxCallDuration)
	}
	if c.Verify.AnswerTimeout != 10*time.Second {
		t.Errorf("answer_timeout = %v, want the default 10s", c.Verify.AnswerTimeout)
	}
	if c.SIP.Trunk.Username != "hashcall" || c.SIP.Trunk.Password != "p@ss word 1" || !c.SIP.Trunk.Register {
		t.Errorf("trunk = %+v", c.SIP.Trunk)
	}
	if c.Verify.Attempts != 2 || c.Media.RTPPorts != (media.PortRange{Low: 30000, High: 30999}) || c.Policy.GlobalRate != (Rate{10, time.Second}) {
		t.Errorf("attempts %d, rtp_ports %v, global_rate %v", c.Verify.Attempts, c.Media.RTPPorts, c.Policy.GlobalRate)
	}
	if c.SIP.Transport != "tcp" {
		t.Errorf("transport = %q, want tcp", c.SIP.Transport)
	}

	// No file at all: environment over defaults.
	t.Setenv("HASHCALL_SIP_TRUNK_ADDRESS", "pbx2.example.org:5060")
	t.Chdir(t.TempDir())
	defer swapSearchPaths([]string{"hashcall.yaml"})()
	c, err = Load("")
	if err != nil {
		t.Fatal(err)
	}
	if c.SIP.RingTimeout != 40*time.Second || c.SIP.Trunk.Password != "p@ss word 1" {
		t.Errorf("without a file: ring_timeout %v", c.SIP.RingTimeout)
	}
}

func TestEnvLists(t *testing.T) {
	tests := []struct {
		name, env, value string
		get              func(*Config) any
		want             any
	}{
		{"codecs", "HASHCALL_MEDIA_CODECS", "PCMU,PCMA", func(c *Config) any { return c.Media.Codecs }, []string{"PCMU", "PCMA"}},
		{"codecs spaces and case", "HASHCALL_MEDIA_CODECS", " pcmu , PCMA ,", func(c *Config) any { return c.Media.Codecs }, []string{"PCMU", "PCMA"}},
		{"one codec", "HASHCALL_MEDIA_CODECS", "PCMU", func(c *Config) any { return c.Media.Codecs }, []string{"PCMU"}},
		{"tokens", "HASHCALL_HTTP_TOKENS", "aaaaaaaaaaaaaaaa1,bbbbbbbbbbbbbbbb2", func(c *Config) any { return c.HTTP.Tokens },
			[]Secret{"aaaaaaaaaaaaaaaa1", "bbbbbbbbbbbbbbbb2"}},
		{"callback hosts", "HASHCALL_HTTP_CALLBACK_HOSTS", "auth.example.org,*.example.net:8443",
			func(c *Config) any { return c.HTTP.CallbackHosts }, []string{"auth.example.org", "*.example.net:8443"}},
		{"regions", "HASHCALL_POLICY_ALLOWED_REGIONS", "gb,IE", func(c *Config) any { return c.Policy.AllowedRegions }, []string{"GB", "IE"}},
		{"types", "HASHCALL_POLICY_ALLOWED_TYPES", "mobile,fixed_line", func(c *Config) any { return c.Policy.AllowedTypes },
			[]string{"mobile", "fixed_line"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearEnv(t)
			t.Setenv(tt.env, tt.value)
			t.Setenv("HASHCALL_HTTP_CALLBACK_SECRET", strings.Repeat("c", MinCallbackSecret)) // callback hosts need one
			c := mustLoad(t, "")
			if got := tt.get(c); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %#v, want %#v", got, tt.want)
			}
		})
	}
}

func TestYAMLListForms(t *testing.T) {
	clearEnv(t)
	c := mustLoad(t, "media:\n  codecs: PCMU, PCMA\npolicy:\n  allowed_regions: [gb, ie]\n")
	if !slices.Equal(c.Media.Codecs, []string{"PCMU", "PCMA"}) || !slices.Equal(c.Policy.AllowedRegions, []string{"GB", "IE"}) {
		t.Errorf("codecs %v regions %v", c.Media.Codecs, c.Policy.AllowedRegions)
	}
}

// Plain YAML scalars keep their text: numbers with + or leading zeros are
// not turned into integers.
func TestPlainScalarsKeepText(t *testing.T) {
	clearEnv(t)
	c := mustLoad(t, `
sip:
  from: +441234567890
  display_name: 0044
  p_asserted_identity: +441234567890
  trunk:
    address: pbx.example.org:5060
    username: 0123
    password: 012345
`)
	if c.SIP.From != "+441234567890" || c.SIP.DisplayName != "0044" || c.SIP.Trunk.Username != "0123" || c.SIP.Trunk.Password != "012345" {
		t.Errorf("got from %q display %q user %q", c.SIP.From, c.SIP.DisplayName, c.SIP.Trunk.Username)
	}
}

func TestNullKeepsDefault(t *testing.T) {
	clearEnv(t)
	c := mustLoad(t, "sip:\n  ring_timeout:\n  transport: ~\nmedia:\nverify:\n  locale: null\n")
	if !reflect.DeepEqual(c, Default()) {
		t.Errorf("got %+v", c)
	}
	c = mustLoad(t, "# only comments\n")
	if !reflect.DeepEqual(c, Default()) {
		t.Errorf("comment-only file: got %+v", c)
	}
}

func TestMergeKeysNeedKnownKeys(t *testing.T) {
	clearEnv(t)
	// Anchors must live under known keys: a scratch top-level key is unknown.
	_, err := loadString(t, "x-timeouts: &t\n  ring_timeout: 45s\nsip:\n  <<: *t\n")
	if err == nil || !strings.Contains(err.Error(), "x-timeouts: unknown key") {
		t.Fatalf("err = %v", err)
	}
}

func TestMergeKeysInsideKnown(t *testing.T) {
	clearEnv(t)
	c := mustLoad(t, `
sip:
  trunk: &trunk
    address: pbx.example.org:5060
    options_interval: 15s
media:
  codecs: &codecs [PCMU]
http:
  callback_hosts: *codecs
  callback_secret: callback-secret-0123456789abcdefghijkl
`)
	if c.SIP.Trunk.OptionsInterval != 15*time.Second || !slices.Equal(c.HTTP.CallbackHosts, []string{"PCMU"}) {
		t.Errorf("got %+v %v", c.SIP.Trunk, c.HTTP.CallbackHosts)
	}
	c = mustLoad(t, `
sip:
  trunk:
    <<: {address: a.example.org:5060, options_interval: 15s}
    options_interval: 20s
`)
	if c.SIP.Trunk.Address != "a.example.org:5060" || c.SIP.Trunk.OptionsInterval != 20*time.Second {
		t.Errorf("merge: got %+v", c.SIP.Trunk)
	}
}

func TestUnknownKeys(t *testing.T) {
	clearEnv(t)
	tests := []struct {
		name, yaml, want string
	}{
		{"typo", "sip:\n  trunk:\n    adress: pbx.example.org:5060\n", "hashcall.yaml:3: sip.trunk.adress: unknown key (did you mean sip.trunk.address?)"},
		{"wrong section", "sip:\n  register: true\n", "sip.register: unknown key (did you mean sip.trunk.register?)"},
		{"section typo", "mdia:\n  codecs: [PCMA]\n", "mdia: unknown key (did you mean media?)"},
		{"camel case", "sip:\n  ringTimeout: 5s\n", "sip.ringTimeout: unknown key (did you mean sip.ring_timeout?)"},
		{"no suggestion", "frobnicate: 1\n", "frobnicate: unknown key\n"},
		{"upper case", "SIP:\n  listen: 127.0.0.1:5070\n", "SIP: unknown key (did you mean sip?)"},
		{"under a leaf", "media:\n  codecs:\n    a: 1\n", "media.codecs: want a list of strings"},
		{"section as scalar", "sip:\n  trunk: pbx.example.org\n", "sip.trunk: want a mapping of keys such as address and outbound_proxy"},
		{"duplicate", "sip:\n  listen: 127.0.0.1:5070\n  listen: 127.0.0.1:5071\n", "hashcall.yaml:3: sip.listen: set twice (first on line 2)"},
		{"top level list", "- a\n- b\n", "want a mapping of keys such as sip: and media: at the top level"},
		{"two documents", "sip: {}\n---\nmedia: {}\n", "want a single YAML document"},
		{"syntax", "sip:\n  listen: [\n", "hashcall.yaml: yaml:"},
		{"odd key", "sip:\n  \"a\\nb\": 1\n", `"sip.a\nb": unknown key`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := loadString(t, tt.yaml)
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error()+"\n", tt.want) {
				t.Errorf("error %q\ndoes not contain %q", err, tt.want)
			}
		})
	}
}

func TestLoadErrors(t *testing.T) {
	clearEnv(t)
	_, err := Load(filepath.Join(t.TempDir(), "missing.yaml"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v, want fs.ErrNotExist", err)
	}
	_, err = Load(t.TempDir())
	if err == nil {
		t.Error("directory as a file: no error")
	}
}

func swapSearchPaths(p []string) func() {
	old := searchPaths
	searchPaths = p
	return func() { searchPaths = old }
}

func TestSearchOrder(t *testing.T) {
	clearEnv(t)
	work, etc := t.TempDir(), t.TempDir()
	etcFile := filepath.Join(etc, "hashcall.yaml")
	defer swapSearchPaths([]string{"hashcall.yaml", etcFile})()
	t.Chdir(work)

	// Neither exists: defaults.
	if p, err := Find(); p != "" || err != nil {
		t.Fatalf("Find() = %q, %v", p, err)
	}
	c, err := Load("")
	if err != nil || !reflect.DeepEqual(c, Default()) {
		t.Fatalf("no file: %v, %+v", err, c)
	}

	// Only the system file.
	writeFile(t, etc, "hashcall.yaml", "verify:\n  attempts: 2\n")
	if p, _ := Find(); p != etcFile {
		t.Errorf("Find() = %q, want %q", p, etcFile)
	}
	c, err = Load("")
	if err != nil || c.Verify.Attempts != 2 {
		t.Fatalf("system file: %v, attempts %d", err, c.Verify.Attempts)
	}

	// The working directory's file wins.
	writeFile(t, work, "hashcall.yaml", "verify:\n  attempts: 4\n")
	if p, _ := Find(); p != "hashcall.yaml" {
		t.Errorf("Find() = %q, want hashcall.yaml", p)
	}
	c, err = Load("")
	if err != nil || c.Verify.Attempts != 4 {
		t.Fatalf("local file: %v, attempts %d", err, c.Verify.Attempts)
	}

	// An explicit path beats both.
	other := writeFile(t, t.TempDir(), "other.yaml", "verify:\n  attempts: 5\n")
	c, err = Load(other)
	if err != nil || c.Verify.Attempts != 5 {
		t.Fatalf("explicit file: %v", err)
	}

	// A broken local file is an error, not a reason to fall back.
	writeFile(t, work, "hashcall.yaml", "verify:\n  attempts: 9\n")
	if _, err := Load(""); err == nil || !strings.Contains(err.Error(), "hashcall.yaml:2: verify.attempts") {
		t.Errorf("broken local file: %v", err)
	}
}

// Each validation problem names its key; table cases either change the
// defaults in code (checked with Validate) or load a file / environment
// (checked with Load).
func TestValidationErrors(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Config)
		yaml   string
		env    map[string]string
		key    string
		want   string
	}{
		// Conversion of values as written.
		{name: "duration syntax", yaml: "sip:\n  ring_timeout: abc\n", key: "sip.ring_timeout", want: `want a duration such as 30s, got "abc"`},
		{name: "duration without unit", yaml: "verify:\n  answer_timeout: 10\n", key: "verify.answer_timeout", want: `want a duration such as 10s, got "10"`},
		{name: "duration from env", env: map[string]string{"HASHCALL_SIP_MAX_CALL_DURATION": "soon"}, key: "sip.max_call_duration",
			want: `env HASHCALL_SIP_MAX_CALL_DURATION: sip.max_call_duration: want a duration such as 3m, got "soon"`},
		{name: "bool", yaml: "media:\n  symmetric_latching: maybe\n", key: "media.symmetric_latching", want: `want true or false, got "maybe"`},
		{name: "int", yaml: "verify:\n  attempts: three\n", key: "verify.attempts", want: `want a whole number such as 3, got "three"`},
		{name: "string given a list", yaml: "sip:\n  from: [a, b]\n", key: "sip.from", want: "want a string, got a list"},
		{name: "port range syntax", yaml: "media:\n  rtp_ports: 20000\n", key: "media.rtp_ports", want: `want "LOW-HIGH" with an even LOW, 1024 ≤ LOW < HIGH ≤ 65535, got "20000"`},
		{name: "port range odd", yaml: "media:\n  rtp_ports: 20001-20999\n", key: "media.rtp_ports", want: `want "LOW-HIGH" with an even LOW`},
		{name: "port range low", yaml: "media:\n  rtp_ports: 1000-2000\n", key: "media.rtp_ports", want: `1024 ≤ LOW`},
		{name: "port range reversed", yaml: "media:\n  rtp_ports: 30000-20000\n", key: "media.rtp_ports", want: `LOW < HIGH`},
		{name: "port range high", yaml: "media:\n  rtp_ports: 60000-70000\n", key: "media.rtp_ports", want: `want "LOW-HIGH"`},
		{name: "rate", yaml: "policy:\n  per_number_limit: three per hour\n", key: "policy.per_number_limit", want: `want "N/PERIOD" such as 3/15m`},
		{name: "rate zero", yaml: "policy:\n  global_rate: 0/1m\n", key: "policy.global_rate", want: `want "N/PERIOD"`},

		// Values.
		{name: "listen not host:port", mutate: func(c *Config) { c.SIP.Listen = "127.0.0.1" }, key: "sip.listen", want: `want IP:PORT such as 127.0.0.1:5070`},
		{name: "listen hostname", mutate: func(c *Config) { c.SIP.Listen = "pbx:5060" }, key: "sip.listen", want: `got "pbx:5060"`},
		{name: "listen not an IP", mutate: func(c *Config) { c.SIP.Listen = "pbx.example:5070" }, key: "sip.listen", want: `want IP:PORT`},
		{name: "listen inside rtp range", mutate: func(c *Config) { c.SIP.Listen = "127.0.0.1:20002" }, key: "sip.listen", want: "inside media.rtp_ports 20000-20999"},
		{name: "transport", mutate: func(c *Config) { c.SIP.Transport = "sctp" }, key: "sip.transport", want: `want udp, tcp or tls, got "sctp"`},
		{name: "transport from file", yaml: "sip:\n  transport: SCTP\n", key: "sip.transport", want: `hashcall.yaml:2: sip.transport: want udp, tcp or tls, got "sctp"`},
		{name: "public address scheme", mutate: func(c *Config) { c.SIP.PublicAddress = "sip://203.0.113.1" }, key: "sip.public_address", want: "want HOST or HOST:PORT"},
		{name: "public address unspecified", mutate: func(c *Config) { c.SIP.PublicAddress = "0.0.0.0" }, key: "sip.public_address", want: "unspecified"},
		{name: "trunk no port", mutate: func(c *Config) { c.SIP.Trunk.Address = "pbx.example.org" }, key: "sip.trunk.address", want: `want HOST:PORT such as pbx.example.org:5060 (no port), got "pbx.example.org"`},
		{name: "trunk bad port", mutate: func(c *Config) { c.SIP.Trunk.Address = "pbx.example.org:99999" }, key: "sip.trunk.address", want: "port 1 to 65535"},
		{name: "trunk bad host", mutate: func(c *Config) { c.SIP.Trunk.Address = "pbx example.org:5060" }, key: "sip.trunk.address", want: "bad host name"},
		{name: "outbound proxy", mutate: func(c *Config) { c.SIP.Trunk.OutboundProxy = "sbc" }, key: "sip.trunk.outbound_proxy", want: "want HOST:PORT"},
		{name: "password without username", mutate: func(c *Config) { c.SIP.Trunk.Password = "pw" }, key: "sip.trunk.password", want: "set without sip.trunk.username"},
		{name: "realm without username", mutate: func(c *Config) { c.SIP.Trunk.Realm = "example.org" }, key: "sip.trunk.realm", want: "set without sip.trunk.username"},
		{name: "register without address", mutate: func(c *Config) { c.SIP.Trunk.Register = true; c.SIP.Trunk.Username = "u" }, key: "sip.trunk.register", want: "needs sip.trunk.address"},
		{name: "register without username", mutate: func(c *Config) { c.SIP.Trunk.Register = true; c.SIP.Trunk.Address = "pbx.example.org:5060" }, key: "sip.trunk.register", want: "needs sip.trunk.username"},
		{name: "register expiry short", mutate: func(c *Config) { c.SIP.Trunk.RegisterExpiry = 30 * time.Second }, key: "sip.trunk.register_expiry", want: "between 1m and 24h"},
		{name: "register expiry fraction", mutate: func(c *Config) { c.SIP.Trunk.RegisterExpiry = 90500 * time.Millisecond }, key: "sip.trunk.register_expiry", want: "whole seconds"},
		{name: "options interval negative", mutate: func(c *Config) { c.SIP.Trunk.OptionsInterval = -time.Second }, key: "sip.trunk.options_interval", want: "want 0 (off) or a duration"},
		{name: "ring timeout zero", mutate: func(c *Config) { c.SIP.RingTimeout = 0 }, key: "sip.ring_timeout", want: "want a duration between 1s and 5m, got 0s"},
		{name: "per-number limit off", mutate: func(c *Config) { c.Policy.PerNumberLimit = Rate{} }, key: "policy.per_number_limit", want: `want "N/PERIOD" such as 3/15m`},
		{name: "per-token rate too fast", mutate: func(c *Config) { c.Policy.PerTokenRate = Rate{N: 5, Per: time.Millisecond} }, key: "policy.per_token_rate", want: `want "N/PERIOD" such as 3/15m`},
		{name: "diagnostics on all interfaces", mutate: func(c *Config) { c.Diagnostics.Listen = "0.0.0.0:6060" }, key: "diagnostics.listen", want: "want a loopback IP:PORT"},
		{name: "diagnostics on a LAN address", mutate: func(c *Config) { c.Diagnostics.Listen = "192.0.2.1:6060" }, key: "diagnostics.listen", want: "want a loopback IP:PORT"},
		{name: "diagnostics without port", mutate: func(c *Config) { c.Diagnostics.Listen = "127.0.0.1" }, key: "diagnostics.listen", want: "want a loopback IP:PORT"},
		{name: "rtp mux with latching", mutate: func(c *Config) { c.Media.RTPMux, c.Media.SymmetricLatching = true, true }, key: "media.rtp_mux", want: "cannot be combined with media.symmetric_latching"},
		{name: "rtp mux read buffer too large", mutate: func(c *Config) { c.Media.RTPMuxReadBuffer = 1 << 30 }, key: "media.rtp_mux_read_buffer", want: "want 0 (the kernel's default) or 64KiB to 256MiB, got 1GiB"},
		{name: "udp read buffer too small", mutate: func(c *Config) { c.SIP.UDPReadBuffer = 1000 }, key: "sip.udp_read_buffer", want: "want 0 (the kernel's default) or 64KiB to 256MiB, got 1000"},
		{name: "max call negative", mutate: func(c *Config) { c.SIP.MaxCallDuration = -time.Minute }, key: "sip.max_call_duration", want: "want a duration between"},
		{name: "max call shorter than attempts", mutate: func(c *Config) { c.SIP.MaxCallDuration = 30 * time.Second }, key: "sip.max_call_duration", want: "verify.attempts × verify.answer_timeout alone is 30s"},
		{name: "from CRLF", mutate: func(c *Config) { c.SIP.From = "+44123\r\nX-Evil: 1" }, key: "sip.from", want: "must not contain CR, LF, NUL"},
		{name: "from NUL", mutate: func(c *Config) { c.SIP.From = "+44\x00" }, key: "sip.from", want: "must not contain CR, LF, NUL"},
		{name: "from too long", mutate: func(c *Config) { c.SIP.From = strings.Repeat("1", 300) }, key: "sip.from", want: "longer than 256 bytes"},
		{name: "from with display name", mutate: func(c *Config) { c.SIP.From = `"Bank" <sip:1@example.org>` }, key: "sip.from", want: "put the display name in sip.display_name"},
		{name: "from with space", mutate: func(c *Config) { c.SIP.From = "+44 1234" }, key: "sip.from", want: "want a SIP user such as +441234567890"},
		{name: "from uri without user", mutate: func(c *Config) { c.SIP.From = "sip:example.org" }, key: "sip.from", want: "user@host"},
		{name: "from uri bad host", mutate: func(c *Config) { c.SIP.From = "sip:1@exa mple.org" }, key: "sip.from", want: "host"},
		{name: "display name LF", mutate: func(c *Config) { c.SIP.DisplayName = "Bank\nVia: x" }, key: "sip.display_name", want: "must not contain CR, LF, NUL"},
		{name: "display name quote", mutate: func(c *Config) { c.SIP.DisplayName = `Say "hi"` }, key: "sip.display_name", want: `must not contain " or \`},
		{name: "display name not utf8", mutate: func(c *Config) { c.SIP.DisplayName = "\xff" }, key: "sip.display_name", want: "UTF-8"},
		{name: "pai CR", mutate: func(c *Config) { c.SIP.PAssertedIdentity = "tel:+44\r" }, key: "sip.p_asserted_identity", want: "must not contain CR, LF, NUL"},
		{name: "pai bad tel", mutate: func(c *Config) { c.SIP.PAssertedIdentity = "tel:call me" }, key: "sip.p_asserted_identity", want: "tel: URI"},
		{name: "pai too long", mutate: func(c *Config) { c.SIP.PAssertedIdentity = "tel:+" + strings.Repeat("1", 260) }, key: "sip.p_asserted_identity", want: "longer than 256"},
		{name: "username LF", mutate: func(c *Config) { c.SIP.Trunk.Username = "u\n" }, key: "sip.trunk.username", want: "must not contain CR, LF, NUL"},
		{name: "username quote", mutate: func(c *Config) { c.SIP.Trunk.Username = `u"` }, key: "sip.trunk.username", want: `must not contain "`},
		{name: "username too long", mutate: func(c *Config) { c.SIP.Trunk.Username = strings.Repeat("u", 257) }, key: "sip.trunk.username", want: "longer than 256"},
		{name: "password trailing newline", mutate: func(c *Config) { c.SIP.Trunk.Username = "u"; c.SIP.Trunk.Password = "pw\n" }, key: "sip.trunk.password", want: "trailing newline"},
		{name: "password is the mask", mutate: func(c *Config) { c.SIP.Trunk.Username = "u"; c.SIP.Trunk.Password = Mask }, key: "sip.trunk.password", want: "redaction placeholder"},
		{name: "media listen ip", mutate: func(c *Config) { c.Media.ListenIP = "eth0" }, key: "media.listen_ip", want: `want an IP address such as 192.0.2.10, got "eth0"`},
		{name: "rtp ports in code", mutate: func(c *Config) { c.Media.RTPPorts = media.PortRange{Low: 20001, High: 20000} }, key: "media.rtp_ports", want: `want "LOW-HIGH" with an even LOW`},
		{name: "rtp ports too few", mutate: func(c *Config) { c.Media.RTPPorts = media.PortRange{Low: 20000, High: 20009} }, key: "media.rtp_ports", want: "holds 5 RTP/RTCP port pairs, fewer than policy.max_concurrent (50)"},
		{name: "codec unknown", mutate: func(c *Config) { c.Media.Codecs = []string{"G729"} }, key: "media.codecs", want: `want a list of PCMA, PCMU`},
		{name: "codec empty", mutate: func(c *Config) { c.Media.Codecs = nil }, key: "media.codecs", want: `want a list of PCMA, PCMU`},
		{name: "codec twice", mutate: func(c *Config) { c.Media.Codecs = []string{"PCMA", "PCMA"} }, key: "media.codecs", want: `at most once`},
		{name: "codec from env", env: map[string]string{"HASHCALL_MEDIA_CODECS": "PCMA,opus"}, key: "media.codecs", want: `env HASHCALL_MEDIA_CODECS: media.codecs: want a list of PCMA, PCMU`},
		{name: "telephone event static", mutate: func(c *Config) { c.Media.TelephoneEventPT = 8 }, key: "media.telephone_event_pt", want: "want a dynamic payload type 96 to 127"},
		{name: "telephone event high", mutate: func(c *Config) { c.Media.TelephoneEventPT = 128 }, key: "media.telephone_event_pt", want: "got 128"},
		{name: "answer timeout", mutate: func(c *Config) { c.Verify.AnswerTimeout = 0 }, key: "verify.answer_timeout", want: "want a duration between"},
		{name: "attempts zero", mutate: func(c *Config) { c.Verify.Attempts = 0 }, key: "verify.attempts", want: "want 1 to 5, got 0"},
		{name: "attempts six", mutate: func(c *Config) { c.Verify.Attempts = 6 }, key: "verify.attempts", want: "want 1 to 5, got 6"},
		{name: "locale word", mutate: func(c *Config) { c.Verify.Locale = "english" }, key: "verify.locale", want: `want a language tag such as en-GB`},
		{name: "locale empty", mutate: func(c *Config) { c.Verify.Locale = "" }, key: "verify.locale", want: `got ""`},
		{name: "on_diversion unknown", mutate: func(c *Config) { c.Verify.OnDiversion = "allow" }, key: "verify.on_diversion", want: `want refuse or flag, got "allow"`},
		{name: "mode unknown", mutate: func(c *Config) { c.Verify.Mode = "pin" }, key: "verify.mode", want: `want hash or code, got "pin"`},
		{name: "code length short", mutate: func(c *Config) { c.Verify.CodeLength = 3 }, key: "verify.code_length", want: "want 4 to 10 digits, got 3"},
		{name: "code length long", mutate: func(c *Config) { c.Verify.CodeLength = 11 }, key: "verify.code_length", want: "want 4 to 10 digits, got 11"},
		{name: "code ttl over 10m", mutate: func(c *Config) { c.Verify.CodeTTL = 11 * time.Minute }, key: "verify.code_ttl", want: "want a duration between 30s and 10m"},
		{name: "code ttl zero", mutate: func(c *Config) { c.Verify.CodeTTL = 0 }, key: "verify.code_ttl", want: "want a duration between"},
		{name: "code key short", mutate: func(c *Config) { c.Verify.CodeKey = "short" }, key: "verify.code_key", want: "want at least 32 bytes"},
		{name: "digit timeout zero", mutate: func(c *Config) { c.Verify.DigitTimeout = 0 }, key: "verify.digit_timeout", want: "want a duration between 1s and 30s"},
		{name: "max failed codes zero", mutate: func(c *Config) { c.Policy.MaxFailedCodes = 0 }, key: "policy.max_failed_codes", want: "want 1 to 100 wrong codes per number in 24 h, got 0"},
		{name: "mode from env", env: map[string]string{"HASHCALL_VERIFY_MODE": "approve"}, key: "verify.mode", want: `got "approve"`},
		{name: "prompts dir missing", mutate: func(c *Config) { c.Prompts.Dir = "/nonexistent/prompts" }, key: "prompts.dir", want: "no such file"},
		{name: "log level", mutate: func(c *Config) { c.Log.Level = "trace" }, key: "log.level", want: `want debug, info, warn or error, got "trace"`},
		{name: "log format", mutate: func(c *Config) { c.Log.Format = "xml" }, key: "log.format", want: `want text or json, got "xml"`},
		{name: "http listen", mutate: func(c *Config) { c.HTTP.Listen = "8080" }, key: "http.listen", want: "want HOST:PORT such as 127.0.0.1:8080"},
		{name: "http listen port", mutate: func(c *Config) { c.HTTP.Listen = ":0" }, key: "http.listen", want: "port 1 to 65535"},
		{name: "token short", mutate: func(c *Config) { c.HTTP.Tokens = []Secret{"short"} }, key: "http.tokens", want: "token 1: shorter than 16 characters"},
		{name: "token space", mutate: func(c *Config) { c.HTTP.Tokens = []Secret{"abcdefgh ijklmnopq"} }, key: "http.tokens", want: "space"},
		{name: "token twice", mutate: func(c *Config) {
			c.HTTP.Tokens = []Secret{"abcdefghijklmnopq", "abcdefghijklmnopq"}
		}, key: "http.tokens", want: "token 2: the same as an earlier one"},
		{name: "trusted source hostname", mutate: func(c *Config) { c.SIP.TrustedSources = []string{"sbc.example.org"} }, key: "sip.trusted_sources", want: `not a CIDR prefix or an IP address), got "sbc.example.org"`},
		{name: "trusted source bad prefix", mutate: func(c *Config) { c.SIP.TrustedSources = []string{"192.0.2.0/33"} }, key: "sip.trusted_sources", want: `got "192.0.2.0/33"`},
		{name: "trusted source zone", mutate: func(c *Config) { c.SIP.TrustedSources = []string{"fe80::1%eth0"} }, key: "sip.trusted_sources", want: "zone"},
		{name: "trusted source mapped prefix", mutate: func(c *Config) { c.SIP.TrustedSources = []string{"::ffff:192.0.2.0/120"} }, key: "sip.trusted_sources", want: "IPv4-mapped"},
		{name: "callback host url", mutate: func(c *Config) {
			c.HTTP.CallbackHosts, c.HTTP.CallbackSecret = []string{"https://auth.example.org/cb"}, Secret(strings.Repeat("s", 32))
		}, key: "http.callback_hosts", want: "without a scheme or path"},
		{name: "callback wildcard address", mutate: func(c *Config) {
			c.HTTP.CallbackHosts, c.HTTP.CallbackSecret = []string{"*.192.0.2.1"}, Secret(strings.Repeat("s", 32))
		}, key: "http.callback_hosts", want: "a wildcard needs a domain name"},
		{name: "callback double wildcard", mutate: func(c *Config) {
			c.HTTP.CallbackHosts, c.HTTP.CallbackSecret = []string{"*.*.example.org"}, Secret(strings.Repeat("s", 32))
		}, key: "http.callback_hosts", want: "want HOST or HOST:PORT"},
		{name: "callback secret short", mutate: func(c *Config) { c.HTTP.CallbackSecret = "tiny" }, key: "http.callback_secret", want: "shorter than 32"},
		{name: "callback hosts without secret", mutate: func(c *Config) { c.HTTP.CallbackHosts = []string{"auth.example.org"} }, key: "http.callback_secret",
			want: "required when http.callback_hosts is not empty"},
		{name: "callback hosts with a 31-byte secret", mutate: func(c *Config) {
			c.HTTP.CallbackHosts, c.HTTP.CallbackSecret = []string{"auth.example.org"}, Secret(strings.Repeat("s", 31))
		}, key: "http.callback_secret", want: "shorter than 32 bytes"},
		{name: "callback address form", mutate: func(c *Config) {
			c.HTTP.CallbackHosts, c.HTTP.CallbackSecret = []string{"auth.example.org"}, Secret(strings.Repeat("s", 32))
			c.HTTP.CallbackAddresses = []string{"auth.example.org:192.0.2.1"}
		}, key: "http.callback_addresses", want: "want HOST=IP"},
		{name: "callback address not an ip", mutate: func(c *Config) {
			c.HTTP.CallbackHosts, c.HTTP.CallbackSecret = []string{"auth.example.org"}, Secret(strings.Repeat("s", 32))
			c.HTTP.CallbackAddresses = []string{"auth.example.org=other.example.org"}
		}, key: "http.callback_addresses", want: "want HOST=IP"},
		{name: "callback address of an unlisted host", mutate: func(c *Config) {
			c.HTTP.CallbackHosts, c.HTTP.CallbackSecret = []string{"*.example.org"}, Secret(strings.Repeat("s", 32))
			c.HTTP.CallbackAddresses = []string{"auth.example.org=192.0.2.1"}
		}, key: "http.callback_addresses", want: "not listed"},
		{name: "regions", mutate: func(c *Config) { c.Policy.AllowedRegions = []string{"GBR"} }, key: "policy.allowed_regions", want: "ISO 3166-1"},
		{name: "regions empty", mutate: func(c *Config) { c.Policy.AllowedRegions = []string{} }, key: "policy.allowed_regions", want: "ISO 3166-1"},
		{name: "types", mutate: func(c *Config) { c.Policy.AllowedTypes = []string{"landline"} }, key: "policy.allowed_types", want: `got ["landline"]`},
		{name: "rate in code", mutate: func(c *Config) { c.Policy.PerNumberLimit = Rate{} }, key: "policy.per_number_limit", want: `want "N/PERIOD"`},
		{name: "max concurrent", mutate: func(c *Config) { c.Policy.MaxConcurrent = 0 }, key: "policy.max_concurrent", want: "want 1 to 10000, got 0"},
		{name: "grace", mutate: func(c *Config) { c.Shutdown.Grace = 0 }, key: "shutdown.grace", want: "want a duration between 1s and 1h"},
		{name: "store driver", mutate: func(c *Config) { c.Store.Driver = "mysql" }, key: "store.driver", want: `want sqlite or postgres, got "mysql"`},
		{name: "store path relative", mutate: func(c *Config) { c.Store.Path = "hashcall.db" }, key: "store.path", want: "absolute path"},
		{name: "store postgres without dsn", mutate: func(c *Config) { c.Store.Driver = StorePostgres }, key: "store.dsn", want: "HASHCALL_STORE_DSN"},
		{name: "store node with a space", mutate: func(c *Config) { c.Store.Node = "node a" }, key: "store.node", want: "without spaces"},
		{name: "store retention", mutate: func(c *Config) { c.Store.Retention = time.Minute }, key: "store.retention", want: "between 1h and"},
		{name: "store lease", mutate: func(c *Config) { c.Store.Lease = time.Second }, key: "store.lease", want: "between 5s and 10m"},
		{name: "audit retention", mutate: func(c *Config) { c.Audit.Retention = time.Hour }, key: "audit.retention", want: "between 24h and"},
		{name: "audit key short", mutate: func(c *Config) { c.Audit.HMACKey = "short" }, key: "audit.hmac_key", want: "shorter than 16"},
		{name: "store driver from yaml", yaml: "store:\n  driver: oracle\n", key: "store.driver", want: `got "oracle"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearEnv(t)
			var err error
			if tt.mutate != nil {
				c := Default()
				tt.mutate(c)
				err = c.Validate()
			} else {
				for k, v := range tt.env {
					t.Setenv(k, v)
				}
				_, err = loadString(t, tt.yaml)
			}
			if err == nil {
				t.Fatal("no error")
			}
			msg := err.Error()
			if !strings.Contains(msg, tt.key+": ") {
				t.Errorf("error %q does not name %s", msg, tt.key)
			}
			if !strings.Contains(msg, tt.want) {
				t.Errorf("error %q\ndoes not contain %q", msg, tt.want)
			}
			if strings.Count(msg, "\n") != 0 {
				t.Errorf("one problem, several lines: %q", msg)
			}
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Key != tt.key {
				t.Errorf("errors.As FieldError: %+v", fe)
			}
		})
	}
}

func TestValidValues(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Config)
	}{
		{"ipv6 listen", func(c *Config) { c.SIP.Listen = "[::1]:5070" }},
		{"all interfaces", func(c *Config) { c.SIP.Listen = "0.0.0.0:5060" }},
		{"public ip", func(c *Config) { c.SIP.PublicAddress = "203.0.113.10" }},
		{"public host port", func(c *Config) { c.SIP.PublicAddress = "sip.example.org:5060" }},
		{"public ipv6", func(c *Config) { c.SIP.PublicAddress = "2001:db8::10" }},
		{"trunk ipv6", func(c *Config) { c.SIP.Trunk.Address = "[2001:db8::1]:5060" }},
		{"from uri with params", func(c *Config) { c.SIP.From = "sip:+441234567890@pbx.example.org:5060;user=phone" }},
		{"from sips", func(c *Config) { c.SIP.From = "sips:hashcall@example.org" }},
		{"from bare", func(c *Config) { c.SIP.From = "+441234567890" }},
		{"pai tel", func(c *Config) { c.SIP.PAssertedIdentity = "tel:+44-1234-567890;phone-context=+44" }},
		{"display utf8", func(c *Config) { c.SIP.DisplayName = "Banc Cymru – gwirio" }},
		{"username with at", func(c *Config) { c.SIP.Trunk.Username = "hashcall@example.org" }},
		{"password with spaces", func(c *Config) { c.SIP.Trunk.Username = "u"; c.SIP.Trunk.Password = "correct horse" }},
		{"options off", func(c *Config) { c.SIP.Trunk.OptionsInterval = 0 }},
		{"locales", func(c *Config) { c.Verify.Locale = "cy-GB" }},
		{"locale bare", func(c *Config) { c.Verify.Locale = "de" }},
		{"locale script", func(c *Config) { c.Verify.Locale = "zh-Hant-TW" }},
		{"http all interfaces", func(c *Config) { c.HTTP.Listen = ":8080" }},
		{"callback wildcard", func(c *Config) {
			c.HTTP.CallbackHosts = []string{"*.example.org", "auth.example.net:8443", "192.0.2.5"}
			c.HTTP.CallbackSecret = Secret(strings.Repeat("s", MinCallbackSecret))
		}},
		{"callback addresses", func(c *Config) {
			c.HTTP.CallbackHosts = []string{"auth.example.org", "auth.example.net:8443"}
			c.HTTP.CallbackAddresses = []string{"auth.example.org=192.0.2.10", "Auth.Example.org.=2001:db8::10", "auth.example.net=192.0.2.11"}
			c.HTTP.CallbackSecret = Secret(strings.Repeat("s", MinCallbackSecret))
		}},
		{"trusted sources", func(c *Config) {
			c.SIP.TrustedSources = []string{"192.0.2.0/24", "2001:db8::/32", "198.51.100.7", "::1"}
		}},
		{"tls with system roots", func(c *Config) { c.SIP.Transport = TransportTLS }},
		{"tls files ignored on udp", func(c *Config) { c.SIP.TLS.CertFile = "/nonexistent" }},
		{"one codec", func(c *Config) { c.Media.Codecs = []string{"PCMU"} }},
		{"media ip", func(c *Config) { c.Media.ListenIP = "192.0.2.10" }},
		{"sip port inside rtp on another ip", func(c *Config) { c.SIP.Listen = "127.0.0.1:20002"; c.Media.ListenIP = "127.0.0.2" }},
		{"sip tcp port inside rtp", func(c *Config) { c.SIP.Listen = "127.0.0.1:20002"; c.SIP.Transport = TransportTCP }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			tt.mutate(c)
			if err := c.Validate(); err != nil {
				t.Errorf("Validate: %v", err)
			}
		})
	}
}

func TestAllProblemsAtOnce(t *testing.T) {
	clearEnv(t)
	t.Setenv("HASHCALL_VERIFY_ATTEMPTS", "9")
	_, err := loadString(t, `
sip:
  transport: sctp
  ring_timeout: abc
  trunk:
    adress: x
    password: hunter2
media:
  codecs: [G729]
  rtp_ports: 1-2
`)
	if err == nil {
		t.Fatal("no error")
	}
	lines := strings.Split(err.Error(), "\n")
	for _, key := range []string{"sip.transport", "sip.ring_timeout", "sip.trunk.adress", "sip.trunk.password", "media.codecs", "media.rtp_ports", "verify.attempts"} {
		n := 0
		for _, l := range lines {
			if strings.Contains(l, " "+key+": ") {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%s on %d lines, want 1:\n%s", key, n, err)
		}
	}
	if len(lines) != 7 {
		t.Errorf("%d lines, want 7:\n%s", len(lines), err)
	}
	if !strings.Contains(err.Error(), "env HASHCALL_VERIFY_ATTEMPTS: verify.attempts: want 1 to 5, got 9") {
		t.Errorf("the environment's value is not traced to its variable:\n%s", err)
	}
	if !strings.Contains(err.Error(), "hashcall.yaml:3: sip.transport") {
		t.Errorf("validation error without its line:\n%s", err)
	}
}

func TestNormalize(t *testing.T) {
	clearEnv(t)
	c := mustLoad(t, `
sip:
  transport: UDP
media:
  codecs: [pcmu, Pcma]
verify:
  locale: en_gb
log:
  level: WARNING
  format: JSON
policy:
  allowed_regions: [gb]
  allowed_types: [Mobile]
`)
	if c.SIP.Transport != "udp" || !slices.Equal(c.Media.Codecs, []string{"PCMU", "PCMA"}) || c.Verify.Locale != "en-GB" ||
		c.Log.Level != "warn" || c.Log.Format != "json" || c.Policy.AllowedRegions[0] != "GB" || c.Policy.AllowedTypes[0] != "mobile" {
		t.Errorf("got %+v", c)
	}
	if c.Log.SlogLevel() != slog.LevelWarn {
		t.Errorf("SlogLevel = %v", c.Log.SlogLevel())
	}
}

func TestMediaListenIP(t *testing.T) {
	c := Default()
	if got := c.MediaListenIP(); got != netip.MustParseAddr("127.0.0.1") {
		t.Errorf("derived = %v", got)
	}
	c.Media.ListenIP = "192.0.2.7"
	if got := c.MediaListenIP(); got != netip.MustParseAddr("192.0.2.7") {
		t.Errorf("explicit = %v", got)
	}
	c.Media.ListenIP = ""
	c.SIP.Listen = ":5060"
	if got := c.MediaListenIP(); !got.IsUnspecified() {
		t.Errorf("empty host = %v", got)
	}
}

// writeCert writes a self-signed certificate and its key.
func writeCert(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "hashcall.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		DNSNames: []string{"hashcall.test"}, IsCA: true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile = writeFile(t, dir, "cert.pem", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
	keyFile = writeFile(t, dir, "key.pem", string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})))
	return certFile, keyFile
}

func TestTLS(t *testing.T) {
	dir := t.TempDir()
	cert, key := writeCert(t, dir)
	junk := writeFile(t, dir, "junk.pem", "not a certificate\n")
	tests := []struct {
		name             string
		tls              TLS
		wantKey, wantMsg string
	}{
		{name: "system roots, no client certificate"},
		{name: "own CA", tls: TLS{CAFile: cert}},
		{name: "mutual TLS", tls: TLS{CertFile: cert, KeyFile: key, CAFile: cert}},
		{name: "lab", tls: TLS{InsecureSkipVerify: true}},
		{name: "cert without key", tls: TLS{CertFile: cert}, wantKey: "sip.tls.key_file", wantMsg: "required with sip.tls.cert_file"},
		{name: "key without cert", tls: TLS{KeyFile: key}, wantKey: "sip.tls.cert_file", wantMsg: "required with sip.tls.key_file"},
		{name: "cert and key swapped", tls: TLS{CertFile: key, KeyFile: cert}, wantKey: "sip.tls.cert_file", wantMsg: "with sip.tls.key_file"},
		{name: "missing CA", tls: TLS{CAFile: filepath.Join(dir, "nope.pem")}, wantKey: "sip.tls.ca_file", wantMsg: "no such file"},
		{name: "junk CA", tls: TLS{CAFile: junk}, wantKey: "sip.tls.ca_file", wantMsg: "no PEM certificate"},
		{name: "insecure with CA", tls: TLS{CAFile: cert, InsecureSkipVerify: true}, wantKey: "sip.tls.insecure_skip_verify", wantMsg: "contradicts sip.tls.ca_file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			c.SIP.Transport = TransportTLS
			c.SIP.TLS = tt.tls
			err := c.Validate()
			if tt.wantKey == "" {
				if err != nil {
					t.Errorf("Validate: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantKey+": ") || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("Validate = %v, want %s: …%s", err, tt.wantKey, tt.wantMsg)
			}
		})
	}
}

const (
	secretPassword = "Sup3r-Secret-Pa55"
	secretToken    = "tok-ABCDEFGHIJKLMNOP-1"
	secretCallback = "cb-ABCDEFGHIJKLMNOP-2-0123456789abc"
	secretDSNPass  = "Db-Pa55-ABCDEFGH"
	secretDSN      = "postgres://hashcall:" + secretDSNPass + "@db.example.org:5432/hashcall"
	secretAuditKey = "audit-ABCDEFGHIJKLMNOP-3"
)

func secretConfig() *Config {
	c := Default()
	c.SIP.Trunk.Address = "pbx.example.org:5060"
	c.SIP.Trunk.Username = "hashcall"
	c.SIP.Trunk.Password = secretPassword
	c.HTTP.Tokens = []Secret{secretToken}
	c.HTTP.CallbackSecret = secretCallback
	c.Store.Driver = StorePostgres
	c.Store.DSN = secretDSN
	c.Audit.HMACKey = secretAuditKey
	return c
}

func assertNoSecret(t *testing.T, what, s string, secrets ...string) {
	t.Helper()
	for _, sec := range secrets {
		if strings.Contains(s, sec) {
			t.Errorf("%s reveals %q:\n%s", what, sec, s)
		}
	}
}

func TestRedacted(t *testing.T) {
	c := secretConfig()
	r := c.Redacted()
	if r.SIP.Trunk.Password != Mask || r.HTTP.CallbackSecret != Mask || !slices.Equal(r.HTTP.Tokens, []Secret{Mask}) {
		t.Errorf("redacted: %q %q %q", string(r.SIP.Trunk.Password), string(r.HTTP.CallbackSecret), r.HTTP.Tokens)
	}
	if c.SIP.Trunk.Password != secretPassword || c.HTTP.Tokens[0] != secretToken {
		t.Error("Redacted changed the original")
	}
	r.Media.Codecs[0] = "XXX"
	if c.Media.Codecs[0] != CodecPCMA {
		t.Error("Redacted shares slices with the original")
	}
	unset := Default().Redacted()
	if unset.SIP.Trunk.Password != "" || unset.HTTP.CallbackSecret != "" {
		t.Error("unset secrets should stay empty")
	}

	// Printing, logging and encoding the original do not reveal secrets.
	all := []string{secretPassword, secretToken, secretCallback}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d"} {
		assertNoSecret(t, "fmt "+verb, fmt.Sprintf(verb, c), all...)
		assertNoSecret(t, "fmt "+verb+" of a Secret", fmt.Sprintf(verb, c.SIP.Trunk.Password), all...)
	}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("cfg", "password", c.SIP.Trunk.Password, "cfg", c)
	slog.New(slog.NewTextHandler(&buf, nil)).Info("cfg", "password", c.SIP.Trunk.Password, "tokens", c.HTTP.Tokens)
	assertNoSecret(t, "slog", buf.String(), all...)
	j, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	assertNoSecret(t, "json", string(j), all...)
	y, err := yaml.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	assertNoSecret(t, "yaml.Marshal", string(y), all...)
	if got := fmt.Sprint(c.SIP.Trunk.Password); got != Mask {
		t.Errorf("Sprint(Secret) = %q", got)
	}
	if got := fmt.Sprint(Secret("")); got != "" {
		t.Errorf("Sprint(empty Secret) = %q", got)
	}
}

func TestSecretsNeverInErrors(t *testing.T) {
	clearEnv(t)
	const (
		pw  = "LeakyPassw0rd"
		tok = "tok1"
		cb  = "cbsecret"
	)
	// Each secret is wrong in some way, and other keys are wrong too.
	t.Setenv("HASHCALL_SIP_TRUNK_PASSWORD", pw+"\n")
	t.Setenv("HASHCALL_HTTP_TOKENS", tok+", second token with spaces")
	t.Setenv("HASHCALL_HTTP_CALLBACK_SECRET", cb)
	t.Setenv("HASHCALL_AUDIT_HMAC_KEY", "hmackey")
	_, err := loadString(t, "sip:\n  transport: sctp\n")
	if err == nil {
		t.Fatal("no error")
	}
	for _, key := range []string{"sip.trunk.password", "http.tokens", "http.callback_secret", "audit.hmac_key", "sip.transport"} {
		if !strings.Contains(err.Error(), key+": ") {
			t.Errorf("error does not name %s:\n%s", key, err)
		}
	}
	assertNoSecret(t, "Load error", err.Error(), pw, tok, "second token", cb, "hmackey")

	// Secrets of the wrong shape in the file.
	clearEnv(t)
	_, err = loadString(t, "sip:\n  trunk:\n    username: u\n    password: ["+pw+"]\nhttp:\n  tokens: {"+tok+": x}\n  callback_secret: ["+cb+"]\n")
	if err == nil {
		t.Fatal("no error")
	}
	assertNoSecret(t, "Load error", err.Error(), pw, tok, cb)

	// Validate on a config built in code.
	c := secretConfig()
	c.SIP.Trunk.Username = ""
	c.SIP.Trunk.Password = pw + "\r\n"
	c.HTTP.Tokens = []Secret{tok}
	c.HTTP.CallbackSecret = cb
	err = c.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	assertNoSecret(t, "Validate error", err.Error(), pw, tok, cb)
}

func TestYAMLRoundTrip(t *testing.T) {
	clearEnv(t)
	c := Default()
	c.SIP.From = "+441234567890"
	c.SIP.DisplayName = "yes"
	c.SIP.PAssertedIdentity = "tel:+441234567890"
	c.SIP.Trunk.Address = "[2001:db8::1]:5060"
	c.SIP.Trunk.Username = "0123"
	c.SIP.Trunk.Realm = "null"
	c.SIP.Trunk.Register = true
	c.SIP.Trunk.RegisterExpiry = 90 * time.Minute
	c.SIP.Trunk.OptionsInterval = 0
	c.SIP.MaxCallDuration = 90 * time.Second
	c.Media.Codecs = []string{"PCMU"}
	c.Media.RTPPorts = media.PortRange{Low: 40000, High: 40199}
	c.HTTP.CallbackHosts = []string{"*.example.org"}
	c.HTTP.CallbackSecret = Secret(strings.Repeat("s", MinCallbackSecret))
	t.Setenv("HASHCALL_HTTP_CALLBACK_SECRET", string(c.HTTP.CallbackSecret)) // YAML() masks it
	c.Policy.AllowedTypes = []string{"mobile", "fixed_line"}
	c.Policy.PerNumberLimit = Rate{5, time.Hour}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	out, err := c.YAML()
	if err != nil {
		t.Fatal(err)
	}
	back, err := loadString(t, string(out))
	if err != nil {
		t.Fatalf("Load(YAML()): %v\n%s", err, out)
	}
	if !reflect.DeepEqual(back, c) {
		t.Errorf("round trip differs:\n got %+v\nwant %+v\n%s", back, c, out)
	}
	for _, want := range []string{"register_expiry: 1h30m\n", "per_number_limit: 5/1h\n", "rtp_ports: 40000-40199\n", "tokens: []\n"} {
		if !bytes.Contains(out, []byte(want)) {
			t.Errorf("YAML lacks %q:\n%s", want, out)
		}
	}

	// With secrets: masked in the output, which reads back as the redacted
	// configuration (and Load refuses the placeholders as secrets).
	s := secretConfig()
	out, err = s.YAML()
	if err != nil {
		t.Fatal(err)
	}
	assertNoSecret(t, "YAML()", string(out), secretPassword, secretToken, secretCallback, secretDSNPass, secretAuditKey)
	back = Default()
	if errs := decodeFile(back, "out.yaml", out); len(errs) > 0 {
		t.Fatal(errs)
	}
	if !reflect.DeepEqual(back, s.Redacted()) {
		t.Errorf("masked round trip differs:\n got %+v\nwant %+v", back, s.Redacted())
	}
	if _, err := loadString(t, string(out)); err == nil || !strings.Contains(err.Error(), "sip.trunk.password: is the redaction placeholder") {
		t.Errorf("Load of masked output: %v", err)
	}
}

func TestSuggest(t *testing.T) {
	tests := map[string]string{
		"sip.trunk.adress":        "sip.trunk.address",
		"sip.trunk.pasword":       "sip.trunk.password",
		"sip.ringtimeout":         "sip.ring_timeout",
		"media.codec":             "media.codecs",
		"sip.register_expiry":     "sip.trunk.register_expiry",
		"media.telephone_event":   "media.telephone_event_pt",
		"verify.tries":            "",
		"completely.unrelated.xx": "",
	}
	for in, want := range tests {
		if got := suggest(in); got != want {
			t.Errorf("suggest(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestTrustedPrefixes: sip.trusted_sources as prefixes, a single address
// as a host prefix, host bits cleared, IPv4-mapped addresses as IPv4.
func TestTrustedPrefixes(t *testing.T) {
	s := SIP{TrustedSources: []string{"10.1.2.3/8", " 192.0.2.1 ", "2001:db8::1", "::ffff:192.0.2.9", "2001:db8:1::/48"}}
	var got []string
	for _, p := range s.TrustedPrefixes() {
		got = append(got, p.String())
	}
	want := []string{"10.0.0.0/8", "192.0.2.1/32", "2001:db8::1/128", "192.0.2.9/32", "2001:db8:1::/48"}
	if !slices.Equal(got, want) {
		t.Errorf("TrustedPrefixes = %v, want %v", got, want)
	}
}
