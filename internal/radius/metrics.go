package radius

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Reasons an Access-Reject is sent, the label of hashcall_radius_rejects_total.
const (
	ReasonUpstreamReject = "upstream_reject" // the upstream refused the password
	ReasonUpstreamDown   = "upstream_down"   // no upstream answered
	ReasonNoNumber       = "no_number"       // the directory has no number for the user
	ReasonRefused        = "refused"         // the verify service refused the call (policy, rate limit, trunk down)
	ReasonClientLimit    = "client_limit"    // radius.client_limit for this NAS
	ReasonTimeout        = "timeout"         // the call did not end within radius.call_timeout
	ReasonBadUpstream    = "bad_upstream"    // the upstream's answer could not be relayed
	// Any other reason is a call outcome other than verified (wrong_key,
	// no_answer, …).
)

// Reasons a packet is dropped, the label of hashcall_radius_dropped_total.
const (
	DropUnknownClient  = "unknown_client"
	DropNoMessageAuth  = "no_message_authenticator"
	DropBadMessageAuth = "bad_message_authenticator"
	DropMalformed      = "malformed"
	DropCode           = "unsupported_code"
	DropRetransmit     = "retransmission_in_progress"
)

type metrics struct {
	requests         *prometheus.CounterVec
	accepts          prometheus.Counter
	rejects          *prometheus.CounterVec
	challenges       prometheus.Counter
	dropped          *prometheus.CounterVec
	cached           prometheus.Counter
	joined           prometheus.Counter
	upstreamLatency  *prometheus.HistogramVec
	upstreamFailures *prometheus.CounterVec
	upstreamUp       *prometheus.GaugeVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests:   prometheus.NewCounterVec(prometheus.CounterOpts{Name: "hashcall_radius_requests_total", Help: "RADIUS requests from known clients with a valid Message-Authenticator, by code (access_request, status_server)."}, []string{"code"}),
		accepts:    prometheus.NewCounter(prometheus.CounterOpts{Name: "hashcall_radius_accepts_total", Help: "Access-Accepts sent to NASes (upstream accepted and the call was verified)."}),
		rejects:    prometheus.NewCounterVec(prometheus.CounterOpts{Name: "hashcall_radius_rejects_total", Help: "Access-Rejects sent to NASes, by reason (upstream_reject, upstream_down, no_number, refused, client_limit, timeout, bad_upstream, or the call's outcome)."}, []string{"reason"}),
		challenges: prometheus.NewCounter(prometheus.CounterOpts{Name: "hashcall_radius_challenges_total", Help: "Access-Challenges relayed from the upstream (EAP rounds)."}),
		dropped:    prometheus.NewCounterVec(prometheus.CounterOpts{Name: "hashcall_radius_dropped_total", Help: "RADIUS packets dropped unanswered, by reason (unknown_client, no_message_authenticator, bad_message_authenticator, malformed, unsupported_code, retransmission_in_progress)."}, []string{"reason"}),
		cached:     prometheus.NewCounter(prometheus.CounterOpts{Name: "hashcall_radius_cached_answers_total", Help: "Retransmissions answered from the answer cache."}),
		joined:     prometheus.NewCounter(prometheus.CounterOpts{Name: "hashcall_radius_joined_calls_total", Help: "Access-Requests that joined a call already running for the same sign-in (user, NAS, calling station)."}),
		upstreamLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "hashcall_radius_upstream_seconds", Help: "Upstream RADIUS exchange time, by server.",
			Buckets: []float64{0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 3}}, []string{"server"}),
		upstreamFailures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "hashcall_radius_upstream_failures_total", Help: "Upstream RADIUS failures, by server and reason (timeout, send, bad_authenticator, unexpected, malformed)."}, []string{"server", "reason"}),
		upstreamUp:       prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "hashcall_radius_upstream_up", Help: "1 when the upstream server answered its last exchange or Status-Server."}, []string{"server"}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.accepts, m.rejects, m.challenges, m.dropped, m.cached, m.joined, m.upstreamLatency, m.upstreamFailures, m.upstreamUp} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("radius: metrics: %w", err)
		}
	}
	for _, r := range []string{DropUnknownClient, DropNoMessageAuth, DropBadMessageAuth, DropMalformed, DropCode, DropRetransmit} {
		m.dropped.WithLabelValues(r)
	}
	return m, nil
}
