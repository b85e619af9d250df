package verify

import (
	"testing"

	"github.com/hashcall/hashcall/prompts"
)

// TestPromptAudioShared: every call of a Verifier gets the same Audio for a
// prompt of a Set; another prompt, or a Set loaded again, gets its own.
func TestPromptAudioShared(t *testing.T) {
	set, err := prompts.Load("", "en-GB")
	if err != nil {
		t.Fatal(err)
	}
	again, err := prompts.Load("", "en-GB")
	if err != nil {
		t.Fatal(err)
	}
	var v Verifier
	a1, a2 := v.audio.get(set.Ask), v.audio.get(set.Ask)
	if a1 == nil || a1 != a2 {
		t.Fatal("two calls got separate Audio for one prompt")
	}
	if a1.Len() != len(set.Ask) {
		t.Errorf("Audio of %d samples, prompt %d", a1.Len(), len(set.Ask))
	}
	if v.audio.get(set.Success) == a1 {
		t.Error("two prompts share an Audio")
	}
	if v.audio.get(again.Ask) == a1 {
		t.Error("a reloaded Set got the old Audio")
	}
	if v.audio.get(nil) != nil {
		t.Error("an empty prompt got an Audio")
	}
}
