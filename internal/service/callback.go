package service

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"runtime/debug"
	"sync"
	"time"

	"github.com/hashcall/hashcall/internal/store"
)

// Callbacks come from the store's queue: a node claims the due ones (no
// other node delivers them meanwhile), posts each signed, and marks it
// delivered, or due again after a back-off (1 s doubling to 60 s) until
// CallbackRetryFor has passed since the outcome. A node that dies holding
// a claim loses it when the claim lapses, and another node delivers.

func (s *Service) wakeCallbacks() {
	select {
	case s.cbWake <- struct{}{}:
	default:
	}
}

// dispatchCallbacks delivers due callbacks until Close.
func (s *Service) dispatchCallbacks() {
	defer s.bg.Done()
	t := time.NewTicker(s.opts.PollInterval)
	defer t.Stop()
	for {
		select {
		case <-s.bgCtx.Done():
			return
		case <-s.cbWake:
		case <-t.C:
		}
		// A post already under way finishes (within the callback
		// timeout) when Close stops the dispatcher: cut off, it would be
		// a failed attempt due again only after the shutdown, and the
		// receiver would wait for the next start to hear the outcome.
		s.deliverDue(s.bgCtx, context.WithoutCancel(s.bgCtx))
	}
}

// deliverDue claims and delivers the due callbacks until none is left or
// ctx ends; each post runs under post.
func (s *Service) deliverDue(ctx, post context.Context) {
	claimFor := s.cbc.Timeout + 30*time.Second
	for ctx.Err() == nil {
		cs, err := s.store.ClaimCallbacks(ctx, 8, claimFor)
		if err != nil {
			if ctx.Err() == nil {
				s.log.Error("store: claiming callbacks", "err", err)
			}
			return
		}
		if len(cs) == 0 {
			return
		}
		var wg sync.WaitGroup
		for _, c := range cs {
			wg.Go(func() { s.deliver(post, c) })
		}
		wg.Wait()
	}
}

func (s *Service) deliver(ctx context.Context, c store.PendingCallback) {
	defer func() {
		if p := recover(); p != nil {
			s.metrics.panics.Inc()
			s.metrics.callbacks.WithLabelValues("failed").Inc()
			s.log.Error("callback panicked", "id", c.VerificationID, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
		}
	}()
	status, err := s.post(ctx, c.URL, c.Body)
	// Recorded even when ctx has ended: the attempt was made.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), storeOpTimeout)
	defer cancel()
	if err == nil && status/100 == 2 {
		s.metrics.callbacks.WithLabelValues("delivered").Inc()
		s.log.Info("callback delivered", "id", c.VerificationID, "status", status, "attempt", c.Attempts)
		if err := s.store.CallbackDelivered(sctx, c.VerificationID); err != nil {
			s.log.Error("store: callback delivered but not recorded", "id", c.VerificationID, "err", err)
		}
		return
	}
	msg := fmt.Sprintf("status %d", status)
	if err != nil {
		msg = err.Error()
	}
	s.log.Warn("callback failed", "id", c.VerificationID, "status", status, "err", err, "attempt", c.Attempts)
	backoff := min(time.Second<<min(c.Attempts-1, 6), time.Minute)
	next := time.Now().Add(backoff)
	giveUp := next.After(c.Deadline)
	if giveUp {
		s.metrics.callbacks.WithLabelValues("failed").Inc()
		s.log.Error("callback given up", "id", c.VerificationID, "attempts", c.Attempts)
	}
	if err := s.store.CallbackRetry(sctx, c.VerificationID, next, msg, giveUp); err != nil && !errors.Is(err, store.ErrNotFound) {
		s.log.Error("store: callback retry", "id", c.VerificationID, "err", err)
	}
	if !giveUp {
		// Wake the dispatcher when it is due again.
		t := time.AfterFunc(backoff, s.wakeCallbacks)
		context.AfterFunc(s.bgCtx, func() { t.Stop() })
	}
}

var errRedirect = errors.New("the callback URL answered with a redirect, which is not followed")

func (s *Service) post(ctx context.Context, url string, body []byte) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
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
