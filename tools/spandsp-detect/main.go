//go:build spandsp

// Command spandsp-detect finds DTMF digits in an 8 kHz audio file with
// spandsp's dtmf_rx, for timing against `hashcall detect` on the same file:
//
//	go build -tags spandsp -o /tmp/spandsp-detect ./tools/spandsp-detect
//	go build -o /tmp/hashcall ./cmd/hashcall
//	hyperfine '/tmp/spandsp-detect call.ul' '/tmp/hashcall detect call.ul'
//
// It reads the file the way hashcall detect does (32 KiB reads through a
// 64 KiB buffer), decodes G.711 by table into a reused buffer and hands the
// samples to spandsp, and prints one line per digit:
//
//	call.ul: # at sample 123456 (15432.0 ms), ended at sample 124272 (15534.0 ms), -10 dBm0
//
// The offsets are where spandsp confirmed the start and the end: the end of
// its 102-sample block, about two blocks after the tone changed.
//
// Input: WAV (8 kHz mono PCM 16-bit, µ-law or A-law) or raw audio named by
// extension (.ul/.ulaw µ-law, .al/.alaw A-law, .raw/.sln/.s16 16-bit
// little-endian linear) or by -format. Exit status 2 when a file cannot be
// read.
package main

import (
	"bufio"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/hashcall/hashcall/media/wav"
	"github.com/hashcall/hashcall/tools/spandsp"
)

func main() {
	format := flag.String("format", "auto", "input format: auto|wav|slin16|ulaw|alaw")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: spandsp-detect [-format auto|wav|slin16|ulaw|alaw] FILE...\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() == 0 {
		flag.Usage()
		os.Exit(2)
	}
	out := bufio.NewWriter(os.Stdout)
	status := 0
	for _, name := range flag.Args() {
		if err := detectFile(out, name, *format); err != nil {
			out.Flush()
			fmt.Fprintf(os.Stderr, "spandsp-detect: %s: %v\n", name, err)
			status = 2
		}
	}
	if err := out.Flush(); err != nil {
		fmt.Fprintf(os.Stderr, "spandsp-detect: %v\n", err)
		status = 2
	}
	os.Exit(status)
}

func detectFile(out io.Writer, name, format string) error {
	af, err := wav.OpenFile(name, format)
	if errors.Is(err, wav.ErrUnknownFormat) {
		return fmt.Errorf("%w; name it with -format slin16|ulaw|alaw", err)
	}
	if err != nil {
		return err
	}
	defer af.Close()
	rx, err := spandsp.New()
	if err != nil {
		return err
	}
	defer rx.Close()
	p := printer{out: out, name: name}
	buf := make([]byte, 32<<10)
	samples := make([]int16, len(buf)/2+1)
	var odd []byte // a PCM sample split across reads
	for {
		n, rerr := af.Read(buf)
		b := buf[:n]
		switch af.Encoding {
		case wav.Ulaw:
			rx.FeedUlaw(b)
		case wav.Alaw:
			rx.FeedAlaw(b)
		default:
			k := 0
			if len(odd) > 0 && len(b) > 0 {
				samples[0] = int16(binary.LittleEndian.Uint16([]byte{odd[0], b[0]}))
				odd, b, k = odd[:0], b[1:], 1
			}
			for i := 0; i+1 < len(b); i += 2 {
				samples[k] = int16(binary.LittleEndian.Uint16(b[i:]))
				k++
			}
			if len(b)%2 == 1 {
				odd = append(odd[:0], b[len(b)-1])
			}
			rx.Feed(samples[:k])
		}
		if err := p.print(rx, false); err != nil {
			return err
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return fmt.Errorf("reading audio: %w", rerr)
		}
	}
	return p.print(rx, true)
}

// printer prints each digit once its end is known (or the file ended).
type printer struct {
	out  io.Writer
	name string
	seen int           // events already handled
	open spandsp.Event // the digit started and not yet ended, if on
	on   bool
}

func (p *printer) print(rx *spandsp.Rx, final bool) error {
	for _, e := range rx.EventsSince(p.seen) {
		p.seen++
		if !e.Ended {
			p.open, p.on = e, true
			continue
		}
		if p.on {
			p.on = false
			if err := p.line(p.open, fmt.Sprintf("ended at sample %d (%.1f ms)", e.Sample, ms(e.Sample))); err != nil {
				return err
			}
		}
	}
	if final && p.on {
		p.on = false
		return p.line(p.open, "still on at the end of the file")
	}
	return nil
}

func (p *printer) line(start spandsp.Event, end string) error {
	_, err := fmt.Fprintf(p.out, "%s: %c at sample %d (%.1f ms), %s, %d dBm0\n",
		p.name, start.Key, start.Sample, ms(start.Sample), end, start.LevelDBm0)
	return err
}

func ms(sample int64) float64 { return float64(sample) / 8 }
