package sip

import (
	"bytes"
	"fmt"
	"mime"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/hashcall/hashcall/dtmf"
)

// handlers registers the server side: requests within our dialogs, and
// OPTIONS. Every handler first checks the source (trust.go): strangers get
// 403. INVITEs that are not ours are refused (hashcall only places calls),
// methods we do not handle get 405.
func (u *UA) handlers() {
	s := u.server
	s.OnOptions(u.guard(func(req *sip.Request, tx sip.ServerTransaction) {
		res := sip.NewResponseFromRequest(req, 200, "OK", nil)
		res.AppendHeader(sip.NewHeader("Allow", "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE"))
		res.AppendHeader(sip.NewHeader("Accept", "application/sdp, application/dtmf-relay, application/dtmf"))
		u.respond(tx, res)
	}))
	s.OnBye(u.guard(func(req *sip.Request, tx sip.ServerTransaction) {
		c := u.inDialog(req, tx)
		if c == nil {
			return // 481: the call goes on
		}
		if err := c.sess.ReadBye(req, tx); err != nil {
			u.log.Debug("answering BYE", "call", c.ref, "err", err)
		}
		u.log.Info("far end hung up", "call", c.ref)
		c.end(true)
		u.forget(c.callID)
	}))
	s.OnAck(u.guard(func(req *sip.Request, _ sip.ServerTransaction) {
		// ACKs of our 200s to re-INVITEs: nothing to do.
	}))
	s.OnInvite(u.guard(func(req *sip.Request, tx sip.ServerTransaction) {
		if to := req.To(); to == nil || !to.Params.Has("tag") {
			// A new call to us: hashcall never answers calls.
			u.respond(tx, sip.NewResponseFromRequest(req, 403, "Forbidden (hashcall places calls only)", nil))
			return
		}
		if c := u.inDialog(req, tx); c != nil {
			u.answerOffer(c, req, tx)
		}
	}))
	s.OnUpdate(u.guard(func(req *sip.Request, tx sip.ServerTransaction) {
		if c := u.inDialog(req, tx); c != nil {
			u.answerOffer(c, req, tx)
		}
	}))
	s.OnInfo(u.guard(func(req *sip.Request, tx sip.ServerTransaction) {
		c := u.inDialog(req, tx)
		if c == nil {
			return
		}
		ct := ""
		if h := req.ContentType(); h != nil {
			ct = h.Value()
		}
		key, d, err := ParseInfo(ct, req.Body())
		switch {
		case err == errNotDTMF:
			// Other INFO packages (e.g. media control): acknowledge.
			u.respond(tx, sip.NewResponseFromRequest(req, 200, "OK", nil))
		case err != nil:
			u.log.Info("bad SIP INFO DTMF", "call", c.ref, "err", err)
			u.respond(tx, sip.NewResponseFromRequest(req, 400, "Bad Request", nil))
		default:
			shown := key.String()
			if c.opts.RedactKeys {
				shown = key.Redacted()
			}
			u.log.Debug("SIP INFO DTMF", "call", c.ref, "call_id", c.callID, "key", shown, "duration", d)
			// The key is handed over before the 200: sipgo runs each
			// request's handler on its own goroutine, so a far end that
			// sends its next INFO on our 200 must find this key taken.
			if c.opts.Media != nil {
				c.opts.Media.Info(key, d)
			}
			u.respond(tx, sip.NewResponseFromRequest(req, 200, "OK", nil))
		}
	}))
	s.OnCancel(u.guard(func(req *sip.Request, tx sip.ServerTransaction) {
		// We answer every request at once: there is nothing to cancel.
		u.respond(tx, sip.NewResponseFromRequest(req, 481, "Call/Transaction Does Not Exist", nil))
	}))
	s.OnNoRoute(u.guard(func(req *sip.Request, tx sip.ServerTransaction) {
		u.respond(tx, sip.NewResponseFromRequest(req, 405, "Method Not Allowed", nil))
	}))
}

// guard wraps a handler: the request is logged (debug) and, unless it comes
// from a trusted source, answered with 403 (an ACK dropped) and counted.
func (u *UA) guard(h func(*sip.Request, sip.ServerTransaction)) func(*sip.Request, sip.ServerTransaction) {
	return func(req *sip.Request, tx sip.ServerTransaction) {
		u.logMsg("recv", req)
		if !u.trusted(req) {
			u.counts.stranger(string(req.Method))
			u.log.Debug("request from an untrusted source refused", "method", string(req.Method), "source", req.MessageData.Source())
			if !req.IsAck() {
				u.respond(tx, sip.NewResponseFromRequest(req, 403, "Forbidden", nil))
			}
			return
		}
		defer u.recoverHandler(req, tx)
		h(req, tx)
	}
}

// recoverHandler ends a panic in a request handler (the call's hooks run
// in them: Info, AnswerOffer): sipgo recovers none, so one bad request would
// end the process and leave every call's far end up without our BYE. The
// request gets 500 (an ACK nothing), the panic is logged with its stack,
// and the call goes on, to end with our BYE as any other.
func (u *UA) recoverHandler(req *sip.Request, tx sip.ServerTransaction) {
	p := recover()
	if p == nil {
		return
	}
	u.log.Error("SIP request handler panicked", "method", string(req.Method), "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
	if !req.IsAck() {
		u.respond(tx, sip.NewResponseFromRequest(req, 500, "Server Internal Error", nil))
	}
}

func (u *UA) respond(tx sip.ServerTransaction, res *sip.Response) {
	u.logMsg("send", res)
	if err := tx.Respond(res); err != nil {
		u.log.Debug("sending response", "code", res.StatusCode, "err", err)
	}
}

// inDialog finds the answered call a request belongs to by the dialog
// rules (dialogState.admit), or answers 481 (500 for a CSeq out of order),
// counts the reason and changes nothing.
func (u *UA) inDialog(req *sip.Request, tx sip.ServerTransaction) *Call {
	id := ""
	if h := req.CallID(); h != nil {
		id = h.Value()
	}
	reason := RejectUnknownCall
	c := u.lookup(id)
	if c != nil {
		c.mu.Lock()
		reason = c.dialog.admit(req)
		c.mu.Unlock()
		if reason == "" {
			return c
		}
		// Someone who knows the Call-ID of a live call: worth a line.
		u.log.Info("in-dialog request refused", "call", c.ref, "method", string(req.Method), "reason", reason, "source", req.MessageData.Source())
	} else {
		u.log.Debug("request for no call of ours", "method", string(req.Method), "source", req.MessageData.Source())
	}
	u.counts.reject(reason)
	code, phrase := rejectStatus(reason)
	u.respond(tx, sip.NewResponseFromRequest(req, code, phrase, nil))
	return nil
}

// answerOffer answers a re-INVITE or UPDATE (RFC 3311) within the dialog with
// 200 and our SDP: the answer to its offer, or our current SDP when it has
// none. The media follows the new offer without dropping the call.
func (u *UA) answerOffer(c *Call, req *sip.Request, tx sip.ServerTransaction) {
	var body []byte
	if len(req.Body()) > 0 {
		if c.opts.Media == nil {
			u.respond(tx, sip.NewResponseFromRequest(req, 488, "Not Acceptable Here", nil))
			return
		}
		ans, err := c.opts.Media.AnswerOffer(req.Body())
		if err != nil {
			u.log.Info("refusing re-offer", "call", c.ref, "method", string(req.Method), "err", err)
			u.respond(tx, sip.NewResponseFromRequest(req, 488, "Not Acceptable Here", nil))
			return
		}
		body = ans
		// The media session logs the move of its RTP target ("rtp
		// retarget"); this line says which request asked for it.
		u.log.Info("re-offer accepted", "call", c.ref, "method", string(req.Method), "source", req.MessageData.Source())
	} else if c.opts.Media != nil {
		body = c.opts.Media.CurrentSDP()
	}
	res := sip.NewResponseFromRequest(req, 200, "OK", nil)
	res.AppendHeader(sip.HeaderClone(&u.dialog.ContactHDR))
	if body != nil {
		res.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
		res.SetBody(body)
	}
	u.respond(tx, res)
}

// errNotDTMF: an INFO whose body is not a DTMF package.
var errNotDTMF = fmt.Errorf("sip: INFO body is not DTMF")

// ParseInfo reads a key from a SIP INFO body: application/dtmf-relay
// ("Signal=#\r\nDuration=250", Cisco and most PBXes) or application/dtmf
// (the bare key). The duration is zero when the body gives none.
func ParseInfo(contentType string, body []byte) (dtmf.Key, time.Duration, error) {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return 0, 0, errNotDTMF
	}
	body = bytes.TrimPrefix(body, []byte("\xef\xbb\xbf")) // a UTF-8 byte order mark, as some softphones write
	switch strings.ToLower(mt) {
	case "application/dtmf":
		if !bytes.Contains(body, []byte("=")) {
			return mustKey(strings.TrimSpace(string(body)))
		}
		// "Signal=5" under application/dtmf: read as dtmf-relay.
		fallthrough
	case "application/dtmf-relay":
		var key dtmf.Key
		var d time.Duration
		for _, line := range bytes.Split(body, []byte("\n")) {
			k, v, ok := bytes.Cut(bytes.TrimSpace(line), []byte("="))
			if !ok {
				continue
			}
			val := strings.TrimSpace(string(v))
			switch strings.ToLower(strings.TrimSpace(string(k))) {
			case "signal":
				kk, err := parseKey(val)
				if err != nil {
					return 0, 0, err
				}
				key = kk
			case "duration":
				if val == "" {
					continue // "Duration=" with no value: the length is unknown
				}
				ms, err := strconv.Atoi(val)
				if err != nil || ms < 0 || ms > 60000 {
					return 0, 0, fmt.Errorf("sip: INFO Duration %q: want milliseconds", val)
				}
				d = time.Duration(ms) * time.Millisecond
			}
		}
		if key == 0 {
			return 0, 0, fmt.Errorf("sip: INFO dtmf-relay body has no Signal")
		}
		return key, d, nil
	}
	return 0, 0, errNotDTMF
}

func mustKey(s string) (dtmf.Key, time.Duration, error) {
	k, err := parseKey(s)
	return k, 0, err
}

// parseKey accepts a key character or its RFC 4733 event number (10 = *,
// 11 = #), as some gateways send "Signal=11".
func parseKey(s string) (dtmf.Key, error) {
	if len(s) == 1 {
		k := dtmf.Key(strings.ToUpper(s)[0])
		if k.Valid() {
			return k, nil
		}
	}
	if n, err := strconv.Atoi(s); err == nil && n >= 0 && n <= 15 {
		k, _ := dtmf.KeyForEvent(uint8(n))
		return k, nil
	}
	return 0, fmt.Errorf("sip: INFO signal %q is not a DTMF key", s)
}
