// Package config loads, validates and prints hashcall's configuration.
//
// A configuration is assembled from three layers, each overriding the one
// before it:
//
//  1. built-in defaults ([Default]);
//  2. a YAML file: the path given to [Load], or else the first of
//     ./hashcall.yaml and /etc/hashcall/hashcall.yaml that exists (neither
//     has to);
//  3. environment variables: every key also reads HASHCALL_ followed by the
//     key in upper case with dots as underscores, so sip.trunk.password is
//     HASHCALL_SIP_TRUNK_PASSWORD. Lists are comma-separated
//     (HASHCALL_MEDIA_CODECS=PCMU,PCMA). A variable that is set but empty
//     counts as unset.
//
// The file is decoded strictly by yaml.v3 (KnownFields) into a shadow of
// [Config] built from its yaml tags, whose leaves are YAML nodes; viper
// (github.com/spf13/viper) layers those under the environment; and each
// key's value is converted from its text by the field's type. That matters
// on a telephone system: a plain scalar keeps its text (sip.from:
// +441234567890 stays "+441234567890" instead of becoming the integer
// 441234567890, and a password 0123 is not read as the octal number 83);
// every error names the file and line; and an unknown key is an error that
// names it, with a suggestion when a known key is close. A field added to
// the structs with a yaml tag needs nothing else: its environment variable,
// its place in [Config.YAML] and, for a [Secret], its masking follow from
// the tag and the type.
//
// [Load] reports every problem at once (one [FieldError] per line, joined
// with errors.Join). Secrets ([Secret]) never appear in error messages, in
// fmt or slog output, or in [Config.YAML].
package config
