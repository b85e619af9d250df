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
	"regexp"
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
	var leaves map[string]leaf
	var errs []error
	if path != "" {
		data, err := readFile(path)
		if err != nil {
			return nil, err
		}
		leaves, errs = readYAML(path, data)
	}
	v, err := layers(leaves)
	if err != nil {
		return nil, err
	}
	cfg := Default()
	sources := make(map[string]string)
	for i := range fields {
		f := &fields[i]
		var l leaf
		switch x := v.Get(f.key).(type) {
		case leaf:
			l = x
		case string: // from the environment, which viper puts over the file
			l = leaf{source: "env " + f.env, node: &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: x}}
		default:
			continue
		}
		if err := f.set(cfg, l.node); err != nil {
			errs = append(errs, &FieldError{Key: f.key, Source: l.source, Err: err})
			continue
		}
		sources[f.key] = l.source
	}
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

// layers stacks the HASHCALL_* environment over the file's values with
// viper (github.com/spf13/viper): a variable set to "" counts as unset.
// The defaults are Config's own, from [Default].
func layers(leaves map[string]leaf) (*viper.Viper, error) {
	v := viper.NewWithOptions(viper.KeyDelimiter("."))
	file := map[string]any{}
	for key, l := range leaves {
		m, parts := file, strings.Split(key, ".")
		for _, p := range parts[:len(parts)-1] {
			next, ok := m[p].(map[string]any)
			if !ok {
				next = map[string]any{}
				m[p] = next
			}
			m = next
		}
		m[parts[len(parts)-1]] = l
	}
	if err := v.MergeConfigMap(file); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	for _, f := range fields {
		if err := v.BindEnv(f.key, f.env); err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
	}
	return v, nil
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

// leaf is one key's value before it is converted to its type: a node of
// the file, or a scalar from the environment.
type leaf struct {
	node   *yaml.Node
	source string // "FILE:LINE" of the key, or "env NAME"
}

// readYAML decodes the file strictly with yaml.v3 (KnownFields) into the
// shadow of Config and returns the node of every key it sets, and an error
// for every unknown key, duplicate and syntax problem, each with its line.
// A key with no value (null) keeps its default, so it is left out.
func readYAML(path string, data []byte) (map[string]leaf, []error) {
	root, err := parseDoc(path, data)
	if err != nil {
		return nil, []error{err}
	}
	if root == nil {
		return nil, nil // empty, only comments, or null
	}
	pairs := indexPairs(root, "", nil)
	var errs []error
	for _, p := range pairs {
		if p.key.Kind != yaml.ScalarNode || p.key.ShortTag() == "!!null" {
			errs = append(errs, lineError(path, p.key.Line, p.path, "want keys that are plain names"))
		}
	}
	shadow := reflect.New(shadowType)
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var te *yaml.TypeError
	if err := dec.Decode(shadow.Interface()); errors.As(err, &te) {
		for _, msg := range te.Errors {
			if e := yamlProblem(path, msg, pairs); e != nil {
				errs = append(errs, e)
			}
		}
	} else if err != nil {
		return nil, append(errs, fmt.Errorf("%s: %w", path, err))
	}
	// A leaf's source is its key's line; a value's position finds its key,
	// also for values merged in from an anchor elsewhere.
	keyLine := make(map[[2]int]int, len(pairs))
	for _, p := range pairs {
		keyLine[[2]int{p.value.Line, p.value.Column}] = p.key.Line
	}
	leaves := make(map[string]leaf)
	for _, f := range fields {
		n := shadow.Elem().FieldByIndex(f.index).Addr().Interface().(*yaml.Node)
		if isNull(deref(n)) {
			continue
		}
		line := cmp.Or(keyLine[[2]int{n.Line, n.Column}], n.Line)
		leaves[f.key] = leaf{node: n, source: path + ":" + strconv.Itoa(line)}
	}
	return leaves, errs
}

// parseDoc returns the top-level mapping of a single YAML document, or nil
// when there is none.
func parseDoc(path string, data []byte) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: want a single YAML document", path)
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
		return nil, fmt.Errorf("%s:%d: want a mapping of keys such as sip: and media: at the top level", path, root.Line)
	}
	return root, nil
}

// pair is one key: value of the file, under a known section.
type pair struct {
	path       string // dotted, "sip.trunk.adress"; the parent's for a key that is not a name
	key, value *yaml.Node
}

// indexPairs lists the pairs of mapping n and of the sections inside it,
// where they are written (aliases are not followed: their anchors are
// listed where they stand), so that a line of a yaml.v3 message finds its
// key.
func indexPairs(n *yaml.Node, prefix string, out []pair) []pair {
	for i := 0; n.Kind == yaml.MappingNode && i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
			merged := []*yaml.Node{v}
			if v.Kind == yaml.SequenceNode {
				merged = v.Content
			}
			for _, m := range merged {
				out = indexPairs(m, prefix, out)
			}
			continue
		}
		if k.Kind != yaml.ScalarNode || k.ShortTag() == "!!null" {
			out = append(out, pair{prefix, k, v})
			continue
		}
		path := k.Value
		if prefix != "" {
			path = prefix + "." + k.Value
		}
		out = append(out, pair{path, k, v})
		if sections[path] {
			out = indexPairs(v, path, out)
		}
	}
	return out
}

// The problems yaml.v3 reports as text (its TypeError has no fields), in
// the forms of go.yaml.in/yaml/v3 decode.go; TestYAMLMessages pins them.
var (
	yamlUnknown = regexp.MustCompile(`(?s)^line (\d+): field (.*) not found in type (.*)$`)
	yamlTwice   = regexp.MustCompile(`^line (\d+): mapping key (".*") already defined at line (\d+)$`)
	yamlNotMap  = regexp.MustCompile(`(?s)^line (\d+): cannot unmarshal !!\w+.* into struct \{`)
	yamlBadKey  = regexp.MustCompile(`(?s)^line \d+: cannot unmarshal .* into string$`)
	yamlLine    = regexp.MustCompile(`^line (\d+): `)
)

// yamlProblem turns one message of yaml.v3's TypeError into a FieldError
// naming the key; nil for a problem readYAML reports itself.
func yamlProblem(path, msg string, pairs []pair) error {
	line := func(s string) int { n, _ := strconv.Atoi(s); return n }
	keyAt := func(l int, name string) string {
		for _, p := range pairs {
			if p.key.Line == l && p.key.Value == name {
				return p.path
			}
		}
		return name
	}
	if m := yamlUnknown.FindStringSubmatch(msg); m != nil {
		key := keyAt(line(m[1]), m[2])
		if prefix, ok := shadowPrefix[m[3]]; ok {
			key = strings.TrimPrefix(prefix+"."+m[2], ".") // where it was merged in, too
		}
		msg := "unknown key"
		if s := suggest(key); s != "" {
			msg += " (did you mean " + s + "?)"
		}
		return lineError(path, line(m[1]), key, "%s", msg)
	}
	if m := yamlTwice.FindStringSubmatch(msg); m != nil {
		name, err := strconv.Unquote(m[2])
		if err != nil {
			name = m[2]
		}
		return lineError(path, line(m[1]), keyAt(line(m[1]), name), "set twice (first on line %s)", m[3])
	}
	if m := yamlNotMap.FindStringSubmatch(msg); m != nil {
		for _, p := range pairs {
			if p.value.Line == line(m[1]) && sections[p.path] && deref(p.value).Kind != yaml.MappingNode {
				return lineError(path, p.key.Line, p.path, "want a mapping of keys such as %s", childExample(p.path))
			}
		}
	}
	if yamlBadKey.MatchString(msg) {
		return nil
	}
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		return fmt.Errorf("%s:%s: %s", path, m[1], strings.TrimPrefix(msg, m[0]))
	}
	return fmt.Errorf("%s: %s", path, msg)
}

func lineError(path string, line int, key, format string, args ...any) *FieldError {
	return &FieldError{Key: displayKey(key), Source: path + ":" + strconv.Itoa(line), Err: fmt.Errorf(format, args...)}
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
	return n == nil || n.Kind == 0 || (n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null")
}

// set converts the value n into f's field of c: a scalar's text as written
// (so +441234567890 and 0123 stay text), or for a list a sequence of
// scalars or one comma-separated scalar. A value that does not convert
// leaves the field as it was; the error quotes the value only when it is
// not a secret.
func (f *field) set(c *Config, n *yaml.Node) error {
	v := f.value(c)
	n = deref(n)
	if f.list {
		if v.Type().Elem().Kind() != reflect.String {
			return fmt.Errorf("unsupported type %s", v.Type())
		}
		items, err := listItems(n)
		if err != nil {
			return err
		}
		s := reflect.MakeSlice(v.Type(), len(items), len(items))
		for i, item := range items {
			s.Index(i).SetString(item)
		}
		v.Set(s)
		return nil
	}
	tu, isText := v.Addr().Interface().(encoding.TextUnmarshaler)
	want := "a string"
	switch {
	case isText:
	case v.Type() == durationType:
		want = "a duration"
	case v.Kind() == reflect.Bool:
		want = "true or false"
	case v.CanInt():
		want = "a whole number"
	}
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("want %s, got a %s", want, kindName(n.Kind))
	}
	s, got := n.Value, ", got "+quote(n.Value)
	if f.secret {
		got = ""
	}
	switch {
	case isText:
		if err := tu.UnmarshalText([]byte(s)); err != nil {
			if f.secret {
				return errors.New("not valid")
			}
			return err
		}
	case v.Type() == durationType:
		d, err := time.ParseDuration(strings.TrimSpace(s))
		if err != nil {
			return fmt.Errorf("want a duration such as %s%s", exampleDuration(f), got)
		}
		v.SetInt(int64(d))
	case v.Kind() == reflect.String:
		v.SetString(s)
	case v.Kind() == reflect.Bool:
		b, ok := parseBool(s)
		if !ok {
			return fmt.Errorf("want true or false%s", got)
		}
		v.SetBool(b)
	case v.CanInt():
		i, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		if err != nil || v.OverflowInt(i) {
			return fmt.Errorf("want a whole number such as %d%s", f.value(Default()).Int(), got)
		}
		v.SetInt(i)
	default:
		return fmt.Errorf("unsupported type %s", v.Type())
	}
	return nil
}

var durationType = reflect.TypeFor[time.Duration]()

// listItems returns a list value: a YAML sequence, or a comma-separated
// string (the only form in the environment). Items are trimmed and empty
// ones dropped.
func listItems(n *yaml.Node) ([]string, error) {
	var items []string
	switch n.Kind {
	case yaml.SequenceNode:
		for _, item := range n.Content {
			if item = deref(item); item.Kind != yaml.ScalarNode {
				return nil, errors.New("want a list of strings")
			}
			items = append(items, item.Value)
		}
	case yaml.ScalarNode:
		items = strings.Split(n.Value, ",")
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
	d := time.Duration(f.value(Default()).Int())
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
