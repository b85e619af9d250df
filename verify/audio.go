package verify

import (
	"sync"

	"github.com/hashcall/hashcall/media"
)

// promptAudio holds one media.Audio per prompt a Verifier has played, so
// every call plays the same encoded bytes: a prompt is encoded once per
// codec for the process instead of once per call (the 7.5 s ask prompt is
// 58.5 KiB of G.711). Prompts are keyed by their samples' identity, the
// slices of a prompts.Set, which are read-only once loaded.
type promptAudio struct{ m sync.Map } // audioKey → *media.Audio

type audioKey struct {
	first *int16
	n     int
}

// get returns the shared Audio of samples.
func (p *promptAudio) get(samples []int16) *media.Audio {
	if len(samples) == 0 {
		return nil
	}
	k := audioKey{&samples[0], len(samples)}
	if a, ok := p.m.Load(k); ok {
		return a.(*media.Audio)
	}
	a, _ := p.m.LoadOrStore(k, media.NewAudio(samples))
	return a.(*media.Audio)
}
