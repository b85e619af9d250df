package config

import (
	"encoding"
	"reflect"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// EnvPrefix starts the name of every environment variable that sets a key.
const EnvPrefix = "HASHCALL_"

// field is one key: a leaf of Config. The table of fields, built from the
// yaml tags, is the one list of keys: the environment variables, the
// printer, the masking of secrets and the suggestions all read it.
type field struct {
	key    string // dotted path, "sip.trunk.address"
	env    string // "HASHCALL_SIP_TRUNK_ADDRESS"
	index  []int  // reflect field index path, the same in Config and in shadowType
	secret bool   // a Secret or []Secret
	list   bool   // a slice: comma-separated in the environment
}

var (
	fields, shadowType, shadowPrefix = buildFields()
	fieldByKey                       = func() map[string]*field {
		m := make(map[string]*field, len(fields))
		for i := range fields {
			m[fields[i].key] = &fields[i]
		}
		return m
	}()
	sections = func() map[string]bool {
		m := make(map[string]bool)
		for _, f := range fields {
			for k := f.key; strings.Contains(k, "."); {
				k = k[:strings.LastIndexByte(k, '.')]
				m[k] = true
			}
		}
		return m
	}()
)

var (
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
	secretType          = reflect.TypeFor[Secret]()
	nodeType            = reflect.TypeFor[yaml.Node]()
)

// isSection reports whether a struct field of type t holds keys of its own
// (sip.trunk) rather than being one value (a PortRange).
func isSection(t reflect.Type) bool {
	return t.Kind() == reflect.Struct && !reflect.PointerTo(t).Implements(textUnmarshalerType)
}

// buildFields lists the leaves of Config in declaration order, and builds
// the shadow of Config that the file is decoded into: the same sections
// with the same yaml tags, every leaf a yaml.Node. yaml.v3 then does the
// strict part (unknown keys with their line, duplicates, merges, aliases)
// and each leaf's node is converted by [field.set] with errors that name
// the key and the form it wants.
//
// The third result maps each shadow section's type, as yaml.v3 names it in
// its messages, to the section's key ("" for the top level); types that two
// sections share are left out.
func buildFields() ([]field, reflect.Type, map[string]string) {
	var out []field
	prefixes := map[string]string{}
	shared := map[string]bool{}
	var walk func(t reflect.Type, prefix string, index []int) reflect.Type
	walk = func(t reflect.Type, prefix string, index []int) reflect.Type {
		shadow := make([]reflect.StructField, t.NumField())
		for i := range t.NumField() {
			sf := t.Field(i)
			shadow[i] = reflect.StructField{Name: sf.Name, Type: nodeType, Tag: `yaml:"-"`}
			if !sf.IsExported() {
				shadow[i].Name = "Unexported_" + strconv.Itoa(i)
			}
			name, _, _ := strings.Cut(sf.Tag.Get("yaml"), ",")
			if !sf.IsExported() || name == "" || name == "-" {
				continue
			}
			shadow[i].Tag = reflect.StructTag(`yaml:"` + name + `"`)
			key := name
			if prefix != "" {
				key = prefix + "." + name
			}
			idx := append(append([]int(nil), index...), i)
			ft := sf.Type
			if isSection(ft) {
				shadow[i].Type = walk(ft, key, idx)
				continue
			}
			out = append(out, field{
				key:    key,
				env:    EnvPrefix + strings.ToUpper(strings.ReplaceAll(key, ".", "_")),
				index:  idx,
				secret: ft == secretType || (ft.Kind() == reflect.Slice && ft.Elem() == secretType),
				list:   ft.Kind() == reflect.Slice,
			})
		}
		st := reflect.StructOf(shadow)
		if _, dup := prefixes[st.String()]; dup {
			shared[st.String()] = true
		}
		prefixes[st.String()] = prefix
		return st
	}
	st := walk(reflect.TypeFor[Config](), "", nil)
	for s := range shared {
		delete(prefixes, s)
	}
	return out, st, prefixes
}

// Keys returns every configuration key in the order of [Config]'s fields,
// such as "sip.trunk.address".
func Keys() []string {
	out := make([]string, len(fields))
	for i, f := range fields {
		out[i] = f.key
	}
	return out
}

// EnvVar returns the environment variable that sets key, such as
// HASHCALL_SIP_TRUNK_PASSWORD for sip.trunk.password, or "" for an unknown
// key.
func EnvVar(key string) string {
	if f, ok := fieldByKey[key]; ok {
		return f.env
	}
	return ""
}

// value returns the settable field of c for f.
func (f *field) value(c *Config) reflect.Value {
	return reflect.ValueOf(c).Elem().FieldByIndex(f.index)
}

// suggest returns the known key closest to an unknown one, or "".
func suggest(unknown string) string {
	parent, leaf := "", unknown
	if i := strings.LastIndexByte(unknown, '.'); i >= 0 {
		parent, leaf = unknown[:i], unknown[i+1:]
	}
	// A sibling with a similar name: sip.trunk.adress → sip.trunk.address.
	best, bestD := "", 0
	consider := func(k string) {
		p, l := "", k
		if i := strings.LastIndexByte(k, '.'); i >= 0 {
			p, l = k[:i], k[i+1:]
		}
		if p != parent {
			return
		}
		d := levenshtein(strings.ToLower(leaf), l)
		if best == "" || d < bestD {
			best, bestD = k, d
		}
	}
	for _, f := range fields {
		consider(f.key)
	}
	for s := range sections {
		consider(s)
	}
	if best != "" && bestD <= max(2, len(leaf)/3) {
		return best
	}
	// The same name in another section: sip.register → sip.trunk.register.
	best = ""
	for _, f := range fields {
		if strings.HasSuffix(f.key, "."+strings.ToLower(leaf)) && (best == "" || len(f.key) < len(best)) {
			best = f.key
		}
	}
	if best != "" {
		return best
	}
	// Anything close as a whole.
	bestD = 0
	for _, f := range fields {
		if d := levenshtein(strings.ToLower(unknown), f.key); best == "" || d < bestD {
			best, bestD = f.key, d
		}
	}
	if bestD <= 3 {
		return best
	}
	return ""
}

// levenshtein is the edit distance between a and b, in bytes.
func levenshtein(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
