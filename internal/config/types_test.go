package config

import (
	"strings"
	"testing"
	"time"
)

func TestParseRate(t *testing.T) {
	tests := []struct {
		in   string
		want Rate
		ok   bool
		str  string
	}{
		{"3/15m", Rate{3, 15 * time.Minute}, true, "3/15m"},
		{"60/1m", Rate{60, time.Minute}, true, "60/1m"},
		{"60/m", Rate{60, time.Minute}, true, "60/1m"},
		{" 10 / 1s ", Rate{10, time.Second}, true, "10/1s"},
		{"5/1h", Rate{5, time.Hour}, true, "5/1h"},
		{"5/1h30m", Rate{5, 90 * time.Minute}, true, "5/1h30m"},
		{"1/1.5s", Rate{1, 1500 * time.Millisecond}, true, "1/1.5s"},
		{"0/1m", Rate{}, false, ""},
		{"off", Rate{}, true, "off"},
		{"-1/1m", Rate{}, false, ""},
		{"+1/1m", Rate{}, false, ""},
		{"1/500ms", Rate{}, false, ""},
		{"1/-1m", Rate{}, false, ""},
		{"1/1", Rate{}, false, ""},
		{"3", Rate{}, false, ""},
		{"3 per 15m", Rate{}, false, ""},
		{"1000001/1s", Rate{}, false, ""},
		{"", Rate{}, false, ""},
	}
	for _, tt := range tests {
		got, err := ParseRate(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseRate(%q) = %v, %v", tt.in, got, err)
			continue
		}
		if err != nil && !strings.Contains(err.Error(), `want "N/PERIOD" such as 3/15m`) {
			t.Errorf("ParseRate(%q) error %q", tt.in, err)
		}
		if tt.ok && got.String() != tt.str {
			t.Errorf("ParseRate(%q).String() = %q, want %q", tt.in, got.String(), tt.str)
		}
	}
}

func TestFormatDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "0s", 30 * time.Second: "30s", 3 * time.Minute: "3m", time.Hour: "1h", 90 * time.Minute: "1h30m",
		time.Hour + time.Second: "1h0m1s", 1500 * time.Millisecond: "1.5s", -time.Minute: "-1m",
	} {
		if got := formatDuration(d); got != want {
			t.Errorf("formatDuration(%v) = %q, want %q", d, got, want)
		}
		if back, err := time.ParseDuration(formatDuration(d)); err != nil || back != d {
			t.Errorf("formatDuration(%v) does not parse back: %v %v", d, back, err)
		}
	}
}

func FuzzParseRate(f *testing.F) {
	for _, s := range []string{"3/15m", "60/1m", "60/m", "1/1s", "0/1m", "1/1h30m", "9/1.5s", "1000000/2562047h"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRate(s)
		if err != nil {
			if r != (Rate{}) {
				t.Fatalf("error with a value: %v", r)
			}
			return
		}
		if r.N < 1 || r.N > maxRateN || r.Per < time.Second {
			t.Fatalf("ParseRate(%q) = %v breaks the invariants", s, r)
		}
		back, err := ParseRate(r.String())
		if err != nil || back != r {
			t.Fatalf("round trip of %v (%q): %v, %v", r, r.String(), back, err)
		}
	})
}

// Whatever the file says, loading it does not panic, and a loaded value
// that passed validation prints and reads back the same.
func FuzzParseYAML(f *testing.F) {
	for _, s := range []string{
		"sip:\n  listen: 127.0.0.1:5070\n  trunk:\n    address: pbx.example.org:5060\n",
		"media:\n  codecs: [PCMA, pcmu]\n  rtp_ports: 20000-20999\n",
		"sip: &a\n  trunk:\n    <<: {address: a.example.org:5060}\n",
		"policy:\n  per_number_limit: 3/15m\n  allowed_regions: gb\n",
		"- a\n", "sip: x\n", "a: [\n", "sip:\n  from: +441234567890\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c := Default()
		errs := decodeFile(c, "f.yaml", data)
		c.normalize()
		// Keep Validate away from files the fuzzer names (/dev/zero…).
		c.Prompts.Dir, c.SIP.TLS = "", TLS{}
		if len(errs) > 0 || len(c.validate()) > 0 {
			return
		}
		out, err := c.YAML()
		if err != nil {
			t.Fatal(err)
		}
		back := Default()
		errs = decodeFile(back, "out.yaml", out)
		if len(errs) > 0 {
			t.Fatalf("YAML() of a valid config does not read back: %v\n%s", errs, out)
		}
		back.normalize()
		if back.Redacted().SIP.From != c.Redacted().SIP.From || back.SIP.Listen != c.SIP.Listen {
			t.Fatalf("round trip differs:\n%s", out)
		}
	})
}

func TestParseByteSize(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     ByteSize
		ok       bool
		str      string
	}{
		{"mib", "4MiB", 4 << 20, true, "4MiB"},
		{"kib", "512KiB", 512 << 10, true, "512KiB"},
		{"gib", "1GiB", 1 << 30, true, "1GiB"},
		{"bytes", "4194304", 4 << 20, true, "4MiB"},
		{"b_suffix", "1000B", 1000, true, "1000"},
		{"space", " 2 MiB ", 2 << 20, true, "2MiB"},
		{"zero", "0", 0, true, "0"},
		{"odd_bytes", "1536", 1536, true, "1536"},
		{"negative", "-1", 0, false, ""},
		{"si_unit", "4MB", 0, false, ""},
		{"lower_case", "4mib", 0, false, ""},
		{"fraction", "1.5MiB", 0, false, ""},
		{"too_big", "2000GiB", 0, false, ""},
		{"empty", "", 0, false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseByteSize(tc.in)
			if (err == nil) != tc.ok || got != tc.want {
				t.Fatalf("ParseByteSize(%q) = %v, %v", tc.in, got, err)
			}
			if err != nil && !strings.Contains(err.Error(), byteSizeWant) {
				t.Errorf("error %q does not say what is wanted", err)
			}
			if tc.ok && got.String() != tc.str {
				t.Errorf("String() = %q, want %q", got.String(), tc.str)
			}
		})
	}
}
