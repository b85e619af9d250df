package main

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/hashcall/hashcall/sip"
)

type fixedStats sip.Stats

func (f fixedStats) Stats() sip.Stats { return sip.Stats(f) }

// TestSIPCollector: the user agent's counters as they appear on /metrics.
func TestSIPCollector(t *testing.T) {
	reg := prometheus.NewRegistry()
	if err := reg.Register(sipCollector{fixedStats{
		DialogRejected: map[string]uint64{sip.RejectTagMismatch: 3, sip.RejectUnknownCall: 1, sip.RejectNoDialog: 0, sip.RejectCSeq: 2},
		Untrusted:      map[string]uint64{"INFO": 4, "other": 1},
	}}); err != nil {
		t.Fatal(err)
	}
	want := `
# HELP hashcall_sip_dialog_rejected_total In-dialog SIP requests (INFO, re-INVITE, UPDATE, BYE, ...) refused with 481, or 500 for a CSeq out of order, by reason (unknown_call, no_dialog, tag_mismatch, cseq_not_increasing).
# TYPE hashcall_sip_dialog_rejected_total counter
hashcall_sip_dialog_rejected_total{reason="cseq_not_increasing"} 2
hashcall_sip_dialog_rejected_total{reason="no_dialog"} 0
hashcall_sip_dialog_rejected_total{reason="tag_mismatch"} 3
hashcall_sip_dialog_rejected_total{reason="unknown_call"} 1
# HELP hashcall_sip_untrusted_requests_total SIP messages from neither the trunk, the outbound proxy nor sip.trusted_sources: requests refused with 403 (an ACK dropped) by method, responses dropped (response), reads of TCP/TLS connections dropped (stream).
# TYPE hashcall_sip_untrusted_requests_total counter
hashcall_sip_untrusted_requests_total{method="INFO"} 4
hashcall_sip_untrusted_requests_total{method="other"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
}
