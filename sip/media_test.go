package sip

import (
	"errors"
	"time"

	"github.com/hashcall/hashcall/dtmf"
)

// funcMedia is a Media of functions for the dialog's tests; a nil function
// does nothing (AnswerOffer refuses, CurrentSDP returns nothing).
type funcMedia struct {
	start   func(answer []byte) error
	offer   func(offer []byte) ([]byte, error)
	current func() []byte
	info    func(key dtmf.Key, d time.Duration)
}

func (m funcMedia) StartAnswer(answer []byte) error {
	if m.start == nil {
		return nil
	}
	return m.start(answer)
}

func (m funcMedia) AnswerOffer(offer []byte) ([]byte, error) {
	if m.offer == nil {
		return nil, errNoOffer
	}
	return m.offer(offer)
}

func (m funcMedia) CurrentSDP() []byte {
	if m.current == nil {
		return nil
	}
	return m.current()
}

func (m funcMedia) Info(key dtmf.Key, d time.Duration) {
	if m.info != nil {
		m.info(key, d)
	}
}

var _ Media = funcMedia{}

var errNoOffer = errors.New("test media takes no offer")
