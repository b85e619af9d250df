package media

import (
	"bytes"
	"errors"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata")

// golden compares got with testdata file name, rewriting it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", "sdp", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file:\ngot:\n%s\nwant:\n%s", name, got, want)
	}
}

func readSDP(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "sdp", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func testLocal() *Local {
	return &Local{Addr: netip.MustParseAddrPort("192.0.2.10:20000"), SessionID: 1234, Version: 1}
}

func testLocal6() *Local {
	return &Local{Addr: netip.MustParseAddrPort("[2001:db8::1]:20000"), SessionID: 1234, Version: 1}
}

func TestOfferGolden(t *testing.T) {
	for _, tc := range []struct {
		name  string
		local *Local
	}{
		{"offer.golden", testLocal()},
		{"offer-ipv6.golden", testLocal6()},
		{"offer-pcmu-only.golden", &Local{Addr: netip.MustParseAddrPort("192.0.2.10:20002"), Codecs: []Codec{PCMU}, EventPT: 96, SessionID: 99}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := tc.local.Offer()
			if err != nil {
				t.Fatal(err)
			}
			golden(t, tc.name, b)
			// The INVITE must stay under 1300 bytes over UDP: the body is
			// a small part of it.
			if len(b) > 300 {
				t.Errorf("offer is %d bytes", len(b))
			}
			// Our own offer parses as an offer.
			if _, err := parseStrict(b); err != nil {
				t.Errorf("own offer does not parse: %v", err)
			}
		})
	}
}

func TestOfferErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		local Local
		want  string
	}{
		{"no address", Local{}, "not set"},
		{"unspecified", Local{Addr: netip.MustParseAddrPort("0.0.0.0:20000")}, "cannot be advertised"},
		{"port 0", Local{Addr: netip.MustParseAddrPort("192.0.2.1:0")}, "port is 0"},
		{"g729", Local{Addr: netip.MustParseAddrPort("192.0.2.1:20000"), Codecs: []Codec{{"G729", 18, 8000}}}, "unsupported codec G729/8000"},
		{"static event pt", Local{Addr: netip.MustParseAddrPort("192.0.2.1:20000"), EventPT: 8}, "not dynamic"},
		{"duplicate pt", Local{Addr: netip.MustParseAddrPort("192.0.2.1:20000"), Codecs: []Codec{PCMU, PCMU}}, "share payload type"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.local.Offer()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

func TestParseAnswer(t *testing.T) {
	pcmu101 := func(remote string) Negotiated {
		return Negotiated{Remote: ap(remote), Codec: PCMU, RecvCodecs: []Codec{PCMU}, SendEventPT: 101, HaveEvents: true,
			RecvEventPT: 101, EventClockRate: 8000, Ptime: 20 * time.Millisecond, Direction: SendRecv}
	}
	pcma101 := func(remote string) Negotiated {
		n := pcmu101(remote)
		n.Codec, n.RecvCodecs = PCMA, []Codec{PCMA}
		return n
	}
	with := func(n Negotiated, f func(*Negotiated)) Negotiated { f(&n); return n }
	for _, tc := range []struct {
		file  string
		local *Local
		want  Negotiated
		err   string
	}{
		// Asterisk lists both of ours in its own order: we send its first
		// (RFC 3264 §7) and accept both.
		{file: "asterisk.sdp", want: with(pcmu101("203.0.113.10:17216"), func(n *Negotiated) { n.RecvCodecs = []Codec{PCMU, PCMA} })},
		{file: "freeswitch.sdp", want: pcma101("198.51.100.20:24580")},
		// Media-level c= wins over the session's; event PT 100 is sent on
		// 100 and received on our 101.
		{file: "cisco-cube.sdp", want: with(pcmu101("192.0.2.31:16434"), func(n *Negotiated) { n.SendEventPT = 100 })},
		{file: "kamailio-rtpengine.sdp", want: pcma101("192.0.2.50:30000")},
		{file: "baresip.sdp", want: pcmu101("127.0.0.1:11246")},
		// No rtpmap for static PT 0, no ptime, session-level attributes.
		{file: "linphone.sdp", want: pcmu101("192.168.1.50:7078")},
		{file: "sipp.sdp", want: with(pcmu101("127.0.0.1:6000"), func(n *Negotiated) { n.SendEventPT, n.HaveEvents = 0, false })},
		{file: "sipp-dtmf.sdp", want: pcmu101("127.0.0.1:6002")},
		{file: "multi-m.sdp", want: pcma101("192.0.2.60:5004")},
		{file: "dynamic-96.sdp", want: with(pcma101("192.0.2.70:40000"), func(n *Negotiated) { n.SendEventPT = 96 })},
		// telephone-event/48000 does not go with 8 kHz G.711.
		{file: "te-48000.sdp", want: with(pcmu101("192.0.2.80:5006"), func(n *Negotiated) { n.SendEventPT, n.HaveEvents = 0, false })},
		{file: "te-both.sdp", want: with(pcmu101("192.0.2.80:5008"), func(n *Negotiated) { n.Ptime = 30 * time.Millisecond })},
		{file: "ipv6.sdp", local: testLocal6(), want: pcma101("[2001:db8::10]:17218")},
		{file: "ipv6.sdp", err: "media address 2001:db8::10 is not of the IP family of ours (192.0.2.10)"},
		{file: "hold-sendonly.sdp", want: with(pcma101("203.0.113.10:17216"), func(n *Negotiated) { n.Direction, n.Hold = SendOnly, true })},
		{file: "hold-zero.sdp", want: with(pcmu101("0.0.0.0:16434"), func(n *Negotiated) { n.SendEventPT, n.Hold = 100, true })},
		{file: "out-of-order.sdp", want: with(pcma101("192.0.2.93:5012"), func(n *Negotiated) {})},
		{file: "rejected.sdp", err: "answer rejected the audio stream (m=audio port 0)"},
		{file: "g729.sdp", err: "answer has no codec in common with the offer (offered PCMA, PCMU; answered G729)"},
		{file: "savp.sdp", err: "answer uses transport RTP/SAVP, offered RTP/AVP"},
		{file: "no-connection.sdp", err: "no c= connection address"},
		{file: "fqdn.sdp", err: `connection address "sbc.example.net" is not an IP address`},
	} {
		name := tc.file
		if tc.local != nil {
			name += "/local-ipv6"
		}
		t.Run(name, func(t *testing.T) {
			l := tc.local
			if l == nil {
				l = testLocal()
			}
			body := readSDP(t, filepath.Join("answers", tc.file))
			for _, variant := range []struct {
				name string
				body []byte
			}{
				{"as is", body},
				{"crlf", bytes.ReplaceAll(bytes.ReplaceAll(body, []byte("\r\n"), []byte("\n")), []byte("\n"), []byte("\r\n"))},
			} {
				got, err := l.ParseAnswer(variant.body)
				if tc.err != "" {
					if err == nil || !strings.Contains(err.Error(), tc.err) {
						t.Fatalf("%s: err = %v, want it to contain %q", variant.name, err, tc.err)
					}
					continue
				}
				if err != nil {
					t.Fatalf("%s: %v", variant.name, err)
				}
				if !reflect.DeepEqual(got, tc.want) {
					t.Errorf("%s:\ngot  %+v\nwant %+v", variant.name, got, tc.want)
				}
			}
		})
	}
}

func TestParseAnswerGarbage(t *testing.T) {
	l := testLocal()
	for _, body := range []string{
		"",
		"hello",
		"v=1\r\n",
		"v=0\r\n",
		"v=0\r\no=- 1 2 IN IP4 1.2.3.4\r\ns=-\r\nt=0 0\r\n",
		"v=0\r\no=- 1 2 IN IP4 1.2.3.4\r\nc=IN IP4 1.2.3.4\r\nm=audio x RTP/AVP 0\r\n",
		"v=0\r\no=- 1 2 IN IP4 1.2.3.4\r\nc=IN IP4 1.2.3.4\r\nm=audio 99999 RTP/AVP 0\r\n",
		"v=0\r\no=- 1 2 IN IP4 1.2.3.4\r\nc=IN IP4 1.2.3.4\r\nm=audio 5000\r\n",
		"v=0\r\no=- 1 2 XX IP4 1.2.3.4\r\nc=IN IP4 1.2.3.4\r\nm=audio 5000 RTP/AVP 0\r\n",
		"v=0\r\no=- 1 2 IN IP4 1.2.3.4\r\nc=IN IP4 1.2.3.4\r\nm=video 5000 RTP/AVP 96\r\n",
		"v=0\r\no=- 1 2 IN IP4 1.2.3.4\r\nc=IN IP4 224.0.0.1\r\nm=audio 5000 RTP/AVP 0\r\n",
		"v=0\r\no=- 1 2 IN IP4 1.2.3.4\r\nc=IN IP6 1.2.3.4\r\nm=audio 5000 RTP/AVP 0\r\n",
		strings.Repeat("a", maxSDPSize+1),
		"\x00\x01\x02",
	} {
		if n, err := l.ParseAnswer([]byte(body)); err == nil {
			t.Errorf("ParseAnswer(%q) = %+v, want an error", clip(body), n)
		}
	}
}

func TestAnswer(t *testing.T) {
	for _, tc := range []struct {
		file  string
		local *Local
		want  Negotiated
		err   string
	}{
		// Opus and speex first: the offer's most preferred of ours is PCMU;
		// telephone-event/8000 (101), not /48000 (110); video rejected.
		{file: "linphone.sdp", want: Negotiated{Remote: ap("192.168.1.51:7078"), Codec: PCMU, RecvCodecs: []Codec{PCMU},
			SendEventPT: 101, HaveEvents: true, RecvEventPT: 101, EventClockRate: 8000, Ptime: 20 * time.Millisecond, Direction: SendRecv}},
		{file: "asterisk-refresh.sdp", want: Negotiated{Remote: ap("203.0.113.10:17216"), Codec: PCMU, RecvCodecs: []Codec{PCMU},
			SendEventPT: 101, HaveEvents: true, RecvEventPT: 101, EventClockRate: 8000, Ptime: 20 * time.Millisecond, Direction: SendRecv}},
		{file: "asterisk-hold.sdp", want: Negotiated{Remote: ap("203.0.113.10:17216"), Codec: PCMU, RecvCodecs: []Codec{PCMU},
			SendEventPT: 101, HaveEvents: true, RecvEventPT: 101, EventClockRate: 8000, Ptime: 20 * time.Millisecond, Direction: SendOnly, Hold: true}},
		{file: "freeswitch.sdp", want: Negotiated{Remote: ap("198.51.100.20:16384"), Codec: PCMA, RecvCodecs: []Codec{PCMA},
			SendEventPT: 101, HaveEvents: true, RecvEventPT: 101, EventClockRate: 8000, Ptime: 20 * time.Millisecond, Direction: SendRecv}},
		// PT 100 is Cisco's X-NSE, not telephone-event.
		{file: "cisco-g729-first.sdp", want: Negotiated{Remote: ap("192.0.2.31:16440"), Codec: PCMU, RecvCodecs: []Codec{PCMU},
			SendEventPT: 101, HaveEvents: true, RecvEventPT: 101, EventClockRate: 8000, Ptime: 20 * time.Millisecond, Direction: SendRecv}},
		{file: "baresip.sdp", want: Negotiated{Remote: ap("127.0.0.1:10000"), Codec: PCMU, RecvCodecs: []Codec{PCMU},
			SendEventPT: 101, HaveEvents: true, RecvEventPT: 101, EventClockRate: 8000, Ptime: 20 * time.Millisecond, Direction: SendRecv}},
		{file: "sipp-uac.sdp", want: Negotiated{Remote: ap("127.0.0.1:6000"), Codec: PCMU, RecvCodecs: []Codec{PCMU},
			EventClockRate: 8000, Ptime: 20 * time.Millisecond, Direction: SendRecv}},
		{file: "ipv6.sdp", local: testLocal6(), want: Negotiated{Remote: ap("[2001:db8::20]:6004"), Codec: PCMA, RecvCodecs: []Codec{PCMA},
			SendEventPT: 96, HaveEvents: true, RecvEventPT: 96, EventClockRate: 8000, Ptime: 20 * time.Millisecond, Direction: SendRecv}},
		{file: "cisco-t38.sdp", err: "offer has no m=audio stream"},
		{file: "g729-only.sdp", err: "offer has no codec in common with ours (offered G729; supported PCMA, PCMU)"},
	} {
		name := strings.TrimSuffix(tc.file, ".sdp")
		t.Run(name, func(t *testing.T) {
			l := tc.local
			if l == nil {
				l = testLocal()
			}
			b, got, err := l.Answer(readSDP(t, filepath.Join("offers", tc.file)))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want it to contain %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("\ngot  %+v\nwant %+v", got, tc.want)
			}
			golden(t, filepath.Join("offers", name+".answer.golden"), b)
			// RFC 3264 §6: as many m= lines as the offer, in order.
			offer, _ := parseStrict(readSDP(t, filepath.Join("offers", tc.file)))
			ans, err := parseStrict(b)
			if err != nil {
				t.Fatalf("own answer does not parse: %v", err)
			}
			if len(ans.m) != len(offer.m) {
				t.Fatalf("answer has %d m= lines, offer %d", len(ans.m), len(offer.m))
			}
			for i := range ans.m {
				if ans.m[i].media != offer.m[i].media || ans.m[i].proto != offer.m[i].proto {
					t.Errorf("m= line %d: answer %s %s, offer %s %s", i, ans.m[i].media, ans.m[i].proto, offer.m[i].media, offer.m[i].proto)
				}
			}
		})
	}
}

// TestOfferAnswerRoundTrip runs our offer through our own Answer (the
// simulated phone) and the answer back through ParseAnswer.
func TestOfferAnswerRoundTrip(t *testing.T) {
	for _, codecs := range [][]Codec{nil, {PCMU}, {PCMU, PCMA}} {
		us := &Local{Addr: ap("127.0.0.1:20000"), Codecs: codecs}
		phone := &Local{Addr: ap("127.0.0.1:30000"), Codecs: []Codec{PCMU, PCMA}, EventPT: 120}
		offer, err := us.Offer()
		if err != nil {
			t.Fatal(err)
		}
		answer, pn, err := phone.Answer(offer)
		if err != nil {
			t.Fatal(err)
		}
		n, err := us.ParseAnswer(answer)
		if err != nil {
			t.Fatal(err)
		}
		want := us.Codecs
		if want == nil {
			want = DefaultCodecs()
		}
		if n.Codec != want[0] || pn.Codec != want[0] {
			t.Errorf("codecs %v: we send %v, phone sends %v, want %v", codecs, n.Codec, pn.Codec, want[0])
		}
		if !n.HaveEvents || n.SendEventPT != 101 || n.RecvEventPT != 101 || pn.SendEventPT != 101 || pn.RecvEventPT != 101 {
			t.Errorf("events: ours %+v, phone's %+v", n, pn)
		}
		if n.Remote != phone.Addr || pn.Remote != us.Addr {
			t.Errorf("addresses: we send to %v, phone to %v", n.Remote, pn.Remote)
		}
	}
}

// TestVersion checks the o= version rules of RFC 3264 §8.
func TestVersion(t *testing.T) {
	l := &Local{Addr: ap("192.0.2.10:20000")}
	o1, err := l.Offer()
	if err != nil {
		t.Fatal(err)
	}
	if l.SessionID == 0 {
		t.Fatal("no session id chosen")
	}
	version := func(b []byte) string {
		for line := range strings.SplitSeq(string(b), "\r\n") {
			if strings.HasPrefix(line, "o=") {
				return strings.Fields(line)[2]
			}
		}
		return ""
	}
	if v := version(o1); v != "0" {
		t.Fatalf("first version %s", v)
	}
	o2, _ := l.Offer()
	c, _ := l.Current()
	if !bytes.Equal(o1, o2) || !bytes.Equal(o1, c) {
		t.Fatal("unchanged SDP changed")
	}
	// A change of address shows in the text: the version increases.
	l.Addr = ap("192.0.2.10:20002")
	c2, _ := l.Current()
	if v := version(c2); v != "1" {
		t.Fatalf("after a change version %s, want 1", v)
	}
	c3, _ := l.Current()
	if !bytes.Equal(c2, c3) {
		t.Fatal("Current changed without a change")
	}
	// Bump forces a new version once.
	l.Bump()
	c4, _ := l.Current()
	if v := version(c4); v != "2" {
		t.Fatalf("after Bump version %s, want 2", v)
	}
	// Answering the same offer twice (session refresh) keeps the version;
	// the first answer differs from our offer, so it bumps once.
	offer := readSDP(t, "offers/asterisk-refresh.sdp")
	a1, _, err := l.Answer(offer)
	if err != nil {
		t.Fatal(err)
	}
	a2, _, _ := l.Answer(offer)
	if v1, v2 := version(a1), version(a2); v1 != "3" || v2 != "3" || !bytes.Equal(a1, a2) {
		t.Fatalf("answers versions %s, %s; want 3, 3", v1, v2)
	}
	c5, _ := l.Current()
	if !bytes.Equal(c5, a2) {
		t.Fatal("Current is not the last answer")
	}
	// A hold offer changes our direction: the version increases.
	a3, _, _ := l.Answer(readSDP(t, "offers/asterisk-hold.sdp"))
	if v := version(a3); v != "4" || !strings.Contains(string(a3), "a=recvonly") {
		t.Fatalf("hold answer version %s:\n%s", v, a3)
	}
}

// addSDPSeeds adds the SDP bodies under testdata/sdp/<dir> to f's corpus.
func addSDPSeeds(f *testing.F, dirs ...string) {
	for _, dir := range dirs {
		seeds, _ := filepath.Glob(filepath.Join("testdata", "sdp", dir, "*.sdp"))
		for _, s := range seeds {
			b, err := os.ReadFile(s)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
}

func FuzzParseAnswer(f *testing.F) {
	addSDPSeeds(f, "answers")
	f.Add([]byte("v=0\no=- 1 2 IN IP4 1.2.3.4\nm=audio 1 RTP/AVP 0\nc=IN IP4 1.2.3.4\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		l := testLocal()
		n, err := l.ParseAnswer(b)
		if err != nil {
			return
		}
		// A successful parse is a usable configuration.
		if !n.Codec.Supported() || !n.Remote.IsValid() || n.Remote.Port() == 0 || len(n.RecvCodecs) == 0 {
			t.Fatalf("unusable negotiation %+v from %q", n, b)
		}
		if n.HaveEvents && n.SendEventPT < 96 {
			t.Fatalf("events on static payload type %d", n.SendEventPT)
		}
		_ = NewStream(n.StreamConfig(true))
	})
}

func FuzzAnswer(f *testing.F) {
	addSDPSeeds(f, "offers")
	f.Fuzz(func(t *testing.T, b []byte) {
		l := testLocal()
		out, n, err := l.Answer(b)
		if err != nil {
			return
		}
		if !n.Codec.Supported() || !n.Remote.IsValid() {
			t.Fatalf("unusable negotiation %+v", n)
		}
		// Our answer must parse, and be an acceptable answer to our
		// own parser (same m= count as the offer).
		offer, err := parseStrict(b)
		if err != nil {
			t.Fatalf("offer parsed by Answer but not by parseStrict: %v", err)
		}
		ans, err := parseStrict(out)
		if err != nil {
			t.Fatalf("own answer does not parse: %v\n%s", err, out)
		}
		if len(ans.m) != len(offer.m) {
			t.Fatalf("answer has %d m= lines, offer %d", len(ans.m), len(offer.m))
		}
	})
}

// FuzzParseSDP checks the one SDP reader on any input: no panic; a body
// it reads keeps its m= sections index for index, whether strict or not;
// Audio only ever returns a G.711 codec and events on a dynamic payload
// type; a body the strict reader accepts is accepted again after our own
// Answer writes it (the writer's output is grammar-clean).
func FuzzParseSDP(f *testing.F) {
	addSDPSeeds(f, "answers", "offers")
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := ParseSDP(b)
		if err != nil {
			if !errors.Is(err, ErrNotSDP) {
				t.Fatalf("ParseSDP error %v is not ErrNotSDP", err)
			}
			return
		}
		if a, ok := d.Audio(); ok {
			for _, c := range a.Codecs {
				if !c.Supported() {
					t.Fatalf("Audio codec %v", c)
				}
			}
			if a.HaveEvents && a.EventPT < 96 {
				t.Fatalf("events on static payload type %d", a.EventPT)
			}
		}
		if d.Err() != nil {
			return
		}
		l := testLocal()
		out, _, err := l.Answer(b)
		if err != nil {
			return
		}
		ans, err := parseStrict(out)
		if err != nil {
			t.Fatalf("own answer is not clean SDP: %v\n%s", err, out)
		}
		if len(ans.m) != len(d.m) {
			t.Fatalf("answer has %d m= sections, offer %d", len(ans.m), len(d.m))
		}
	})
}
