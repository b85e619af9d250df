package testpeers

import (
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
)

// Default port bases, on 127.0.0.1, away from the common SIP and RTP
// ports other programs on a shared machine use. A port of 0 in a config
// picks the first free one from these up.
const (
	BaresipSIPBase  = 27060 // and up; baresip needs UDP+TCP on it and TCP on it+1 (TLS)
	BaresipCtrlBase = 27065 // ctrl_tcp, TCP
	LinphoneSIPBase = 27160 // UDP
	portSpan        = 200   // how far above a base to look
)

var (
	portsMu sync.Mutex
	taken   = map[int]bool{} // handed out by this process
)

// pickPort returns the first port p from base up where p to p+n-1 are not
// handed out by this process already and every check passes, and hands
// them out.
func pickPort(base, n int, checks ...func(int) bool) (int, error) {
	portsMu.Lock()
	defer portsMu.Unlock()
next:
	for p := base; p < base+portSpan; p++ {
		for i := range n {
			if taken[p+i] {
				continue next
			}
		}
		for _, ok := range checks {
			if !ok(p) {
				continue next
			}
		}
		for i := range n {
			taken[p+i] = true
		}
		return p, nil
	}
	return 0, fmt.Errorf("testpeers: no free port in %d-%d", base, base+portSpan-1)
}

// pickInto picks n ports from base up into *port when it is 0, adding
// them to *picked; a port already set is kept.
func pickInto(port *int, picked *[]int, base, n int, checks ...func(int) bool) error {
	if *port != 0 {
		return nil
	}
	p, err := pickPort(base, n, checks...)
	if err != nil {
		return err
	}
	*port = p
	for i := range n {
		*picked = append(*picked, p+i)
	}
	return nil
}

// release lets a picked port be picked again.
func release(ports ...int) {
	portsMu.Lock()
	defer portsMu.Unlock()
	for _, p := range ports {
		delete(taken, p)
	}
}

// releasePicked releases the ports *picked and forgets them, so that a
// second Stop releases nothing.
func releasePicked(picked *[]int) {
	release(*picked...)
	*picked = nil
}

func hostPort(p int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(p)) }

// udpFree and tcpFree report whether 127.0.0.1:p can be bound now.
func udpFree(p int) bool { return closed(net.ListenPacket("udp", hostPort(p))) }

func tcpFree(p int) bool { return closed(net.Listen("tcp", hostPort(p))) }

// closed closes what was just opened and reports whether it was.
func closed(c io.Closer, err error) bool {
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// tcpFreeNext: port p+1 is free for TCP (baresip's SIP over TLS).
func tcpFreeNext(p int) bool { return tcpFree(p + 1) }
