package testpeers

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// CaptureConfig is what tshark (Debian tshark, 4.0) captures and how it
// writes it.
type CaptureConfig struct {
	// Binary is the program; default "tshark" from PATH (the test skips
	// when it is missing, see Program).
	Binary string
	// Out is the capture file written.
	Out string
	// Iface is the interface: "lo" or "any".
	Iface string
	// Link is tshark's -y link type ("LINUX_SLL", "LINUX_SLL2"); "" is the
	// interface's default.
	Link string
	// PCAP writes pcap (tshark -F pcap) instead of pcapng.
	PCAP bool
	// Filter is the capture filter (tshark -f).
	Filter string
}

// Capture is a running tshark.
type Capture struct {
	cfg     CaptureConfig
	editcap string
	dir     string // the logs
	proc    *proc
	marker  *net.UDPConn // Stop's last packet goes here
	done    bool
}

// StartCapture starts tshark for the test and waits until it captures:
// until it says "Capture started", which tshark 4.0 prints once its
// dumpcap has opened the interface with the filter and the file (its
// "Capturing on" comes before that, too early to rely on). Stop ends it, at the
// latest when the test ends.
func StartCapture(t testing.TB, cfg CaptureConfig) *Capture {
	t.Helper()
	if cfg.Binary == "" {
		cfg.Binary = Program(t, "tshark", "tshark")
	}
	editcap := Program(t, "editcap", "wireshark-common")
	// Stop knows that every packet sent before it is in the file once
	// tshark has decoded a last one of its own, sent from and to a port of
	// this process that the filter lets through as well.
	marker, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	mport := marker.LocalAddr().(*net.UDPAddr).Port
	filter := fmt.Sprintf("(%s) or (udp and host 127.0.0.1 and src port %d and dst port %d)", cfg.Filter, mport, mport)
	args := []string{"-i", cfg.Iface, "-f", filter, "-w", cfg.Out,
		// One line per packet written (-P), flushed (-l): its number and
		// ports, so that Stop sees its marker.
		"-P", "-l", "-T", "fields", "-e", "frame.number", "-e", "udp.srcport", "-e", "udp.dstport"}
	if cfg.Link != "" {
		args = append(args, "-y", cfg.Link)
	}
	if cfg.PCAP {
		args = append(args, "-F", "pcap")
	}
	dir := t.TempDir()
	p, err := startProc("tshark", filepath.Join(dir, "tshark.log"), "", nil, cfg.Binary, args...)
	if err != nil {
		marker.Close()
		t.Fatal(err)
	}
	t.Logf("started tshark (pid %d) writing %s", p.pid(), cfg.Out)
	c := &Capture{cfg: cfg, editcap: editcap, dir: dir, proc: p, marker: marker}
	t.Cleanup(func() {
		if err := c.stop(); err != nil {
			t.Errorf("stopping tshark (pid %d): %v", p.pid(), err)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, _, err := p.waitLine(ctx, 0, "Capture started"); err != nil {
		t.Fatalf("tshark did not start capturing: %v\n%s", err, p.output())
	}
	return c
}

// PID is tshark's process id.
func (c *Capture) PID() int { return c.proc.pid() }

// Stop sends the marker packet, waits until tshark has written it (so
// that every packet sent before it is in the file), ends tshark by its PID
// and takes the marker out of the file again (editcap).
func (c *Capture) Stop(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	mark := c.proc.mark()
	mport := c.marker.LocalAddr().(*net.UDPAddr).Port
	if _, err := c.marker.WriteToUDP([]byte("testpeers capture marker"), c.marker.LocalAddr().(*net.UDPAddr)); err != nil {
		t.Fatalf("sending tshark's marker: %v", err)
	}
	p := fmt.Sprint(mport)
	_, line, err := c.proc.waitLine(ctx, mark, "\t"+p+"\t"+p)
	if err != nil {
		t.Fatalf("tshark did not write its marker: %v", err)
	}
	frame, _, _ := strings.Cut(line, "\t")
	if err := c.stop(); err != nil {
		t.Fatalf("stopping tshark (pid %d): %v", c.PID(), err)
	}
	out := c.proc.output()
	t.Logf("tshark: %s", out[strings.LastIndexByte(out, '\n')+1:])
	if err := c.dropFrame(frame); err != nil {
		t.Fatal(err)
	}
}

func (c *Capture) stop() error {
	if c.done {
		return nil
	}
	c.done = true
	c.marker.Close()
	// tshark ends the capture cleanly on SIGTERM as on SIGINT.
	return c.proc.stop("", 5*time.Second)
}

// dropFrame rewrites the capture without the given frame number.
func (c *Capture) dropFrame(frame string) error {
	format := "pcapng"
	if c.cfg.PCAP {
		format = "pcap"
	}
	tmp := c.cfg.Out + ".editcap"
	p, err := startProc("editcap", filepath.Join(c.dir, "editcap.log"), "", nil, c.editcap, "-F", format, c.cfg.Out, tmp, frame)
	if err != nil {
		return err
	}
	<-p.exited
	if p.waitErr != nil {
		return fmt.Errorf("editcap taking frame %s out of %s: %w\n%s", frame, c.cfg.Out, p.waitErr, p.output())
	}
	if err := os.Rename(tmp, c.cfg.Out); err != nil {
		return err
	}
	return os.Chmod(c.cfg.Out, 0o644)
}
