package sip

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// DialogState is what ending an answered call needs once the process that
// placed it is gone (a crash): the dialog's identifiers and our side's
// state, per RFC 3261 §12.2.1.1 — Call-ID, the From (ours, with our tag)
// and To (theirs, with their tag) as sent and received, the remote target
// (the 200's Contact), the route set (the 200's Record-Route, reversed:
// §12.1.2), the last CSeq we used, the transport and our Contact.
type DialogState struct {
	CallID       string
	From         string // our From header value, with our tag
	To           string // the To of the 200, with their tag
	LocalTag     string
	RemoteTag    string
	RemoteTarget string
	RouteSet     []string
	CSeq         uint32
	Transport    string
	LocalContact string
}

// State returns what a BYE for this call needs, to be stored while the
// call is up.
func (c *Call) State() DialogState {
	req, res := c.sess.InviteRequest, c.sess.InviteResponse
	d := DialogState{CallID: c.callID, CSeq: c.sess.CSEQ(), Transport: req.Transport(), LocalContact: c.ua.dialog.ContactHDR.Value()}
	if h := req.From(); h != nil {
		d.From = h.Value()
		d.LocalTag, _ = h.Params.Get("tag")
	}
	if res == nil {
		return d
	}
	if h := res.To(); h != nil {
		d.To = h.Value()
		d.RemoteTag, _ = h.Params.Get("tag")
	}
	d.RemoteTarget = req.Recipient.String()
	if h := res.Contact(); h != nil {
		d.RemoteTarget = h.Address.String()
	}
	rr := res.GetHeaders("record-route")
	for i := len(rr) - 1; i >= 0; i-- {
		d.RouteSet = append(d.RouteSet, rr[i].Value())
	}
	return d
}

// ErrBadDialogState: a DialogState lacks what a BYE needs.
var ErrBadDialogState = errors.New("sip: dialog state incomplete")

// ByeFromState ends a dialog from stored state, as Call.Hangup would have:
// a BYE to the remote target through the route set, with the next CSeq,
// waiting for its final response or ctx. A 481 (the far end no longer
// knows the dialog) counts as ended.
func (u *UA) ByeFromState(ctx context.Context, d DialogState) error {
	if d.CallID == "" || d.LocalTag == "" || d.RemoteTag == "" || d.From == "" || d.To == "" || d.RemoteTarget == "" {
		return ErrBadDialogState
	}
	var target sip.Uri
	if err := sip.ParseUri(d.RemoteTarget, &target); err != nil {
		return fmt.Errorf("%w: remote target: %v", ErrBadDialogState, err)
	}
	bye := sip.NewRequest(sip.BYE, target)
	maxFwd := sip.MaxForwardsHeader(70)
	bye.AppendHeader(&maxFwd)
	bye.AppendHeader(sip.NewHeader("From", d.From))
	bye.AppendHeader(sip.NewHeader("To", d.To))
	bye.AppendHeader(sip.NewHeader("Call-ID", d.CallID))
	bye.AppendHeader(sip.NewHeader("CSeq", strconv.FormatUint(uint64(d.CSeq)+1, 10)+" BYE"))
	for _, r := range d.RouteSet {
		bye.AppendHeader(sip.NewHeader("Route", r))
	}
	if rh := bye.Route(); rh != nil && !rh.Address.UriParams.Has("lr") {
		bye.Recipient = rh.Address // a strict router (RFC 3261 §12.2.1.1)
	}
	if d.LocalContact != "" {
		bye.AppendHeader(sip.NewHeader("Contact", d.LocalContact))
	}
	if d.Transport != "" {
		bye.SetTransport(d.Transport)
	} else {
		bye.SetTransport(u.transportName())
	}
	bye.SetBody(nil)
	u.logMsg("send", bye)
	tx, err := u.client.TransactionRequest(ctx, bye, func(c *sipgo.Client, req *sip.Request) error {
		sipgo.ClientRequestAddVia(c, req)
		return nil
	})
	if err != nil {
		return fmt.Errorf("sip: bye: %w", err)
	}
	defer tx.Terminate()
	for {
		select {
		case res := <-tx.Responses():
			u.logMsg("recv", res)
			switch {
			case res.IsProvisional():
				continue
			case res.IsSuccess(), res.StatusCode == 481:
				return nil
			default:
				return fmt.Errorf("sip: bye: %d %s", res.StatusCode, res.Reason)
			}
		case <-tx.Done():
			if err := tx.Err(); err != nil {
				return fmt.Errorf("sip: bye: %w", err)
			}
			return errors.New("sip: bye: no response")
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// CancelState is what a CANCEL of a ringing call's INVITE needs once the
// process that sent it is gone (RFC 3261 §9.1): the INVITE's Request-URI,
// its top Via (the CANCEL's only Via, so the far end matches the INVITE
// transaction by its branch), From, To, Call-ID, CSeq number and Route
// headers, and where it was sent.
type CancelState struct {
	RequestURI  string
	Via         string
	From        string
	To          string
	CallID      string
	CSeq        uint32
	Route       []string
	Transport   string
	Destination string
}

func cancelState(inv *sip.Request) *CancelState {
	if inv == nil || inv.Via() == nil || inv.CallID() == nil || inv.CSeq() == nil || inv.From() == nil || inv.To() == nil {
		return nil
	}
	c := &CancelState{RequestURI: inv.Recipient.String(), Via: inv.Via().Value(), From: inv.From().Value(), To: inv.To().Value(),
		CallID: inv.CallID().Value(), CSeq: inv.CSeq().SeqNo, Transport: inv.Transport(), Destination: inv.Destination()}
	for _, h := range inv.GetHeaders("Route") {
		c.Route = append(c.Route, h.Value())
	}
	return c
}

// CancelFromState cancels a ringing call's INVITE from stored state. The
// far end answers the CANCEL (and the INVITE with 487) towards the INVITE's
// Via, so no answer is awaited here: the CANCEL is sent, retransmitted per
// RFC 3261 §17.1.2 by sipgo's transaction, until ctx ends or a response
// comes.
func (u *UA) CancelFromState(ctx context.Context, c CancelState) error {
	if c.RequestURI == "" || c.Via == "" || c.CallID == "" || c.From == "" || c.To == "" {
		return ErrBadDialogState
	}
	var target sip.Uri
	if err := sip.ParseUri(c.RequestURI, &target); err != nil {
		return fmt.Errorf("%w: request URI: %v", ErrBadDialogState, err)
	}
	req := sip.NewRequest(sip.CANCEL, target)
	req.AppendHeader(sip.NewHeader("Via", c.Via))
	maxFwd := sip.MaxForwardsHeader(70)
	req.AppendHeader(&maxFwd)
	req.AppendHeader(sip.NewHeader("From", c.From))
	req.AppendHeader(sip.NewHeader("To", c.To))
	req.AppendHeader(sip.NewHeader("Call-ID", c.CallID))
	req.AppendHeader(sip.NewHeader("CSeq", strconv.FormatUint(uint64(c.CSeq), 10)+" CANCEL"))
	for _, r := range c.Route {
		req.AppendHeader(sip.NewHeader("Route", r))
	}
	if c.Transport != "" {
		req.SetTransport(c.Transport)
	} else {
		req.SetTransport(u.transportName())
	}
	if c.Destination != "" {
		req.SetDestination(c.Destination)
	}
	req.SetBody(nil)
	u.logMsg("send", req)
	tx, err := u.client.TransactionRequest(ctx, req, func(*sipgo.Client, *sip.Request) error { return nil })
	if err != nil {
		return fmt.Errorf("sip: cancel: %w", err)
	}
	defer tx.Terminate()
	select {
	case res := <-tx.Responses():
		u.logMsg("recv", res)
		if res.IsSuccess() || res.StatusCode == 481 {
			return nil
		}
		return fmt.Errorf("sip: cancel: %d %s", res.StatusCode, res.Reason)
	case <-tx.Done():
		return tx.Err()
	case <-ctx.Done():
		return ctx.Err() // sent; the answer goes to the INVITE's Via
	}
}
