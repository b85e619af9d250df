package sip

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"
)

// Fuzz targets for what the trunk sends us: Reason headers, digest
// challenges and a registrar's expiry. Seeds are in testdata/fuzz/FuzzX.
// hashcall parses no Authorization header (it is a client only; the digest
// library builds ours).

// FuzzParseQ850: any Reason value gives a cause of 1 to 127, or 0, and
// the cause is the one a well-formed "Q.850;cause=N" carried.
func FuzzParseQ850(f *testing.F) {
	f.Add(`Q.850;cause=16;text="Normal call clearing"`)
	f.Add(`SIP;cause=487, Q.850 ; cause = 31`)
	f.Fuzz(func(t *testing.T, v string) {
		c := ParseQ850(v)
		if c < 0 || c > 127 {
			t.Fatalf("ParseQ850(%q) = %d", v, c)
		}
		if c != 0 && !strings.Contains(strings.ReplaceAll(v, " ", ""), strconv.Itoa(c)) {
			t.Fatalf("ParseQ850(%q) = %d, a cause not in the value", v, c)
		}
	})
}

// FuzzDigestChallenge: a 401/407 with any WWW-Authenticate and
// Proxy-Authenticate values: checkRealm lets credentials go only when every
// challenge names sip.trunk.realm, and neither it nor isStale panics.
func FuzzDigestChallenge(f *testing.F) {
	f.Add(401, `Digest realm="test", nonce="abc", qop="auth", algorithm=MD5`, "test")
	f.Add(407, `Digest realm="other", nonce="n", stale=true, algorithm=SHA-256`, "test")
	f.Fuzz(func(t *testing.T, code int, challenge, realm string) {
		if code != 401 {
			code = 407
		}
		res := sip.NewResponse(code, "Unauthorized")
		name := "WWW-Authenticate"
		if code == 407 {
			name = "Proxy-Authenticate"
		}
		res.AppendHeader(sip.NewHeader(name, challenge))
		_ = isStale(res)
		u := &UA{cfg: Config{Trunk: Trunk{Realm: realm}}}
		if err := u.checkRealm(res); err == nil && realm != "" {
			c, perr := digest.ParseChallenge(challenge)
			if perr != nil || c.Realm != realm {
				t.Fatalf("credentials allowed for %q with sip.trunk.realm %q (%v)", challenge, realm, perr)
			}
		}
	})
}

// FuzzGrantedExpiry: whatever a registrar puts in Expires or the Contact's
// expires parameter, the granted time is 0 to 2**32-1 whole seconds, and
// what we asked for when neither is a number in that range.
func FuzzGrantedExpiry(f *testing.F) {
	f.Add("3600", "")
	f.Add("", "120")
	f.Add("-5", "99999999999999999999")
	f.Fuzz(func(t *testing.T, expires, param string) {
		res := sip.NewResponse(200, "OK")
		if expires != "" {
			res.AppendHeader(sip.NewHeader("Expires", expires))
		}
		if param != "" {
			c := &sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: "hashcall", Host: "127.0.0.1"}, Params: sip.NewParams()}
			c.Params.Add("expires", param)
			res.AppendHeader(c)
		}
		const asked = 600 * time.Second
		got := grantedExpiry(res, asked)
		if got < 0 || got > maxExpires*time.Second || got%time.Second != 0 {
			t.Fatalf("Expires %q, expires=%q: granted %v", expires, param, got)
		}
		valid := func(v string) bool {
			n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
			return err == nil && n <= maxExpires
		}
		if !valid(expires) && !valid(param) && got != asked {
			t.Fatalf("Expires %q, expires=%q: granted %v, want what we asked (%v)", expires, param, got, asked)
		}
	})
}

// TestGrantedExpiry: the Contact's expires wins over Expires (RFC 3261
// §10.2.4); nonsense is ignored.
func TestGrantedExpiry(t *testing.T) {
	for _, tc := range []struct {
		name           string
		expires, param string
		want           time.Duration
	}{
		{"header", "3600", "", time.Hour},
		{"contact param wins", "3600", "120", 2 * time.Minute},
		{"neither", "", "", 600 * time.Second},
		{"zero", "0", "", 0},
		{"negative ignored", "-5", "", 600 * time.Second},
		{"beyond 2^32-1 ignored", "4294967296", "", 600 * time.Second},
		{"largest", "4294967295", "", maxExpires * time.Second},
		{"overflowing param ignored", "60", "99999999999999999999", time.Minute},
		{"spaces", " 60 ", "", time.Minute},
		{"text ignored", "soon", "", 600 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := sip.NewResponse(200, "OK")
			if tc.expires != "" {
				res.AppendHeader(sip.NewHeader("Expires", tc.expires))
			}
			if tc.param != "" {
				c := &sip.ContactHeader{Address: sip.Uri{Scheme: "sip", Host: "127.0.0.1"}, Params: sip.NewParams()}
				c.Params.Add("expires", tc.param)
				res.AppendHeader(c)
			}
			if got := grantedExpiry(res, 600*time.Second); got != tc.want {
				t.Errorf("granted %v, want %v", got, tc.want)
			}
		})
	}
}

// strangerDatagrams are UDP datagrams a stranger sends: the requests pass
// the read filter (the handlers answer 403), everything else is dropped.
var strangerDatagrams = []struct {
	name    string
	data    string
	request bool
}{
	{"response", "SIP/2.0 200 OK\r\nCSeq: 1 INVITE\r\n\r\n", false},
	{"lowercase response", "sip/2.0 200 OK\r\nCSeq: 1 INVITE\r\n\r\n", false},
	{"response without version", "SIP 200 OK\r\nCSeq: 1 INVITE\r\n\r\n", false},
	{"response with a space in its reason", "SIP/2.0 183 Session Progress\r\n\r\n", false},
	{"INFO", "INFO sip:hashcall@127.0.0.1:5060 SIP/2.0\r\nCSeq: 2 INFO\r\n\r\n", true},
	{"lowercase version request", "BYE sip:a@b sip/2.0\r\n\r\n", true},
	{"garbage", "hello\r\n\r\n", false},
	{"empty", "", false},
}

func TestReadFilterStrangerDatagrams(t *testing.T) {
	for _, c := range strangerDatagrams {
		t.Run(c.name, func(t *testing.T) {
			if got := isRequestLine([]byte(c.data)); got != c.request {
				t.Errorf("isRequestLine(%q) = %v, want %v", c.data, got, c.request)
			}
		})
	}
}

// FuzzStrangerDatagram: whatever a stranger's datagram holds, the read
// filter lets it through only when sipgo's parser makes a request of it:
// no response from a stranger reaches the transaction layer.
func FuzzStrangerDatagram(f *testing.F) {
	for _, c := range strangerDatagrams {
		f.Add([]byte(c.data))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if !isRequestLine(data) {
			return
		}
		if msg, err := sip.NewParser().ParseSIP(data); err == nil {
			if _, ok := msg.(*sip.Request); !ok {
				t.Fatalf("%q passes the filter as a request but parses as %T", data, msg)
			}
		}
	})
}
