package sip_test

import (
	"context"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/hashcall/hashcall/sip"
)

// A user agent takes requests from its trunk only: an OPTIONS from anyone
// else gets 403 and is counted.
func ExampleUA_Stats() {
	ua, err := sip.NewUA(context.Background(), sip.Config{
		Listen: "127.0.0.1:0",
		Trunk:  sip.Trunk{Address: "127.0.0.1:5", OptionsInterval: -1},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer ua.Close()

	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	msg := fmt.Sprintf("OPTIONS sip:hashcall@%[1]s SIP/2.0\r\nVia: SIP/2.0/UDP %[2]s;branch=z9hG4bKexample\r\n"+
		"Max-Forwards: 70\r\nFrom: <sip:probe@%[2]s>;tag=1\r\nTo: <sip:hashcall@%[1]s>\r\n"+
		"Call-ID: example\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n", ua.Addr(), c.LocalAddr())
	if _, err := c.WriteToUDP([]byte(msg), ua.Addr().(*net.UDPAddr)); err != nil {
		fmt.Println(err)
		return
	}
	buf := make([]byte, 2048)
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	n, err := c.Read(buf)
	if err != nil {
		fmt.Println(err)
		return
	}
	status, _, _ := strings.Cut(string(buf[:n]), "\r\n")
	fmt.Println(status)
	fmt.Println("untrusted OPTIONS:", ua.Stats().Untrusted["OPTIONS"])
	// Output:
	// SIP/2.0 403 Forbidden
	// untrusted OPTIONS: 1
}
