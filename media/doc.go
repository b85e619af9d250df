// Package media carries the audio of a hashcall verification call: the SDP
// offer/answer that sets it up, the RTP session that sends the prompt and
// receives the callee's key press, G.711 and WAV prompt audio.
//
// The pieces, from the outside in:
//
//   - [Local] writes our SDP ([Local.Offer], [Local.Answer], [Local.Current])
//     and reads the far end's ([Local.ParseAnswer]) into a [Negotiated]: the
//     offer/answer model of RFC 3264. [ParseSDP] is hashcall's one SDP
//     reader (lenient, section by section; live calls and the replay of
//     captures use it alike) and Local the one writer.
//   - [Stream] is the receive path of one call without any I/O: RTP packets
//     and arrival times go in, key press reports ([dtmf.Event]) come out. It
//     checks where each packet came from (the address from SDP, or any
//     source until the latch when latching), locks onto one stream only
//     after 3 in-order packets of one SSRC (holding the packets before, so
//     one forged packet never decides nor locks anyone out), decodes G.711 audio into
//     the in-band [dtmf.Detector], hands telephone-events (RFC 4733) to a
//     [dtmf.Receiver] and merges both, and SIP INFO, in a [dtmf.Combiner] so
//     that one press is reported once. A live [Session] and a replay of a
//     capture drive the same code.
//   - [Session] is one UDP socket per call ([Listen]): a receive goroutine
//     that feeds a Stream once the call is answered ([Session.Start]) and
//     drops everything before (early media must never verify a call). Its
//     RTP is sent every 20 ms on an absolute schedule by pacers shared by
//     all calls (four goroutines per core, each a timing wheel of 1 ms
//     phases; [PacerStats] has their figures), silence when no prompt plays
//     ([Session.Play], [Session.PlayAudio]) so that trunks and SBCs do not
//     hang up on RTP inactivity. It sends from the socket it receives on
//     (symmetric RTP, RFC 4961).
//   - [Audio] is a prompt encoded once per G.711 law and shared read-only by
//     every call that plays it.
//   - [LoadWAV] and [ReadWAV] read prompts: 8 kHz mono PCM 16-bit, µ-law or
//     A-law WAV files.
//
// Only G.711 ([PCMU], [PCMA]) at 20 ms packets is supported; telephone-event
// is negotiated alongside it. Per-packet work allocates nothing.
package media
