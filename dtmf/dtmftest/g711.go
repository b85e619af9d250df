package dtmftest

import "github.com/zaf/g711"

// EncodeUlaw returns s encoded as G.711 µ-law, one byte per sample.
func EncodeUlaw(s []int16) []byte {
	out := make([]byte, len(s))
	for i, v := range s {
		out[i] = g711.EncodeUlawFrame(v)
	}
	return out
}

// EncodeAlaw returns s encoded as G.711 A-law, one byte per sample.
func EncodeAlaw(s []int16) []byte {
	out := make([]byte, len(s))
	for i, v := range s {
		out[i] = g711.EncodeAlawFrame(v)
	}
	return out
}

// DecodeUlaw returns G.711 µ-law bytes decoded to 16-bit linear samples.
func DecodeUlaw(b []byte) []int16 {
	out := make([]int16, len(b))
	for i, v := range b {
		out[i] = g711.DecodeUlawFrame(v)
	}
	return out
}

// DecodeAlaw returns G.711 A-law bytes decoded to 16-bit linear samples.
func DecodeAlaw(b []byte) []int16 {
	out := make([]int16, len(b))
	for i, v := range b {
		out[i] = g711.DecodeAlawFrame(v)
	}
	return out
}

// RoundTripUlaw returns s encoded to µ-law and decoded again: what a
// detector sees after one G.711 µ-law hop.
func RoundTripUlaw(s []int16) []int16 {
	out := make([]int16, len(s))
	for i, v := range s {
		out[i] = g711.DecodeUlawFrame(g711.EncodeUlawFrame(v))
	}
	return out
}

// RoundTripAlaw returns s encoded to A-law and decoded again: what a
// detector sees after one G.711 A-law hop.
func RoundTripAlaw(s []int16) []int16 {
	out := make([]int16, len(s))
	for i, v := range s {
		out[i] = g711.DecodeAlawFrame(g711.EncodeAlawFrame(v))
	}
	return out
}
