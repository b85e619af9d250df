package config

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// TestYAMLMessages pins the texts of go.yaml.in/yaml/v3's TypeError that
// yamlProblem reads (the library has no structured form for them): an
// upgrade that changes one fails here rather than turning unknown keys
// into unnamed errors.
func TestYAMLMessages(t *testing.T) {
	tests := []struct {
		name, yaml string
		re         interface{ MatchString(string) bool }
	}{
		{"unknown field", "sip:\n  b: 1\n", yamlUnknown},
		{"odd unknown field", "sip:\n  \"x\\ny\": 1\n", yamlUnknown},
		{"duplicate", "sip:\n  listen: 1\n  listen: 2\n", yamlTwice},
		{"scalar for a struct", "sip: 1\n", yamlNotMap},
		{"list for a struct", "sip: [1]\n", yamlNotMap},
		{"list as a key", "sip:\n  ? [1]\n  : 2\n", yamlBadKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dec := yaml.NewDecoder(strings.NewReader(tt.yaml))
			dec.KnownFields(true)
			var te *yaml.TypeError
			if err := dec.Decode(reflect.New(shadowType).Interface()); !errors.As(err, &te) || len(te.Errors) != 1 {
				t.Fatalf("Decode = %v, want one TypeError", err)
			}
			if !tt.re.MatchString(te.Errors[0]) {
				t.Errorf("yaml.v3 says %q, which %v does not match", te.Errors[0], tt.re)
			}
			if m := yamlUnknown.FindStringSubmatch(te.Errors[0]); m != nil && shadowPrefix[m[3]] != "sip" {
				t.Errorf("the type in %q is not known as the sip section", te.Errors[0])
			}
		})
	}
}

// TestShadowMirrorsConfig: the shadow the file is decoded into has, at each
// field's index, the key's own name as its yaml tag, so the two can never
// disagree about where a key lives.
func TestShadowMirrorsConfig(t *testing.T) {
	for _, f := range fields {
		sf := shadowType.FieldByIndex(f.index)
		_, name := splitKey(f.key)
		if sf.Type != nodeType || sf.Tag.Get("yaml") != name {
			t.Errorf("%s: shadow field %s %s `%s`", f.key, sf.Name, sf.Type, sf.Tag)
		}
		cf := reflect.TypeFor[Config]().FieldByIndex(f.index)
		if cf.Name != sf.Name {
			t.Errorf("%s: Config field %s, shadow field %s", f.key, cf.Name, sf.Name)
		}
	}
}

// TestEveryKeyFromEnv: every key reads its HASHCALL_* variable, in the form
// config check prints it (lists comma-separated), with nothing but the
// field's yaml tag to go on.
func TestEveryKeyFromEnv(t *testing.T) {
	clearEnv(t)
	want := secretConfig()
	want.Verify.Attempts = 2
	want.SIP.Trunk.Register = true
	want.Media.Codecs = []string{CodecPCMU}
	want.HTTP.Tokens = []Secret{secretToken, "tok-QRSTUVWXYZ0123456-2"}
	out, err := want.YAML()
	if err != nil {
		t.Fatal(err)
	}
	var tree yaml.Node
	if err := yaml.Unmarshal(out, &tree); err != nil {
		t.Fatal(err)
	}
	for _, f := range fields {
		n := tree.Content[0]
		for _, part := range strings.Split(f.key, ".") {
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == part {
					n = n.Content[i+1]
					break
				}
			}
		}
		v := n.Value
		if n.Kind == yaml.SequenceNode {
			var items []string
			for _, item := range n.Content {
				items = append(items, item.Value)
			}
			v = strings.Join(items, ",")
		}
		if f.secret { // printed masked: take the value itself
			switch s := f.value(want).Interface().(type) {
			case Secret:
				v = string(s)
			case []Secret:
				items := make([]string, len(s))
				for i := range s {
					items[i] = string(s[i])
				}
				v = strings.Join(items, ",")
			}
		}
		t.Setenv(f.env, v)
	}
	t.Chdir(t.TempDir())
	defer swapSearchPaths(nil)()
	got, err := Load("")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("from the environment:\n got %+v\nwant %+v", got, want)
	}
}

// TestSourceLines: a problem found by validation names the line of its key,
// also when the value is a block list below the key or merged in from an
// anchor, and the variable when it came from the environment.
func TestSourceLines(t *testing.T) {
	tests := []struct {
		name, yaml string
		env        map[string]string
		want       string
	}{
		{"scalar", "verify:\n  attempts: 9\n", nil, "hashcall.yaml:2: verify.attempts: want 1 to 5"},
		{"block list", "media:\n  codecs:\n    - G729\n", nil, "hashcall.yaml:2: media.codecs: want a list of PCMA, PCMU"},
		{"flow mapping", "verify: {locale: en-GB, attempts: 7}\n", nil, "hashcall.yaml:1: verify.attempts: want 1 to 5, got 7"},
		{"merged from an anchor", "sip:\n  trunk: &t\n    address: pbx.example.org\nradius:\n  upstream:\n    <<: *t\n",
			nil, "hashcall.yaml:3: radius.upstream.address: unknown key"},
		{"merged inline", "sip:\n  <<: {transport: sctp}\n", nil, "hashcall.yaml:2: sip.transport: want udp, tcp or tls"},
		{"environment over a bad file value", "verify:\n  attempts: nine\n", map[string]string{"HASHCALL_VERIFY_ATTEMPTS": "8"},
			"env HASHCALL_VERIFY_ATTEMPTS: verify.attempts: want 1 to 5, got 8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearEnv(t)
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			_, err := loadString(t, tt.yaml)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v\nwant one containing %q", err, tt.want)
			}
		})
	}
}

// TestKeysThatAreNotNames: a key that is a list or null is an error naming
// the mapping it is in, not a key silently ignored.
func TestKeysThatAreNotNames(t *testing.T) {
	clearEnv(t)
	for _, tc := range []struct{ name, yaml, want string }{
		{"list", "sip:\n  ? [a]\n  : 1\n", "hashcall.yaml:2: sip: want keys that are plain names"},
		{"null", "~: 1\n", "hashcall.yaml:1: (top level): want keys that are plain names"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := loadString(t, tc.yaml)
			if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Count(err.Error(), "\n") != 0 {
				t.Errorf("error %v, want the one line %q", err, tc.want)
			}
		})
	}
}

// BenchmarkLoad loads the documented sample, which sets every key.
func BenchmarkLoad(b *testing.B) {
	for _, f := range fields {
		b.Setenv(f.env, "")
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Load("../../configs/hashcall.yaml"); err != nil {
			b.Fatal(err)
		}
	}
}
