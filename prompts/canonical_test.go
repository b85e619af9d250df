package prompts

import "testing"

func TestCanonical(t *testing.T) {
	tests := []struct {
		name, in, want string
		ok             bool
	}{
		{"canonical", "en-GB", "en-GB", true},
		{"lower case", "en-gb", "en-GB", true},
		{"underscore", "en_GB", "en-GB", true},
		{"upper case", "EN-GB", "en-GB", true},
		{"language only", "EN", "en", true},
		{"script and region", "sr_latn_rs", "sr-Latn-RS", true},
		{"numeric region", "es-419", "es-419", true},
		{"private use", "en-GB-X-RP", "en-GB-x-rp", true},
		{"empty", "", "", false},
		{"leading separator", "-en", "", false},
		{"trailing separator", "en-GB-", "", false},
		{"double separator", "en__GB", "", false},
		{"path", "../etc", "", false},
		{"slash", "en/GB", "", false},
		{"space", "en GB", "", false},
		{"non-ASCII", "en-GÖ", "", false},
		{"too long", "en-abcdefgh-abcdefgh-abcdefgh-abcdefgh", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := canonical(tt.in)
			if got != tt.want || ok != tt.ok {
				t.Errorf("canonical(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
			}
		})
	}
}
