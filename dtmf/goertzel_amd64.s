//go:build amd64 && !purego

#include "textflag.h"
#include "go_asm.h"

// func goertzelAVX2(b *bank, x *[blockSize]float32)
//
// Y0: the eight coefficients. Y1/Y2: s[n−1]/s[n−2] of the first half,
// Y5/Y6: of the second half; X9/X10: the halves' sub-block energy, X11/X12
// their sub-block sums.
TEXT ·goertzelAVX2(SB), NOSPLIT, $0-16
	MOVQ b+0(FP), DI
	MOVQ x+8(FP), SI
	VMOVUPS ·coefs(SB), Y0
	VXORPS  Y1, Y1, Y1
	VXORPS  Y2, Y2, Y2
	VXORPS  Y5, Y5, Y5
	VXORPS  Y6, Y6, Y6
	XORQ    CX, CX

sub:
	VXORPS X9, X9, X9
	VXORPS X10, X10, X10
	VXORPS X11, X11, X11
	VXORPS X12, X12, X12
	MOVQ   $const_subSize, R8

sample:
	VBROADCASTSS (SI), Y3
	VBROADCASTSS const_halfSize*4(SI), Y7
	VSUBPS       Y2, Y3, Y4   // x − s[n−2]
	VSUBPS       Y6, Y7, Y8
	VFMADD231PS  Y1, Y0, Y4   // + c·s[n−1]
	VFMADD231PS  Y5, Y0, Y8
	VFMADD231SS  X3, X3, X9
	VFMADD231SS  X7, X7, X10
	VADDSS       X3, X11, X11
	VADDSS       X7, X12, X12
	VMOVAPS      Y1, Y2
	VMOVAPS      Y4, Y1
	VMOVAPS      Y5, Y6
	VMOVAPS      Y8, Y5
	ADDQ         $4, SI
	DECQ         R8
	JNZ          sample

	VMOVSS X9, bank_sub(DI)(CX*4)
	VMOVSS X10, bank_sub+const_subBlocks/2*4(DI)(CX*4)
	VMOVSS X11, bank_sum(DI)(CX*4)
	VMOVSS X12, bank_sum+const_subBlocks/2*4(DI)(CX*4)
	INCQ   CX
	CMPQ   CX, $const_subBlocks/2
	JNE    sub

	VMOVUPS Y1, bank_m1(DI)
	VMOVUPS Y2, bank_m2(DI)
	VMOVUPS Y5, bank_h1(DI)
	VMOVUPS Y6, bank_h2(DI)

	// Whole block: s = M^H·(first half) + (second half).
	LEAQ        ·prop(SB), DX
	VMOVUPS     0(DX), Y3
	VMOVUPS     32(DX), Y4
	VFMADD231PS Y1, Y3, Y5
	VFMADD231PS Y2, Y4, Y5
	VMOVUPS     64(DX), Y3
	VMOVUPS     96(DX), Y4
	VFMADD231PS Y1, Y3, Y6
	VFMADD231PS Y2, Y4, Y6
	VMOVUPS     Y5, bank_s1(DI)
	VMOVUPS     Y6, bank_s2(DI)
	VZEROUPPER
	RET
