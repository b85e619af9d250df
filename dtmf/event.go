// Package dtmf finds key presses in a call's audio and telephone-event stream.
//
// hashcall approves a sign-in only when the callee presses the hash key (#).
// This package decides whether that happened. It is pure signal and event
// logic with no I/O: the caller feeds it samples, G.711 bytes or RTP
// telephone-event payloads together with a clock, so a live call and a replay
// of a capture run exactly the same code.
//
//   - [Detector] is the in-band detector: Goertzel filters over 8 kHz audio
//     (16-bit linear, µ-law or A-law), with the ITU-T Q.24 acceptance rules
//     for frequency, level, twist and timing.
//   - [Payload] is the RFC 4733 telephone-event payload, and [Receiver] the
//     per-stream state machine that turns event packets into presses.
//   - [Encoder] writes RFC 4733 packet sequences, for tests and simulated phones.
//   - [Combiner] merges the in-band, RFC 4733 and SIP INFO reports of one call
//     so that one physical press is reported once.
//
// Every path reports all sixteen DTMF keys (useful for diagnostics and a
// "wrong key" prompt), but only [KeyHash] is ever an acceptance: see
// [Key.Accepted].
package dtmf

import (
	"fmt"
	"time"
)

// Key is a DTMF key: '0'–'9', '*', '#', 'A'–'D'.
type Key byte

// KeyHash is the only key that verifies a sign-in.
const KeyHash Key = '#'

// Accepted reports whether a press of k approves a verification. Only # does.
func (k Key) Accepted() bool { return k == KeyHash }

// Redacted is how k shows where a code's digits are secret (verify mode
// code): "digit" for 0–9 and A–D, * and # as themselves.
func (k Key) Redacted() string {
	if k == '*' || k == KeyHash {
		return k.String()
	}
	return "digit"
}

// Valid reports whether k is one of the sixteen DTMF keys.
func (k Key) Valid() bool {
	switch {
	case k >= '0' && k <= '9', k >= 'A' && k <= 'D', k == '*', k == '#':
		return true
	}
	return false
}

func (k Key) String() string {
	if !k.Valid() {
		return fmt.Sprintf("Key(%d)", byte(k))
	}
	return string(rune(k))
}

// keyOfEvent maps RFC 4733 section 3.2 event codes 0–15 to keys.
var keyOfEvent = [16]Key{'0', '1', '2', '3', '4', '5', '6', '7', '8', '9', '*', '#', 'A', 'B', 'C', 'D'}

// KeyForEvent returns the key of an RFC 4733 DTMF event code (0–15), and
// false for any other code (16 is flash, which is not a key).
func KeyForEvent(code uint8) (Key, bool) {
	if int(code) >= len(keyOfEvent) {
		return 0, false
	}
	return keyOfEvent[code], true
}

// EventCode returns the RFC 4733 event code of k, and false when k is not a key.
func (k Key) EventCode() (uint8, bool) {
	for i, c := range keyOfEvent {
		if c == k {
			return uint8(i), true
		}
	}
	return 0, false
}

// Source says how a key press reached us.
type Source uint8

// Sources of key presses. Their strings are the API's ("inband", "rfc4733", "sip_info").
const (
	SourceInband Source = iota + 1
	SourceRFC4733
	SourceSIPInfo
)

func (s Source) String() string {
	switch s {
	case SourceInband:
		return "inband"
	case SourceRFC4733:
		return "rfc4733"
	case SourceSIPInfo:
		return "sip_info"
	}
	return fmt.Sprintf("Source(%d)", uint8(s))
}

// Event is one report about one key press. A press is reported twice: once
// when it is recognised (Ended false: Start is known, as soon as the tone or
// event has lasted the minimum duration) and once when it ends (Ended true:
// End is known too). A caller that only needs the decision acts on the first.
//
// Times are on the feeder's timeline: for the in-band [Detector] the position
// in the audio (sample offset / 8000), for the [Receiver] the clock the caller
// passes with each packet.
type Event struct {
	Key    Key
	Source Source
	Ended  bool
	Start  time.Duration
	End    time.Duration // zero until Ended

	// StartSample and EndSample are the in-band press's bounds as 8 kHz
	// sample offsets from the first sample fed; EndSample is zero until Ended.
	StartSample, EndSample int64

	// LevelDBm0 is the press's level: for in-band, the mean of the two
	// tones' levels in dBm0; for RFC 4733, minus the volume field.
	LevelDBm0 float64
	// TwistDB is the high tone's level minus the low tone's, in dB (in-band only).
	TwistDB float64
}

// Duration is End − Start for an ended press, and zero before.
func (e Event) Duration() time.Duration {
	if !e.Ended {
		return 0
	}
	return e.End - e.Start
}

func (e Event) String() string {
	state := "start"
	if e.Ended {
		state = "end"
	}
	return fmt.Sprintf("%s %s %s at %v dur %v level %.1f dBm0", e.Key, e.Source, state, e.Start, e.Duration(), e.LevelDBm0)
}
