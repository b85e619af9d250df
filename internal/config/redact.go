package config

import (
	"bytes"
	"encoding"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Redacted returns a deep copy of c with every secret that is set replaced
// by [Mask]; secrets that are not set stay empty, so the copy still tells
// which are.
func (c *Config) Redacted() *Config {
	out := c.clone()
	for i := range fields {
		f := &fields[i]
		if !f.secret {
			continue
		}
		switch p := f.value(out).Addr().Interface().(type) {
		case *Secret:
			if *p != "" {
				*p = Mask
			}
		case *[]Secret:
			for j := range *p {
				if (*p)[j] != "" {
					(*p)[j] = Mask
				}
			}
		}
	}
	return out
}

// clone returns a copy of c that shares no slices with it.
func (c *Config) clone() *Config {
	out := *c
	for i := range fields {
		v := fields[i].value(&out)
		if v.Kind() == reflect.Slice && !v.IsNil() {
			cp := reflect.MakeSlice(v.Type(), v.Len(), v.Len())
			reflect.Copy(cp, v)
			v.Set(cp)
		}
	}
	return &out
}

// YAML returns the configuration as a YAML file that [Load] reads back,
// every key in the order of [Keys], with secrets masked as [Config.Redacted]
// does. It is what `hashcall config check` prints.
func (c *Config) YAML() ([]byte, error) {
	r := c.Redacted()
	root := &yaml.Node{Kind: yaml.MappingNode}
	sectionNodes := map[string]*yaml.Node{"": root}
	var section func(key string) *yaml.Node
	section = func(key string) *yaml.Node {
		if n, ok := sectionNodes[key]; ok {
			return n
		}
		parent, name := "", key
		if i := strings.LastIndexByte(key, '.'); i >= 0 {
			parent, name = key[:i], key[i+1:]
		}
		n := &yaml.Node{Kind: yaml.MappingNode}
		p := section(parent)
		p.Content = append(p.Content, strNode(name), n)
		sectionNodes[key] = n
		return n
	}
	for i := range fields {
		f := &fields[i]
		parent, name := "", f.key
		if j := strings.LastIndexByte(f.key, '.'); j >= 0 {
			parent, name = f.key[:j], f.key[j+1:]
		}
		v, err := valueNode(f.value(r))
		if err != nil {
			return nil, fmt.Errorf("config: %s: %w", f.key, err)
		}
		p := section(parent)
		p.Content = append(p.Content, strNode(name), v)
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(root); err != nil {
		return nil, fmt.Errorf("config: encode: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("config: encode: %w", err)
	}
	return buf.Bytes(), nil
}

func strNode(s string) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s}
}

func valueNode(v reflect.Value) (*yaml.Node, error) {
	switch x := v.Interface().(type) {
	case string:
		return strNode(x), nil
	case Secret:
		return strNode(string(x)), nil
	case bool:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: strconv.FormatBool(x)}, nil
	case int:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: strconv.Itoa(x)}, nil
	case time.Duration:
		return strNode(formatDuration(x)), nil
	case []string:
		return seqNode(x), nil
	case []Secret:
		items := make([]string, len(x))
		for i, s := range x {
			items[i] = string(s)
		}
		return seqNode(items), nil
	case encoding.TextMarshaler:
		b, err := x.MarshalText()
		if err != nil {
			return nil, err
		}
		return strNode(string(b)), nil
	}
	return nil, fmt.Errorf("unsupported type %s", v.Type())
}

func seqNode(items []string) *yaml.Node {
	n := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
	if len(items) == 0 {
		n.Style = yaml.FlowStyle
	}
	for _, s := range items {
		n.Content = append(n.Content, strNode(s))
	}
	return n
}
