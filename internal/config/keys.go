package config

import (
	"encoding"
	"reflect"
	"strings"
)

// EnvPrefix starts the name of every environment variable that sets a key.
const EnvPrefix = "HASHCALL_"

// field is one key: a leaf of Config.
type field struct {
	key    string // dotted path, "sip.trunk.address"
	env    string // "HASHCALL_SIP_TRUNK_ADDRESS"
	index  []int  // reflect field index path from Config
	secret bool   // a Secret or []Secret
	list   bool   // a slice: comma-separated in the environment
}

var (
	fields     = buildFields()
	fieldByKey = func() map[string]*field {
		m := make(map[string]*field, len(fields))
		for i := range fields {
			m[fields[i].key] = &fields[i]
		}
		return m
	}()
	sections = func() map[string]bool {
		m := make(map[string]bool)
		for _, f := range fields {
			k := f.key
			for {
				i := strings.LastIndexByte(k, '.')
				if i < 0 {
					break
				}
				k = k[:i]
				m[k] = true
			}
		}
		return m
	}()
)

var (
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
	secretType          = reflect.TypeFor[Secret]()
)

// buildFields lists the leaves of Config in declaration order.
func buildFields() []field {
	var out []field
	var walk func(t reflect.Type, prefix string, index []int)
	walk = func(t reflect.Type, prefix string, index []int) {
		for i := range t.NumField() {
			sf := t.Field(i)
			name, _, _ := strings.Cut(sf.Tag.Get("yaml"), ",")
			if !sf.IsExported() || name == "" || name == "-" {
				continue
			}
			key := name
			if prefix != "" {
				key = prefix + "." + name
			}
			idx := append(append([]int(nil), index...), i)
			ft := sf.Type
			if ft.Kind() == reflect.Struct && !reflect.PointerTo(ft).Implements(textUnmarshalerType) {
				walk(ft, key, idx)
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
	}
	walk(reflect.TypeFor[Config](), "", nil)
	return out
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
