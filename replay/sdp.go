package replay

import (
	"net/netip"

	"github.com/hashcall/hashcall/media"
)

// sdpInfo is an SDP body seen in a capture, read once by media's one SDP
// reader: the body, for negotiating its answer as live, and its first
// m=audio stream, read without the live checks (captures hold SDP from
// every kind of peer).
type sdpInfo struct {
	media.AudioStream
	sdp *media.SDP
}

// remote is the stream's address.
func (s *sdpInfo) remote() netip.AddrPort { return s.Remote }

// hasCodec reports whether s lists a format matching c (static payload
// types by number, dynamic ones by name).
func (s *sdpInfo) hasCodec(c media.Codec) (media.Codec, bool) {
	for _, o := range s.Codecs {
		if o.Name == c.Name && (c.PayloadType >= 96 || o.PayloadType == c.PayloadType) {
			return o, true
		}
	}
	return media.Codec{}, false
}

// parseSDPInfo reads an SDP body with an m=audio stream; it returns false
// for anything else.
func parseSDPInfo(body []byte) (*sdpInfo, bool) {
	d, err := media.ParseSDP(body)
	if err != nil {
		return nil, false
	}
	a, ok := d.Audio()
	if !ok {
		return nil, false
	}
	return &sdpInfo{AudioStream: a, sdp: d}, true
}
