package radius_test

import (
	"fmt"
	"net/netip"

	"github.com/hashcall/hashcall/internal/directory"
	"github.com/hashcall/hashcall/internal/radius"
	"github.com/hashcall/hashcall/internal/service"
)

// The front in front of an NPS pair, for the VPN concentrators in
// 10.0.0.0/24; svc is the verify service the HTTP hook uses too. A
// deployment listens on its own address (radius.listen "10.0.0.5:1812") and
// names its NPS servers (nps1.corp.example:1812); here both are on loopback
// so that the example runs.
func ExampleListen() {
	var svc *service.Service // from service.New
	users, err := directory.OpenCSV("testdata/users.csv")
	if err != nil {
		fmt.Println(err)
		return
	}
	front, err := radius.Listen(radius.Options{
		Listen:                      "127.0.0.1:0",
		Clients:                     []radius.Client{{Name: "vpn", Prefix: netip.MustParsePrefix("10.0.0.0/24"), Secret: []byte("a-long-random-nas-secret")}},
		Upstreams:                   []radius.Upstream{{Addr: "127.0.0.1:18121", Secret: []byte("a-long-random-nps-secret")}, {Addr: "127.0.0.1:18122", Secret: []byte("a-long-random-nps-secret")}},
		RequireMessageAuthenticator: true,
		Directory:                   directory.Chain{users},
	}, svc)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer front.Close()
	// Without a status interval the upstreams count as up until they fail.
	fmt.Println("ready:", front.Ready())
	// Output: ready: true
}
