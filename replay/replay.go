package replay

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/hashcall/hashcall/dtmf"
	"github.com/hashcall/hashcall/media"
)

// Options tune how a capture is read. The zero value replays as a default
// hashcall would have received the calls.
type Options struct {
	// EventPT is the telephone-event payload type of RTP streams found
	// without SIP (96–127); 0 detects it: the first dynamic payload type
	// whose packets look like RFC 4733 DTMF events. Streams set up by SIP
	// in the capture use the negotiated payload type, as live.
	EventPT uint8
	// Codec is the audio codec of RTP streams found without SIP that use
	// a dynamic payload type (96–127); the zero value decodes only the
	// static payload types 0 (PCMU) and 8 (PCMA). Ignored for streams set
	// up by SIP.
	Codec media.Codec
	// Latch replays with symmetric latching (config
	// media.symmetric_latching): the first valid source is accepted
	// instead of only the address in the far end's SDP.
	Latch bool
	// Audio keeps each stream's decoded audio in Stream.Audio (8 kHz), for
	// listening to what the receiver heard.
	Audio bool
}

// Report is the outcome of replaying one capture.
type Report struct {
	// Format is "pcap" or "pcapng", with ".gz" when compressed.
	Format string
	// LinkTypes names the link types of the packets read, such as
	// "Ethernet" or "Linux SLL2".
	LinkTypes []string
	// Start and End are the capture times of the first and last packet.
	Start, End time.Time
	// Frames is the number of packets in the file; Datagrams the UDP
	// datagrams found in them (after reassembly); SIP the SIP messages
	// read.
	Frames, Datagrams, SIP int
	// Fragments counts IP fragments: Reassembled datagrams, and fragments
	// of datagrams never completed (Incomplete).
	Fragments FragmentStats
	// Skipped counts packets that are not UDP over IPv4 or IPv6 (TCP,
	// ARP, …), or of an unsupported link type; Truncated those cut short
	// by the capture's snap length.
	Skipped, Truncated int
	// Calls are the SIP calls found, in the order of their first INVITE.
	Calls []Call
	// Streams are the RTP streams found, in order of their first packet.
	Streams []Stream
	// Warnings describe problems that did not stop the replay, such as a
	// file cut short or a stream that could not be set up.
	Warnings []string
}

// FragmentStats counts IP fragment reassembly.
type FragmentStats struct {
	Fragments   int // fragments read
	Reassembled int // datagrams put back together
	Incomplete  int // datagrams whose fragments never all arrived
}

// Call is one SIP call (dialog) seen in the capture.
type Call struct {
	CallID string
	// Status is the final response to the INVITE (0 when none was seen).
	Status int
	// Answered is the capture time of the 200 OK; zero if never answered.
	Answered time.Time
	// Ended is the capture time of the BYE (or of the failure response).
	Ended time.Time
	// Codec is what the caller receives (the codecs of its offer that the
	// answer lists, as hashcall's media negotiates), and Events whether
	// telephone-events were agreed, with the payload type the caller
	// receives them on.
	Codec   string
	Events  bool
	EventPT uint8
	// Info counts SIP INFO DTMF requests.
	Info int
	// Diverted reports that a response to the INVITE showed the call
	// forwarded (a 181, Diversion or History-Info; see sip.Diversion), with
	// the reasons given; a live hashcall refuses such a call by default.
	Diverted         bool
	DiversionReasons []string
}

// Found says how a stream was recognised.
const (
	FoundSIP       = "sip"       // its addresses are in SDP seen in the capture
	FoundHeuristic = "heuristic" // no SIP: recognised as RTP by its headers
)

// Stream is one RTP stream: the packets from one source address to one
// destination address with one SSRC. Packets to a destination that are not
// RTP (or are RTCP) make a stream of their own with SSRC 0.
type Stream struct {
	// Name is "src->dst ssrc=0x1a2b3c4d".
	Name     string
	Src, Dst netip.AddrPort
	SSRC     uint32
	// Found is FoundSIP or FoundHeuristic; CallID names the call of a
	// stream found from SIP.
	Found  string
	CallID string
	// Kind is "rtp", "rtcp", "not-rtp", or "sip" for the pseudo-stream that
	// carries SIP INFO presses of a call without RTP to attribute them to.
	Kind string
	// Codec is the audio codec of its packets ("PCMU", "PCMA", "PT 18" for
	// one replay cannot decode, "" when it carried no audio).
	Codec string
	// PayloadTypes are the RTP payload types seen, in increasing order.
	PayloadTypes []uint8
	// Packets counts every packet, Events the telephone-event packets
	// among them.
	Packets, Events uint64
	// Lost, Duplicated and Reordered follow RFC 3550 Appendix A.1 on the
	// sequence numbers: expected minus received, packets whose sequence
	// number was already seen (RFC 4733 end packets repeated with one
	// sequence number count here), and packets that arrived after a later
	// one.
	Lost, Duplicated, Reordered uint64
	// Dropped counts the packets the live receive path would have dropped,
	// by reason.
	Dropped Drops
	// First and Last are the capture times of its first and last packet.
	First, Last time.Time
	// Presses are the key presses found in the stream, in time order:
	// those a live call would have reported (Live), and those it would
	// have ignored, with the reason.
	Presses []Press
	// Audio is the decoded audio as received, 8 kHz, with lost packets
	// concealed by silence; only with Options.Audio.
	Audio []int16
}

// Duration is the time from the first to the last packet.
func (s *Stream) Duration() time.Duration { return s.Last.Sub(s.First) }

// Drops counts packets the live receive path drops, by reason: the reasons
// of [media.Drops], and AfterEnd for packets after the call ended.
type Drops struct {
	media.Drops
	// AfterEnd counts packets after the call's BYE or failure.
	AfterEnd uint64
}

// Total is the number of packets dropped for any reason.
func (d Drops) Total() uint64 { return d.Drops.Total() + d.AfterEnd }

// Press is one key press.
type Press struct {
	Key    dtmf.Key
	Source dtmf.Source
	// At is the capture time the press started; Offset the same time from
	// the start of the capture.
	At     time.Time
	Offset time.Duration
	// Duration is how long it lasted (zero when its end was not seen).
	Duration time.Duration
	// LevelDBm0 is its level (in-band: measured; RFC 4733: the volume
	// field).
	LevelDBm0 float64
	// Live reports whether a live call would have reported the press:
	// after the answer, from the far end's address and SSRC, on a
	// negotiated payload type. Reason says why not otherwise.
	Live   bool
	Reason string
	// Accepted reports whether the press verifies a call: Live and the
	// hash key (see dtmf.Key.Accepted).
	Accepted bool
	// Stream is the index of its stream in Report.Streams.
	Stream int
}

// Verdict says what a live call would have made of the press: "accepted",
// "not accepted" or "ignored: " and the reason.
func (p Press) Verdict() string {
	switch {
	case !p.Live:
		return "ignored: " + p.Reason
	case !p.Accepted:
		return "not accepted"
	}
	return "accepted"
}

// Presses returns every press of every stream in time order.
func (r *Report) Presses() []Press {
	var out []Press
	for _, s := range r.Streams {
		out = append(out, s.Presses...)
	}
	slices.SortStableFunc(out, func(a, b Press) int { return a.At.Compare(b.At) })
	return out
}

// Keys returns the keys of the presses a live call would have reported, in
// time order, for example "5#".
func (r *Report) Keys() string { return r.keys(func(p Press) bool { return p.Live }) }

// Accepted returns the accepted presses' keys in time order: "#" for each
// press that verifies a call, "" when none does.
func (r *Report) Accepted() string { return r.keys(func(p Press) bool { return p.Accepted }) }

// keys returns the keys of the presses that match, in time order.
func (r *Report) keys(match func(Press) bool) string {
	var b strings.Builder
	for _, p := range r.Presses() {
		if match(p) {
			b.WriteString(p.Key.String())
		}
	}
	return b.String()
}

// Verified reports whether a press in the capture verifies a call.
func (r *Report) Verified() bool { return r.Accepted() != "" }

// Expect checks the capture against want. When want is made of hash keys
// only ("#", "##", or "" for none), it is compared with the accepted
// presses (Accepted); when it names other keys ("5#"), with every key a
// live call would have reported (Keys). The error names what was found.
func (r *Report) Expect(want string) error {
	got, what := r.Accepted(), "accepted presses"
	if strings.Trim(want, "#") != "" {
		got, what = r.Keys(), "key presses"
	}
	if got == want {
		return nil
	}
	return fmt.Errorf("%s %q, expected %q", what, got, want)
}

// File replays the capture in the named file.
func File(path string, opts Options) (*Report, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return Read(f, opts)
}

// Read replays a pcap or pcapng capture (optionally gzip-compressed) from
// r. It fails with a *FormatError when r is not a capture it can read. A
// file that ends in the middle of a packet, or is damaged after some
// packets were read, is replayed up to there, with a warning.
func Read(r io.Reader, opts Options) (*Report, error) {
	src, err := openSource(r)
	if err != nil {
		return nil, err
	}
	e := newEngine(opts)
	e.rep.Format = src.format
	if src.pcap != nil && !linkSupported(src.link) {
		return nil, formatErrorf("unsupported link type %s (supported: Ethernet with VLAN tags, PPPoE and MPLS, Linux SLL and SLL2, PPP, raw IPv4/IPv6, BSD loopback, 802.11)", linkName(src.link))
	}
	for {
		data, ts, link, err := src.next()
		if err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			var fe *FormatError
			if e.rep.Frames == 0 && errors.As(err, &fe) {
				return nil, err
			}
			if errors.Is(err, io.ErrUnexpectedEOF) {
				e.warn("the capture ends in the middle of a packet (cut short while it was written?)")
			} else {
				e.warn(fmt.Sprintf("reading stopped after %d packets: %v", e.rep.Frames, err))
			}
			break
		}
		e.frame(link, data, ts)
	}
	if e.rep.Frames > 0 && len(e.rep.LinkTypes) > 0 && e.rep.Datagrams == 0 && e.unsupported == e.rep.Frames {
		return nil, formatErrorf("unsupported link type %s (supported: Ethernet with VLAN tags, PPPoE and MPLS, Linux SLL and SLL2, PPP, raw IPv4/IPv6, BSD loopback, 802.11)", e.rep.LinkTypes[0])
	}
	return e.finish(), nil
}
