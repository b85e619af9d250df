package interop

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
	"github.com/pion/rtp"

	"github.com/hashcall/hashcall/dtmf"
	"github.com/hashcall/hashcall/dtmf/dtmftest"
)

// The audio captures SIPp plays (play_pcap_audio) are written at test time
// into the test's temporary folder: Ethernet / IPv4 / UDP / RTP, which SIPp
// 3.6.1 reads (it does not read Linux SLL2). SIPp rewrites the addresses and
// ports but keeps the payload type, SSRC, sequence numbers, timestamps and
// the capture's timing, so those are what the generator gets right: 20 ms
// frames of 160 samples, timestamps +160, 20 ms between capture times.

const (
	frameSamples = 160
	frameTime    = 20 * time.Millisecond
	ptPCMU       = 0
	ptPCMA       = 8
)

// pcapPacket is one RTP packet of a capture: its offset from the first
// packet and the RTP bytes (header and payload).
type pcapPacket struct {
	at  time.Duration
	rtp []byte
}

// Made-up addresses of the capture; SIPp replaces them.
var (
	pcapSrcMAC = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x01}
	pcapDstMAC = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x02}
	pcapSrcIP  = net.IPv4(192, 0, 2, 1)
	pcapDstIP  = net.IPv4(192, 0, 2, 2)
)

const (
	pcapSrcPort = 40000
	pcapDstPort = 40002
)

// writePcap writes pkts as an Ethernet capture to w, the first packet at
// start.
func writePcap(w io.Writer, start time.Time, pkts []pcapPacket) error {
	pw := pcapgo.NewWriter(w)
	if err := pw.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		return err
	}
	buf := gopacket.NewSerializeBuffer()
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	for i, p := range pkts {
		eth := &layers.Ethernet{SrcMAC: pcapSrcMAC, DstMAC: pcapDstMAC, EthernetType: layers.EthernetTypeIPv4}
		ip := &layers.IPv4{Version: 4, TTL: 64, Id: uint16(i), Protocol: layers.IPProtocolUDP, SrcIP: pcapSrcIP, DstIP: pcapDstIP}
		udp := &layers.UDP{SrcPort: pcapSrcPort, DstPort: pcapDstPort}
		if err := udp.SetNetworkLayerForChecksum(ip); err != nil {
			return err
		}
		if err := gopacket.SerializeLayers(buf, opts, eth, ip, udp, gopacket.Payload(p.rtp)); err != nil {
			return fmt.Errorf("packet %d: %w", i, err)
		}
		data := buf.Bytes()
		ci := gopacket.CaptureInfo{Timestamp: start.Add(p.at), CaptureLength: len(data), Length: len(data)}
		if err := pw.WritePacket(ci, data); err != nil {
			return fmt.Errorf("packet %d: %w", i, err)
		}
	}
	return nil
}

// audioPackets cuts G.711 bytes into 20 ms RTP packets of payload type pt:
// sequence +1, timestamp +160, 20 ms apart, the marker on the first (the
// start of a talkspurt). A last partial frame is padded with enc's silence.
func audioPackets(pt uint8, ssrc uint32, enc []byte, silence byte) ([]pcapPacket, error) {
	var pkts []pcapPacket
	h := rtp.Header{Version: 2, PayloadType: pt, SSRC: ssrc, SequenceNumber: 4711, Timestamp: 160000}
	for i := 0; i*frameSamples < len(enc); i++ {
		frame := make([]byte, frameSamples)
		n := copy(frame, enc[i*frameSamples:])
		for j := n; j < len(frame); j++ {
			frame[j] = silence
		}
		h.Marker = i == 0
		p := rtp.Packet{Header: h, Payload: frame}
		b, err := p.Marshal()
		if err != nil {
			return nil, err
		}
		pkts = append(pkts, pcapPacket{at: time.Duration(i) * frameTime, rtp: b})
		h.SequenceNumber++
		h.Timestamp += frameSamples
	}
	return pkts, nil
}

// g711Law is µ-law (PCMU) or A-law (PCMA).
type g711Law struct {
	name    string
	pt      uint8
	encode  func([]int16) []byte
	silence byte
}

var (
	lawPCMU = g711Law{"PCMU", ptPCMU, dtmftest.EncodeUlaw, 0xFF}
	lawPCMA = g711Law{"PCMA", ptPCMA, dtmftest.EncodeAlaw, 0xD5}
)

// writeAudioPcap writes samples (8 kHz linear) as a G.711 RTP capture at
// dir/name and returns its path.
func writeAudioPcap(t testing.TB, dir, name string, law g711Law, ssrc uint32, samples []int16) string {
	t.Helper()
	pkts, err := audioPackets(law.pt, ssrc, law.encode(samples), law.silence)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := writePcap(&b, time.Date(2024, 1, 1, 12, 0, 0, 0, time.UTC), pkts); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// The tone level of the generated key presses: −10 dBm0 per tone.
const toneDBm0 = -10

// keyTone is silence, a 200 ms press of key and silence again.
func keyTone(key dtmf.Key, before, after time.Duration) []int16 {
	return dtmftest.Concat(dtmftest.Silence(before), dtmftest.DTMF(key, toneDBm0, 200*time.Millisecond), dtmftest.Silence(after))
}

// silenceShortSSRC is the SSRC of silence_short_pcmu.pcap, the media that
// reinvite_move_pound.xml plays before it moves its media.
const silenceShortSSRC = 0x11110006

// writeAudioPcaps writes every generated capture the SIPp scenarios play
// into dir: the file names are the ones in testdata/sipp/*.xml.
func writeAudioPcaps(t testing.TB, dir string) {
	t.Helper()
	writeAudioPcap(t, dir, "inband_pound_pcmu.pcap", lawPCMU, 0x11110001, keyTone(dtmf.KeyHash, time.Second, time.Second))
	writeAudioPcap(t, dir, "inband_pound_pcma.pcap", lawPCMA, 0x11110002, keyTone(dtmf.KeyHash, time.Second, time.Second))
	writeAudioPcap(t, dir, "inband_five_pcmu.pcap", lawPCMU, 0x11110003, keyTone('5', time.Second, time.Second))
	writeAudioPcap(t, dir, "silence_pcmu.pcap", lawPCMU, 0x11110004, dtmftest.Silence(4*time.Second))
	// Media before a re-INVITE moves it: over within 400 ms; the scenario
	// sends the re-INVITE 700 ms after it started.
	writeAudioPcap(t, dir, "silence_short_pcmu.pcap", lawPCMU, silenceShortSSRC, dtmftest.Silence(400*time.Millisecond))
	// Early media: over within 700 ms; the scenario answers 1.5 s after it
	// started.
	writeAudioPcap(t, dir, "early_pound_pcmu.pcap", lawPCMU, 0x11110005, keyTone(dtmf.KeyHash, 200*time.Millisecond, 300*time.Millisecond))
	// RTP from the answer, as phones send it: PCMU silence with RFC 4733
	// presses of # (in the same SSRC and sequence space) at the offsets.
	writeEventPcap(t, dir, "stream_rfc4733_pound.pcap", 0x11110007, 3*time.Second, 2*time.Second)
	writeEventPcap(t, dir, "hash_on_answer_rfc4733.pcap", 0x11110008, 3500*time.Millisecond, 0)
	writeEventPcap(t, dir, "hash_early_and_again.pcap", 0x11110009, 3200*time.Millisecond, 0, 2200*time.Millisecond)
	writeAudioPcap(t, dir, "hash_on_answer_inband.pcap", lawPCMU, 0x1111000a, keyTone(dtmf.KeyHash, 0, 3500*time.Millisecond))
}

// phoneVolume is the RFC 4733 volume of the generated presses (−10 dBm0);
// the tests' strangers send another, so that the logs tell whose # it was.
const phoneVolume = 10

// writeEventPcap writes total of PCMU silence with a 200 ms RFC 4733 press
// of # at each offset, replacing the audio (RFC 4733 §2.5.1: one SSRC,
// sequence numbers shared, the event's timestamp its start), one packet per
// 20 ms, the E packet sent three times.
func writeEventPcap(t testing.TB, dir, name string, ssrc uint32, total time.Duration, presses ...time.Duration) string {
	t.Helper()
	var (
		pkts []pcapPacket
		seq  = uint16(4711)
		ts   = uint32(160000)
		at   time.Duration
	)
	frame := dtmftest.EncodeUlaw(make([]int16, frameSamples))
	for at < total {
		if len(presses) > 0 && at >= presses[0] {
			presses = presses[1:]
			enc := dtmf.NewEncoder(dtmf.EncoderConfig{PayloadType: 101, SSRC: ssrc, Sequence: seq, Timestamp: ts, Volume: phoneVolume, Interval: frameTime})
			start := at
			for _, e := range enc.Press(nil, dtmf.KeyHash, 200*time.Millisecond) {
				b := make([]byte, e.MarshalSize())
				n, err := e.MarshalTo(b)
				if err != nil {
					t.Fatal(err)
				}
				pkts = append(pkts, pcapPacket{at: start + e.Offset, rtp: b[:n]})
			}
			seq, ts = enc.Sequence(), ts+uint32(220*time.Millisecond/frameTime)*frameSamples
			at = start + 220*time.Millisecond
			continue
		}
		h := rtp.Header{Version: 2, PayloadType: ptPCMU, SSRC: ssrc, SequenceNumber: seq, Timestamp: ts, Marker: at == 0}
		b, err := (&rtp.Packet{Header: h, Payload: frame}).Marshal()
		if err != nil {
			t.Fatal(err)
		}
		pkts = append(pkts, pcapPacket{at: at, rtp: b})
		seq++
		ts += frameSamples
		at += frameTime
	}
	var buf bytes.Buffer
	if err := writePcap(&buf, time.Date(2024, 1, 1, 12, 0, 0, 0, time.UTC), pkts); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestPcapWriter reads a generated capture back: link type, layers, RTP
// header progression and capture timing. It needs no peer.
func TestPcapWriter(t *testing.T) {
	tests := []struct {
		name string
		law  g711Law
	}{
		{"pcmu", lawPCMU},
		{"pcma", lawPCMA},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			samples := keyTone(dtmf.KeyHash, time.Second, time.Second)
			p := writeAudioPcap(t, t.TempDir(), "x.pcap", tc.law, 0xCAFE, samples)
			f, err := os.Open(p)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			r, err := pcapgo.NewReader(f)
			if err != nil {
				t.Fatal(err)
			}
			if r.LinkType() != layers.LinkTypeEthernet {
				t.Fatalf("link type %v, want Ethernet", r.LinkType())
			}
			var (
				n       int
				first   time.Time
				prev    rtp.Header
				decoded []int16
			)
			for {
				data, ci, err := r.ReadPacketData()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				pkt := gopacket.NewPacket(data, layers.LayerTypeEthernet, gopacket.Default)
				if el := pkt.ErrorLayer(); el != nil {
					t.Fatalf("packet %d: %v", n, el.Error())
				}
				udp, _ := pkt.Layer(layers.LayerTypeUDP).(*layers.UDP)
				if udp == nil || pkt.Layer(layers.LayerTypeIPv4) == nil {
					t.Fatalf("packet %d is not IPv4/UDP", n)
				}
				var rp rtp.Packet
				if err := rp.Unmarshal(udp.Payload); err != nil {
					t.Fatalf("packet %d: %v", n, err)
				}
				if n == 0 {
					first = ci.Timestamp
					if !rp.Marker {
						t.Error("no marker on the first packet")
					}
				} else {
					if rp.Marker {
						t.Errorf("packet %d has the marker", n)
					}
					if rp.SequenceNumber != prev.SequenceNumber+1 || rp.Timestamp != prev.Timestamp+frameSamples {
						t.Errorf("packet %d: seq %d ts %d after seq %d ts %d", n, rp.SequenceNumber, rp.Timestamp, prev.SequenceNumber, prev.Timestamp)
					}
				}
				if got, want := ci.Timestamp.Sub(first), time.Duration(n)*frameTime; got != want {
					t.Errorf("packet %d captured at +%v, want +%v", n, got, want)
				}
				if rp.PayloadType != tc.law.pt || rp.SSRC != 0xCAFE || len(rp.Payload) != frameSamples {
					t.Errorf("packet %d: PT %d SSRC %#x %d bytes", n, rp.PayloadType, rp.SSRC, len(rp.Payload))
				}
				if tc.law.pt == ptPCMA {
					decoded = append(decoded, dtmftest.DecodeAlaw(rp.Payload)...)
				} else {
					decoded = append(decoded, dtmftest.DecodeUlaw(rp.Payload)...)
				}
				prev = rp.Header
				n++
			}
			if want := (len(samples) + frameSamples - 1) / frameSamples; n != want {
				t.Fatalf("%d packets, want %d", n, want)
			}
			// The tone sits at 1.0–1.2 s at about −10 dBm0 per tone.
			low, high, _ := dtmf.KeyHash.Freqs()
			tone := decoded[8000:9600]
			for _, f := range []float64{low, high} {
				if l := dtmftest.ToneLevel(tone, f); l < toneDBm0-1 || l > toneDBm0+1 {
					t.Errorf("%v Hz at %.1f dBm0, want %d", f, l, toneDBm0)
				}
			}
		})
	}
}
