//go:build linux

package sockopt

import (
	"context"
	"errors"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
)

func TestSizeReadBuffer(t *testing.T) {
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const want = 4 << 20
	got, err := sizeReadBuffer(c, want)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile("/proc/sys/net/core/rmem_max")
	if err != nil {
		t.Skip("no /proc/sys/net/core/rmem_max:", err)
	}
	rmemMax, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	switch {
	case os.Geteuid() == 0:
		// Root has CAP_NET_ADMIN: SO_RCVBUFFORCE passes rmem_max.
		if got < want {
			t.Errorf("as root: got %d bytes, want %d (SO_RCVBUFFORCE)", got, want)
		}
	case want > rmemMax:
		if got > rmemMax {
			t.Errorf("got %d bytes, more than net.core.rmem_max %d", got, rmemMax)
		}
	default:
		if got < want {
			t.Errorf("got %d bytes, want %d (under rmem_max %d)", got, want, rmemMax)
		}
	}
}

// TestReadyConn: Ready is open until the first read and closed by it.
func TestReadyConn(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	rc := NewReadyConn(pc)
	select {
	case <-rc.Ready():
		t.Fatal("ready before any read")
	default:
	}
	got := make(chan string, 1)
	go func() {
		b := make([]byte, 16)
		n, _, err := rc.ReadFrom(b)
		if err != nil {
			got <- err.Error()
			return
		}
		got <- string(b[:n])
	}()
	<-rc.Ready()
	if _, err := pc.WriteTo([]byte("hello"), pc.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	if s := <-got; s != "hello" {
		t.Fatalf("read %q", s)
	}
}

// TestReadyConnWait: Wait reports a server that stopped before reading,
// and the context's end.
func TestReadyConnWait(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	rc := NewReadyConn(pc)
	served := make(chan struct{})
	close(served)
	if err := rc.Wait(t.Context(), served); !errors.Is(err, ErrNotServed) {
		t.Errorf("stopped server: %v", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := rc.Wait(ctx, make(chan struct{})); !errors.Is(err, context.Canceled) {
		t.Errorf("ended context: %v", err)
	}
}
