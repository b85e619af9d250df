package replay_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashcall/hashcall/dtmf"
	"github.com/hashcall/hashcall/internal/phone"
	"github.com/hashcall/hashcall/internal/testpeers"
	"github.com/hashcall/hashcall/media"
	"github.com/hashcall/hashcall/prompts"
	"github.com/hashcall/hashcall/replay"
	"github.com/hashcall/hashcall/sip"
	"github.com/hashcall/hashcall/verify"
)

// Ports of the recorded calls, named in the capture filter so that other
// traffic on a shared machine stays out of the goldens.
const (
	recPhoneSIP = 45060
	recUASIP    = 45070
	recPhoneRTP = 41000 // –41099
	recUARTP    = 42000 // –42099
	recFilter   = "udp and (port 45060 or port 45070 or portrange 41000-41099 or portrange 42000-42099)"
)

// golden describes one recorded capture.
type golden struct {
	file   string // under testdata/
	iface  string // lo or any
	link   string // tshark -y, "" for the default
	pcap   bool   // tshark -F pcap (default pcapng)
	method string
	key    dtmf.Key
	codecs []media.Codec
}

var goldens = []golden{
	{"rfc4733-pcmu-lo.pcap", "lo", "", true, phone.MethodRFC4733, '#', []media.Codec{media.PCMU}},
	{"rfc4733-pcma-any-sll2.pcapng", "any", "LINUX_SLL2", false, phone.MethodRFC4733, '#', []media.Codec{media.PCMA}},
	{"inband-pcma-lo.pcapng", "lo", "", false, phone.MethodInband, '#', []media.Codec{media.PCMA}},
	{"inband-pcmu-any-sll.pcap", "any", "LINUX_SLL", true, phone.MethodInband, '#', []media.Codec{media.PCMU}},
	{"sipinfo-pcmu-any-sll.pcapng", "any", "LINUX_SLL", false, phone.MethodInfo, '#', []media.Codec{media.PCMU}},
	{"rfc4733-wrongkey-lo.pcapng", "lo", "", false, phone.MethodRFC4733, '5', []media.Codec{media.PCMU}},
	{"nokey-pcma-any-sll2.pcap", "any", "LINUX_SLL2", true, phone.MethodNone, '#', []media.Codec{media.PCMA}},
}

// TestRecordGoldens records the golden captures in testdata/ from calls of
// hashcall's own stack (verify.Verifier and sip.UA against the simulated
// phone over 127.0.0.1), captured by tshark, and writes each one's expected
// result beside it. It runs only with HASHCALL_RECORD_GOLDEN=1, as root:
//
//	HASHCALL_RECORD_GOLDEN=1 go test ./replay/ -run TestRecordGoldens -v
func TestRecordGoldens(t *testing.T) {
	if os.Getenv("HASHCALL_RECORD_GOLDEN") != "1" {
		t.Skip("set HASHCALL_RECORD_GOLDEN=1 to record the golden captures (root, tshark)")
	}
	tshark := testpeers.Program(t, "tshark", "tshark")
	set, err := prompts.Load("", "en-GB")
	if err != nil {
		t.Fatal(err)
	}
	short := *set
	short.Ask = short.Ask[:4000] // half a second
	short.AskPressAt = 500 * time.Millisecond
	short.Success, short.Goodbye, short.WrongKey = short.Success[:800], short.Goodbye[:800], short.WrongKey[:800]
	for _, g := range goldens {
		t.Run(g.file, func(t *testing.T) {
			out := filepath.Join("testdata", g.file)
			stop := startTshark(t, tshark, out, g.iface, g.link, g.pcap)
			res := recordCall(t, g, &short)
			time.Sleep(300 * time.Millisecond)
			stop()
			t.Logf("call: %+v", res)

			rep, err := replay.File(out, replay.Options{})
			if err != nil {
				t.Fatal(err)
			}
			exp := expectedOf(rep)
			exp.Call = string(res.Outcome)
			exp.Method = g.method
			b, _ := json.MarshalIndent(exp, "", "  ")
			if err := os.WriteFile(strings.TrimSuffix(out, filepath.Ext(out))+".expected.json", append(b, '\n'), 0o644); err != nil {
				t.Fatal(err)
			}
			// The live call and the replay must agree.
			if wantKeys := res.Keys; wantKeys != rep.Keys() {
				t.Errorf("live call heard %q, replay %q", wantKeys, rep.Keys())
			}
		})
	}
}

func recordCall(t *testing.T, g golden, p *prompts.Set) verify.Result {
	ctx := context.Background()
	ph, err := phone.Start(ctx, phone.Config{
		Listen: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), recPhoneSIP).String(),
		// As a callee presses: after verify's early-key guard.
		Method: g.method, Key: g.key, After: max(verify.DefaultMinKeyDelay, p.AskPressAt) + 300*time.Millisecond, Codecs: g.codecs,
		Ports: media.PortRange{Low: recPhoneRTP, High: recPhoneRTP + 99},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer ph.Close()
	ua, err := sip.NewUA(ctx, sip.Config{
		Listen: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), recUASIP).String(),
		Trunk:  sip.Trunk{Address: ph.Addr(), OptionsInterval: -1}, From: "hashcall",
	})
	if err != nil {
		t.Fatal(err)
	}
	defer ua.Close()
	v := &verify.Verifier{UA: ua, Config: verify.Config{
		AnswerTimeout: 2 * time.Second, Attempts: 1,
		Media: media.SessionConfig{IP: netip.MustParseAddr("127.0.0.1"), Ports: media.PortRange{Low: recUARTP, High: recUARTP + 99}},
	}}
	return v.Run(ctx, verify.Request{To: "100", Prompts: p})
}

// interop is a golden recorded against a real softphone.
type interop struct {
	file   string
	iface  string
	link   string
	pcap   bool
	peer   string // baresip or linphonec
	method string // rfc4733, info, inband (linphonec)
	codecs []media.Codec
}

var interops = []interop{
	{"baresip-rfc4733-pcmu-lo.pcapng", "lo", "", false, "baresip", "rfc4733", []media.Codec{media.PCMU}},
	{"baresip-rfc4733-pcma-any-sll2.pcap", "any", "LINUX_SLL2", true, "baresip", "rfc4733", []media.Codec{media.PCMA}},
	{"linphone-sipinfo-pcmu-lo.pcap", "lo", "", true, "linphonec", "info", []media.Codec{media.PCMU}},
	{"linphone-inband-pcmu-any-sll.pcapng", "any", "LINUX_SLL", false, "linphonec", "inband", []media.Codec{media.PCMU}},
	{"linphone-rfc4733-pcma-lo.pcapng", "lo", "", false, "linphonec", "rfc4733", []media.Codec{media.PCMA}},
}

// TestRecordInterop records golden captures of hashcall calling real
// softphones (baresip 1.0, linphonec 5.1) that press # a moment after
// answering. Like TestRecordGoldens it runs only with
// HASHCALL_RECORD_GOLDEN=1, as root.
func TestRecordInterop(t *testing.T) {
	if os.Getenv("HASHCALL_RECORD_GOLDEN") != "1" {
		t.Skip("set HASHCALL_RECORD_GOLDEN=1 to record the golden captures (root, tshark, baresip, linphonec)")
	}
	tshark := testpeers.Program(t, "tshark", "tshark")
	set, err := prompts.Load("", "en-GB")
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range interops {
		t.Run(g.file, func(t *testing.T) {
			var press func(t *testing.T) func()
			switch g.peer {
			case "baresip":
				press = startBaresip(t, testpeers.Program(t, "baresip", "baresip-core"), g)
			default:
				press = startLinphone(t, testpeers.Program(t, "linphonec", "linphone-cli"), g)
			}
			out := filepath.Join("testdata", g.file)
			stop := startTshark(t, tshark, out, g.iface, g.link, g.pcap)
			done := press(t)
			res := dialPeer(t, set, g.codecs)
			done()
			time.Sleep(300 * time.Millisecond)
			stop()
			t.Logf("call: %+v", res)
			if res.Outcome != verify.Verified {
				t.Fatalf("the call was not verified: %s %s", res.Outcome, res.Error)
			}
			rep, err := replay.File(out, replay.Options{})
			if err != nil {
				t.Fatal(err)
			}
			t.Log(rep.Summary())
			exp := expectedOf(rep)
			exp.Call, exp.Method = string(res.Outcome), g.peer+" "+g.method
			b, _ := json.MarshalIndent(exp, "", "  ")
			if err := os.WriteFile(strings.TrimSuffix(out, filepath.Ext(out))+".expected.json", append(b, '\n'), 0o644); err != nil {
				t.Fatal(err)
			}
			if res.Keys != rep.Keys() {
				t.Errorf("live call heard %q, replay %q", res.Keys, rep.Keys())
			}
		})
	}
}

func startTshark(t *testing.T, tshark, out, iface, link string, pcap bool) (stop func()) {
	args := []string{"-i", iface, "-f", recFilter, "-w", out}
	if link != "" {
		args = append(args, "-y", link)
	}
	if pcap {
		args = append(args, "-F", "pcap")
	}
	cmd := exec.Command(tshark, args...)
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		once := false
		for sc.Scan() {
			if !once && strings.Contains(sc.Text(), "Capturing on") {
				once = true
				close(ready)
			}
		}
	}()
	select {
	case <-ready:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatal("tshark did not start")
	}
	time.Sleep(300 * time.Millisecond)
	return func() {
		_ = cmd.Process.Signal(syscall.SIGINT)
		_ = cmd.Wait()
		_ = os.Chmod(out, 0o644)
	}
}

// dialPeer places a verification call to the softphone on recPhoneSIP.
func dialPeer(t *testing.T, set *prompts.Set, codecs []media.Codec) verify.Result {
	ctx := context.Background()
	ua, err := sip.NewUA(ctx, sip.Config{
		Listen: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), recUASIP).String(),
		Trunk:  sip.Trunk{Address: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), recPhoneSIP).String(), OptionsInterval: -1}, From: "hashcall",
	})
	if err != nil {
		t.Fatal(err)
	}
	defer ua.Close()
	short := *set
	short.Ask = short.Ask[:8000]
	short.AskPressAt = 500 * time.Millisecond
	short.Success, short.Goodbye, short.WrongKey = short.Success[:800], short.Goodbye[:800], short.WrongKey[:800]
	v := &verify.Verifier{UA: ua, Config: verify.Config{
		AnswerTimeout: 2 * time.Second, Attempts: 1,
		Media: media.SessionConfig{IP: netip.MustParseAddr("127.0.0.1"), Ports: media.PortRange{Low: recUARTP, High: recUARTP + 99}, Codecs: codecs},
	}}
	return v.Run(ctx, verify.Request{To: "100", Prompts: &short})
}

// startBaresip runs baresip auto-answering on recPhoneSIP; the function
// returned connects to its ctrl_tcp and, once the call is established,
// sends # (baresip sends RFC 4733 only).
func startBaresip(t *testing.T, bin string, g interop) func(t *testing.T) func() {
	dir := t.TempDir()
	codecs := []string{}
	for _, c := range g.codecs {
		codecs = append(codecs, c.Name+"/8000/1")
	}
	cfg := fmt.Sprintf(`poll_method epoll
sip_listen 127.0.0.1:%d
audio_player nosuchplayer,nodev
audio_source ausine,440
audio_alert nosuchplayer,nodev
ausrc_srate 48000
ausrc_channels 2
auplay_srate 48000
rtp_ports %d-%d
net_interface 127.0.0.1
module_path /usr/lib/baresip/modules
module g711.so
module ausine.so
module_app account.so
module_app menu.so
module_app ctrl_tcp.so
ctrl_tcp_listen 127.0.0.1:45555
`, recPhoneSIP, recPhoneRTP, recPhoneRTP+99)
	acc := fmt.Sprintf("<sip:100@127.0.0.1:%d>;answermode=auto;regint=0;audio_codecs=%s\n", recPhoneSIP, strings.Join(codecs, ","))
	if err := os.WriteFile(filepath.Join(dir, "config"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "accounts"), []byte(acc), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-f", dir)
	logf, _ := os.Create(filepath.Join(dir, "log"))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "log"))
			t.Logf("baresip log:\n%s", b)
		}
	})
	var conn net.Conn
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		c, err := net.Dial("tcp", "127.0.0.1:45555")
		if err == nil {
			conn = c
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("baresip ctrl_tcp: %v", err)
		}
	}
	return func(t *testing.T) func() {
		done := make(chan struct{})
		go func() {
			defer close(done)
			r := bufio.NewReader(conn)
			for {
				msg, err := readNetstring(r)
				if err != nil {
					return
				}
				if strings.Contains(msg, `"CALL_ESTABLISHED"`) {
					time.Sleep(2 * time.Second) // after verify's early-key guard
					cmd := `{"command":"sndcode","params":"#","token":"1"}`
					fmt.Fprintf(conn, "%d:%s,", len(cmd), cmd)
				}
			}
		}()
		return func() {
			conn.Close()
			<-done
		}
	}
}

func readNetstring(r *bufio.Reader) (string, error) {
	n, err := r.ReadString(':')
	if err != nil {
		return "", err
	}
	size, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(n, ":")))
	if err != nil || size < 0 || size > 1<<20 {
		return "", fmt.Errorf("bad netstring length %q", n)
	}
	b := make([]byte, size+1)
	if _, err := io.ReadFull(r, b); err != nil {
		return "", err
	}
	return string(b[:size]), nil
}

// startLinphone runs linphonec auto-answering on recPhoneSIP with the DTMF
// method of g; the function returned presses # on its stdin once the call
// is answered.
func startLinphone(t *testing.T, bin string, g interop) func(t *testing.T) func() {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, ".local", "share", "linphone"), 0o755); err != nil {
		t.Fatal(err)
	}
	info, rfc := 0, 0
	switch g.method {
	case "info":
		info = 1
	case "rfc4733":
		rfc = 1
	}
	rc := fmt.Sprintf(`[sip]
sip_port=%d
sip_tcp_port=-1
sip_tls_port=-1
use_info=%d
use_rfc2833=%d
use_ipv6=0
bind_address=127.0.0.1

[rtp]
audio_rtp_port=%d-%d

[sound]
echocancellation=0
`, recPhoneSIP, info, rfc, recPhoneRTP, recPhoneRTP+99)
	if err := os.WriteFile(filepath.Join(dir, "linphonerc"), []byte(rc), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-a", "-c", filepath.Join(dir, "linphonerc"))
	cmd.Env = append(os.Environ(), "HOME="+dir)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 256)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	var log []string
	t.Cleanup(func() {
		fmt.Fprintln(stdin, "quit")
		stdin.Close()
		time.AfterFunc(3*time.Second, func() { _ = cmd.Process.Kill() })
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("linphonec output:\n%s", strings.Join(log, "\n"))
		}
	})
	fmt.Fprintln(stdin, "soundcard use files")
	for deadline := time.After(10 * time.Second); ; {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("linphonec exited")
			}
			log = append(log, l)
			if strings.Contains(l, "Using wav files") {
				goto ready
			}
		case <-deadline:
			t.Fatalf("linphonec did not start:\n%s", strings.Join(log, "\n"))
		}
	}
ready:
	return func(t *testing.T) func() {
		done := make(chan struct{})
		go func() {
			defer close(done)
			for l := range lines {
				log = append(log, l)
				if strings.Contains(l, "connected") || strings.Contains(l, "Media streams established") {
					time.Sleep(2 * time.Second) // after verify's early-key guard
					fmt.Fprintln(stdin, "#")
					for l := range lines {
						log = append(log, l)
						if strings.Contains(l, "ended") || strings.Contains(l, "terminated") {
							return
						}
					}
					return
				}
			}
		}()
		return func() {
			select {
			case <-done:
			case <-time.After(3 * time.Second):
			}
		}
	}
}
