package config

import (
	"bytes"
	"fmt"
	"reflect"
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
	nodes := map[string]*yaml.Node{"": root}
	var section func(key string) *yaml.Node
	section = func(key string) *yaml.Node {
		if n, ok := nodes[key]; ok {
			return n
		}
		parent, name := splitKey(key)
		n := &yaml.Node{Kind: yaml.MappingNode}
		p := section(parent)
		p.Content = append(p.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: name}, n)
		nodes[key] = n
		return n
	}
	for i := range fields {
		f := &fields[i]
		// yaml.v3 writes each value (quoting text that would read back
		// as another type, such as +441234567890); durations in their
		// shortest form (15m, not 15m0s).
		v := f.value(r).Interface()
		if d, ok := v.(time.Duration); ok {
			v = formatDuration(d)
		}
		var n yaml.Node
		if err := n.Encode(v); err != nil {
			return nil, fmt.Errorf("config: %s: %w", f.key, err)
		}
		parent, name := splitKey(f.key)
		p := section(parent)
		p.Content = append(p.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: name}, &n)
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

// splitKey splits "sip.trunk.address" into "sip.trunk" and "address".
func splitKey(key string) (parent, name string) {
	if i := strings.LastIndexByte(key, '.'); i >= 0 {
		return key[:i], key[i+1:]
	}
	return "", key
}
