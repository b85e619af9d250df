package service

import (
	"fmt"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hashcall/hashcall/media"
	"github.com/hashcall/hashcall/verify"
)

type metrics struct {
	verifications *prometheus.CounterVec
	diverted      prometheus.Counter
	wrongCodes    prometheus.Counter
	sipCodes      *prometheus.CounterVec
	dtmfSource    *prometheus.CounterVec
	rtpDropped    *prometheus.CounterVec
	refusals      *prometheus.CounterVec
	callbacks     *prometheus.CounterVec
	// callbackBlocked counts callback connections and redirects refused.
	callbackBlocked *prometheus.CounterVec
	panics          prometheus.Counter
	active          prometheus.Gauge
	setup           prometheus.Histogram
	decision        prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		verifications: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "hashcall_verifications_total", Help: "Completed verifications by outcome."}, []string{"outcome"}),
		sipCodes:      prometheus.NewCounterVec(prometheus.CounterOpts{Name: "hashcall_sip_final_responses_total", Help: "Final SIP responses to our INVITEs by status code (0: none came)."}, []string{"code"}),
		dtmfSource:    prometheus.NewCounterVec(prometheus.CounterOpts{Name: "hashcall_dtmf_source_total", Help: "Deciding key presses by how they arrived (rfc4733, inband, sip_info)."}, []string{"source"}),
		rtpDropped:    prometheus.NewCounterVec(prometheus.CounterOpts{Name: "hashcall_rtp_dropped_packets_total", Help: "Received RTP packets dropped, by reason (source, ssrc, payload_type, not_rtp, early)."}, []string{"reason"}),
		refusals:      prometheus.NewCounterVec(prometheus.CounterOpts{Name: "hashcall_policy_refusals_total", Help: "Verification requests refused before any call, by rule."}, []string{"rule"}),
		callbacks:     prometheus.NewCounterVec(prometheus.CounterOpts{Name: "hashcall_callbacks_total", Help: "Completion callbacks by result (delivered, failed)."}, []string{"result"}),
		callbackBlocked: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "hashcall_callback_blocked_total",
			Help: "Callback connections to an address that is not the allowed host's (address), and redirects not followed (redirect)."}, []string{"reason"}),
		panics:     prometheus.NewCounter(prometheus.CounterOpts{Name: "hashcall_call_panics_total", Help: "Panics contained: calls that ended in one (outcome failed, error internal) and callbacks."}),
		wrongCodes: prometheus.NewCounter(prometheus.CounterOpts{Name: "hashcall_wrong_codes_total", Help: "Wrong codes keyed in mode code (each counts against its number: policy.max_failed_codes)."}),
		diverted:   prometheus.NewCounter(prometheus.CounterOpts{Name: "hashcall_diverted_calls_total", Help: "Verification calls forwarded to another phone (refused or flagged)."}),
		active:     prometheus.NewGauge(prometheus.GaugeOpts{Name: "hashcall_active_calls", Help: "Verification calls in progress."}),
		setup: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "hashcall_call_setup_seconds", Help: "From INVITE to 200 OK.",
			Buckets: []float64{0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60}}),
		decision: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "hashcall_hash_to_decision_seconds", Help: "From the start of the # to the decision.",
			Buckets: []float64{0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.15, 0.2, 0.3, 0.5, 1}}),
	}
	for _, c := range []prometheus.Collector{m.verifications, m.diverted, m.wrongCodes, m.sipCodes, m.dtmfSource, m.rtpDropped, m.refusals, m.callbacks, m.callbackBlocked, m.panics, m.active, m.setup, m.decision, newPacerCollector(media.PacerStats)} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("service: metrics: %w", err)
		}
	}
	for _, o := range verify.Outcomes() {
		m.verifications.WithLabelValues(string(o))
	}
	return m, nil
}

func (m *metrics) observe(r verify.Result) {
	m.verifications.WithLabelValues(string(r.Outcome)).Inc()
	m.sipCodes.WithLabelValues(strconv.Itoa(r.SIPCode)).Inc()
	if r.Diverted {
		m.diverted.Inc()
	}
	if r.DTMFSource != "" && r.Outcome == verify.Verified {
		m.dtmfSource.WithLabelValues(r.DTMFSource).Inc()
	}
	for reason, n := range r.RTPDropped {
		m.rtpDropped.WithLabelValues(reason).Add(float64(n))
	}
	if r.SetupMS > 0 {
		m.setup.Observe(r.SetupMS / 1000)
	}
	if r.Outcome == verify.Verified && r.HashToDecisionMS > 0 {
		m.decision.Observe(r.HashToDecisionMS / 1000)
	}
}
