package replay

import (
	"bytes"
	"errors"
	"net/netip"
	"strconv"
	"strings"

	"github.com/hashcall/hashcall/media"
)

// sdpInfo is what replay reads from an SDP body seen in a capture: the
// first m=audio stream's address, formats and telephone-event payload type.
// It is deliberately lenient (captures hold SDP from every kind of peer); the
// decisions that matter are left to media's own offer/answer code, as live.
type sdpInfo struct {
	addr   netip.Addr
	port   uint16
	codecs []media.Codec // G.711 formats in the m= line's order, with their payload types
	te     uint8         // telephone-event/8000 payload type, when hasTE
	hasTE  bool
	fmts   string // the m= line's formats, for messages
}

// remote is the stream's address.
func (s *sdpInfo) remote() netip.AddrPort { return netip.AddrPortFrom(s.addr, s.port) }

// hasCodec reports whether s lists a format matching c (static payload
// types by number, dynamic ones by name).
func (s *sdpInfo) hasCodec(c media.Codec) (media.Codec, bool) {
	for _, o := range s.codecs {
		if o.Name == c.Name && (c.PayloadType >= 96 || o.PayloadType == c.PayloadType) {
			return o, true
		}
	}
	return media.Codec{}, false
}

var errNoAudio = errors.New("no m=audio stream")

// parseSDPInfo reads the first m=audio stream of an SDP body.
func parseSDPInfo(body []byte) (*sdpInfo, error) {
	var (
		info    sdpInfo
		sessC   netip.Addr
		mediaC  netip.Addr
		inAudio bool
		done    bool
		found   bool
		fmts    []string
		rtpmap  = map[int]string{}
		sawV    bool
	)
	for raw := range bytes.SplitSeq(body, []byte("\n")) {
		line := strings.TrimRight(string(raw), "\r \t")
		if len(line) < 2 || line[1] != '=' {
			continue
		}
		if line == "v=0" {
			sawV = true
		}
		val := line[2:]
		switch line[0] {
		case 'm':
			if found {
				done = true
			}
			if done {
				inAudio = false
				continue
			}
			f := strings.Fields(val)
			inAudio = len(f) >= 3 && f[0] == "audio"
			if !inAudio {
				continue
			}
			port, err := strconv.Atoi(strings.SplitN(f[1], "/", 2)[0])
			if err != nil || port < 0 || port > 0xffff {
				return nil, errors.New("bad m=audio port")
			}
			info.port, found, fmts = uint16(port), true, f[3:]
			info.fmts = strings.Join(fmts, " ")
		case 'c':
			a, ok := parseConnection(val)
			switch {
			case !ok:
			case inAudio:
				mediaC = a
			case !found:
				sessC = a
			}
		case 'a':
			if !inAudio {
				continue
			}
			if v, ok := strings.CutPrefix(val, "rtpmap:"); ok {
				pt, enc, ok := strings.Cut(v, " ")
				if n, err := strconv.Atoi(pt); ok && err == nil {
					rtpmap[n] = strings.TrimSpace(enc)
				}
			}
		}
	}
	if !sawV {
		return nil, errors.New("not an SDP body")
	}
	if !found {
		return nil, errNoAudio
	}
	info.addr = mediaC
	if !info.addr.IsValid() {
		info.addr = sessC
	}
	if !info.addr.IsValid() {
		return nil, errors.New("no c= address for the audio stream")
	}
	for _, f := range fmts {
		n, err := strconv.Atoi(f)
		if err != nil || n < 0 || n > 127 {
			continue
		}
		pt := uint8(n)
		name, rate := "", uint32(0)
		if enc, ok := rtpmap[n]; ok {
			parts := strings.Split(enc, "/")
			name = parts[0]
			if len(parts) > 1 {
				r, _ := strconv.Atoi(parts[1])
				rate = uint32(r)
			}
		} else {
			switch pt {
			case 0:
				name, rate = "PCMU", 8000
			case 8:
				name, rate = "PCMA", 8000
			}
		}
		switch {
		case strings.EqualFold(name, "PCMU") && rate == 8000:
			info.codecs = append(info.codecs, media.Codec{Name: "PCMU", PayloadType: pt, ClockRate: 8000})
		case strings.EqualFold(name, "PCMA") && rate == 8000:
			info.codecs = append(info.codecs, media.Codec{Name: "PCMA", PayloadType: pt, ClockRate: 8000})
		case strings.EqualFold(name, "telephone-event") && rate == 8000 && pt >= 96 && !info.hasTE:
			info.te, info.hasTE = pt, true
		}
	}
	return &info, nil
}

// parseConnection reads "IN IP4 192.0.2.1" (a multicast TTL suffix is
// ignored).
func parseConnection(v string) (netip.Addr, bool) {
	f := strings.Fields(v)
	if len(f) < 3 || f[0] != "IN" {
		return netip.Addr{}, false
	}
	host, _, _ := strings.Cut(f[2], "/")
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}
