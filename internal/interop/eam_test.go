package interop

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"html/template"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/hashcall/hashcall/internal/eam/eamtest"
	"github.com/hashcall/hashcall/internal/testpeers"
)

// The Entra ID external MFA provider of the built `hashcall serve`, signed
// in to by a real browser (headless Chromium driven with chromedp) and
// answered by real phones (SIPp UAS scenarios through the lab's Kamailio):
//
//   - a test Entra (eamtest): its own RSA key signs id_token_hints shaped
//     like Microsoft's examples (already expired when issued), its JWKS is
//     served over HTTPS from the test and fetched by hashcall (the test's
//     certificate reaches the binary through SSL_CERT_FILE), and its
//     "sign-in" page holds the authorization form that the browser POSTs;
//   - a local redirect_uri (HTTPS) that records what hashcall posts back;
//   - hashcall's own key made by `hashcall keys generate`, its eam
//     listener on HTTPS with a certificate made here;
//   - the returned id_token checked with github.com/coreos/go-oidc/v3
//     against hashcall's own discovery document and JWKS.
//
// Screenshots of each stage go to t.ArtifactDir() (kept with go test
// -artifacts); HASHCALL_EAM_SCREENSHOTS=DIR also copies the page's
// screenshot there (docs/eam-page.png in the README is one).

const (
	eamTID      = "5d3c1a70-2b6e-4c8f-9a0d-7e1f2b3c4d5e"
	eamClientID = "9a1b2c3d-4e5f-4a6b-8c7d-0e1f2a3b4c5d"
	eamHTTPBase = 25960 // hashcall's eam listener (TCP), first free from here
	chromium    = "/usr/bin/chromium"
)

// Users of the test directory (CSV), each on a test number of the lab.
var (
	eamAlice = eamtest.User{OID: "6f1e2d3c-0000-4000-8000-00000000a11c", Sub: "mBqz0l3Yk2Jtq1aW3dV9Yc4hX0e8nQ1Lr5sT7uV9wXo", UPN: "alice@contoso.example", Name: "Alice Example"}
	eamBob   = eamtest.User{OID: "6f1e2d3c-0000-4000-8000-000000000b0b", Sub: "nCra1m4Zl3Kur2bX4eW0Zd5iY1f9oR2Ms6tU8vW0xYp", UPN: "bob@contoso.example", Name: "Bob Example"}
	eamErin  = eamtest.User{OID: "6f1e2d3c-0000-4000-8000-00000000e417", Sub: "pEtc3o6Bn5Mwt4dZ6gY2Bf7kA3h1qT4Ou8vW0xY2zAr", UPN: "erin@contoso.example", Name: "Erin Example"}
	eamDave  = eamtest.User{OID: "6f1e2d3c-0000-4000-8000-00000000da7e", Sub: "oDsb2n5Am4Lvs3cY5fX1Ae6jZ2g0pS3Nt7uV9wX1yZq", UPN: "dave@contoso.example", Name: "Dave Example"}
)

// eamLab is a test Entra, the redirect sink, the keys and certificates, and
// the directory for one `hashcall serve` with eam enabled.
type eamLab struct {
	*lab
	bin     string
	entra   *eamtest.Entra
	jwks    *httptest.Server
	sink    *eamtest.RedirectSink
	dir     string
	caFile  string // the JWKS server's certificate, for SSL_CERT_FILE
	cert    string // eam.tls_cert
	key     string // eam.tls_key
	pool    *x509.CertPool
	signing string // eam.signing_keys[0]
	csv     string
	port    int
	issuer  string
	enrol   string // eam.enrolment; "" is directory

	mu    sync.Mutex
	forms map[string]string // Entra's sign-in pages by path
	pages *httptest.Server
}

func startEAMLab(t *testing.T) *eamLab {
	t.Helper()
	l := startLab(t)
	e := &eamLab{lab: l, dir: t.TempDir(), forms: map[string]string{}}
	e.bin = buildCLI(t, l.dir)
	e.entra = eamtest.New(t, eamTID, eamClientID, eamtest.NewKey(t, 0), "test-entra-kid-1")
	e.jwks, _ = e.entra.ServeJWKS(t)
	e.caFile = filepath.Join(e.dir, "entra-ca.pem")
	writePEM(t, e.caFile, "CERTIFICATE", e.jwks.Certificate().Raw)
	e.sink = eamtest.NewRedirectSink(t, true)
	e.cert, e.key, e.pool = eamCert(t, e.dir)
	e.signing = filepath.Join(e.dir, "eam-signing.pem")
	if out, err := exec.Command(e.bin, "keys", "generate", "--out", e.signing, "--cn", "hashcall interop").CombinedOutput(); err != nil {
		t.Fatalf("hashcall keys generate: %v\n%s", err, out)
	}
	e.csv = filepath.Join(e.dir, "users.csv")
	var b strings.Builder
	b.WriteString("user,oid,mobile\n")
	for _, u := range []struct {
		u   eamtest.User
		num string
	}{{eamAlice, "9001"}, {eamBob, "9002"}, {eamDave, "9010"}} {
		fmt.Fprintf(&b, "%s,%s,%s\n", u.u.UPN, u.u.OID, mobileNumber(u.num))
	}
	fmt.Fprintf(&b, "%s,%s,%s\n", eamErin.UPN, eamErin.OID, baresipMobile)
	for i := range 20 {
		fmt.Fprintf(&b, "pool%02d@contoso.example,,%s\n", i, poolNumber(i))
	}
	if err := os.WriteFile(e.csv, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	e.port = tcpPort(t, eamHTTPBase)
	e.issuer = "https://127.0.0.1:" + strconv.Itoa(e.port) + "/eam"
	e.pages = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.mu.Lock()
		body, ok := e.forms[r.URL.Path]
		e.mu.Unlock()
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(e.pages.Close)
	return e
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// eamCert makes the eam listener's certificate for 127.0.0.1.
func eamCert(t *testing.T, dir string) (cert, key string, pool *x509.CertPool) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, BasicConstraintsValid: true, IsCA: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	p8, _ := x509.MarshalPKCS8PrivateKey(k)
	cert, key = filepath.Join(dir, "eam-cert.pem"), filepath.Join(dir, "eam-key.pem")
	writePEM(t, cert, "CERTIFICATE", der)
	writePEM(t, key, "PRIVATE KEY", p8)
	c, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(c)
	return cert, key, pool
}

// serve starts `hashcall serve` with eam enabled on the lab's trunk (or
// o.trunk); maxCalls is eam.max_calls.
func (e *eamLab) serve(t *testing.T, o serveOptions, maxCalls int) *server {
	t.Helper()
	o.extraYAML = fmt.Sprintf(`directory:
  csv: %s
eam:
  enabled: true
  listen: 127.0.0.1:%d
  issuer: %s
  client_id: %s
  redirect_uris: [%s]
  tenants: [%s]
  entra_jwks_url: %s/common/discovery/v2.0/keys
  signing_keys: [%s]
  tls_cert: %s
  tls_key: %s
  max_calls: %d
`, e.csv, e.port, e.issuer, eamClientID, e.sink.URL, eamTID, e.jwks.URL, e.signing, e.cert, e.key, maxCalls)
	if e.enrol != "" {
		o.extraYAML += "  enrolment: " + e.enrol + "\n"
	}
	if o.perNumber == "" {
		o.perNumber = "100/1m"
	}
	o.env = append(o.env, "SSL_CERT_FILE="+e.caFile)
	return e.startServe(t, e.bin, writeShortPrompts(t), o)
}

// authForm is the authorization request Entra's page makes the browser
// POST, with a fresh nonce and state.
func (e *eamLab) authForm(t *testing.T, u eamtest.User, iat time.Time) url.Values {
	t.Helper()
	return url.Values{
		"scope": {"openid"}, "response_type": {"id_token"}, "response_mode": {"form_post"},
		"client_id": {eamClientID}, "redirect_uri": {e.sink.URL},
		"nonce": {"nonce-" + randomID(t)}, "state": {"state-" + randomID(t)},
		"id_token_hint":     {e.entra.Hint(t, u, iat, nil)},
		"claims":            {`{"id_token":{"acr":{"essential":true,"values":["possessionorinherence"]},"amr":{"essential":true,"values":["tel"]}}}`},
		"client-request-id": {randomUUID(t)},
	}
}

func randomID(t *testing.T) string {
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x", b)
}

func randomUUID(t *testing.T) string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	b[6] = b[6]&0x0f | 0x40 // version 4
	b[8] = b[8]&0x3f | 0x80 // RFC 9562 variant
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

var entraPage = template.Must(template.New("").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Test Entra</title></head><body><h1>Test Entra ID</h1><p>Verify with your phone.</p>
<form method="post" action="{{.Action}}">{{range $k, $v := .Fields}}<input type="hidden" name="{{$k}}" value="{{index $v 0}}">{{end}}
<button id="go" type="submit">Call me</button></form></body></html>`))

// entraURL publishes Entra's sign-in page for form and returns its URL.
func (e *eamLab) entraURL(t *testing.T, form url.Values) string {
	t.Helper()
	var b strings.Builder
	if err := entraPage.Execute(&b, map[string]any{"Action": e.issuer + "/authorize", "Fields": form}); err != nil {
		t.Fatal(err)
	}
	path := "/signin/" + randomID(t)
	e.mu.Lock()
	e.forms[path] = b.String()
	e.mu.Unlock()
	return e.pages.URL + path
}

// browser is a fresh headless Chromium (its own profile, phone-sized),
// ended with the test; stages records the page's status stages as the page
// shows them (a script added to every document reports data-stage changes
// on the console).
type browser struct {
	ctx    context.Context
	mu     sync.Mutex
	stages []string
	shots  string
	n      int
}

const stageReporter = `document.addEventListener("DOMContentLoaded", function () {
  var s = document.getElementById("status");
  if (!s) { return; }
  console.log("hashcall-stage:" + s.getAttribute("data-stage"));
  new MutationObserver(function () { console.log("hashcall-stage:" + s.getAttribute("data-stage")); })
    .observe(s, { attributes: true, attributeFilter: ["data-stage"] });
});`

func newBrowser(t *testing.T, lang string) *browser {
	t.Helper()
	testpeers.File(t, chromium, "chromium")
	b := &browser{shots: t.ArtifactDir()}
	opts := append(slices.Clone(chromedp.DefaultExecAllocatorOptions[:]),
		chromedp.ExecPath(chromium), chromedp.NoSandbox, chromedp.Headless, chromedp.IgnoreCertErrors,
		chromedp.WindowSize(390, 844), chromedp.UserDataDir(t.TempDir()))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf), chromedp.WithListener(func(ev any) {
		if c, ok := ev.(*runtime.EventConsoleAPICalled); ok && len(c.Args) > 0 {
			v := strings.Trim(string(c.Args[0].Value), `"`)
			if st, ok := strings.CutPrefix(v, "hashcall-stage:"); ok {
				b.mu.Lock()
				if len(b.stages) == 0 || b.stages[len(b.stages)-1] != st {
					b.stages = append(b.stages, st)
				}
				b.mu.Unlock()
			}
		}
	}))
	t.Cleanup(func() { cancel(); cancelAlloc() })
	b.ctx = ctx
	if err := chromedp.Do(ctx, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		if _, err := cdp.Call(ctx, tg, network.Enable, network.EnableParams{}); err != nil {
			return err
		}
		if _, err := cdp.Call(ctx, tg, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{
			Headers: network.Headers{"Accept-Language": lang}}); err != nil {
			return err
		}
		// A phone's screen: 390 × 844 CSS pixels, mobile viewport rules.
		if _, err := cdp.Call(ctx, tg, emulation.SetDeviceMetricsOverride, emulation.SetDeviceMetricsOverrideParams{
			Width: 390, Height: 844, DeviceScaleFactor: 1, Mobile: true}); err != nil {
			return err
		}
		_, err := cdp.Call(ctx, tg, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: stageReporter})
		return err
	})); err != nil {
		t.Fatalf("chromium: %v", err)
	}
	t.Logf("screenshots in %s", b.shots)
	return b
}

// do runs steps within d.
func (b *browser) do(t *testing.T, d time.Duration, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, d)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		html, _ := chromedp.Run(b.ctx, chromedp.Evaluate[string](`document.documentElement.outerHTML`))
		t.Fatalf("browser: %v; stages %v; page:\n%s", err, b.seen(), html)
	}
}

// shot saves a screenshot named for the stage and returns its path.
func (b *browser) shot(t *testing.T, name string) string {
	t.Helper()
	png, err := chromedp.Run(b.ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	b.n++
	p := filepath.Join(b.shots, fmt.Sprintf("%d-%s.png", b.n, name))
	if err := os.WriteFile(p, png, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func (b *browser) seen() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.stages)
}

func waitPosted(t *testing.T, sink *eamtest.RedirectSink, within time.Duration) eamtest.Posted {
	t.Helper()
	select {
	case p := <-sink.C:
		return p
	case <-time.After(within):
		t.Fatalf("nothing posted to the redirect_uri within %v", within)
		return eamtest.Posted{}
	}
}

// verifyIDToken checks raw with go-oidc against hashcall's own discovery
// and JWKS and returns its claims.
func (e *eamLab) verifyIDToken(t *testing.T, raw string) map[string]any {
	t.Helper()
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: e.pool}}}
	ctx := oidc.ClientContext(context.Background(), client)
	op, err := oidc.NewProvider(ctx, e.issuer)
	if err != nil {
		t.Fatalf("go-oidc discovery of %s: %v", e.issuer, err)
	}
	idt, err := op.Verifier(&oidc.Config{ClientID: eamClientID, SupportedSigningAlgs: []string{oidc.RS256}}).Verify(ctx, raw)
	if err != nil {
		t.Fatalf("go-oidc: %v", err)
	}
	var c map[string]any
	if err := idt.Claims(&c); err != nil {
		t.Fatal(err)
	}
	return c
}

// audit returns serve's "audit: eam sign-in" records.
func audit(s *server) []map[string]any {
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(s.log()))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) == nil && m["msg"] == "audit: eam sign-in" {
			out = append(out, m)
		}
	}
	return out
}

// signIn drives the browser from Entra's page to hashcall's page and
// returns once the page shows the call's status.
func (e *eamLab) signIn(t *testing.T, b *browser, form url.Values) {
	t.Helper()
	b.do(t, 20*time.Second, chromedp.Navigate(e.entraURL(t, form)), chromedp.WaitVisible("#go"))
	b.shot(t, "entra")
	b.do(t, 20*time.Second, chromedp.Click("#go"), chromedp.WaitVisible("#status"))
}

// The whole sign-in: the browser POSTs the authorization form, the page
// says which phone and what to press, its live region goes from calling or
// ringing to answered to verified, SIPp answers and sends an RFC 4733 #,
// and the page posts an id_token that go-oidc accepts with every claim.
func TestEAMBrowserVerified(t *testing.T) {
	e := startEAMLab(t)
	uas := e.startUAS(t, "rfc4733_pound")
	s := e.serve(t, serveOptions{}, 2)
	b := newBrowser(t, "en-GB,en;q=0.8")
	form := e.authForm(t, eamAlice, time.Now().Add(-20*time.Second))
	e.signIn(t, b, form)
	instructions, err := chromedp.Run(b.ctx, chromedp.Text("#instructions"))
	if err != nil || instructions != "We're calling your phone ending 001. Answer it and press the hash key (#)." {
		t.Errorf("instructions %q, %v", instructions, err)
	}
	role, _ := chromedp.Run(b.ctx, chromedp.Evaluate[string](`document.getElementById("status").getAttribute("aria-live") + "/" + document.getElementById("status").getAttribute("role")`))
	if role != "polite/status" {
		t.Errorf("status region aria-live/role = %q, want polite/status", role)
	}
	page := b.shot(t, "calling")
	b.do(t, 30*time.Second, chromedp.WaitVisible(`#status[data-stage="answered"]`))
	b.shot(t, "answered")
	b.do(t, 30*time.Second, chromedp.WaitVisible("#result"))
	b.shot(t, "back-at-entra")
	p := waitPosted(t, e.sink, 10*time.Second)
	if p.Form.Get("state") != form.Get("state") || p.Form.Get("error") != "" {
		t.Fatalf("posted %v: want the state and no error", p.Form)
	}
	claims := e.verifyIDToken(t, p.Form.Get("id_token"))
	eamtest.CheckClaims(t, claims, e.issuer, eamClientID, eamAlice.Sub, form.Get("nonce"))
	if st := b.seen(); !slices.Contains(st, "answered") || st[len(st)-1] != "verified" {
		t.Errorf("stages %v: want answered, then verified", st)
	}
	if code := uas.finish(t, 20*time.Second); code != 0 {
		t.Errorf("SIPp exit %d", code)
	}
	a := audit(s)
	if len(a) != 1 || a[0]["result"] != "verified" || a[0]["jti"] != claims["jti"] || a[0]["client_request_id"] != form.Get("client-request-id") {
		t.Errorf("audit %v: want one verified record with the jti and client-request-id", a)
	}
	if strings.Contains(s.log(), mobileNumber("9001")) {
		t.Errorf("serve's log has the unmasked number")
	}
	if dir := os.Getenv("HASHCALL_EAM_SCREENSHOTS"); dir != "" {
		data, _ := os.ReadFile(page)
		if err := os.WriteFile(filepath.Join(dir, "eam-page.png"), data, 0o644); err != nil {
			t.Error(err)
		}
	}
}

// baresipMobile is Kamailio's UK mobile alias of the registered baresip.
const baresipMobile = "+447700900901"

// The same sign-in answered by a real softphone: baresip registers at
// Kamailio, answers, and presses # as RFC 4733 events.
func TestEAMBrowserBaresip(t *testing.T) {
	e := startEAMLab(t)
	ph := testpeers.RunBaresip(t, testpeers.BaresipConfig{
		User:      "baresip",
		Registrar: &testpeers.Registrar{Address: e.kamAddr, Password: "baresip-pw"},
	})
	if err := ph.WaitRegistered(ctxFor(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	mark := ph.Mark()
	pressed := make(chan error, 1)
	go func() {
		ctx := ctxFor(t, 40*time.Second)
		if _, err := ph.WaitEvent(ctx, mark, "CALL_ESTABLISHED"); err != nil {
			pressed <- err
			return
		}
		// After verify.min_key_delay (1.5 s) and the cut ask prompt's press
		// point, as a callee would: earlier keys do not count.
		if err := pause(ctx, 2*time.Second); err != nil {
			pressed <- err
			return
		}
		pressed <- ph.Press(ctx, '#')
	}()
	e.serve(t, serveOptions{}, 2)
	b := newBrowser(t, "en-GB")
	form := e.authForm(t, eamErin, time.Now())
	e.signIn(t, b, form)
	b.do(t, 40*time.Second, chromedp.WaitVisible("#result"))
	b.shot(t, "back-at-entra")
	if err := <-pressed; err != nil {
		t.Fatalf("baresip pressing #: %v", err)
	}
	p := waitPosted(t, e.sink, 10*time.Second)
	if p.Form.Get("error") != "" {
		t.Fatalf("posted %v, want an id_token", p.Form)
	}
	eamtest.CheckClaims(t, e.verifyIDToken(t, p.Form.Get("id_token")), e.issuer, eamClientID, eamErin.Sub, form.Get("nonce"))
}

// Self-enrolment: a user the directory does not know enters a premium-rate
// number (refused by the policy: nothing is called), then their mobile,
// which is called, verified and enrolled.
func TestEAMBrowserSelfEnrolment(t *testing.T) {
	e := startEAMLab(t)
	e.enrol = "self"
	uas := e.startUAS(t, "rfc4733_pound")
	s := e.serve(t, serveOptions{}, 2)
	b := newBrowser(t, "en-GB")
	frank := eamtest.User{OID: "6f1e2d3c-0000-4000-8000-0000000f4a2c", Sub: "qFud4p7Co6Nxu5eA7hZ3Cg8lB4i2rU5Pv9wX1yZ3aBs", UPN: "frank@contoso.example"}
	form := e.authForm(t, frank, time.Now())
	b.do(t, 20*time.Second, chromedp.Navigate(e.entraURL(t, form)), chromedp.Click("#go"), chromedp.WaitVisible("#number"))
	b.shot(t, "enrol")
	b.do(t, 20*time.Second, chromedp.SendKeys("#number", "0909 8790000"), chromedp.Click("#call-me"), chromedp.WaitVisible(".notice"))
	if txt, _ := chromedp.Run(b.ctx, chromedp.Text(".notice")); !strings.Contains(txt, "can't be used") {
		t.Errorf("notice %q: want the refusal", txt)
	}
	b.shot(t, "premium-refused")
	if n := len(e.kamLines("request INVITE")); n != 0 {
		t.Fatalf("%d INVITEs for a premium-rate number, want none", n)
	}
	b.do(t, 20*time.Second, chromedp.SendKeys("#number", "07700 900001"), chromedp.Click("#call-me"), chromedp.WaitVisible("#status"))
	b.do(t, 40*time.Second, chromedp.WaitVisible("#result"))
	p := waitPosted(t, e.sink, 10*time.Second)
	eamtest.CheckClaims(t, e.verifyIDToken(t, p.Form.Get("id_token")), e.issuer, eamClientID, frank.Sub, form.Get("nonce"))
	for _, want := range []string{"audit: eam self-enrolment refused", "audit: eam enrolment recorded"} {
		if !strings.Contains(s.log(), want) {
			t.Errorf("serve's log lacks %q", want)
		}
	}
	uas.finish(t, 20*time.Second)
}

// The phone presses 5: with one call allowed the page posts access_denied.
func TestEAMBrowserWrongKey(t *testing.T) {
	e := startEAMLab(t)
	uas := e.startUAS(t, "rfc4733_five")
	e.serve(t, serveOptions{}, 1)
	b := newBrowser(t, "en-US")
	form := e.authForm(t, eamBob, time.Now())
	e.signIn(t, b, form)
	if txt, _ := chromedp.Run(b.ctx, chromedp.Text("#instructions")); !strings.Contains(txt, "pound key (#)") {
		t.Errorf("en-US instructions %q: want the pound key", txt)
	}
	b.do(t, 40*time.Second, chromedp.WaitVisible("#result"))
	b.shot(t, "back-at-entra")
	p := waitPosted(t, e.sink, 10*time.Second)
	if p.Form.Get("error") != "access_denied" || p.Form.Get("state") != form.Get("state") || p.Form.Get("id_token") != "" {
		t.Errorf("posted %v: want access_denied with the state", p.Form)
	}
	if st := b.seen(); !slices.Contains(st, "wrong_key") {
		t.Errorf("stages %v: want wrong_key shown", st)
	}
	uas.finish(t, 20*time.Second)
}

// No answer twice: the first time the page offers "Call me again", the
// second call is not answered either and the page posts access_denied.
func TestEAMBrowserNoAnswer(t *testing.T) {
	e := startEAMLab(t)
	uas := e.startUASOn(t, "ring_forever", e.uasPorts["ring_forever"], 2)
	e.serve(t, serveOptions{ringTimeout: 2 * time.Second}, 2)
	b := newBrowser(t, "en-GB")
	form := e.authForm(t, eamDave, time.Now())
	e.signIn(t, b, form)
	b.do(t, 30*time.Second, chromedp.WaitVisible("#retry"))
	if txt, _ := chromedp.Run(b.ctx, chromedp.Text("#status")); txt != "There was no answer." {
		t.Errorf("status %q", txt)
	}
	b.shot(t, "no-answer")
	b.do(t, 20*time.Second, chromedp.Click("#retry button"), chromedp.WaitVisible("#result"))
	b.shot(t, "back-at-entra")
	p := waitPosted(t, e.sink, 10*time.Second)
	if p.Form.Get("error") != "access_denied" {
		t.Errorf("posted %v: want access_denied", p.Form)
	}
	if n := routed(e.kamLog(), mobileNumber("9010")); n != 2 {
		t.Errorf("Kamailio routed %d calls to the phone, want 2", n)
	}
	uas.finish(t, 20*time.Second)
}

// Cancel on the page ends the ringing call and posts access_denied.
func TestEAMBrowserCancel(t *testing.T) {
	e := startEAMLab(t)
	uas := e.startUAS(t, "ring_forever")
	e.serve(t, serveOptions{}, 2)
	b := newBrowser(t, "en-GB")
	form := e.authForm(t, eamDave, time.Now())
	e.signIn(t, b, form)
	b.do(t, 20*time.Second, chromedp.WaitVisible(`#status[data-stage="ringing"]`))
	b.shot(t, "ringing")
	b.do(t, 20*time.Second, chromedp.Click("#cancel button"), chromedp.WaitVisible("#result"))
	p := waitPosted(t, e.sink, 10*time.Second)
	if p.Form.Get("error") != "access_denied" || p.Form.Get("state") != form.Get("state") {
		t.Errorf("posted %v: want access_denied", p.Form)
	}
	uas.finish(t, 20*time.Second)
}

// The trunk is down: the page posts temporarily_unavailable at once.
func TestEAMBrowserTrunkDown(t *testing.T) {
	e := startEAMLab(t)
	dead := net.JoinHostPort("127.0.0.1", strconv.Itoa(newPortPicker().udp(t, deadTrunkBase, 1)))
	e.serve(t, serveOptions{trunk: dead}, 2)
	b := newBrowser(t, "en-GB")
	form := e.authForm(t, eamAlice, time.Now())
	b.do(t, 20*time.Second, chromedp.Navigate(e.entraURL(t, form)), chromedp.Click("#go"), chromedp.WaitVisible("#result"))
	p := waitPosted(t, e.sink, 10*time.Second)
	if p.Form.Get("error") != "temporarily_unavailable" || p.Form.Get("state") != form.Get("state") {
		t.Errorf("posted %v: want temporarily_unavailable", p.Form)
	}
}

// Forged and replayed requests to the built binary: each gets the error
// page (400) and nothing is posted back or called.
func TestEAMServeRefusals(t *testing.T) {
	e := startEAMLab(t)
	s := e.serve(t, serveOptions{}, 2)
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: e.pool}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	forger := eamtest.New(t, eamTID, eamClientID, eamtest.NewKey(t, 1), e.entra.KeyID)
	other := "0b1c2d3e-4f5a-4b6c-8d7e-9f0a1b2c3d4e"
	replayed := e.authForm(t, eamDave, time.Now())
	post := func(f url.Values) *http.Response {
		res, err := client.PostForm(e.issuer+"/authorize", f)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res
	}
	// The first use of replayed is accepted (a call to a phone that rings,
	// cancelled at the end).
	uas := e.startUAS(t, "ring_forever")
	first := post(replayed)
	if first.StatusCode != http.StatusSeeOther {
		t.Fatalf("first use: %d, want 303", first.StatusCode)
	}
	for _, tc := range []struct {
		name string
		edit func(url.Values)
	}{
		{"bad_hint_signature", func(f url.Values) { f.Set("id_token_hint", forger.Hint(t, eamAlice, time.Now(), nil)) }},
		{"unknown_tenant", func(f url.Values) {
			f.Set("id_token_hint", e.entra.Hint(t, eamAlice, time.Now(), map[string]any{"tid": other, "iss": "https://login.microsoftonline.com/" + other + "/v2.0"}))
		}},
		{"foreign_client_id", func(f url.Values) { f.Set("client_id", other) }},
		{"foreign_redirect_uri", func(f url.Values) {
			f.Set("redirect_uri", "https://login.example.net/common/federation/externalauthprovider")
		}},
		{"hint_too_old", func(f url.Values) {
			f.Set("id_token_hint", e.entra.Hint(t, eamAlice, time.Now().Add(-15*time.Minute), nil))
		}},
		{"replayed_nonce_state", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := replayed
			if tc.edit != nil {
				f = e.authForm(t, eamAlice, time.Now())
				tc.edit(f)
			}
			if res := post(f); res.StatusCode != http.StatusBadRequest {
				t.Errorf("status %d, want 400", res.StatusCode)
			}
		})
	}
	if n := len(e.sink.Seen()); n != 0 {
		t.Errorf("%d forms posted back by forged or replayed requests, want 0", n)
	}
	if n := routed(e.kamLog(), mobileNumber("9001")); n != 0 {
		t.Errorf("%d calls to alice, want 0", n)
	}
	if !strings.Contains(s.log(), `"reason":"hint_signature"`) || !strings.Contains(s.log(), `"reason":"replay"`) {
		t.Errorf("refusals not logged with their reasons")
	}
	for _, reason := range []string{"hint_signature", "hint_tenant", "client_id", "redirect_uri", "hint_age", "replay"} {
		if v := s.metric(t, `hashcall_eam_refused_total{reason="`+reason+`"}`); v != 1 {
			t.Errorf("hashcall_eam_refused_total{reason=%q} = %v, want 1", reason, v)
		}
	}
	loc, err := first.Location()
	if err != nil {
		t.Fatal(err)
	}
	res, err := client.PostForm(loc.String()+"/cancel", nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	// The answer page (no browser here to submit it).
	if !strings.Contains(string(body), `name="error" value="access_denied"`) {
		t.Errorf("cancel answered:\n%s", body)
	}
	uas.finish(t, 20*time.Second)
}

// From the authorization POST to the INVITE leaving hashcall ("dialling",
// logged just before the INVITE is written): the median over sign-ins of
// pool users whose phones are busy, through the built binary.
func TestEAMPostToInvite(t *testing.T) {
	const n = 15
	e := startEAMLab(t)
	pool := e.startPool(t, "busy", n)
	s := e.serve(t, serveOptions{}, 1)
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: e.pool}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	// One warm-up connection, as Entra's browser keeps its own.
	if res, err := client.Get(e.issuer + "/.well-known/openid-configuration"); err == nil {
		res.Body.Close()
	}
	var sent []time.Time
	for i := range n {
		u := eamtest.User{OID: fmt.Sprintf("6f1e2d3c-0000-4000-8000-0000000000%02d", i), Sub: fmt.Sprintf("pool-sub-%02d", i), UPN: fmt.Sprintf("pool%02d@contoso.example", i)}
		f := e.authForm(t, u, time.Now())
		body := f.Encode()
		req, _ := http.NewRequest(http.MethodPost, e.issuer+"/authorize", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		sent = append(sent, time.Now())
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusSeeOther {
			t.Fatalf("sign-in %d: %d, want 303", i, res.StatusCode)
		}
	}
	sippDone(t, pool, 30*time.Second)
	var dialled []time.Time
	sc := bufio.NewScanner(strings.NewReader(s.log()))
	for sc.Scan() {
		var m struct {
			Time time.Time `json:"time"`
			Msg  string    `json:"msg"`
		}
		if json.Unmarshal(sc.Bytes(), &m) == nil && m.Msg == "dialling" {
			dialled = append(dialled, m.Time)
		}
	}
	if len(dialled) != n {
		t.Fatalf("%d dialling lines, want %d", len(dialled), n)
	}
	var ds []time.Duration
	for i := range n {
		ds = append(ds, dialled[i].Sub(sent[i]))
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	t.Logf("POST /authorize → INVITE, %d sign-ins: median %v, min %v, max %v", n, ds[n/2].Round(10*time.Microsecond),
		ds[0].Round(10*time.Microsecond), ds[n-1].Round(10*time.Microsecond))
}
