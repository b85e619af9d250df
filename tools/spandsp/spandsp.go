//go:build spandsp

package spandsp

/*
#cgo pkg-config: spandsp
#include <stdlib.h>
#include <spandsp.h>

// hc_rx is one receiver plus the reports of its realtime callback. The
// callback is C, so spandsp never calls back into Go (no cgo callback, no
// allocation); Go reads the reports out of this struct after each feed.
#define HC_MAX_EVENTS 64

typedef struct {
	int code;       // the digit's ASCII code, 0 when the digit ended
	int level;      // spandsp's level of the confirming block, dBm0 (-99 at the end)
	long long at;   // samples fed up to the end of the confirming block
} hc_event;

typedef struct {
	dtmf_rx_state_t *rx;
	long long pos;  // sum of the callback's durations: samples up to the last report
	int n;          // reports waiting in ev
	int lost;       // reports dropped because ev was full
	hc_event ev[HC_MAX_EVENTS];
} hc_rx;

// hc_report is spandsp's realtime callback: called at the end of the
// 102-sample block that confirms a digit's start (code != 0) or its end
// (code == 0), with the number of samples since the previous report.
static void hc_report(void *user, int code, int level, int delay) {
	hc_rx *h = (hc_rx *) user;
	h->pos += delay;
	if (h->n >= HC_MAX_EVENTS) {
		h->lost++;
		return;
	}
	h->ev[h->n].code = code;
	h->ev[h->n].level = level;
	h->ev[h->n].at = h->pos;
	h->n++;
}

static hc_rx *hc_new(void) {
	hc_rx *h = (hc_rx *) calloc(1, sizeof(hc_rx));
	if (h == NULL)
		return NULL;
	h->rx = dtmf_rx_init(NULL, NULL, NULL);
	if (h->rx == NULL) {
		free(h);
		return NULL;
	}
	// With a realtime callback spandsp reports both ends of each digit,
	// and the duration argument gives exact sample offsets. Digits are
	// confirmed by exactly the same logic as for dtmf_rx_get.
	dtmf_rx_set_realtime_callback(h->rx, hc_report, h);
	return h;
}

static void hc_free(hc_rx *h) {
	dtmf_rx_release(h->rx);
	dtmf_rx_free(h->rx);
	free(h);
}

// hc_feed runs one block of samples through spandsp: one cgo call per
// block, never per sample.
static int hc_feed(hc_rx *h, const int16_t *amp, int n) {
	dtmf_rx(h->rx, amp, n);
	return h->n;
}
*/
import "C"

import (
	"errors"
	"unsafe"

	"github.com/zaf/g711"
)

// maxChunk bounds the samples handed to spandsp in one cgo call: at most
// 41 of its 102-sample blocks end in a chunk, so the C report buffer
// (HC_MAX_EVENTS) cannot overflow. It is also the size of the G.711
// decoding buffer.
const maxChunk = 4096

// G.711 decoding tables. dtmf_rx takes 16-bit linear samples only, so an
// application using spandsp decodes µ-law/A-law first, usually by table
// (spandsp's own ulaw_to_linear is the same arithmetic). FeedUlaw and
// FeedAlaw do that in Go, into a reused buffer, so that a speed comparison
// on G.711 input charges spandsp what it costs in practice.
var ulawTable, alawTable [256]int16

func init() {
	for i := range 256 {
		ulawTable[i] = g711.DecodeUlawFrame(uint8(i))
		alawTable[i] = g711.DecodeAlawFrame(uint8(i))
	}
}

// Event is one change of state spandsp's receiver reported.
type Event struct {
	// Key is the digit ('0'–'9', '*', '#', 'A'–'D'); for an end, the digit
	// that ended.
	Key byte
	// Ended is false when the digit started, true when it ended.
	Ended bool
	// LevelDBm0 is spandsp's level estimate of the confirming block (-99
	// for an end).
	LevelDBm0 int
	// Sample is the number of samples fed up to the end of the 102-sample
	// block at which spandsp confirmed the change: the time it reported it,
	// not the time the tone started or stopped.
	Sample int64
}

// Rx is spandsp's DTMF receiver (dtmf_rx) with its default parameters
// (dial-tone filter off, spandsp's twist and threshold). It is not safe for
// concurrent use. Close releases its C memory.
type Rx struct {
	h      *C.hc_rx
	buf    []int16 // G.711 decoding buffer, reused
	digits []byte
	events []Event
	inKey  byte  // digit in progress, 0 when none
	pos    int64 // samples fed
	lost   int
}

// New returns a receiver, or an error if spandsp cannot allocate one.
func New() (*Rx, error) {
	h := C.hc_new()
	if h == nil {
		return nil, errors.New("spandsp: dtmf_rx_init failed")
	}
	return &Rx{h: h, buf: make([]int16, maxChunk)}, nil
}

// Close frees the receiver. Calling it twice is harmless; Feed afterwards
// does nothing.
func (r *Rx) Close() {
	if r.h != nil {
		C.hc_free(r.h)
		r.h = nil
	}
}

// Feed runs 16-bit linear samples at 8 kHz through the receiver, in one
// cgo call per up to maxChunk samples.
func (r *Rx) Feed(samples []int16) {
	if r.h == nil {
		return
	}
	for len(samples) > 0 {
		n := min(len(samples), maxChunk)
		if C.hc_feed(r.h, (*C.int16_t)(unsafe.Pointer(&samples[0])), C.int(n)) > 0 {
			r.collect()
		}
		r.pos += int64(n)
		samples = samples[n:]
	}
}

// FeedUlaw decodes G.711 µ-law bytes by table into a reused buffer and
// feeds the samples.
func (r *Rx) FeedUlaw(b []byte) { r.feedTable(b, &ulawTable) }

// FeedAlaw decodes G.711 A-law bytes by table into a reused buffer and
// feeds the samples.
func (r *Rx) FeedAlaw(b []byte) { r.feedTable(b, &alawTable) }

func (r *Rx) feedTable(b []byte, table *[256]int16) {
	for len(b) > 0 {
		n := min(len(b), len(r.buf))
		buf := r.buf[:n]
		for i, v := range b[:n] {
			buf[i] = table[v]
		}
		r.Feed(buf)
		b = b[n:]
	}
}

// collect moves the C side's reports into r.
func (r *Rx) collect() {
	h := r.h
	for i := range int(h.n) {
		e := h.ev[i]
		ev := Event{Key: byte(e.code), LevelDBm0: int(e.level), Sample: int64(e.at)}
		if e.code == 0 {
			ev.Key, ev.Ended = r.inKey, true
			r.inKey = 0
		} else {
			if r.inKey != 0 { // a new digit straight after another
				r.events = append(r.events, Event{Key: r.inKey, Ended: true, LevelDBm0: -99, Sample: ev.Sample})
			}
			r.inKey = ev.Key
			r.digits = append(r.digits, ev.Key)
		}
		r.events = append(r.events, ev)
	}
	h.n = 0
	r.lost += int(h.lost)
	h.lost = 0
}

// Digits returns the digits spandsp reported so far, in order.
func (r *Rx) Digits() string { return string(r.digits) }

// NumDigits returns the number of digits reported so far (len(Digits())
// without building a string).
func (r *Rx) NumDigits() int { return len(r.digits) }

// Events returns a copy of every start and end reported so far.
func (r *Rx) Events() []Event { return append([]Event(nil), r.events...) }

// EventsSince returns the reports after the first n, for printing them as
// they come. The slice shares r's memory: do not modify it.
func (r *Rx) EventsSince(n int) []Event { return r.events[min(n, len(r.events)):] }

// Position returns the number of samples fed so far.
func (r *Rx) Position() int64 { return r.pos }

// Lost returns the number of reports dropped because more than the C
// buffer's capacity arrived in one cgo call; it stays 0 unless spandsp
// misbehaves.
func (r *Rx) Lost() int { return r.lost }
