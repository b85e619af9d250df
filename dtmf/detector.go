package dtmf

import (
	"math"
	"time"

	"github.com/zaf/g711"
)

// SampleRate is the audio rate the in-band detector works at.
const SampleRate = 8000

// Block geometry. Each block of blockSize samples (12.75 ms) is one Goertzel
// analysis; its two halves give a phase-difference frequency estimate, and its
// sub-blocks give the energy envelope used to time the gaps between tones.
const (
	blockSize = 102
	halfSize  = blockSize / 2
	subSize   = 17
	subBlocks = blockSize / subSize
)

// Acceptance rules, after ITU-T Q.24 (AT&T column) and ETSI ES 201 235-3.
const (
	// minToneDBm0: each tone must be at least this strong. Q.24 operates
	// down to −25 dBm0 and RFC 2833 asks for −36; ≤ −55 must never operate.
	// −42 leaves 6 dB of margin for −36 and 3 dB against −45.
	minToneDBm0 = -42.0
	// Twist: the high tone may be up to 4 dB above the low tone ("normal
	// twist" limit +4, reject at +6) or 8 dB below it (reverse twist, reject
	// at −10). The limits sit between operate and non-operate.
	maxTwistDB    = 5.0
	minTwistDB    = -9.0
	relativePeakB = 8.0 // other tones of a group at least this far below the chosen one
	// minToneShare is the share of the block's energy the two tones must
	// carry (after correcting for the Goertzel bin's scalloping loss). Speech
	// and music spread energy widely and fail it.
	minToneShare = 0.80
	// The frequency window: Q.24 operates within ±1.5 %, ETSI within
	// ±(1.5 % + 2 Hz), and never beyond ±3.5 %. The limit sits in between.
	freqTolRel = 0.025
	freqTolAbs = 1.0

	// quietShare: a sub-block is part of a gap when its energy is below this
	// share of the press's own level (−6 dB).
	quietShare = 0.25
	// splitGap: a gap this long ends a press, so that Q.24's 40 ms pause
	// separates two presses while ETSI's drop-outs under 20 ms do not. With
	// 17-sample sub-blocks the measured gap is within −26/+9 samples of the
	// true one, so 30 ms sits safely between 20 and 40 ms.
	splitGap = 240
	// maxInvalidBlocks: a press interrupted by this many blocks that are not
	// its key (loud audio that is not a gap) ends. A 20 ms loss spans at most
	// three blocks.
	maxInvalidBlocks = 4
	// minBlocks consecutive valid blocks make a press. A block passes only
	// when most of it is tone, so a 40 ms tone yields two at every
	// alignment; two blocks alone can still hold as little as ~182 samples
	// of tone (under Q.24's 23 ms non-operate limit at some alignments),
	// hence minTone below.
	minBlocks = 2
	// minTone: a press must also last this many samples (31.5 ms) on the
	// sub-block envelope, which times a tone's edges to within 12.75
	// samples: 23 ms (184) measures at most 210 and never operates, 40 ms
	// (320) at least 294 and always does.
	minTone = 252
)

// Derived constants.
var (
	coefs     [8]float32
	ampRef    = Amplitude(0) // peak amplitude of a 0 dBm0 sine
	minTonePw = toneMagSq(minToneDBm0)
	maxTwist  = math.Pow(10, maxTwistDB/10)
	minTwist  = math.Pow(10, minTwistDB/10)
	// blockTwistSlack widens the twist limits by 2 dB for a single block.
	blockTwistSlack = math.Pow(10, 2.0/10)
	relPeak         = math.Pow(10, -relativePeakB/10)
	// minEnergy is the smallest block energy that could hold two tones at the
	// minimum level; quieter blocks are skipped without analysis.
	minEnergy = float32(2 * float64(blockSize) * sq(ampRef*math.Pow(10, minToneDBm0/20)) / 2)

	// rotations holds per filter e^{−jω} and e^{−jωH} as cos/sin pairs.
	rotations [8]struct{ cos, sin, cosH, sinH float64 }
	// prop is M^H for the zero-input Goertzel recurrence
	// [s[n], s[n−1]] = [[c, −1], [1, 0]]·[s[n−1], s[n−2]], laid out as the
	// four matrix entries across the eight filters: it carries the first
	// half's final state to the end of the block.
	prop [4][8]float32

	ulawTable [256]float32
	alawTable [256]float32
)

func init() {
	for i, f := range toneFreqs {
		w := 2 * math.Pi * f / SampleRate
		coefs[i] = float32(2 * math.Cos(w))
		r := &rotations[i]
		r.sin, r.cos = math.Sincos(w)
		r.sinH, r.cosH = math.Sincos(w * halfSize)
		c := 2 * math.Cos(w)
		a, b, cc, dd := 1.0, 0.0, 0.0, 1.0 // identity
		for range halfSize {
			a, b, cc, dd = c*a-cc, c*b-dd, a, b
		}
		prop[0][i], prop[1][i], prop[2][i], prop[3][i] = float32(a), float32(b), float32(cc), float32(dd)
	}
	for i := range 256 {
		ulawTable[i] = float32(g711.DecodeUlawFrame(uint8(i)))
		alawTable[i] = float32(g711.DecodeAlawFrame(uint8(i)))
	}
}

func sq(x float64) float64 { return x * x }

// toneMagSq is |X|² of a full-block Goertzel for a sine at the given level:
// |X| = N·A/2.
func toneMagSq(dBm0 float64) float64 {
	a := ampRef * math.Pow(10, dBm0/20)
	return sq(float64(blockSize) * a / 2)
}

// dBm0 converts a full-block Goertzel |X|² back to a tone level.
func dBm0(magSq float64) float64 {
	if magSq <= 0 {
		return math.Inf(-1)
	}
	a := 2 * math.Sqrt(magSq) / blockSize
	return 20 * math.Log10(a/ampRef)
}

// bank is the output of one block through the eight Goertzel filters: per
// filter, the final state (s[N−1], s[N−2]) of the whole block and the final
// states of each half run on its own from zero, plus the energy of each
// sub-block. The layout is shared with the assembly kernel (go_asm.h).
type bank struct {
	s1, s2 [8]float32         // whole block
	m1, m2 [8]float32         // first half
	h1, h2 [8]float32         // second half, from a zero state
	sub    [subBlocks]float32 // Σx² per sub-block
	sum    [subBlocks]float32 // Σx per sub-block
}

// acEnvelope writes each sub-block's energy less its DC part,
// Σx² − (Σx)²/n: the envelope that times gaps, which a recording's DC
// offset must not fill.
func (b *bank) acEnvelope(dst *[subBlocks]float32) {
	for j := range dst {
		dst[j] = b.sub[j] - b.sum[j]*b.sum[j]/subSize
	}
}

// Detector is the streaming in-band DTMF detector for 8 kHz audio. Feed it
// samples in chunks of any size; it reports each press when the tone has
// lasted the minimum duration and again when it ends. A Detector is not safe
// for concurrent use; its methods do not allocate beyond growing dst.
type Detector struct {
	buf [blockSize]float32
	n   int   // samples in buf
	pos int64 // sample offset of buf[0]

	b bank

	env     [subBlocks]float32 // this block's sub-block AC energies
	prevEnv [subBlocks]float32 // the previous block's

	// candidate press (not yet reported)
	candKey     Key
	candBlocks  int     // valid blocks so far
	candStart   int64   // where its tone began
	candLoudEnd int64   // where its tone has lasted to
	candClosed  bool    // its tone has ended
	candRef     float32 // per-sample energy of its first block
	candRowPw   float64
	candColPw   float64

	// active press (reported)
	active    bool
	key       Key
	start     int64
	ref       float32 // per-sample energy of the press
	lastLoud  int64   // end of the latest loud sub-block
	lastValid int64   // end of the latest valid block of the press
	invalid   int     // consecutive blocks that were not the press's key
	level     float64
	twist     float64
}

// NewDetector returns a detector for 8 kHz audio.
func NewDetector() *Detector { return &Detector{} }

// Reset returns the detector to its initial state.
func (d *Detector) Reset() { *d = Detector{} }

// Feed processes 16-bit linear samples and appends any reports to dst.
func (d *Detector) Feed(dst []Event, samples []int16) []Event {
	for len(samples) > 0 {
		k := min(len(samples), blockSize-d.n)
		buf := d.buf[d.n : d.n+k]
		for i, s := range samples[:k] {
			buf[i] = float32(s)
		}
		samples = samples[k:]
		if d.n += k; d.n == blockSize {
			dst = d.block(dst)
		}
	}
	return dst
}

// FeedUlaw processes G.711 µ-law bytes and appends any reports to dst.
func (d *Detector) FeedUlaw(dst []Event, b []byte) []Event {
	return d.feedTable(dst, b, &ulawTable)
}

// FeedAlaw processes G.711 A-law bytes and appends any reports to dst.
func (d *Detector) FeedAlaw(dst []Event, b []byte) []Event {
	return d.feedTable(dst, b, &alawTable)
}

func (d *Detector) feedTable(dst []Event, b []byte, table *[256]float32) []Event {
	for len(b) > 0 {
		k := min(len(b), blockSize-d.n)
		buf := d.buf[d.n : d.n+k]
		for i, c := range b[:k] {
			buf[i] = table[c]
		}
		b = b[k:]
		if d.n += k; d.n == blockSize {
			dst = d.block(dst)
		}
	}
	return dst
}

// Flush ends the stream: a press still active is reported as ended. Samples
// short of a whole block are not analysed.
func (d *Detector) Flush(dst []Event) []Event {
	if d.active {
		dst = d.end(dst, d.lastLoud)
	}
	d.candKey, d.candBlocks = 0, 0
	return dst
}

// Position is the number of samples fed so far.
func (d *Detector) Position() int64 { return d.pos + int64(d.n) }

// block analyses one full block and advances the state machine.
func (d *Detector) block(dst []Event) []Event {
	goertzel(&d.b, &d.buf)
	d.b.acEnvelope(&d.env)
	start := d.pos
	d.pos += blockSize
	d.n = 0

	key, rowPw, colPw := d.classify()

	if d.active {
		dst = d.track(dst, start, key)
	}
	if !d.active {
		dst = d.candidate(dst, start, key, rowPw, colPw)
	}
	d.prevEnv = d.env
	return dst
}

// track follows an active press through one block.
func (d *Detector) track(dst []Event, start int64, key Key) []Event {
	// The gap envelope: sub-blocks below quietShare of the press's level
	// extend the current gap; a loud one ends it.
	thr := d.ref * quietShare * subSize
	for j, e := range d.env {
		end := start + int64(j+1)*subSize
		if e >= thr {
			d.lastLoud = end
			continue
		}
		if end-d.lastLoud >= splitGap {
			return d.end(dst, d.lastLoud)
		}
	}
	if key == d.key {
		d.invalid = 0
		d.lastValid = start + blockSize
		return dst
	}
	d.invalid++
	if d.invalid >= maxInvalidBlocks || key != 0 {
		return d.end(dst, min(d.lastLoud, d.lastValid+blockSize))
	}
	return dst
}

// candidate looks for the start of a new press: minBlocks consecutive valid
// blocks of one key whose tone, timed on the sub-block envelope, has lasted
// minTone samples.
func (d *Detector) candidate(dst []Event, start int64, key Key, rowPw, colPw float64) []Event {
	switch {
	case key == 0:
		if d.candBlocks == 0 || d.candClosed {
			d.candBlocks = 0
			return dst
		}
		// The tone may run on into this block, too briefly for it to pass.
		d.candLoudEnd = d.loudRun(start, d.candRef)
		d.candClosed = true
	case key != d.candKey || d.candClosed || d.candBlocks == 0:
		d.candKey, d.candBlocks, d.candClosed = key, 0, false
		d.candRowPw, d.candColPw = 0, 0
		// Refine the start: the tone may have begun in the previous block,
		// too briefly for that block to pass. Walk back through its loud tail.
		d.candRef = float32((rowPw + colPw) * 2 / blockSize / blockSize)
		thr := d.candRef * quietShare * subSize
		s := start
		for j := subBlocks - 1; j >= 0 && d.prevEnv[j] >= thr; j-- {
			s -= subSize
		}
		d.candStart = max(s, 0)
		fallthrough
	default:
		d.candBlocks++
		d.candRowPw += rowPw
		d.candColPw += colPw
		d.candLoudEnd = d.loudRun(start, d.candRef)
		d.candClosed = d.candLoudEnd < start+blockSize
	}
	// Twist on the average over the press's blocks: the leakage that
	// spoils one block's estimate changes phase from block to block.
	tw := d.candColPw / d.candRowPw
	if d.candBlocks < minBlocks || d.candLoudEnd-d.candStart < minTone || tw > maxTwist || tw < minTwist {
		if d.candClosed {
			d.candBlocks = 0
		}
		return dst
	}
	row := d.candRowPw / float64(d.candBlocks)
	col := d.candColPw / float64(d.candBlocks)
	d.active = true
	d.key = d.candKey
	d.start = d.candStart
	d.ref = float32((row + col) * 2 / blockSize / blockSize) // mean square per sample
	d.lastLoud = d.candLoudEnd
	d.lastValid = d.candLoudEnd
	d.invalid = 0
	lr, lc := dBm0(row), dBm0(col)
	d.level = (lr + lc) / 2
	d.twist = lc - lr
	d.candKey, d.candBlocks = 0, 0
	return append(dst, d.event(false, 0))
}

// loudRun returns where the run of loud sub-blocks from the start of the
// block ends: the block's end when every sub-block is at least quietShare
// of the per-sample energy ref.
func (d *Detector) loudRun(start int64, ref float32) int64 {
	thr := ref * quietShare * subSize
	for j, e := range d.env {
		if e < thr {
			return start + int64(j)*subSize
		}
	}
	return start + blockSize
}

func (d *Detector) end(dst []Event, end int64) []Event {
	d.active = false
	return append(dst, d.event(true, end))
}

func (d *Detector) event(ended bool, end int64) Event {
	e := Event{
		Key:         d.key,
		Source:      SourceInband,
		Ended:       ended,
		StartSample: d.start,
		Start:       sampleTime(d.start),
		LevelDBm0:   d.level,
		TwistDB:     d.twist,
	}
	if ended {
		e.EndSample = end
		e.End = sampleTime(end)
	}
	return e
}

func sampleTime(n int64) time.Duration {
	return time.Duration(n) * time.Second / SampleRate
}

// classify decides whether the block just filtered holds a valid DTMF key.
// It returns the key (0 for none) and the scalloping-corrected |X|² of its
// two tones.
func (d *Detector) classify() (Key, float64, float64) {
	b := &d.b
	var total float32
	for _, e := range b.sub {
		total += e
	}
	if total < minEnergy {
		return 0, 0, 0
	}
	var pw [8]float64
	for i := range pw {
		s1, s2 := float64(b.s1[i]), float64(b.s2[i])
		pw[i] = s1*s1 + s2*s2 - float64(coefs[i])*s1*s2
	}
	row, col := argmax4(pw[0:4]), 4+argmax4(pw[4:8])
	rp, cp := pw[row], pw[col]
	if rp < minTonePw*0.5 || cp < minTonePw*0.5 { // before correction, allow for scalloping
		return 0, 0, 0
	}
	for i := range 4 {
		if i != row && pw[i] > rp*relPeak {
			return 0, 0, 0
		}
		if i+4 != col && pw[i+4] > cp*relPeak {
			return 0, 0, 0
		}
	}
	// Frequency: the phase advance between the two halves' DFTs is
	// 2π·Δf·halfSize/SampleRate. It separates ±(1.5 % + 2 Hz) from ±3.5 %
	// where magnitude alone cannot (the 941 Hz bin loses 2.7 dB at +3.5 %).
	dfr, okr := d.offset(row)
	dfc, okc := d.offset(col)
	if !okr || !okc {
		return 0, 0, 0
	}
	rp /= scallop(dfr)
	cp /= scallop(dfc)
	if rp < minTonePw || cp < minTonePw {
		return 0, 0, 0
	}
	// Twist, coarsely: one block's estimate is off by up to ±2 dB when a
	// tone is off-frequency (the strong tone leaks into the weak one's bin).
	// The press is judged on the average over its blocks (candidate).
	if tw := cp / rp; tw > maxTwist*blockTwistSlack || tw < minTwist/blockTwistSlack {
		return 0, 0, 0
	}
	// Tone energy in the block: N·A²/2 = 2|X|²/N, against the block's
	// energy less its DC part (a recording with an offset keeps its tones;
	// the Goertzel bins themselves barely see DC).
	if (rp+cp)*2/blockSize < minToneShare*d.acEnergy(float64(total)) {
		return 0, 0, 0
	}
	return keyGrid[row][col-4], rp, cp
}

// acEnergy removes the DC component from the block energy total:
// Σx² − (Σx)²/N.
func (d *Detector) acEnergy(total float64) float64 {
	var sum float64
	for _, v := range d.b.sum {
		sum += float64(v)
	}
	return total - sum*sum/blockSize
}

// offset estimates the frequency offset of the tone in filter i from the
// phase advance between the block's halves, and whether it lies within the
// operate window.
func (d *Detector) offset(i int) (float64, bool) {
	b := &d.b
	r := &rotations[i]
	// For a run of M samples from a zero state, y = s[M−1] − e^{−jω}·s[M−2]
	// equals e^{jω(M−1)}·X, X the DFT of those samples at ω. Both halves
	// carry the same factor, so for a tone at ω+Δω,
	// arg(y₂·conj(y₁)) = (ω+Δω)·H.
	ar := float64(b.m1[i]) - r.cos*float64(b.m2[i])
	ai := r.sin * float64(b.m2[i])
	br := float64(b.h1[i]) - r.cos*float64(b.h2[i])
	bi := r.sin * float64(b.h2[i])
	zr := br*ar + bi*ai
	zi := bi*ar - br*ai
	if zr == 0 && zi == 0 {
		return 0, false
	}
	// Remove the ω·H the nominal frequency accounts for.
	zr, zi = zr*r.cosH+zi*r.sinH, zi*r.cosH-zr*r.sinH
	df := math.Atan2(zi, zr) * SampleRate / (2 * math.Pi * halfSize)
	return df, math.Abs(df) <= toneFreqs[i]*freqTolRel+freqTolAbs
}

// scallop is the power gain of the N-point Goertzel for a tone Δf Hz off
// its bin: |sin(πΔfN/fs) / (N·sin(πΔf/fs))|².
func scallop(df float64) float64 {
	x := math.Pi * df / SampleRate
	if math.Abs(x) < 1e-9 {
		return 1
	}
	g := math.Sin(x*blockSize) / (blockSize * math.Sin(x))
	return g * g
}

func argmax4(p []float64) int {
	m := 0
	for i := 1; i < 4; i++ {
		if p[i] > p[m] {
			m = i
		}
	}
	return m
}
