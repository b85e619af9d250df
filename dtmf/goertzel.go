package dtmf

// goertzelGeneric runs the eight Goertzel filters over one block:
//
//	s[n] = x[n] + c·s[n−1] − s[n−2],  c = 2·cos(2πf/fs)
//
// Each step depends on the one before, so a filter run over a block is one
// long dependency chain. Here all eight filters advance on every sample and
// the two halves of the block run side by side from a zero state (the
// recurrence is linear, so the whole block's state is the first half's
// carried forward by M^H plus the second half's). The CPU then overlaps
// sixteen independent chains. It also sums the energy and the samples of
// each sub-block.
func goertzelGeneric(b *bank, x *[blockSize]float32) {
	var a1, a2, h1, h2 [8]float32
	for j := range subBlocks / 2 {
		var ea, eh, sa, sh float32
		for n := j * subSize; n < (j+1)*subSize; n++ {
			u, v := x[n], x[n+halfSize]
			ea += u * u
			eh += v * v
			sa += u
			sh += v
			for i := range 8 {
				a1[i], a2[i] = coefs[i]*a1[i]-a2[i]+u, a1[i]
				h1[i], h2[i] = coefs[i]*h1[i]-h2[i]+v, h1[i]
			}
		}
		b.sub[j], b.sub[j+subBlocks/2] = ea, eh
		b.sum[j], b.sum[j+subBlocks/2] = sa, sh
	}
	b.m1, b.m2, b.h1, b.h2 = a1, a2, h1, h2
	for i := range 8 {
		b.s1[i] = prop[0][i]*a1[i] + prop[1][i]*a2[i] + h1[i]
		b.s2[i] = prop[2][i]*a1[i] + prop[3][i]*a2[i] + h2[i]
	}
}
