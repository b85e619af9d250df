package wav_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"

	"github.com/hashcall/hashcall/media/wav"
)

func ExampleFormat_Telephony() {
	f, err := os.Open("testdata/pcm16_44k_stereo.wav")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer f.Close()
	r, err := wav.NewReader(f)
	if err != nil {
		fmt.Println(err)
		return
	}
	err = r.Format.Telephony()
	var fe *wav.FormatError
	if errors.As(err, &fe) {
		fmt.Println("found:", fe.Found)
		fmt.Println("run:", fe.SoxCommand("testdata/pcm16_44k_stereo.wav", "call.wav"))
	}
	// Output:
	// found: PCM 16-bit, 44100 Hz, stereo
	// run: sox testdata/pcm16_44k_stereo.wav -r 8000 -c 1 -b 16 -e signed-integer call.wav
}

func ExampleReader_ReadSamples() {
	f, err := os.Open("testdata/ulaw_8k_mono.wav")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer f.Close()
	r, err := wav.NewReader(f)
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := r.Format.Telephony(); err != nil {
		fmt.Println(err)
		return
	}
	buf := make([]int16, 160) // one 20 ms frame
	total := 0
	for {
		n, err := r.ReadSamples(buf)
		total += n // a detector would be fed buf[:n] here
		if err != nil {
			break
		}
	}
	fmt.Println(r.Format, "-", total, "samples")
	// Output: µ-law, 8000 Hz, mono - 160 samples
}

func ExampleSniff() {
	for _, head := range []string{"RIFF\x24\x00\x00\x00WAVE", "RF64", "\n\r\r\n", "ID3\x04"} {
		fmt.Printf("%q %v\n", head[:4], wav.Sniff([]byte(head)))
	}
	// Output:
	// "RIFF" true
	// "RF64" true
	// "\n\r\r\n" false
	// "ID3\x04" false
}

func ExampleWritePCM16() {
	var buf bytes.Buffer
	if err := wav.WritePCM16(&buf, []int16{0, 1000, -1000, 0}); err != nil {
		fmt.Println(err)
		return
	}
	f, data, err := wav.ReadAll(&buf)
	if err != nil {
		fmt.Println(err)
		return
	}
	samples, err := wav.Samples(f, data)
	fmt.Println(f, samples, err)
	// Output: PCM 16-bit, 8000 Hz, mono [0 1000 -1000 0] <nil>
}
