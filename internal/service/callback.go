package service

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"time"
)

// callback posts the final verification to its callback URL, signed, with
// exponential back-off (1 s doubling to 60 s) for at most CallbackRetryFor.
// During a drain it stops waiting between attempts and gives up after one
// more.
func (s *Service) callback(v Verification) {
	body, err := json.Marshal(v)
	if err != nil {
		s.log.Error("callback: encoding", "id", v.ID, "err", err)
		return
	}
	deadline := time.Now().Add(s.opts.CallbackRetryFor)
	backoff := time.Second
	for attempt := 1; ; attempt++ {
		status, err := s.post(v.CallbackURL, body)
		if err == nil && status/100 == 2 {
			s.metrics.callbacks.WithLabelValues("delivered").Inc()
			s.log.Info("callback delivered", "id", v.ID, "status", status, "attempt", attempt)
			return
		}
		s.log.Warn("callback failed", "id", v.ID, "status", status, "err", err, "attempt", attempt)
		draining := false
		select {
		case <-s.cbStop:
			draining = true
		default:
		}
		if draining || time.Now().Add(backoff).After(deadline) {
			s.metrics.callbacks.WithLabelValues("failed").Inc()
			s.log.Error("callback given up", "id", v.ID, "attempts", attempt)
			return
		}
		select {
		case <-time.After(backoff):
		case <-s.cbStop:
		}
		backoff = min(backoff*2, time.Minute)
	}
}

var errRedirect = errors.New("the callback URL answered with a redirect, which is not followed")

func (s *Service) post(url string, body []byte) (int, error) {
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "hashcall")
	req.Header.Set("X-Hashcall-Signature", sign(s.opts.CallbackSecret, time.Now(), body))
	res, err := s.cbc.Do(req)
	if err != nil {
		return 0, err
	}
	res.Body.Close()
	if res.StatusCode/100 == 3 {
		// Never followed: the body and its signature go to the
		// allowed host only.
		return res.StatusCode, errRedirect
	}
	return res.StatusCode, nil
}
