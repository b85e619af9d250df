package store

import (
	"encoding/json"
	"fmt"

	"github.com/hashcall/hashcall/verify"
)

// Request is what a verification was asked for, as stored.
type Request struct {
	To          string `json:"to"` // masked
	Locale      string `json:"locale"`
	Mode        string `json:"mode,omitempty"`
	Reference   string `json:"reference,omitempty"`
	CallbackURL string `json:"callback_url,omitempty"`
	// NumberHMAC is the number's NumberHMAC, for the audit row of an
	// outcome set without the number at hand (interrupted).
	NumberHMAC string `json:"to_hmac,omitempty"`
}

// Dialog is what a BYE needs to end an answered call's dialog from stored
// state (RFC 3261 §12.2.1.1): the dialog identifiers, the route set and
// remote target, our next CSeq, the transport and our contact.
type Dialog struct {
	CallID       string   `json:"call_id"`
	LocalTag     string   `json:"local_tag"`
	RemoteTag    string   `json:"remote_tag"`
	LocalURI     string   `json:"local_uri"`  // our From
	RemoteURI    string   `json:"remote_uri"` // our To
	RemoteTarget string   `json:"remote_target"`
	RouteSet     []string `json:"route_set,omitempty"`
	CSeq         uint32   `json:"cseq"` // the last CSeq we sent
	Transport    string   `json:"transport"`
	LocalContact string   `json:"local_contact,omitempty"`
	// Early: the call was still ringing; a CANCEL of the INVITE ends it
	// (RFC 3261 §9.1), with the INVITE's Request-URI, top Via and
	// destination; RemoteTag and RemoteTarget are then empty.
	Early       bool   `json:"early,omitempty"`
	RequestURI  string `json:"request_uri,omitempty"`
	Via         string `json:"via,omitempty"`
	Destination string `json:"destination,omitempty"`
}

// maxJSON bounds a stored JSON document: nothing hashcall writes comes near.
const maxJSON = 1 << 20

func decodeJSON(what string, b []byte, v any) error {
	if len(b) > maxJSON {
		return fmt.Errorf("store: stored %s: %d bytes, more than %d", what, len(b), maxJSON)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("store: stored %s: %w", what, err)
	}
	return nil
}

// DecodeRequest decodes a stored request.
func DecodeRequest(b []byte) (Request, error) {
	var r Request
	err := decodeJSON("request", b, &r)
	return r, err
}

// DecodeResult decodes a stored result; the outcome must be one hashcall
// knows.
func DecodeResult(b []byte) (verify.Result, error) {
	var r verify.Result
	if err := decodeJSON("result", b, &r); err != nil {
		return verify.Result{}, err
	}
	if !verify.KnownOutcome(r.Outcome) {
		return verify.Result{}, fmt.Errorf("store: stored result: unknown outcome %q", r.Outcome)
	}
	return r, nil
}

// DecodeDialog decodes a stored dialog; it must name a Call-ID, both tags
// and a remote target.
func DecodeDialog(b []byte) (Dialog, error) {
	var d Dialog
	if err := decodeJSON("dialog", b, &d); err != nil {
		return Dialog{}, err
	}
	switch {
	case d.Early && (d.CallID == "" || d.RequestURI == "" || d.Via == ""):
		return Dialog{}, fmt.Errorf("store: stored dialog: a ringing call needs its Call-ID, Request-URI and Via")
	case !d.Early && (d.CallID == "" || d.LocalTag == "" || d.RemoteTag == "" || d.RemoteTarget == ""):
		return Dialog{}, fmt.Errorf("store: stored dialog: Call-ID, tags and remote target are required")
	}
	if len(d.RouteSet) == 0 {
		d.RouteSet = nil // no route set, however it was written
	}
	return d, nil
}

// DecodeAuditDetail decodes an audit row's detail: a JSON object.
func DecodeAuditDetail(b []byte) (map[string]any, error) {
	var m map[string]any
	if err := decodeJSON("audit detail", b, &m); err != nil {
		return nil, err
	}
	if m == nil {
		return nil, fmt.Errorf("store: stored audit detail: not a JSON object")
	}
	return m, nil
}
