package sip

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// registerLoop keeps us registered at the trunk: it refreshes well before
// the granted expiry and retries failures with exponential back-off
// (1 s doubling to 5 min, with jitter). On stop it unregisters.
func (u *UA) registerLoop(ctx context.Context) {
	backoff := time.Second
	for {
		granted, err := u.register(ctx, u.cfg.Trunk.RegisterExpiry)
		var wait time.Duration
		if err != nil {
			u.registered.Store(false)
			u.log.Warn("registration failed", "err", err, "retry_in", backoff)
			wait = backoff + time.Duration(rand.Int64N(int64(backoff/4)+1))
			backoff = min(backoff*2, 5*time.Minute)
		} else {
			if !u.registered.Swap(true) {
				u.log.Info("registered", "expires", granted)
			}
			backoff = time.Second
			// Refresh at half the granted time (RFC 3261 §10.2.4 leaves the
			// margin to us), so a lost refresh still has time to be retried.
			wait = max(granted/2, 5*time.Second)
		}
		select {
		case <-ctx.Done():
			if u.registered.Load() {
				uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 3*time.Second)
				if _, err := u.register(uctx, 0); err != nil {
					u.log.Debug("unregister", "err", err)
				}
				cancel()
				u.registered.Store(false)
			}
			return
		case <-time.After(wait):
		}
	}
}

var errRegisterRejected = errors.New("sip: registration rejected")

// register sends one REGISTER (answering a digest challenge) and returns
// the expiry the registrar granted.
func (u *UA) register(ctx context.Context, expiry time.Duration) (time.Duration, error) {
	user := u.cfg.Trunk.Username
	if user == "" {
		user = "hashcall"
	}
	aor := sip.Uri{Scheme: "sip", User: user, Host: u.trunkHost}
	req := sip.NewRequest(sip.REGISTER, u.trunkURI(""))
	tag, err := newTag()
	if err != nil {
		return 0, err
	}
	req.AppendHeader(&sip.FromHeader{Address: aor, Params: sip.NewParams()})
	req.From().Params.Add("tag", tag)
	req.AppendHeader(&sip.ToHeader{Address: aor})
	contact := u.dialog.ContactHDR.Clone()
	contact.Address.User = user
	req.AppendHeader(contact)
	req.AppendHeader(sip.NewHeader("Expires", strconv.Itoa(int(expiry/time.Second))))
	req.AppendHeader(sip.NewHeader("User-Agent", u.cfg.UserAgent))
	if err := u.route(req); err != nil {
		return 0, err
	}
	req.SetTransport(u.transportName())
	rctx, cancel := context.WithTimeout(ctx, 32*time.Second)
	defer cancel()
	u.logMsg("send", req)
	res, err := u.client.Do(rctx, req, sipgo.ClientRequestRegisterBuild)
	if err != nil {
		return 0, fmt.Errorf("REGISTER: %w", err)
	}
	u.logMsg("recv", res)
	if res.StatusCode == 401 || res.StatusCode == 407 {
		if u.cfg.Trunk.Password == "" {
			return 0, fmt.Errorf("%w: %d %s and no credentials are configured", errRegisterRejected, res.StatusCode, res.Reason)
		}
		if err := u.checkRealm(res); err != nil {
			return 0, fmt.Errorf("%w: %d %s: %w", errRegisterRejected, res.StatusCode, res.Reason, err)
		}
		res, err = u.client.DoDigestAuth(rctx, req, res, sipgo.DigestAuth{Username: u.cfg.Trunk.Username, Password: u.cfg.Trunk.Password})
		if err != nil {
			return 0, fmt.Errorf("REGISTER with credentials: %w", err)
		}
		u.logMsg("recv", res)
	}
	if res.StatusCode != 200 {
		return 0, fmt.Errorf("%w: %d %s", errRegisterRejected, res.StatusCode, res.Reason)
	}
	return grantedExpiry(res, expiry), nil
}

// maxExpires is the largest Expires value (RFC 3261 §20.19: 2**32-1 s).
const maxExpires = 1<<32 - 1

// grantedExpiry is the registration time a registrar's 200 grants: the
// expires parameter of its Contact, else its Expires header (RFC 3261
// §10.2.4), else what we asked for. A value that is not a whole number of
// seconds from 0 to 2**32-1 is ignored.
func grantedExpiry(res *sip.Response, asked time.Duration) time.Duration {
	granted := asked
	seconds := func(v string) (time.Duration, bool) {
		n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
		if err != nil || n > maxExpires {
			return 0, false
		}
		return time.Duration(n) * time.Second, true
	}
	if h := res.GetHeader("Expires"); h != nil {
		if d, ok := seconds(h.Value()); ok {
			granted = d
		}
	}
	if c := res.Contact(); c != nil {
		if v, ok := c.Params.Get("expires"); ok {
			if d, ok := seconds(v); ok {
				granted = d
			}
		}
	}
	return granted
}

func (u *UA) transportName() string {
	switch u.transport {
	case "tcp":
		return "TCP"
	case "tls":
		return "TLS"
	}
	return "UDP"
}

// optionsLoop pings the trunk with OPTIONS: any response means it is up
// (a 404 or 405 is still a live SIP peer); no response means down. It also
// keeps NAT bindings open.
func (u *UA) optionsLoop(ctx context.Context) {
	for {
		u.ping(ctx)
		select {
		case <-ctx.Done():
			return
		case <-time.After(u.cfg.Trunk.OptionsInterval):
		}
	}
}

// ping sends one OPTIONS to the trunk and records whether it answered.
func (u *UA) ping(ctx context.Context) bool {
	req := sip.NewRequest(sip.OPTIONS, u.trunkURI(""))
	tag, err := newTag()
	if err != nil {
		return false
	}
	from := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: "hashcall", Host: u.host}, Params: sip.NewParams()}
	from.Params.Add("tag", tag)
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: u.trunkURI("")})
	req.AppendHeader(sip.NewHeader("User-Agent", u.cfg.UserAgent))
	if err := u.route(req); err != nil {
		return false
	}
	req.SetTransport(u.transportName())
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	res, err := u.client.Do(pctx, req)
	up := err == nil && res != nil
	if was := u.trunkUp.Swap(up); was != up {
		if up {
			u.log.Info("trunk up", "code", res.StatusCode)
		} else {
			u.log.Warn("trunk down: no answer to OPTIONS", "err", err)
		}
	}
	if up {
		u.trunkSeen.Store(time.Now().UnixNano())
	}
	return up
}

// Ping sends one OPTIONS to the trunk now and reports whether it answered.
func (u *UA) Ping(ctx context.Context) bool { return u.ping(ctx) }
