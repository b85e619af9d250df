package eam_test

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/hashcall/hashcall/internal/eam"
)

// A signing key as `hashcall keys generate` makes it, and the JWKS entry
// the provider publishes for it.
func ExampleJWKS() {
	pem, err := eam.GenerateKey(nil, "mfa.example.org", time.Now(), 365*24*time.Hour)
	if err != nil {
		panic(err)
	}
	key, err := eam.ParseSigningKey(pem)
	if err != nil {
		panic(err)
	}
	set := eam.JWKS([]*eam.SigningKey{key})
	raw, _ := json.Marshal(set)
	var out struct {
		Keys []struct {
			Kid string   `json:"kid"`
			Kty string   `json:"kty"`
			Use string   `json:"use"`
			Alg string   `json:"alg"`
			X5c []string `json:"x5c"`
		} `json:"keys"`
	}
	_ = json.Unmarshal(raw, &out)
	k := out.Keys[0]
	fmt.Println(k.Kty, k.Use, k.Alg, len(k.X5c), k.Kid == key.KeyID, key.Key.N.BitLen())
	// Output: RSA sig RS256 1 true 3072
}

// The issuer Entra's hints carry for a tenant.
func ExampleEntraIssuer() {
	fmt.Println(eam.EntraIssuer("72f988bf-86f1-41af-91ab-2d7cd011db47"))
	// Output: https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0
}
