package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/hashcall/hashcall/media"
	"github.com/hashcall/hashcall/media/wav"
	"github.com/hashcall/hashcall/replay"
)

func newReplayCommand() *cobra.Command {
	var (
		asJSON  bool
		expect  string
		tePT    int
		codec   string
		wavDir  string
		latch   bool
		streams bool
	)
	cmd := &cobra.Command{
		Use:   "replay [--json] [--expect KEYS] [--te-pt N] [--codec pcmu|pcma] [--wav-dir DIR] FILE...",
		Short: "Find the key presses in captured calls (pcap, pcapng)",
		Long: `Replay captured calls through the same receive path a live call uses (source
and SSRC checks, G.711 decoding, in-band detector, RFC 4733 receiver, SIP INFO,
combiner), clocked by the capture's timestamps, and report the key presses.

Input: pcap or pcapng (optionally gzip-compressed), link types Ethernet (VLAN,
PPPoE, MPLS), Linux SLL and SLL2 (tshark -i any), PPP, raw IPv4/IPv6 and BSD
loopback; UDP over IPv4 or IPv6, IP fragments reassembled. Calls and their RTP streams are found from the
SIP in the capture (INVITE/200 SDP: addresses, codecs, telephone-event payload
type; SIP INFO DTMF; packets before the 200 OK are early media, which a live
call ignores). Without SIP, RTP streams are recognised by their headers:
PCMU (PT 0), PCMA (PT 8), telephone-events on the first dynamic payload type
that carries them, or on --te-pt; --codec names the codec of audio on a
dynamic payload type.

One line per key press; with --json one object per line, then one summary
object per stream ("type":"stream"). A press is accepted when a live call
would have taken it and it is a #. Presses a live call would have ignored
(early media, another source or SSRC, an unnegotiated payload type) are
listed with the reason.

--expect KEYS exits 1 unless the accepted presses equal KEYS ('#', or '' for
none); KEYS naming other keys ('5#') is compared with every key a live call
would have heard. Exit status: 0, 1 when an expectation failed, 2 when a file
could not be read.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, files []string) error {
			opts := replay.Options{Latch: latch, Audio: wavDir != ""}
			if cmd.Flags().Changed("te-pt") {
				if tePT < 96 || tePT > 127 {
					return exitError{2, fmt.Errorf("--te-pt %d: want a dynamic payload type, 96–127", tePT)}
				}
				opts.EventPT = uint8(tePT)
			}
			if codec != "" {
				c, err := media.ParseCodec(codec)
				if err != nil {
					return exitError{2, fmt.Errorf("--codec %q: want pcmu or pcma", codec)}
				}
				opts.Codec = c
			}
			checking := cmd.Flags().Changed("expect")
			if checking {
				for _, k := range expect {
					if !strings.ContainsRune("0123456789*#ABCD", k) {
						return exitError{2, fmt.Errorf("--expect %q: %q is not a DTMF key (0-9 * # A-D)", expect, string(k))}
					}
				}
			}
			if wavDir != "" {
				if err := os.MkdirAll(wavDir, 0o755); err != nil {
					return exitError{2, err}
				}
			}
			out := bufio.NewWriter(cmd.OutOrStdout())
			defer out.Flush()
			unreadable, failed := false, false
			for _, name := range files {
				rep, err := replay.File(name, opts)
				if err != nil {
					unreadable = true
					out.Flush()
					fmt.Fprintf(cmd.ErrOrStderr(), "hashcall replay: %s: %v\n", name, replayReason(err))
					continue
				}
				for _, w := range rep.Warnings {
					out.Flush()
					fmt.Fprintf(cmd.ErrOrStderr(), "hashcall replay: %s: warning: %s\n", name, w)
				}
				wavs := map[int]string{}
				if wavDir != "" {
					if wavs, err = writeStreamWAVs(wavDir, name, rep); err != nil {
						unreadable = true
						out.Flush()
						fmt.Fprintf(cmd.ErrOrStderr(), "hashcall replay: %s: %v\n", name, err)
					}
				}
				if err := printReplay(out, name, rep, asJSON, streams, wavs); err != nil {
					return exitError{2, err}
				}
				if checking {
					if err := rep.Expect(expect); err != nil {
						failed = true
						out.Flush()
						fmt.Fprintf(cmd.ErrOrStderr(), "hashcall replay: %s: %v\n", name, err)
					}
				}
			}
			if err := out.Flush(); err != nil {
				return exitError{2, err}
			}
			switch {
			case unreadable:
				return exitError{code: 2}
			case failed:
				return exitError{code: 1}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.BoolVar(&asJSON, "json", false, "one JSON object per key press, then one per stream")
	f.StringVar(&expect, "expect", "", "exit 1 unless the accepted presses equal `KEYS` ('#', or '' for none)")
	f.IntVar(&tePT, "te-pt", 0, "telephone-event payload type of streams without SIP (default: detected)")
	f.StringVar(&codec, "codec", "", "codec of audio on a dynamic payload type in streams without SIP: pcmu|pcma")
	f.StringVar(&wavDir, "wav-dir", "", "write each stream's decoded audio as an 8 kHz WAV file in `DIR`")
	f.BoolVar(&latch, "latch", false, "replay with symmetric latching (media.symmetric_latching)")
	f.BoolVar(&streams, "streams", false, "also print one line per stream (text output)")
	return cmd
}

// replayReason strips the package prefix from a capture format error.
func replayReason(err error) string {
	var fe *replay.FormatError
	if errors.As(err, &fe) {
		return fe.Reason
	}
	return err.Error()
}

// msFloat is a duration in milliseconds, written with one decimal.
type msFloat float64

func (m msFloat) MarshalJSON() ([]byte, error) {
	return strconv.AppendFloat(nil, float64(m), 'f', 1, 64), nil
}

func toMS(d time.Duration) msFloat { return msFloat(float64(d.Round(100*time.Microsecond)) / 1e6) }

// replayPress is one key press line of `replay --json`.
type replayPress struct {
	File       string  `json:"file"`
	Stream     string  `json:"stream"`
	Digit      string  `json:"digit"`
	Source     string  `json:"source"`
	At         string  `json:"at"`
	DurationMS msFloat `json:"duration_ms"`
	Accepted   bool    `json:"accepted"`
	Ignored    string  `json:"ignored,omitempty"` // why a live call would not have taken it
}

// replayStream is one stream summary line of `replay --json`.
type replayStream struct {
	Type         string            `json:"type"`
	File         string            `json:"file"`
	Stream       string            `json:"stream"`
	Kind         string            `json:"kind"`
	Found        string            `json:"found"`
	CallID       string            `json:"call_id,omitempty"`
	Codec        string            `json:"codec"`
	PayloadTypes []int             `json:"payload_types"`
	Packets      uint64            `json:"packets"`
	Events       uint64            `json:"events"`
	Lost         uint64            `json:"lost"`
	Duplicated   uint64            `json:"duplicated"`
	Reordered    uint64            `json:"reordered"`
	Dropped      map[string]uint64 `json:"dropped"`
	Start        string            `json:"start"`
	DurationMS   msFloat           `json:"duration_ms"`
	Presses      int               `json:"presses"`
	Accepted     int               `json:"accepted"`
	WAV          string            `json:"wav,omitempty"`
}

const rfc3339Millis = "2006-01-02T15:04:05.000Z07:00"

func printReplay(out io.Writer, file string, rep *replay.Report, asJSON, streams bool, wavs map[int]string) error {
	// One object per line, with "->" in stream names as is.
	enc := json.NewEncoder(out)
	enc.SetEscapeHTML(false)
	for _, p := range rep.Presses() {
		s := rep.Streams[p.Stream]
		if asJSON {
			if err := enc.Encode(replayPress{
				File: file, Stream: s.Name, Digit: p.Key.String(), Source: p.Source.String(),
				At: p.At.UTC().Format(rfc3339Millis), DurationMS: toMS(p.Duration), Accepted: p.Accepted, Ignored: p.Reason,
			}); err != nil {
				return err
			}
			continue
		}
		if _, err := fmt.Fprintf(out, "%s: %s at %s for %.1f ms (%s) %s %s\n",
			file, p.Key, p.At.UTC().Format(rfc3339Millis), float64(toMS(p.Duration)), p.Source, s.Name, p.Verdict()); err != nil {
			return err
		}
	}
	if !asJSON && !streams {
		return nil
	}
	for i, s := range rep.Streams {
		sum := replayStream{
			Type: "stream", File: file, Stream: s.Name, Kind: s.Kind, Found: s.Found, CallID: s.CallID,
			Codec: s.Codec, PayloadTypes: []int{}, Packets: s.Packets, Events: s.Events,
			Lost: s.Lost, Duplicated: s.Duplicated, Reordered: s.Reordered, Dropped: dropMap(s.Dropped),
			Start: s.First.UTC().Format(rfc3339Millis), DurationMS: toMS(s.Duration()), Presses: len(s.Presses), WAV: wavs[i],
		}
		for _, pt := range s.PayloadTypes {
			sum.PayloadTypes = append(sum.PayloadTypes, int(pt))
		}
		for _, p := range s.Presses {
			if p.Accepted {
				sum.Accepted++
			}
		}
		if asJSON {
			if err := enc.Encode(sum); err != nil {
				return err
			}
			continue
		}
		codec := s.Codec
		if codec == "" {
			codec = "no audio"
		}
		drops := ""
		for _, k := range dropOrder {
			if n := sum.Dropped[k]; n > 0 {
				drops += fmt.Sprintf(" %s=%d", k, n)
			}
		}
		if drops == "" {
			drops = " none"
		}
		if _, err := fmt.Fprintf(out, "%s: stream %s (%s, %s): %s, %d packets, %d events, %d lost, %d duplicated, %d reordered, %.1f ms, dropped%s, %d presses\n",
			file, s.Name, s.Kind, s.Found, codec, s.Packets, s.Events, s.Lost, s.Duplicated, s.Reordered, float64(sum.DurationMS), drops, len(s.Presses)); err != nil {
			return err
		}
	}
	return nil
}

var dropOrder = []string{"not_rtp", "rtcp", "source", "ssrc", "payload_type", "old", "early", "after_end"}

// dropMap names the drop counters as the verify result does.
func dropMap(d replay.Drops) map[string]uint64 {
	m := map[string]uint64{
		"not_rtp": d.NotRTP, "rtcp": d.RTCP, "source": d.Source, "ssrc": d.SSRC,
		"payload_type": d.PayloadType, "old": d.Old, "early": d.Early, "after_end": d.AfterEnd,
	}
	for k, n := range m {
		if n == 0 {
			delete(m, k)
		}
	}
	return m
}

// writeStreamWAVs writes the decoded audio of each stream that has some as
// DIR/<capture>-<n>-<ssrc>.wav and returns the paths by stream index.
func writeStreamWAVs(dir, capture string, rep *replay.Report) (map[int]string, error) {
	base := filepath.Base(capture)
	base = strings.TrimSuffix(base, filepath.Ext(base))
	paths := map[int]string{}
	for i, s := range rep.Streams {
		if len(s.Audio) == 0 {
			continue
		}
		p := filepath.Join(dir, fmt.Sprintf("%s-%d-%08x.wav", base, i+1, s.SSRC))
		f, err := os.Create(p)
		if err != nil {
			return paths, err
		}
		err = wav.WritePCM16(f, s.Audio)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return paths, fmt.Errorf("writing %s: %w", p, err)
		}
		paths[i] = p
	}
	return paths, nil
}
