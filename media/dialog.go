package media

import (
	"fmt"
	"time"
)

// The SDP exchange of a call's dialog (sip.Media): the methods below are
// called from the SIP handlers' goroutines and take the session's SDP lock,
// so that the signalling needs no lock of its own.

// StartAnswer parses the far end's SDP answer (of the 200, or of the 183
// that preceded it) and starts the session with the outcome; the media
// clock's reading then is AnsweredAt.
func (s *Session) StartAnswer(answer []byte) error {
	s.sdpMu.Lock()
	defer s.sdpMu.Unlock()
	n, err := s.local.ParseAnswer(answer)
	if err != nil {
		return fmt.Errorf("answer SDP: %w", err)
	}
	if err := s.Start(n); err != nil {
		return err
	}
	s.answeredAt = s.now()
	return nil
}

// AnswerOffer answers an SDP offer within the dialog (a re-INVITE or
// UPDATE: hold, session refresh, media moved) and applies it.
func (s *Session) AnswerOffer(offer []byte) ([]byte, error) {
	s.sdpMu.Lock()
	defer s.sdpMu.Unlock()
	ans, n, err := s.local.Answer(offer)
	if err != nil {
		return nil, err
	}
	if err := s.Update(n); err != nil {
		return nil, err
	}
	return ans, nil
}

// CurrentSDP returns our current SDP (nil if there is none yet), for a
// re-INVITE or UPDATE without an offer.
func (s *Session) CurrentSDP() []byte {
	s.sdpMu.Lock()
	defer s.sdpMu.Unlock()
	b, _ := s.local.Current()
	return b
}

// Offer returns our SDP offer, for the INVITE.
func (s *Session) Offer() ([]byte, error) {
	s.sdpMu.Lock()
	defer s.sdpMu.Unlock()
	return s.local.Offer()
}

// Negotiated returns the outcome of the last offer/answer exchange (the
// zero value before StartAnswer or Start).
func (s *Session) Negotiated() Negotiated {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.neg
}

// AnsweredAt returns when StartAnswer started the session, on the media
// clock (see Now).
func (s *Session) AnsweredAt() time.Duration {
	s.sdpMu.Lock()
	defer s.sdpMu.Unlock()
	return s.answeredAt
}
