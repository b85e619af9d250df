package dtmf

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// PayloadSize is the size of one RFC 4733 telephone-event block in bytes.
const PayloadSize = 4

// MaxVolume is the largest value of the 6-bit volume field (−63 dBm0).
const MaxVolume = 63

// Errors returned by [Payload.Unmarshal] and [Payload.MarshalTo]. They are
// sentinels: test for them with errors.Is.
var (
	// ErrShortPayload means fewer than PayloadSize bytes were given.
	ErrShortPayload = errors.New("dtmf: telephone-event payload shorter than 4 bytes")
	// ErrPayloadSize means the payload length is not a multiple of PayloadSize
	// (RFC 4733 §2.5.1.5: a packet carries whole 4-byte event blocks only).
	ErrPayloadSize = errors.New("dtmf: telephone-event payload length not a multiple of 4")
	// ErrVolumeRange means Payload.Volume does not fit the 6-bit volume field.
	ErrVolumeRange = errors.New("dtmf: telephone-event volume above 63")
)

// Payload is one RFC 4733 telephone-event block (RFC 4733 §2.3):
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|     event     |E|R| volume    |          duration             |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// The methods follow the style of github.com/pion/rtp: Unmarshal decodes into
// the caller's struct and MarshalTo writes into the caller's buffer, neither
// allocating.
type Payload struct {
	// Event is the event code (§2.3.1); DTMF codes are in §3.2: 0–9 the
	// digits, 10 '*', 11 '#', 12–15 'A'–'D', 16 flash.
	Event uint8
	// End is the E bit (§2.3.2): set in the final packet(s) of an event.
	End bool
	// Reserved is the R bit (§2.3.3). Senders must send zero and receivers
	// must ignore it; it is kept only so that a decode/encode round-trips.
	Reserved bool
	// Volume is the tone's power level expressed in dBm0 after dropping the
	// sign (§2.3.4): 0 is 0 dBm0, 63 is −63 dBm0. Only 6 bits: 0–63.
	Volume uint8
	// Duration is the event's duration so far, in RTP timestamp units from
	// the packet's RTP timestamp (§2.3.5), at most 0xFFFF per segment (§2.5.1.3).
	Duration uint16
}

// Unmarshal decodes b into p. b must hold one or more whole 4-byte blocks:
// shorter input returns [ErrShortPayload], a length that is not a multiple of
// four returns [ErrPayloadSize]. When b holds several blocks (RFC 4733
// §2.5.1.5, several events in one packet) the first block is decoded.
// Unmarshal does not allocate.
func (p *Payload) Unmarshal(b []byte) error {
	if len(b) < PayloadSize {
		return ErrShortPayload
	}
	if len(b)%PayloadSize != 0 {
		return ErrPayloadSize
	}
	p.Event = b[0]
	p.End = b[1]&0x80 != 0
	p.Reserved = b[1]&0x40 != 0
	p.Volume = b[1] & 0x3f
	p.Duration = binary.BigEndian.Uint16(b[2:4])
	return nil
}

// MarshalSize returns the encoded size of p: always [PayloadSize].
func (p Payload) MarshalSize() int { return PayloadSize }

// MarshalTo encodes p into b and returns the number of bytes written. It
// fails when b is shorter than [PayloadSize] (wrapping io.ErrShortBuffer) or
// when the volume does not fit in 6 bits ([ErrVolumeRange]). It does not
// allocate on success.
func (p Payload) MarshalTo(b []byte) (int, error) {
	if p.Volume > MaxVolume {
		return 0, ErrVolumeRange
	}
	if len(b) < PayloadSize {
		return 0, fmt.Errorf("dtmf: marshal telephone-event into %d bytes: %w", len(b), io.ErrShortBuffer)
	}
	b[0] = p.Event
	b[1] = p.Volume
	if p.End {
		b[1] |= 0x80
	}
	if p.Reserved {
		b[1] |= 0x40
	}
	binary.BigEndian.PutUint16(b[2:4], p.Duration)
	return PayloadSize, nil
}

// Marshal encodes p into a new 4-byte slice.
func (p Payload) Marshal() ([]byte, error) {
	b := make([]byte, PayloadSize)
	n, err := p.MarshalTo(b)
	if err != nil {
		return nil, err
	}
	return b[:n], nil
}

// Key returns the DTMF key of p's event code and false when the code is not
// one of the sixteen DTMF keys (RFC 4733 §3.2; 16 is flash, not a key).
func (p Payload) Key() (Key, bool) { return KeyForEvent(p.Event) }

// String renders p's fields for logs and test failures.
func (p Payload) String() string {
	return fmt.Sprintf("event %d end %t volume %d duration %d", p.Event, p.End, p.Volume, p.Duration)
}
