package radius_test

import (
	"log"
	"net/netip"

	"github.com/hashcall/hashcall/internal/directory"
	"github.com/hashcall/hashcall/internal/radius"
	"github.com/hashcall/hashcall/internal/service"
)

// The front in front of an NPS pair, for the VPN concentrators in
// 10.0.0.0/24; svc is the verify service the HTTP hook uses too.
func ExampleListen() {
	var svc *service.Service // from service.New
	users, err := directory.OpenCSV("/etc/hashcall/users.csv")
	if err != nil {
		log.Fatal(err)
	}
	front, err := radius.Listen(radius.Options{
		Listen:                      "10.0.0.5:1812",
		Clients:                     []radius.Client{{Name: "vpn", Prefix: netip.MustParsePrefix("10.0.0.0/24"), Secret: []byte("a-long-random-nas-secret")}},
		Upstreams:                   []radius.Upstream{{Addr: "nps1.corp.example:1812", Secret: []byte("a-long-random-nps-secret")}, {Addr: "nps2.corp.example:1812", Secret: []byte("a-long-random-nps-secret")}},
		RequireMessageAuthenticator: true,
		Directory:                   directory.Chain{users},
	}, svc)
	if err != nil {
		log.Fatal(err)
	}
	defer front.Close()
}
