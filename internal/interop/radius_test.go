package interop

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"layeh.com/radius/rfc2759"
	"layeh.com/radius/rfc3079"

	"github.com/hashcall/hashcall/internal/testpeers"
	"github.com/hashcall/hashcall/internal/testwait"
)

// End-to-end tests of the RADIUS front in the built `hashcall serve`: the
// NAS is FreeRADIUS's radclient (PAP, MS-CHAPv2) or wpa_supplicant's
// eapol_test (PEAP/EAP-MSCHAPv2), the upstream is a real FreeRADIUS 3.2
// with its own configuration written here, and the phone is a SIPp UAS
// behind the lab's Kamailio.
//
// Ports (UDP, first free from): FreeRADIUS auth 25900, its inner-tunnel
// 25920, hashcall's RADIUS listener 25940.
const (
	freeradiusBase  = 25900
	innerTunnelBase = 25920
	radiusFrontBase = 25940
	// The NAS's secret with hashcall, and hashcall's with FreeRADIUS.
	nasRadiusSecret      = "interop-nas-secret-0123456789"
	upstreamRadiusSecret = "interop-upstream-secret-0123456789"
)

// Users of the FreeRADIUS upstream and their phones (test numbers).
var radiusUsers = []struct{ user, pass, number string }{
	{"pap-user", "pap-pass", mobileNumber("9001")},                // rfc4733_pound
	{"pap-five", "five-pass", mobileNumber("9002")},               // rfc4733_five
	{"mschap-user", "mschap-pass", mobileNumber("9003")},          // inband_pound_pcmu
	{"peap-user", "peap-pass", mobileNumber("9004")},              // inband_pound_pcma
	{"retx-user@corp.example", "retx-pass", mobileNumber("9012")}, // sip_info_pound
	{"burst-user", "burst-pass", mobileNumber("9014")},            // reinvite_pound
}

// freeradiusOptions change the upstream for the rlm_rest example.
type freeradiusOptions struct {
	postAuth   string            // the site's post-auth section; "" is the usual
	mods       map[string]string // more files in mods-enabled
	users      string            // more entries in the users file
	clientPass string            // its secret; "" is upstreamRadiusSecret
	env        []string
}

// startFreeRADIUS copies /etc/freeradius/3.0, writes a site on its own
// ports, the users above and a client entry for hashcall, and runs
// `freeradius -X` in the foreground. It returns the auth address.
func startFreeRADIUS(t *testing.T, fo freeradiusOptions) string {
	t.Helper()
	if fo.postAuth == "" {
		fo.postAuth = "post-auth {\n\tPost-Auth-Type REJECT {\n\t\tattr_filter.access_reject\n\t}\n}\n"
	}
	if fo.clientPass == "" {
		fo.clientPass = upstreamRadiusSecret
	}
	bin := testpeers.File(t, "/usr/sbin/freeradius", "freeradius")
	testpeers.File(t, "/etc/freeradius/3.0/radiusd.conf", "freeradius")
	dir := t.TempDir()
	raddb := filepath.Join(dir, "raddb")
	if out, err := exec.Command("cp", "-r", "/etc/freeradius/3.0", raddb).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v\n%s", err, out)
	}
	pp := newPortPicker()
	port := pp.udp(t, freeradiusBase, 1)
	inner := pp.udp(t, innerTunnelBase, 1)
	edit := func(name string, f func(string) string) {
		p := filepath.Join(raddb, name)
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(f(string(b))), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	write := func(name, body string) {
		if err := os.WriteFile(filepath.Join(raddb, name), []byte(body), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	// As root, in our own folders, with no proxy socket and no reject delay.
	edit("radiusd.conf", func(s string) string {
		for _, r := range []struct{ re, to string }{
			{`(?m)^(\s*)(user|group) = freerad`, "${1}#${2} = freerad"},
			{`(?m)^logdir = .*$`, "logdir = " + dir},
			{`(?m)^run_dir = .*$`, "run_dir = " + dir},
			{`(?m)^(\s*)reject_delay = 1`, "${1}reject_delay = 0"},
			{`(?m)^(\s*)proxy_requests\s*= yes`, "${1}proxy_requests = no"},
		} {
			s = regexp.MustCompile(r.re).ReplaceAllString(s, r.to)
		}
		return s
	})
	edit("sites-enabled/inner-tunnel", func(s string) string {
		return strings.Replace(s, "port = 18120", "port = "+strconv.Itoa(inner), 1)
	})
	write("sites-enabled/default", fmt.Sprintf(`server default {
listen {
	type = auth
	ipaddr = 127.0.0.1
	port = %d
}
authorize {
	preprocess
	mschap
	eap {
		ok = return
	}
	files
	pap
}
authenticate {
	Auth-Type PAP {
		pap
	}
	Auth-Type MS-CHAP {
		mschap
	}
	mschap
	eap
}
%s
}
`, port, fo.postAuth))
	write("clients.conf", fmt.Sprintf("client hashcall {\n\tipaddr = 127.0.0.1\n\tsecret = %s\n}\n", fo.clientPass))
	for name, body := range fo.mods {
		write(filepath.Join("mods-enabled", name), body)
	}
	var users strings.Builder
	for _, u := range radiusUsers {
		fmt.Fprintf(&users, "%q Cleartext-Password := %q\n\tClass := \"hashcall-interop\", Session-Timeout := 3600\n", u.user, u.pass)
	}
	users.WriteString(fo.users)
	write("mods-config/files/authorize", users.String())
	p := startProcEnv(t, "freeradius", dir, filepath.Join(dir, "freeradius.log"), append(os.Environ(), fo.env...), bin, "-X", "-d", raddb, "-l", "stdout")
	p.waitLog(t, 20*time.Second, "Ready to process requests", func(log string) bool {
		return strings.Contains(log, "Ready to process requests")
	})
	return "127.0.0.1:" + strconv.Itoa(port)
}

// radiusServe starts `hashcall serve` with the RADIUS front on, its clients
// the loopback NAS, its upstream upstream, and the users' numbers in a CSV
// directory.
func (l *lab) radiusServe(t *testing.T, bin, promptsDir, upstream string, o serveOptions) (*server, string) {
	t.Helper()
	dir := t.TempDir()
	var csv strings.Builder
	csv.WriteString("user,mobile\n")
	for _, u := range radiusUsers {
		fmt.Fprintf(&csv, "%s,%s\n", u.user, u.number)
	}
	csvPath := filepath.Join(dir, "users.csv")
	if err := os.WriteFile(csvPath, []byte(csv.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	secretFile := filepath.Join(dir, "nas.secret")
	if err := os.WriteFile(secretFile, []byte(nasRadiusSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	port := newPortPicker().udp(t, radiusFrontBase, 1)
	addr := "127.0.0.1:" + strconv.Itoa(port)
	o.extraYAML = fmt.Sprintf(`directory:
  csv: %s
radius:
  enabled: true
  listen: %s
  clients: ["127.0.0.1/32 file:%s"]
  call_timeout: 40s
  upstream:
    servers: [%q]
    timeout: 1s
    retries: 1
    status_interval: 200ms
`, csvPath, addr, secretFile, upstream)
	o.env = append(o.env, "HASHCALL_RADIUS_UPSTREAM_SECRET="+upstreamRadiusSecret)
	return l.startServe(t, bin, promptsDir, o), addr
}

// radclient runs radclient against addr with the attributes in, and returns
// its exit status and output.
func radclient(t *testing.T, addr, in string, args ...string) (int, string) {
	t.Helper()
	bin := testpeers.Program(t, "radclient", "freeradius-utils")
	argv := append([]string{"-x", "-t", "30", "-r", "1"}, args...)
	argv = append(argv, addr, "auth", nasRadiusSecret)
	cmd := exec.Command(bin, argv...)
	cmd.Stdin = strings.NewReader(in)
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("radclient: %v", err)
	}
	return code, string(out)
}

func papRequest(user, pass string, withMA bool) string {
	s := fmt.Sprintf("User-Name = %q\nUser-Password = %q\nNAS-Identifier = \"interop-vpn\"\n", user, pass)
	if withMA {
		s += "Message-Authenticator = 0x00\n"
	}
	return s
}

// received returns radclient's code line ("Access-Accept") and attributes.
func received(out string) (code string, attrs map[string]string) {
	attrs = map[string]string{}
	m := regexp.MustCompile(`Received (Access-\w+) Id`).FindStringSubmatch(out)
	if m == nil {
		return "", attrs
	}
	rest := out[strings.Index(out, m[0]):]
	for _, line := range strings.Split(rest, "\n")[1:] {
		k, v, ok := strings.Cut(strings.TrimSpace(line), " = ")
		if !ok {
			break
		}
		attrs[k] = strings.Trim(v, `"`)
	}
	return m[1], attrs
}

// invites counts the INVITEs Kamailio authenticated so far.
func (l *lab) invites() int { return len(l.kamLines("authenticated INVITE")) }

func TestRadiusFront(t *testing.T) {
	l := startLab(t)
	bin := buildCLI(t, l.dir)
	prompts := writeShortPrompts(t)
	upstream := startFreeRADIUS(t, freeradiusOptions{})
	srv, front := l.radiusServe(t, bin, prompts, upstream, serveOptions{perNumber: "1/15m"})

	t.Run("pap_pound_accept", func(t *testing.T) {
		u := l.startUAS(t, "rfc4733_pound")
		before := l.invites()
		code, out := radclient(t, front, papRequest("pap-user", "pap-pass", true))
		got, attrs := received(out)
		if code != 0 || got != "Access-Accept" {
			t.Fatalf("radclient exit %d, %q:\n%s", code, got, out)
		}
		if attrs["Class"] != "0x"+hex.EncodeToString([]byte("hashcall-interop")) || attrs["Session-Timeout"] != "3600" {
			t.Errorf("upstream attributes not passed through: %v", attrs)
		}
		if n := l.invites() - before; n != 1 {
			t.Errorf("%d INVITEs, want 1", n)
		}
		if c := u.finish(t, 20*time.Second); c != 0 {
			t.Errorf("SIPp exit %d", c)
		}
		log := srv.log()
		if !strings.Contains(log, `"msg":"audit: radius decision","component":"radius","nas":"interop-vpn","client":"127.0.0.1/32","user":"p****","outcome":"accept"`) {
			t.Errorf("no audit record of the accept:\n%s", tailOf(log, 20))
		}
		for _, secret := range []string{nasRadiusSecret, upstreamRadiusSecret, "pap-pass", "pap-user"} {
			if strings.Contains(log, secret) {
				t.Errorf("the log holds %q", secret)
			}
		}
	})

	t.Run("pap_five_reject", func(t *testing.T) {
		u := l.startUAS(t, "rfc4733_five")
		code, out := radclient(t, front, papRequest("pap-five", "five-pass", true))
		got, attrs := received(out)
		if got != "Access-Reject" || attrs["Reply-Message"] != "hashcall: wrong_key" {
			t.Fatalf("radclient exit %d, %q %v:\n%s", code, got, attrs, out)
		}
		u.finish(t, 20*time.Second)
	})

	t.Run("pap_wrong_password_no_call", func(t *testing.T) {
		before := len(l.kamLines("request INVITE"))
		code, out := radclient(t, front, papRequest("pap-user", "wrong", true))
		if got, _ := received(out); got != "Access-Reject" {
			t.Fatalf("radclient exit %d, %q:\n%s", code, got, out)
		}
		if n := len(l.kamLines("request INVITE")) - before; n != 0 {
			t.Errorf("%d INVITEs for a wrong password", n)
		}
	})

	t.Run("mschapv2_pound_accept", func(t *testing.T) {
		u := l.startUAS(t, "inband_pound_pcmu")
		user, pass := []byte("mschap-user"), []byte("mschap-pass")
		authChal, peerChal := make([]byte, 16), make([]byte, 16)
		_, _ = rand.Read(authChal)
		_, _ = rand.Read(peerChal)
		nt, err := rfc2759.GenerateNTResponse(authChal, peerChal, user, pass)
		if err != nil {
			t.Fatal(err)
		}
		resp := append(append(append([]byte{1, 0}, peerChal...), make([]byte, 8)...), nt...)
		in := fmt.Sprintf("User-Name = %q\nMS-CHAP-Challenge = 0x%x\nMS-CHAP2-Response = 0x%x\nMessage-Authenticator = 0x00\n", user, authChal, resp)
		code, out := radclient(t, front, in)
		got, attrs := received(out)
		if code != 0 || got != "Access-Accept" {
			t.Fatalf("radclient exit %d, %q:\n%s", code, got, out)
		}
		// MS-CHAP2-Success (RFC 2548 §2.3.3): the ident, then the
		// authenticator response the peer checks (RFC 2759 §8.7).
		want, err := rfc2759.GenerateAuthenticatorResponse(authChal, peerChal, nt, user, pass)
		if err != nil {
			t.Fatal(err)
		}
		if attrs["MS-CHAP2-Success"] != "0x01"+hex.EncodeToString([]byte(want)) {
			t.Errorf("MS-CHAP2-Success %q, want ident 1 and %s", attrs["MS-CHAP2-Success"], want)
		}
		// The MPPE keys, as radclient decrypts them with its own secret,
		// are the ones MS-CHAPv2 derives (RFC 3079 §3.4).
		send, _ := rfc3079.MakeKey(nt, pass, true)
		recv, _ := rfc3079.MakeKey(nt, pass, false)
		gotKeys := attrs["MS-MPPE-Send-Key"] + " " + attrs["MS-MPPE-Recv-Key"]
		if wantKeys := fmt.Sprintf("0x%x 0x%x", send, recv); gotKeys != wantKeys {
			t.Errorf("MPPE keys for the NAS (send, recv) %s, want %s", gotKeys, wantKeys)
		}
		u.finish(t, 20*time.Second)
	})

	t.Run("peap_pound_accept", func(t *testing.T) {
		eapol := testpeers.Program(t, "eapol_test", "eapoltest")
		u := l.startUAS(t, "inband_pound_pcma")
		conf := filepath.Join(t.TempDir(), "peap.conf")
		if err := os.WriteFile(conf, []byte(`network={
	ssid="hashcall"
	key_mgmt=WPA-EAP
	eap=PEAP
	identity="peap-user"
	password="peap-pass"
	phase2="auth=MSCHAPV2"
}
`), 0o600); err != nil {
			t.Fatal(err)
		}
		host, port, _ := net.SplitHostPort(front)
		out, err := exec.Command(eapol, "-a", host, "-p", port, "-s", nasRadiusSecret, "-c", conf, "-t", "60", "-M", "02:00:00:00:00:01").CombinedOutput()
		if err != nil || !bytes.Contains(out, []byte("\nSUCCESS")) {
			t.Fatalf("eapol_test: %v\n%s", err, tailOf(string(out), 60))
		}
		// eapol_test derives the MSK itself and compares it with the
		// MS-MPPE keys of the Accept, decrypted with its secret.
		if !bytes.Contains(out, []byte("MPPE keys OK: 1  mismatch: 0")) {
			t.Errorf("eapol_test's MPPE key check:\n%s", tailOf(string(out), 30))
		}
		u.finish(t, 20*time.Second)
	})

	t.Run("retransmission_one_invite", func(t *testing.T) {
		u := l.startUAS(t, "sip_info_pound")
		before := l.invites()
		// radclient resends the same packet every 500 ms while the call runs.
		code, out := radclient(t, front, papRequest("retx-user@corp.example", "retx-pass", true), "-t", "0.5", "-r", "20")
		if got, _ := received(out); code != 0 || got != "Access-Accept" {
			t.Fatalf("radclient exit %d, %q:\n%s", code, got, out)
		}
		if n := l.invites() - before; n != 1 {
			t.Errorf("%d INVITEs for one retransmitted request, want 1", n)
		}
		if srv.metric(t, `hashcall_radius_dropped_total{reason="retransmission_in_progress"}`) == 0 {
			t.Error("no retransmission arrived while the call ran (the test proves nothing)")
		}
		u.finish(t, 20*time.Second)
	})

	t.Run("burst_one_user_one_call", func(t *testing.T) {
		u := l.startUAS(t, "reinvite_pound")
		before := l.invites()
		const n = 5
		var wg sync.WaitGroup
		results := make([]string, n)
		for i := range n {
			wg.Go(func() {
				_, out := radclient(t, front, papRequest("burst-user", "burst-pass", true))
				results[i], _ = received(out)
			})
		}
		wg.Wait()
		if got := l.invites() - before; got != 1 {
			t.Errorf("%d INVITEs for a burst of %d, want 1", got, n)
		}
		for i, r := range results {
			if r != "Access-Accept" {
				t.Errorf("request %d: %q", i, r)
			}
		}
		if c := u.finish(t, 20*time.Second); c != 0 {
			t.Errorf("SIPp exit %d", c)
		}
		// The user's number has had its call for 15 minutes
		// (policy.per_number_limit 1/15m here): the next is refused, not
		// dialled.
		before = len(l.kamLines("request INVITE"))
		_, out := radclient(t, front, papRequest("burst-user", "burst-pass", true))
		got, attrs := received(out)
		if got != "Access-Reject" || attrs["Reply-Message"] != "hashcall: refused" {
			t.Errorf("past the limit: %q %v", got, attrs)
		}
		if n := len(l.kamLines("request INVITE")) - before; n != 0 {
			t.Errorf("%d INVITEs past the limit", n)
		}
	})

	t.Run("no_message_authenticator_dropped", func(t *testing.T) {
		before := srv.metric(t, `hashcall_radius_dropped_total{reason="no_message_authenticator"}`)
		code, out := radclient(t, front, papRequest("pap-user", "pap-pass", false), "-t", "1", "-r", "1")
		if got, _ := received(out); got != "" || code == 0 {
			t.Fatalf("answered without Message-Authenticator: exit %d\n%s", code, out)
		}
		if srv.metric(t, `hashcall_radius_dropped_total{reason="no_message_authenticator"}`) != before+1 {
			t.Error("drop not counted")
		}
	})

	t.Run("unknown_client_dropped", func(t *testing.T) {
		// radclient cannot choose its source address: a socket on
		// 127.0.0.2 sends what radclient would.
		c, err := net.ListenPacket("udp", "127.0.0.2:0")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		ra, _ := net.ResolveUDPAddr("udp", front)
		req := []byte{1, 1, 0, 20, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
		if _, err := c.WriteTo(req, ra); err != nil {
			t.Fatal(err)
		}
		// The drop is logged at debug level only: the daemon's counter is
		// polled.
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		if testwait.Until(ctx, func() bool {
			return srv.metric(t, `hashcall_radius_dropped_total{reason="unknown_client"}`) == 1
		}) != nil {
			t.Fatal("drop not counted")
		}
		_ = c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		if n, _, err := c.ReadFrom(make([]byte, 4096)); err == nil {
			t.Errorf("an unknown client got %d bytes back", n)
		}
	})

	t.Run("upstream_down_reject_and_not_ready", func(t *testing.T) {
		dead := "127.0.0.1:" + strconv.Itoa(newPortPicker().udp(t, deadTrunkBase, 1))
		down, front2 := l.radiusServe(t, bin, prompts, dead, serveOptions{readyPath: "/healthz"})
		res, err := http.Get(down.base + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusServiceUnavailable || !bytes.Contains(body, []byte("radius_upstream_down")) {
			t.Errorf("/readyz with the upstream down: %d %s", res.StatusCode, body)
		}
		before := len(l.kamLines("request INVITE"))
		_, out := radclient(t, front2, papRequest("pap-user", "pap-pass", true))
		got, attrs := received(out)
		if got != "Access-Reject" || attrs["Reply-Message"] != "hashcall: upstream_down" {
			t.Errorf("upstream down: %q %v\n%s", got, attrs, out)
		}
		if n := len(l.kamLines("request INVITE")) - before; n != 0 {
			t.Errorf("%d INVITEs with the upstream down", n)
		}
	})
}

// TestFreeRADIUSRestExample runs configs/examples/freeradius-rest: the NAS
// (radclient) asks FreeRADIUS, whose post-auth asks the built `hashcall
// serve` over HTTP (rlm_rest, rlm_json) and lets the Accept through only
// when the call was verified.
func TestFreeRADIUSRestExample(t *testing.T) {
	testpeers.File(t, "/usr/lib/freeradius/rlm_rest.so", "freeradius-rest")
	l := startLab(t)
	bin := buildCLI(t, l.dir)
	srv := l.startServe(t, bin, writeShortPrompts(t), serveOptions{})
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join("..", "..", "configs", "examples", "freeradius-rest", name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	mod := strings.ReplaceAll(read("hashcall-rest"), "http://127.0.0.1:8080", srv.base)
	fr := startFreeRADIUS(t, freeradiusOptions{
		postAuth:   read("hashcall-post-auth"),
		mods:       map[string]string{"hashcall-rest": mod},
		users:      fmt.Sprintf("rest-pound Cleartext-Password := \"rest-pass\", Tmp-String-0 := %q\nrest-five Cleartext-Password := \"rest-pass\", Tmp-String-0 := %q\n", mobileNumber("9001"), mobileNumber("9002")),
		clientPass: nasRadiusSecret, // radclient is FreeRADIUS's NAS here
		env:        []string{"HASHCALL_TOKEN=" + serveToken},
	})
	for _, tc := range []struct {
		name, user, scenario, pass, want, reply string
	}{
		{"pound_accept", "rest-pound", "rfc4733_pound", "rest-pass", "Access-Accept", ""},
		{"five_reject", "rest-five", "rfc4733_five", "rest-pass", "Access-Reject", "hashcall: wrong_key"},
		{"wrong_password_no_call", "rest-pound", "", "nope", "Access-Reject", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var u *uas
			if tc.scenario != "" {
				u = l.startUAS(t, tc.scenario)
			}
			before := len(l.kamLines("request INVITE"))
			code, out := radclient(t, fr, papRequest(tc.user, tc.pass, true))
			got, attrs := received(out)
			if got != tc.want || attrs["Reply-Message"] != tc.reply {
				t.Fatalf("radclient exit %d: %q %v, want %q %q\n%s", code, got, attrs, tc.want, tc.reply, out)
			}
			if u != nil {
				u.finish(t, 20*time.Second)
			} else if n := len(l.kamLines("request INVITE")) - before; n != 0 {
				t.Errorf("%d INVITEs for a wrong password", n)
			}
		})
	}
}
