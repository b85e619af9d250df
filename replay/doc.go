// Package replay runs captured calls (pcap and pcapng files) through the
// same receive path a live hashcall call uses, and reports the key presses
// a live call would have heard: the answer to "I pressed # and nothing
// happened" when all there is to go on is a capture from the PBX or SBC,
// and regression tests built from captures of one's own trunks.
//
// # What is read
//
// Files are read with github.com/gopacket/gopacket's pcapgo (pure Go, no
// libpcap): pcap and pcapng, optionally gzip-compressed. Frames are decoded
// with gopacket: Ethernet (with VLAN tags), Linux SLL and SLL2 (tshark -i
// any), raw IPv4/IPv6 and BSD loopback by a DecodingLayerParser that
// allocates nothing per packet; PPPoE (on Ethernet or alone), PPP, MPLS and
// the other encapsulations gopacket knows by gopacket.NewPacket. UDP over
// IPv4 or IPv6, with IP fragments reassembled (those that never complete
// are counted in Report.Fragments). A damaged file is a *FormatError or a
// warning, never a panic or a runaway allocation (FuzzRead).
//
// # How calls and streams are found
//
// From SIP over UDP when the capture has it: an offer (INVITE, or a 200 for
// a late offer) and its answer (the 200, an 18x with SDP, the ACK) set up
// both sides' receive paths. The caller's is configured exactly as hashcall
// negotiates live ([media.Local.Negotiate] on the body read once by
// [media.ParseSDP], with the offer's codecs and
// telephone-event payload type), the callee's mirrors it. Packets before
// the 200 OK are early media, which a live call drops; the BYE (or a
// failure response) ends the call. SIP INFO DTMF (application/dtmf-relay,
// application/dtmf) is delivered to the receiving side. Retransmissions and
// the second leg through a proxy are recognised by CSeq.
//
// Without SIP, RTP is recognised by its headers (two packets of one SSRC in
// sequence between unprivileged ports): PCMU on payload type 0, PCMA on 8,
// telephone-events on the first dynamic payload type whose packets look like
// DTMF events (or Options.EventPT), and audio on a dynamic payload type in
// Options.Codec. The first source sending to an address is its far end.
//
// # The receive path
//
// Each receiving address gets a [media.Stream], the live receive path
// without a socket: source and SSRC checks (with or without latching),
// G.711 decoding into the in-band detector, the RFC 4733 receiver, SIP
// INFO, and the combiner that reports each press once. It is clocked by the
// capture's timestamps (time since the first packet), and ticked every 50 ms
// of capture time as a live session is, so RFC 4733 timeouts behave as they
// did live. The per-packet path allocates nothing.
//
// Packets the live path drops are counted per stream by reason
// ([Drops]), and those that might carry keys — early media, another
// source, another SSRC, telephone-events on a payload type that was not
// negotiated, packets after the call ended — are replayed on a shadow path
// of their own, so that a press in them is reported with Live false and
// the reason a live call ignored it.
//
// # Results
//
// A [Report] lists the calls, the RTP streams (codec, packets, lost,
// duplicated and reordered by sequence number, drops, duration) and each
// stream's presses. [Report.Accepted] gives the presses that verify a call
// ("#" — heard live, and the hash key), [Report.Keys] every key a live call
// would have heard. [Verify], [AssertVerified] and [AssertNotVerified] turn
// a capture into a test in one line.
//
// What replay cannot see it does not guess: SIP over TCP or TLS (the
// streams are then found by heuristics), SRTP, codecs other than G.711
// (their packets are counted under PayloadType drops), and timing that
// differs between where the capture was taken and where hashcall ran (a
// packet captured just after the 200 OK may still have been early at
// hashcall).
package replay
