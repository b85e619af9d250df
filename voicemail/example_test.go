package voicemail_test

import (
	"fmt"
	"time"

	"github.com/hashcall/hashcall/dtmf/dtmftest"
	"github.com/hashcall/hashcall/voicemail"
)

// A short greeting, then the recorder's beep: recognised by the beep.
func ExampleDetector() {
	greeting := dtmftest.Tones(1500*time.Millisecond, dtmftest.Tone{Freq: 180, DBm0: -20}, dtmftest.Tone{Freq: 370, DBm0: -22}, dtmftest.Tone{Freq: 1100, DBm0: -26})
	beep := dtmftest.Tones(500*time.Millisecond, dtmftest.Tone{Freq: 1000, DBm0: -12})
	d := voicemail.New(voicemail.Config{})
	v := d.Feed(dtmftest.Concat(dtmftest.Silence(300*time.Millisecond), greeting, dtmftest.Silence(250*time.Millisecond), beep))
	fmt.Println(v.Machine, v.Reason, v.BeepHz)
	// Output: true beep 1000
}
