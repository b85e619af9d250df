package sip

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"fmt"
	"io"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// Identifiers of our requests and dialogs: Call-IDs, From tags and Via
// branches. They are what binds a far end's in-dialog request to our call
// (RFC 3261 §12) and its responses to our transactions (§17.1.3), so a
// stranger must not guess them: each carries 128 bits from crypto/rand.
//
// sipgo v1.7.3 draws its own tags and branches (sip.GenerateTagN,
// sip.GenerateBranchN) from math/rand, and has no setting for another
// generator. hashcall therefore makes its own Call-IDs and tags, and
// replaces the branch of every request that leaves through its client
// (branchRewriter) — including the Vias sipgo adds itself to a BYE, an ACK
// of a 2xx or a request re-sent with credentials.

// randomness is where identifiers come from; tests replace it to check
// that they do.
var randomness io.Reader = rand.Reader

// idEncoding: base32 (RFC 4648) without padding: letters and digits only,
// legal in a Call-ID word, a tag token and a branch (RFC 3261 §25.1).
var idEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// idBytes: 16 bytes, 128 bits, 26 characters.
const idBytes = 16

// randomID returns 26 characters holding 128 random bits. crypto/rand does
// not fail on supported systems; a source a test put in its place may.
func randomID() (string, error) {
	var b [idBytes]byte
	if _, err := io.ReadFull(randomness, b[:]); err != nil {
		return "", fmt.Errorf("sip: reading randomness: %w", err)
	}
	return idEncoding.EncodeToString(b[:]), nil
}

// newCallID returns a Call-ID for a new call.
func newCallID() (string, error) {
	id, err := randomID()
	return id + "@hashcall", err
}

// newTag returns a From tag.
func newTag() (string, error) { return randomID() }

// newBranch returns a Via branch with RFC 3261's magic cookie (§8.1.1.7).
func newBranch() (string, error) {
	id, err := randomID()
	return sip.RFC3261BranchMagicCookie + id, err
}

// callRef is how our logs name a call at info level and above: the first
// 48 bits of the SHA-256 of its Call-ID. It correlates log lines (and a
// capture, for whoever holds one) without disclosing the Call-ID, which
// would let a reader of the logs address requests to the call.
func callRef(callID string) string {
	sum := sha256.Sum256([]byte(callID))
	return hex.EncodeToString(sum[:6])
}

// branchRewriter is the client's transaction requester: every request the
// client sends (in a transaction, or an ACK sent directly) passes through it
// after sipgo has built it, and gets a branch of ours in its Via. A CANCEL
// keeps the branch of the INVITE it cancels (RFC 3261 §9.1), which is ours
// already.
type branchRewriter struct {
	inner *sipgo.Client // the same user agent's client, without a requester
}

// keepAsBuilt is a request option that changes nothing: the request has
// been built by the outer client already.
func keepAsBuilt(*sipgo.Client, *sip.Request) error { return nil }

func (b branchRewriter) Request(ctx context.Context, req *sip.Request) (sip.ClientTransaction, error) {
	if via := req.Via(); via != nil && req.Method != sip.CANCEL {
		br, err := newBranch()
		if err != nil {
			return nil, err
		}
		via.Params.Add("branch", br)
	}
	if req.IsAck() {
		// sipgo sends an ACK of a 2xx through the requester too, and
		// ignores the transaction: there is none (§17.1.1.3).
		return nil, b.inner.WriteRequest(req, keepAsBuilt)
	}
	return b.inner.TransactionRequest(ctx, req, keepAsBuilt)
}
