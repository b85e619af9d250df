package service_test

import (
	"fmt"

	"github.com/hashcall/hashcall/internal/service"
)

// A wildcard in http.callback_hosts matches subdomains on a dot boundary.
func ExampleMatchCallbackHost() {
	hosts := []string{"*.example.org", "auth.example.net:8443"}
	for _, h := range []string{"a.example.org", "example.org", "evilexample.org", "auth.example.net:8443", "auth.example.net"} {
		fmt.Println(h, service.MatchCallbackHost(hosts, h, "443"))
	}
	// Output:
	// a.example.org true
	// example.org false
	// evilexample.org false
	// auth.example.net:8443 true
	// auth.example.net false
}

// An Idempotency-Key is bound to the digest of the request it was first
// used with.
func ExampleRequestDigest() {
	a := service.RequestDigest("POST", "+447700900123", "en-GB", "vpn-login", "", "")
	b := service.RequestDigest("POST", "+447700900124", "en-GB", "vpn-login", "", "")
	fmt.Println(a == service.RequestDigest("POST", "+447700900123", "en-gb", "vpn-login", "", ""), a == b)
	// Output: true false
}
