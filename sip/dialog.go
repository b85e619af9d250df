package sip

import (
	"sync/atomic"

	"github.com/emiago/sipgo/sip"
)

// Why an in-dialog request was refused: the values of the reason label of
// the dialog rejection counter (Stats.DialogRejected).
const (
	// RejectUnknownCall: no call of ours has the request's Call-ID (481).
	RejectUnknownCall = "unknown_call"
	// RejectNoDialog: the call is not answered yet, or over (481).
	RejectNoDialog = "no_dialog"
	// RejectTagMismatch: the To tag is not our From tag, or the From tag
	// not the far end's To tag of its 200 (481).
	RejectTagMismatch = "tag_mismatch"
	// RejectCSeq: the CSeq does not increase on the far end's last
	// request in the dialog (500, RFC 3261 §12.2.2).
	RejectCSeq = "cseq_not_increasing"
)

// rejectReasons lists the reasons in their counter order.
var rejectReasons = [...]string{RejectUnknownCall, RejectNoDialog, RejectTagMismatch, RejectCSeq}

// dialogState is what identifies our side of an answered call's dialog
// (RFC 3261 §12.1.2): its Call-ID, our tag (the From tag of our INVITE),
// the far end's (the To tag of its 200), and the far end's last CSeq.
type dialogState struct {
	callID    string
	localTag  string
	remoteTag string
	up        bool   // answered and not over
	remoteSeq uint32 // valid when haveSeq
	haveSeq   bool
}

// admit decides whether req belongs to the dialog, by RFC 3261 §12.2.2:
// the Call-ID, the To tag (ours) and the From tag (theirs) must all match,
// and the CSeq must be higher than the far end's last one in the dialog
// (the first sets it). It returns "" and records the CSeq when req
// belongs, otherwise the reject reason, and changes nothing.
func (d *dialogState) admit(req *sip.Request) string {
	if h := req.CallID(); h == nil || h.Value() != d.callID {
		return RejectUnknownCall
	}
	if !d.up {
		return RejectNoDialog
	}
	// Tags are compared byte by byte: we and the far end each repeat the
	// other's exactly (§12.2.1.1, §12.2.2).
	to, from := req.To(), req.From()
	if to == nil || from == nil {
		return RejectTagMismatch
	}
	if t, ok := to.Params.Get("tag"); !ok || t != d.localTag {
		return RejectTagMismatch
	}
	if t, ok := from.Params.Get("tag"); !ok || t != d.remoteTag {
		return RejectTagMismatch
	}
	if req.IsAck() {
		// An ACK has the CSeq of the INVITE it acknowledges (§13.2.2.4).
		return ""
	}
	cs := req.CSeq()
	if cs == nil || (d.haveSeq && cs.SeqNo <= d.remoteSeq) {
		// A retransmission never gets here: the transaction layer absorbs
		// it. An equal CSeq in a new transaction is as out of order as a
		// lower one.
		return RejectCSeq
	}
	d.remoteSeq, d.haveSeq = cs.SeqNo, true
	return ""
}

// rejectStatus is the response to a request refused for reason.
func rejectStatus(reason string) (int, string) {
	if reason == RejectCSeq {
		return 500, "Server Internal Error (CSeq out of order)"
	}
	return 481, "Call/Transaction Does Not Exist"
}

// What a stranger sent that was refused, besides requests by method.
const (
	untrustedResponse = "response" // a UDP datagram that is not a request (a response, or garbage), dropped
	untrustedStream   = "stream"   // a read of a TCP or TLS connection, dropped
)

// Methods counted by name when refused for their source, then responses
// and stream reads; other methods count as "other" (the method is the
// sender's choice, the label set is ours).
var untrustedMethods = [...]string{"INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "INFO", "UPDATE", untrustedResponse, untrustedStream, "other"}

// counters of refused requests.
type counters struct {
	rejected  [len(rejectReasons)]atomic.Uint64
	untrusted [len(untrustedMethods)]atomic.Uint64
}

func (c *counters) reject(reason string) {
	for i, r := range rejectReasons {
		if r == reason {
			c.rejected[i].Add(1)
			return
		}
	}
}

func (c *counters) stranger(m string) {
	last := len(untrustedMethods) - 1
	for i, name := range untrustedMethods[:last] {
		if m == name {
			c.untrusted[i].Add(1)
			return
		}
	}
	c.untrusted[last].Add(1)
}

// Stats are the user agent's counts of refused requests since it started.
type Stats struct {
	// DialogRejected counts in-dialog requests (INFO, re-INVITE, UPDATE,
	// BYE, ...) refused with 481 or 500 by reason: RejectUnknownCall,
	// RejectNoDialog, RejectTagMismatch, RejectCSeq. Every reason is
	// present.
	DialogRejected map[string]uint64
	// Untrusted counts what came from a source that is neither the trunk,
	// the outbound proxy nor in Config.TrustedSources: requests refused
	// with 403 (an ACK dropped) by method (INVITE, ACK, BYE, CANCEL,
	// OPTIONS, INFO, UPDATE, other), "response" for UDP datagrams dropped
	// that are not requests (responses, in any spelling sipgo parses, and
	// garbage), "stream" for reads of TCP or TLS connections dropped. Every
	// label is present.
	Untrusted map[string]uint64
}

// Stats returns the counts of refused requests.
func (u *UA) Stats() Stats {
	s := Stats{DialogRejected: map[string]uint64{}, Untrusted: map[string]uint64{}}
	for i, r := range rejectReasons {
		s.DialogRejected[r] = u.counts.rejected[i].Load()
	}
	for i, m := range untrustedMethods {
		s.Untrusted[m] = u.counts.untrusted[i].Load()
	}
	return s
}
