//go:build amd64 && !purego

package dtmf

import "golang.org/x/sys/cpu"

// goertzelAVX2 is goertzelGeneric with the eight filters in the eight float32
// lanes of a YMM register: per sample one broadcast, one subtract and one
// fused multiply-add per half. Implemented in goertzel_amd64.s.
//
//go:noescape
func goertzelAVX2(b *bank, x *[blockSize]float32)

var goertzel = selectGoertzel()

func selectGoertzel() func(*bank, *[blockSize]float32) {
	if cpu.X86.HasAVX2 && cpu.X86.HasFMA {
		return goertzelAVX2
	}
	return goertzelGeneric
}
