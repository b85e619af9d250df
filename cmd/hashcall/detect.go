package main

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"

	"github.com/spf13/cobra"

	"github.com/hashcall/hashcall/dtmf"
	"github.com/hashcall/hashcall/media/wav"
)

func newDetectCommand() *cobra.Command {
	var (
		format  string
		asJSON  bool
		formats = wav.Formats()
	)
	cmd := &cobra.Command{
		Use:   "detect [--format auto|wav|slin16|ulaw|alaw] [--json] FILE...",
		Short: "Find DTMF key presses in recorded audio",
		Long: `Find DTMF key presses in 8 kHz audio files with the same in-band detector a call uses.

Input: WAV (8 kHz mono: PCM 16-bit, µ-law or A-law) or raw audio, whose format
comes from the extension (.ul/.ulaw µ-law, .al/.alaw A-law, .raw/.sln/.s16
16-bit little-endian linear) or from --format. Files at another rate, with
more than one channel or in another encoding are refused with the sox command
that converts them; nothing is resampled silently.

One line per key press; with --json one object per line. Only # is accepted.
Exit status: 0 when every file was read, 2 when one could not be read.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, files []string) error {
			if !contains(formats, format) {
				return exitError{2, fmt.Errorf("--format %q: want one of %s", format, strings.Join(formats, ", "))}
			}
			out := bufio.NewWriter(cmd.OutOrStdout())
			defer out.Flush()
			failed := false
			for _, name := range files {
				if err := detectFile(out, name, format, asJSON); err != nil {
					failed = true
					out.Flush()
					fmt.Fprintf(cmd.ErrOrStderr(), "hashcall detect: %s: %v\n", name, err)
				}
			}
			if err := out.Flush(); err != nil {
				return exitError{2, err}
			}
			if failed {
				return exitError{code: 2}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&format, "format", "auto", "input format: "+strings.Join(formats, "|"))
	cmd.Flags().BoolVar(&asJSON, "json", false, "one JSON object per key press")
	return cmd
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// detectResult is one line of `detect --json`.
type detectResult struct {
	File       string  `json:"file"`
	Digit      string  `json:"digit"`
	Source     string  `json:"source"`
	StartMS    float64 `json:"start_ms"`
	DurationMS float64 `json:"duration_ms"`
	LevelDBm0  float64 `json:"level_dbm0"`
	Accepted   bool    `json:"accepted"`
}

func detectFile(out io.Writer, name, format string, asJSON bool) error {
	af, err := wav.OpenFile(name, format)
	if errors.Is(err, wav.ErrUnknownFormat) {
		return fmt.Errorf("%w; name it with --format slin16|ulaw|alaw", err)
	}
	if err != nil {
		return err
	}
	defer af.Close()
	det := dtmf.NewDetector()
	events := make([]dtmf.Event, 0, 16)
	emit := func(events []dtmf.Event) error {
		for _, e := range events {
			if !e.Ended {
				continue
			}
			if err := printPress(out, name, e, asJSON); err != nil {
				return err
			}
		}
		return nil
	}
	buf := make([]byte, 32<<10)
	samples := make([]int16, len(buf)/2)
	var odd []byte // a PCM sample split across reads
	for {
		n, rerr := af.Read(buf)
		b := buf[:n]
		switch af.Encoding {
		case wav.Ulaw:
			events = det.FeedUlaw(events[:0], b)
		case wav.Alaw:
			events = det.FeedAlaw(events[:0], b)
		default:
			if len(odd) > 0 && len(b) > 0 {
				events = det.Feed(events[:0], []int16{int16(binary.LittleEndian.Uint16([]byte{odd[0], b[0]}))})
				if err := emit(events); err != nil {
					return err
				}
				odd, b = odd[:0], b[1:]
			}
			k := len(b) / 2
			for i := range k {
				samples[i] = int16(binary.LittleEndian.Uint16(b[2*i:]))
			}
			if len(b)%2 == 1 {
				odd = append(odd[:0], b[len(b)-1])
			}
			events = det.Feed(events[:0], samples[:k])
		}
		if err := emit(events); err != nil {
			return err
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return fmt.Errorf("reading audio: %w", rerr)
		}
	}
	return emit(det.Flush(events[:0]))
}

func printPress(out io.Writer, file string, e dtmf.Event, asJSON bool) error {
	startMS := float64(e.StartSample) / 8
	durMS := float64(e.EndSample-e.StartSample) / 8
	if asJSON {
		b, err := json.Marshal(detectResult{
			File:       file,
			Digit:      e.Key.String(),
			Source:     e.Source.String(),
			StartMS:    startMS,
			DurationMS: durMS,
			LevelDBm0:  math.Round(e.LevelDBm0*10) / 10,
			Accepted:   e.Key.Accepted(),
		})
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(out, "%s\n", b)
		return err
	}
	verdict := "not accepted"
	if e.Key.Accepted() {
		verdict = "accepted"
	}
	_, err := fmt.Fprintf(out, "%s: %s at %.1f ms for %.1f ms, %.1f dBm0, twist %+.1f dB (%s) %s\n",
		file, e.Key, startMS, durMS, e.LevelDBm0, e.TwistDB, e.Source, verdict)
	return err
}
