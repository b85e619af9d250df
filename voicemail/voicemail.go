// Package voicemail recognises an answering machine from the far end's
// audio after the answer, so that a verification call that reached a
// voicemail greeting ends with outcome voicemail at once instead of
// no_key after every attempt.
//
// Two signs, either enough:
//
//   - The greeting: speech that starts soon after the answer and runs on.
//     hashcall's prompt starts as the call is answered; a person says
//     "hello?" and stops to listen, a machine talks on past the start of
//     the prompt. A talk spurt (speech with pauses shorter than Config.Gap)
//     that starts within Config.StartWithin of the answer and lasts longer
//     than Config.Greeting is a greeting.
//   - The beep: a single steady tone (one frequency carrying most of the
//     energy, the same frequency throughout: not DTMF, not speech) of
//     Config.Beep or more after speech, as recorders play before they
//     record.
//
// Echo of our own prompt is not speech either: while we play, the caller
// tells the Detector how loud what we sent lately was ([Detector.Echo]),
// and a frame quieter than that by less than Config.EchoLossDB could be
// its echo (a line's hybrid returns it 12 dB or more down when no echo
// canceller removes it). Such frames count as silence: a person's pause
// stays a pause, and a machine that talks over our prompt is louder than
// its echo.
//
// Steady tones are not speech: a sine or a pair of tones (DTMF, a network
// tone, a softphone's test tone, a fax's answer tone) that lasts longer
// than a vowel does not make a talk spurt, so a far end that sends a tone
// from the answer on is not taken for a greeting.
//
// The Detector works on 8 kHz linear audio in 20 ms frames, costs a few
// hundred operations per sample only on frames loud enough to be speech,
// allocates nothing once made, and is not safe for concurrent use.
package voicemail

import (
	"math"
	"time"

	"github.com/hashcall/hashcall/dtmf"
)

// SampleRate is the audio rate the Detector expects.
const SampleRate = 8000

// frame is the analysis frame: 20 ms, one G.711 packet.
const frame = 160

// Beep frequencies looked at: 300 Hz to 2.2 kHz in 20 Hz steps (at a
// 160-sample frame a tone between two of them loses under 1 dB; 2.1 kHz
// is a fax or modem answer tone, a steady tone like a beep).
const (
	beepLow  = 300
	beepHigh = 2200
	beepStep = 20
	beepBins = (beepHigh-beepLow)/beepStep + 1
)

// Config tunes a Detector; the zero value means the defaults.
type Config struct {
	// Greeting is how long a talk spurt must last to be a machine's
	// greeting; default 2.6 s (a person's "hello, who is this?" takes
	// about 1.5 s, a greeting 3 s or more).
	Greeting time.Duration
	// StartWithin is how soon after the answer the greeting must start;
	// default 2.5 s.
	StartWithin time.Duration
	// Gap is the longest pause inside one talk spurt; default 900 ms
	// (the pauses between a greeting's sentences, or a slow count, are
	// shorter; a person who says hello twice pauses longer, to listen).
	Gap time.Duration
	// Beep is the shortest steady tone that counts as a beep; default
	// 300 ms.
	Beep time.Duration
	// Listen is how long after the answer the audio is analysed; default
	// 30 s (greetings are shorter; after that the detector costs nothing).
	Listen time.Duration
	// EchoLossDB is the echo return loss assumed of the far end while we
	// play: a frame must be louder than what we sent less this to count as
	// its speech; default 12 dB.
	EchoLossDB float64
	// SpeechDBm0 is the level of a frame of speech; default −46 dBm0
	// (quiet recordings dip to −45 dBm0 inside words; a line's noise is
	// below −55).
	SpeechDBm0 float64
}

func (c Config) withDefaults() Config {
	if c.Greeting <= 0 {
		c.Greeting = 2600 * time.Millisecond
	}
	if c.StartWithin <= 0 {
		c.StartWithin = 2500 * time.Millisecond
	}
	if c.Gap <= 0 {
		c.Gap = 900 * time.Millisecond
	}
	if c.Beep <= 0 {
		c.Beep = 300 * time.Millisecond
	}
	if c.Listen <= 0 {
		c.Listen = 30 * time.Second
	}
	if c.EchoLossDB <= 0 {
		c.EchoLossDB = 12
	}
	if c.SpeechDBm0 == 0 {
		c.SpeechDBm0 = -46
	}
	return c
}

// Reason says which sign was seen.
type Reason string

// Reasons.
const (
	ReasonGreeting Reason = "greeting" // speech from the answer on, past Config.Greeting
	ReasonBeep     Reason = "beep"     // a steady tone after speech
)

// Verdict is a Detector's decision.
type Verdict struct {
	Machine bool
	Reason  Reason
	// At is when it was decided, from the first sample fed.
	At time.Duration
	// BeepHz is the beep's frequency for ReasonBeep.
	BeepHz int
}

// Detector recognises an answering machine in the audio after answer.
type Detector struct {
	cfg Config

	// thresholds in frames and energy
	greetFrames, startFrames, gapFrames, beepFrames, listenFrames int
	speechEnergy                                                  float64

	buf  [frame]float64
	nbuf int
	n    int // frames analysed

	echo     float64 // mean square of what we sent lately, less EchoLossDB
	echoGain float64

	spurtStart int // frame of the current spurt's first speech, −1 none
	lastSpeech int // frame of the last speech frame
	spoken     bool

	toneRun int // consecutive tonal frames
	toneBin int
	tonePw  float64 // the run's summed peak power

	// The least power in each bin over the frames of speech: a tone that
	// was there all along, under the speech, is not a beep (a harmonic of
	// the voice comes and goes).
	speechMin    [beepBins]float64
	speechFrames int
	pw           [beepBins]float64
	pairRun      int // consecutive frames of one pair of tones
	pairBin      [2]int

	coef    [beepBins]float64
	verdict Verdict
}

// New returns a Detector with cfg (zero fields take their defaults).
func New(cfg Config) *Detector {
	d := &Detector{cfg: cfg.withDefaults()}
	c := d.cfg
	perFrame := time.Second * frame / SampleRate
	d.greetFrames = int(c.Greeting / perFrame)
	d.startFrames = int(c.StartWithin / perFrame)
	d.gapFrames = int(c.Gap / perFrame)
	d.listenFrames = int(c.Listen / perFrame)
	// A tone of Beep fills this many whole frames wherever it starts.
	d.beepFrames = max(1, int(c.Beep/perFrame)-1)
	// Mean square of a sine at L dBm0 (dtmf.Amplitude: 0 dBm0 is a peak
	// of 22826 on the 16-bit scale, G.711's digital milliwatt).
	amp := dtmf.Amplitude(c.SpeechDBm0)
	d.speechEnergy = amp * amp / 2
	d.echoGain = math.Pow(10, -c.EchoLossDB/10)
	for i := range d.coef {
		f := float64(beepLow + i*beepStep)
		d.coef[i] = 2 * math.Cos(2*math.Pi*f/SampleRate)
	}
	d.spurtStart, d.lastSpeech = -1, -1
	return d
}

// Echo tells the detector the mean square of the loudest 20 ms of audio we
// sent in the last echo-path delay (0: we are silent), for the frames fed
// from now on.
func (d *Detector) Echo(sentMeanSquare float64) { d.echo = sentMeanSquare * d.echoGain }

// Verdict returns the decision so far (Machine false: no sign yet).
func (d *Detector) Verdict() Verdict { return d.verdict }

// Feed analyses samples, the far end's audio in order from the answer,
// and returns the verdict so far. Once Machine is true it stays.
func (d *Detector) Feed(samples []int16) Verdict {
	for len(samples) > 0 && !d.verdict.Machine && d.n < d.listenFrames {
		n := len(int16sToFloat(d.buf[d.nbuf:], samples))
		d.nbuf += n
		samples = samples[n:]
		if d.nbuf == frame {
			d.analyse()
			d.nbuf = 0
		}
	}
	return d.verdict
}

// int16sToFloat converts as many samples as fit into dst and returns dst's
// filled part.
func int16sToFloat(dst []float64, src []int16) []float64 {
	n := min(len(dst), len(src))
	for i := range n {
		dst[i] = float64(src[i])
	}
	return dst[:n]
}

// analyse takes one full frame.
func (d *Detector) analyse() {
	f := d.n
	d.n++
	var energy, sum float64
	for _, x := range d.buf {
		sum += x
	}
	mean := sum / frame
	for _, x := range d.buf {
		energy += (x - mean) * (x - mean)
	}
	energy /= frame
	// Quieter than speech, or than our prompt's echo could be: silence
	// for the far end's talk.
	if energy < d.speechEnergy || energy < d.echo {
		d.toneRun = 0
		d.gapCheck(f)
		return
	}
	bin, share, bin2, share2 := d.peak(mean, energy)
	tonal := share >= 0.7
	if !tonal && share2 >= 0.8 {
		// A pair of steady tones: a vowel for a few frames, else DTMF or
		// a network tone.
		d.toneRun = 0
		lo, hi := min(bin, bin2), max(bin, bin2) // which is stronger may change
		if d.pairRun > 0 && abs(lo-d.pairBin[0]) <= 2 && abs(hi-d.pairBin[1]) <= 2 {
			d.pairRun++
		} else {
			d.pairRun, d.pairBin = 1, [2]int{lo, hi}
		}
		d.steady(f, d.pairRun)
		return
	}
	d.pairRun = 0
	if tonal {
		if d.toneRun > 0 && abs(bin-d.toneBin) <= 2 {
			d.toneRun++
			d.tonePw += d.pw[bin]
		} else {
			d.toneRun, d.toneBin, d.tonePw = 1, bin, d.pw[bin]
		}
		if d.spoken && d.toneRun >= d.beepFrames && !d.underSpeech(d.toneBin, d.tonePw/float64(d.toneRun)) {
			d.decide(ReasonBeep, f, beepLow+d.toneBin*beepStep)
			return
		}
		d.steady(f, d.toneRun)
		return
	}
	d.toneRun = 0
	// Speech (or anything loud that is not a steady tone).
	for i, p := range d.pw {
		if d.speechFrames == 0 || p < d.speechMin[i] {
			d.speechMin[i] = p
		}
	}
	d.speechFrames++
	d.sound(f)
	if f-d.spurtStart >= 10 { // 200 ms of it: a word, not a click
		d.spoken = true
	}
}

// steady takes frame f of a steady tone or pair that has lasted run
// frames. A vowel can be as pure as a tone for a few frames: it is still
// sound in the spurt, though not speech to hang a beep on. A longer tone
// is not speech at all.
func (d *Detector) steady(f, run int) {
	if run < d.beepFrames {
		d.sound(f)
	} else {
		d.gapCheck(f)
	}
}

// sound extends (or starts) the talk spurt with frame f and decides a
// greeting.
func (d *Detector) sound(f int) {
	if d.spurtStart < 0 || f-d.lastSpeech > d.gapFrames {
		d.spurtStart = f
	}
	d.lastSpeech = f
	if d.spurtStart <= d.startFrames && f-d.spurtStart+1 >= d.greetFrames {
		d.decide(ReasonGreeting, f, 0)
	}
}

// underSpeech reports whether a tone at bin of mean power p was already
// there while the far end spoke (a background tone, a softphone's sine):
// the bins around it never held less than a quarter of its power (−6 dB)
// in any frame of speech.
func (d *Detector) underSpeech(bin int, p float64) bool {
	if d.speechFrames == 0 {
		return false
	}
	var m float64
	for i := max(0, bin-2); i <= min(beepBins-1, bin+2); i++ {
		m = max(m, d.speechMin[i])
	}
	return m >= p/4
}

// gapCheck ends the current spurt after a pause longer than Gap.
func (d *Detector) gapCheck(f int) {
	if d.spurtStart >= 0 && f-d.lastSpeech > d.gapFrames {
		d.spurtStart = -1
	}
}

func (d *Detector) decide(r Reason, f int, hz int) {
	d.verdict = Verdict{Machine: true, Reason: r, At: time.Duration(f+1) * time.Second * frame / SampleRate, BeepHz: hz}
}

// peak returns the frequency bin with the most power (Goertzel) and its
// share of the frame's AC energy (about 1 for one steady sine, at most
// about 0.5 for DTMF's two tones, less for speech), and the strongest bin
// at least 60 Hz from it with the two's share (about 1 for a pair of
// tones).
func (d *Detector) peak(mean, energy float64) (int, float64, int, float64) {
	pw := &d.pw
	best := 0
	var x [frame]float64
	for i, v := range d.buf {
		x[i] = v - mean
	}
	// Four filters at a time: their recursions are independent, so the
	// processor overlaps them (about three times faster than one by one).
	i := 0
	for ; i+4 <= beepBins; i += 4 {
		c0, c1, c2, c3 := d.coef[i], d.coef[i+1], d.coef[i+2], d.coef[i+3]
		var a1, a2, b1, b2, e1, e2, g1, g2 float64
		for _, v := range x {
			a1, a2 = v+c0*a1-a2, a1
			b1, b2 = v+c1*b1-b2, b1
			e1, e2 = v+c2*e1-e2, e1
			g1, g2 = v+c3*g1-g2, g1
		}
		pw[i] = a1*a1 + a2*a2 - c0*a1*a2
		pw[i+1] = b1*b1 + b2*b2 - c1*b1*b2
		pw[i+2] = e1*e1 + e2*e2 - c2*e1*e2
		pw[i+3] = g1*g1 + g2*g2 - c3*g1*g2
	}
	for ; i < beepBins; i++ {
		c := d.coef[i]
		var s1, s2 float64
		for _, v := range x {
			s1, s2 = v+c*s1-s2, s1
		}
		pw[i] = s1*s1 + s2*s2 - c*s1*s2
	}
	for i := range pw {
		if pw[i] > pw[best] {
			best = i
		}
	}
	second := -1
	for i, p := range pw {
		if abs(i-best) >= 3 && (second < 0 || p > pw[second]) {
			second = i
		}
	}
	// A sine of mean square E gives a Goertzel power of E·N²/2.
	norm := 2 / (frame * frame * energy)
	return best, pw[best] * norm, second, (pw[best] + pw[second]) * norm
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}
