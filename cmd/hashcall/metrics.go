package main

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/hashcall/hashcall/media"
	"github.com/hashcall/hashcall/sip"
)

// The SIP user agent's counters of refused requests, on the service's
// /metrics beside its own.
var (
	sipDialogRejectedDesc = prometheus.NewDesc("hashcall_sip_dialog_rejected_total",
		"In-dialog SIP requests (INFO, re-INVITE, UPDATE, BYE, ...) refused with 481, or 500 for a CSeq out of order, by reason (unknown_call, no_dialog, tag_mismatch, cseq_not_increasing).",
		[]string{"reason"}, nil)
	sipUntrustedDesc = prometheus.NewDesc("hashcall_sip_untrusted_requests_total",
		"SIP messages from neither the trunk, the outbound proxy nor sip.trusted_sources: requests refused with 403 (an ACK dropped) by method, responses dropped (response), reads of TCP/TLS connections dropped (stream).",
		[]string{"method"}, nil)
)

// The shared RTP port's counters (media.rtp_mux).
var (
	muxReceivedDesc = prometheus.NewDesc("hashcall_rtp_mux_received_total",
		"Datagrams read on the shared RTP port (media.rtp_mux).", nil, nil)
	muxUnknownDesc = prometheus.NewDesc("hashcall_rtp_mux_unknown_total",
		"Datagrams on the shared RTP port from an address no answered call's SDP named: dropped before parsing.", nil, nil)
)

// muxCollector exposes media.Mux.Stats.
type muxCollector struct{ m *media.Mux }

func (c muxCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- muxReceivedDesc
	ch <- muxUnknownDesc
}

func (c muxCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.m.Stats()
	ch <- prometheus.MustNewConstMetric(muxReceivedDesc, prometheus.CounterValue, float64(s.Received))
	ch <- prometheus.MustNewConstMetric(muxUnknownDesc, prometheus.CounterValue, float64(s.Unknown))
}

// statser is what sipCollector reads: *sip.UA.
type statser interface{ Stats() sip.Stats }

// sipCollector exposes sip.UA.Stats as Prometheus counters.
type sipCollector struct{ ua statser }

func (c sipCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- sipDialogRejectedDesc
	ch <- sipUntrustedDesc
}

func (c sipCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.ua.Stats()
	for reason, n := range s.DialogRejected {
		ch <- prometheus.MustNewConstMetric(sipDialogRejectedDesc, prometheus.CounterValue, float64(n), reason)
	}
	for method, n := range s.Untrusted {
		ch <- prometheus.MustNewConstMetric(sipUntrustedDesc, prometheus.CounterValue, float64(n), method)
	}
}
