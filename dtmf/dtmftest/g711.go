package dtmftest

import "github.com/zaf/g711"

// EncodeUlaw returns s encoded as G.711 µ-law, one byte per sample.
func EncodeUlaw(s []int16) []byte { return each(s, g711.EncodeUlawFrame) }

// EncodeAlaw returns s encoded as G.711 A-law, one byte per sample.
func EncodeAlaw(s []int16) []byte { return each(s, g711.EncodeAlawFrame) }

// DecodeUlaw returns G.711 µ-law bytes decoded to 16-bit linear samples.
func DecodeUlaw(b []byte) []int16 { return each(b, g711.DecodeUlawFrame) }

// DecodeAlaw returns G.711 A-law bytes decoded to 16-bit linear samples.
func DecodeAlaw(b []byte) []int16 { return each(b, g711.DecodeAlawFrame) }

// RoundTripUlaw returns s encoded to µ-law and decoded again: what a
// detector sees after one G.711 µ-law hop.
func RoundTripUlaw(s []int16) []int16 {
	return each(s, func(v int16) int16 { return g711.DecodeUlawFrame(g711.EncodeUlawFrame(v)) })
}

// RoundTripAlaw returns s encoded to A-law and decoded again: what a
// detector sees after one G.711 A-law hop.
func RoundTripAlaw(s []int16) []int16 {
	return each(s, func(v int16) int16 { return g711.DecodeAlawFrame(g711.EncodeAlawFrame(v)) })
}

// each returns f of every element of in, in a new slice.
func each[S, T any](in []S, f func(S) T) []T {
	out := make([]T, len(in))
	for i, v := range in {
		out[i] = f(v)
	}
	return out
}
