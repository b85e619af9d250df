package config

import (
	"bytes"
	"cmp"
	"encoding"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/viper"
	"go.yaml.in/yaml/v3"
)

// searchPaths are the files Load tries, in order, when given no path.
var searchPaths = []string{"hashcall.yaml", "/etc/hashcall/hashcall.yaml"}

// maxFileSize bounds the configuration file read.
const maxFileSize = 1 << 20

// FieldError is a problem with one configuration key. Its message never
// contains the value of a secret.
type FieldError struct {
	// Key is the dotted key, such as "sip.ring_timeout".
	Key string
	// Source is where the value came from: "FILE:LINE" or "env VARIABLE";
	// "" for a default or a value set in code.
	Source string
	// Err says what is wrong, usually in the form "want …, got …".
	Err error
}

// Error returns "[SOURCE: ]KEY: PROBLEM".
func (e *FieldError) Error() string {
	if e.Source != "" {
		return e.Source + ": " + e.Key + ": " + e.Err.Error()
	}
	return e.Key + ": " + e.Err.Error()
}

// Unwrap returns the underlying problem.
func (e *FieldError) Unwrap() error { return e.Err }

// Find returns the file that Load("") would read: the first of
// ./hashcall.yaml and /etc/hashcall/hashcall.yaml that exists, or "" when
// neither does. A file that exists but cannot be examined is an error.
func Find() (string, error) {
	for _, p := range searchPaths {
		_, err := os.Stat(p)
		if err == nil {
			return p, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("config: %w", err)
		}
	}
	return "", nil
}

// Load reads the configuration: defaults, overridden by the YAML file at
// path, overridden by HASHCALL_* environment variables; then it normalises
// the case of enumerated values (UDP → udp, pcma → PCMA, en_gb → en-GB) and
// validates the result. With path "" it reads the file [Find] finds, and
// none is fine. A given path that cannot be read is an error.
//
// All problems are reported at once: the error joins one [FieldError] per
// problem, one per line, each naming the key (and the file line or the
// environment variable the value came from).
func Load(path string) (*Config, error) {
	if path == "" {
		p, err := Find()
		if err != nil {
			return nil, err
		}
		path = p
	}
	cfg := Default()
	sources := make(map[string]string)
	raws, errs, err := layer(path)
	if err != nil {
		return nil, err
	}
	errs = append(errs, apply(cfg, raws, sources)...)
	cfg.normalize()
	for _, fe := range cfg.validate() {
		fe.Source = sources[fe.Key]
		errs = append(errs, fe)
	}
	if len(errs) > 0 {
		sortErrors(errs)
		return nil, errors.Join(errs...)
	}
	return cfg, nil
}

// sortErrors orders problems as a reader goes through them: those in the
// file by line, then those from the environment, then the rest.
func sortErrors(errs []error) {
	rank := func(err error) (int, int) {
		var fe *FieldError
		if !errors.As(err, &fe) {
			return 0, 0
		}
		if strings.HasPrefix(fe.Source, "env ") {
			return 2, 0
		}
		if i := strings.LastIndexByte(fe.Source, ':'); i >= 0 {
			if n, err := strconv.Atoi(fe.Source[i+1:]); err == nil {
				return 1, n
			}
		}
		return 3, 0
	}
	slices.SortStableFunc(errs, func(a, b error) int {
		ra, la := rank(a)
		rb, lb := rank(b)
		return cmp.Or(cmp.Compare(ra, rb), cmp.Compare(la, lb))
	})
}

func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("config: read %s: %w", path, err)
	}
	if len(data) > maxFileSize {
		return nil, fmt.Errorf("config: %s: larger than %d bytes", path, maxFileSize)
	}
	return data, nil
}

// raw is one key's value as written, before it is converted to its type.
type raw struct {
	key    string
	source string    // "FILE:LINE" or "env NAME"
	kind   yaml.Kind // ScalarNode or SequenceNode; MappingNode is an error
	text   string    // a scalar's text, as written
	list   []string  // a sequence's items
}

// layer merges the file at path (if any) and the HASHCALL_* environment
// with viper (github.com/spf13/viper): environment over file, a variable
// set to "" counting as unset. Defaults stay in Config itself.
//
// Viper's own YAML decoding types scalars (+441234567890 becomes an
// integer without its +, 012345 an octal number), which would silently
// change caller IDs and passwords. So the file is decoded by textCodec,
// which keeps every value's text as written and the line it came from, and
// reports unknown keys; viper does the layering and the environment.
func layer(path string) ([]raw, []error, error) {
	codec := &textCodec{path: path, lines: map[string]string{}}
	reg := viper.NewCodecRegistry()
	if err := reg.RegisterCodec("yaml", codec); err != nil {
		return nil, nil, fmt.Errorf("config: %w", err)
	}
	v := viper.NewWithOptions(viper.WithCodecRegistry(reg), viper.KeyDelimiter("."))
	if path != "" {
		data, err := readFile(path)
		if err != nil {
			return nil, nil, err
		}
		v.SetConfigType("yaml")
		if err := v.ReadConfig(bytes.NewReader(data)); err != nil {
			return nil, nil, fmt.Errorf("config: %w", err)
		}
	}
	v.SetEnvPrefix(strings.TrimSuffix(EnvPrefix, "_"))
	v.SetEnvKeyReplacer(strings.NewReplacer(".", "_"))
	var out []raw
	for _, f := range fields {
		if err := v.BindEnv(f.key, f.env); err != nil {
			return nil, nil, fmt.Errorf("config: %w", err)
		}
		if !v.IsSet(f.key) {
			continue
		}
		r := raw{key: f.key, source: codec.lines[f.key]}
		if e, ok := os.LookupEnv(f.env); ok && e != "" {
			r.source = "env " + f.env
		}
		switch val := v.Get(f.key).(type) {
		case string:
			r.kind, r.text = yaml.ScalarNode, val
		case []any:
			r.kind = yaml.SequenceNode
			for _, item := range val {
				r.list = append(r.list, fmt.Sprint(item))
			}
		case mappingValue:
			r.kind = yaml.MappingNode // a mapping where a value belongs
		default:
			continue
		}
		out = append(out, r)
	}
	return out, codec.errs, nil
}

// textCodec is the viper codec for hashcall's YAML: it decodes with
// parseYAML, so values stay strings (and lists of strings) exactly as
// written, and remembers each key's FILE:LINE.
type textCodec struct {
	path  string
	lines map[string]string
	errs  []error
}

// Decode implements viper's Decoder.
func (c *textCodec) Decode(b []byte, m map[string]any) error {
	raws, errs := parseYAML(c.path, b)
	c.errs = append(c.errs, errs...)
	for _, r := range raws {
		parts := strings.Split(r.key, ".")
		node := m
		for _, p := range parts[:len(parts)-1] {
			next, ok := node[p].(map[string]any)
			if !ok {
				next = map[string]any{}
				node[p] = next
			}
			node = next
		}
		leaf := parts[len(parts)-1]
		if r.kind == yaml.MappingNode {
			node[leaf] = mappingValue{}
		} else if r.kind == yaml.SequenceNode {
			list := make([]any, len(r.list))
			for i, s := range r.list {
				list[i] = s
			}
			node[leaf] = list
		} else {
			node[leaf] = r.text
		}
		c.lines[r.key] = r.source
	}
	return nil
}

// mappingValue stands for a mapping written where a key wants a value, so
// that set can say what is wrong with it.
type mappingValue struct{}

// Encode implements viper's Encoder; hashcall never writes through viper.
func (c *textCodec) Encode(map[string]any) ([]byte, error) {
	return nil, errors.New("config: writing through viper is not supported; use Config.YAML")
}

// parseYAML walks the file's node tree and returns the value of every known
// key, and an error for every unknown key, duplicate and syntax problem.
func parseYAML(path string, data []byte) ([]raw, []error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil // empty, or only comments
		}
		return nil, []error{fmt.Errorf("%s: %w", path, err)}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, []error{fmt.Errorf("%s: want a single YAML document", path)}
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) > 0 {
		root = root.Content[0]
	}
	root = deref(root)
	if isNull(root) {
		return nil, nil
	}
	if root.Kind != yaml.MappingNode {
		return nil, []error{fmt.Errorf("%s:%d: want a mapping of keys such as sip: and media: at the top level", path, root.Line)}
	}
	w := walker{path: path, seen: make(map[string]int), budget: maxPairs}
	w.mapping(root, "", 0)
	return w.raws, w.errs
}

// maxPairs bounds the key/value pairs visited, merges included, so that a
// file of aliases cannot make the walk quadratic.
const maxPairs = 100_000

type walker struct {
	path   string
	raws   []raw
	errs   []error
	seen   map[string]int // key → line where set
	budget int            // pairs left to visit
}

func (w *walker) fail(line int, key string, format string, args ...any) {
	w.errs = append(w.errs, &FieldError{
		Key:    key,
		Source: w.path + ":" + strconv.Itoa(line),
		Err:    fmt.Errorf(format, args...),
	})
}

// mapping walks the pairs of a mapping node. Keys set explicitly win over
// keys merged in with <<, as YAML says; depth bounds merge chains.
func (w *walker) mapping(n *yaml.Node, prefix string, depth int) {
	if depth > 16 {
		w.fail(n.Line, displayKey(prefix), "merges (<<) nested too deep")
		return
	}
	var merges []*yaml.Node
	explicit := make(map[string]bool)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := deref(n.Content[i]), n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.Tag == "!!merge" {
			merges = append(merges, v)
			continue
		}
		if k.Kind != yaml.ScalarNode {
			w.fail(k.Line, displayKey(prefix), "want keys that are plain names")
			continue
		}
		explicit[k.Value] = true
		w.pair(k, v, prefix, depth, false)
	}
	for _, m := range merges {
		m = deref(m)
		var srcs []*yaml.Node
		switch m.Kind {
		case yaml.MappingNode:
			srcs = []*yaml.Node{m}
		case yaml.SequenceNode:
			for _, s := range m.Content {
				srcs = append(srcs, deref(s))
			}
		}
		for _, s := range srcs {
			if s.Kind != yaml.MappingNode {
				w.fail(m.Line, displayKey(prefix), "want a mapping after <<")
				continue
			}
			for i := 0; i+1 < len(s.Content); i += 2 {
				k := deref(s.Content[i])
				if k.Kind == yaml.ScalarNode && k.Tag == "!!merge" {
					continue // nested merges inside a merged mapping: rare; ignore
				}
				if w.budget--; w.budget < 0 {
					break
				}
				if k.Kind != yaml.ScalarNode || explicit[k.Value] {
					continue
				}
				explicit[k.Value] = true
				w.pair(k, s.Content[i+1], prefix, depth+1, true)
			}
		}
	}
}

func (w *walker) pair(k, v *yaml.Node, prefix string, depth int, merged bool) {
	if w.budget--; w.budget < 0 {
		if w.budget == -1 {
			w.fail(k.Line, displayKey(prefix), "more than %d keys, merges included", maxPairs)
		}
		return
	}
	key := k.Value
	if prefix != "" {
		key = prefix + "." + k.Value
	}
	v = deref(v)
	if line, dup := w.seen[key]; dup && !merged {
		w.fail(k.Line, displayKey(key), "set twice (first on line %d)", line)
		return
	}
	w.seen[key] = k.Line
	switch {
	case fieldByKey[key] != nil:
		if isNull(v) {
			return // key: with no value keeps the default
		}
		r := raw{key: key, source: w.path + ":" + strconv.Itoa(k.Line), kind: v.Kind}
		switch v.Kind {
		case yaml.ScalarNode:
			r.text = v.Value
		case yaml.SequenceNode:
			for _, item := range v.Content {
				item = deref(item)
				if item.Kind != yaml.ScalarNode {
					r.kind = yaml.MappingNode // reported by apply as the wrong shape
					break
				}
				r.list = append(r.list, item.Value)
			}
		}
		w.raws = append(w.raws, r)
	case sections[key]:
		if isNull(v) {
			return
		}
		if v.Kind != yaml.MappingNode {
			w.fail(k.Line, key, "want a mapping of keys such as %s", childExample(key))
			return
		}
		w.mapping(v, key, depth)
	default:
		msg := "unknown key"
		if s := suggest(key); s != "" {
			msg += " (did you mean " + s + "?)"
		}
		w.fail(k.Line, displayKey(key), "%s", msg)
	}
}

// displayKey returns key as it is when it is a plain dotted name, and quoted
// otherwise, so a strange key cannot garble the message.
func displayKey(key string) string {
	if key == "" {
		return "(top level)"
	}
	for _, r := range key {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '.' || r == '-') {
			return quote(key)
		}
	}
	if len(key) > 64 {
		return quote(key)
	}
	return key
}

func childExample(section string) string {
	var names []string
	for _, f := range fields {
		if rest, ok := strings.CutPrefix(f.key, section+"."); ok {
			name, _, _ := strings.Cut(rest, ".")
			if len(names) == 0 || names[len(names)-1] != name {
				names = append(names, name)
			}
		}
		if len(names) == 2 {
			break
		}
	}
	return strings.Join(names, " and ")
}

func deref(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && n.Alias != nil && i < 16; i++ {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n == nil || n.Kind == 0 || (n.Kind == yaml.ScalarNode && n.Tag == "!!null")
}

// apply converts raw values into cfg, recording where each came from. A
// value that does not convert leaves the field as it was.
func apply(cfg *Config, raws []raw, sources map[string]string) []error {
	var errs []error
	for _, r := range raws {
		f := fieldByKey[r.key]
		if f == nil {
			continue
		}
		if err := set(f, f.value(cfg), r); err != nil {
			errs = append(errs, &FieldError{Key: f.key, Source: r.source, Err: err})
			continue
		}
		sources[f.key] = r.source
	}
	return errs
}

// set converts one raw value into the field v. Its errors quote the value
// only for fields that are not secret.
func set(f *field, v reflect.Value, r raw) error {
	got := func() string {
		if f.secret {
			return ""
		}
		return ", got " + quote(r.text)
	}
	scalar := func(want string) (string, error) {
		if r.kind != yaml.ScalarNode {
			return "", fmt.Errorf("want %s, got a %s", want, kindName(r.kind))
		}
		return r.text, nil
	}
	switch p := v.Addr().Interface().(type) {
	case *string:
		s, err := scalar("a string")
		if err != nil {
			return err
		}
		*p = s
	case *Secret:
		s, err := scalar("a string")
		if err != nil {
			return err
		}
		*p = Secret(s)
	case *bool:
		s, err := scalar("true or false")
		if err != nil {
			return err
		}
		b, ok := parseBool(s)
		if !ok {
			return fmt.Errorf("want true or false%s", got())
		}
		*p = b
	case *int:
		s, err := scalar("a whole number")
		if err != nil {
			return err
		}
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil {
			return fmt.Errorf("want a whole number such as %d%s", reflect.ValueOf(Default()).Elem().FieldByIndex(f.index).Int(), got())
		}
		*p = n
	case *time.Duration:
		s, err := scalar("a duration")
		if err != nil {
			return err
		}
		d, err := time.ParseDuration(strings.TrimSpace(s))
		if err != nil {
			return fmt.Errorf("want a duration such as %s%s", exampleDuration(f), got())
		}
		*p = d
	case *[]string:
		items, err := listItems(r)
		if err != nil {
			return err
		}
		*p = items
	case *[]Secret:
		items, err := listItems(r)
		if err != nil {
			return err
		}
		out := make([]Secret, len(items))
		for i, s := range items {
			out[i] = Secret(s)
		}
		*p = out
	case encoding.TextUnmarshaler:
		s, err := scalar("a string")
		if err != nil {
			return err
		}
		if err := p.UnmarshalText([]byte(s)); err != nil {
			if f.secret {
				return errors.New("not valid")
			}
			return err
		}
	default:
		return fmt.Errorf("unsupported type %s", v.Type())
	}
	return nil
}

// listItems returns a list value: a YAML sequence, or a comma-separated
// string (the only form in the environment). Items are trimmed and empty
// ones dropped.
func listItems(r raw) ([]string, error) {
	var items []string
	switch r.kind {
	case yaml.SequenceNode:
		items = r.list
	case yaml.ScalarNode:
		items = strings.Split(r.text, ",")
	default:
		return nil, errors.New("want a list of strings")
	}
	out := make([]string, 0, len(items))
	for _, s := range items {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out, nil
}

func exampleDuration(f *field) string {
	d := time.Duration(reflect.ValueOf(Default()).Elem().FieldByIndex(f.index).Int())
	if d <= 0 {
		d = 30 * time.Second
	}
	return formatDuration(d)
}

func parseBool(s string) (bool, bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "true", "yes", "on", "1":
		return true, true
	case "false", "no", "off", "0":
		return false, true
	}
	return false, false
}

func kindName(k yaml.Kind) string {
	switch k {
	case yaml.SequenceNode:
		return "list"
	case yaml.MappingNode:
		return "mapping"
	}
	return "scalar"
}
