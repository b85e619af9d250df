package service

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/hashcall/hashcall/verify"
)

// TestMetricsOutcomes: every outcome has its counter from the start, and
// forwarded calls are counted whether refused or flagged.
func TestMetricsOutcomes(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := newMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range verify.Outcomes() {
		if got := counterValue(t, m.verifications.WithLabelValues(string(o))); got != 0 {
			t.Errorf("%s starts at %v", o, got)
		}
	}
	m.observe(verify.Result{Outcome: verify.Diverted, SIPCode: 200, Diverted: true, DiversionReasons: []string{"unconditional"}})
	m.observe(verify.Result{Outcome: verify.NoKey, SIPCode: 200, Diverted: true})
	m.observe(verify.Result{Outcome: verify.Verified, SIPCode: 200})
	tests := []struct {
		name string
		c    prometheus.Metric
		want float64
	}{
		{"outcome_diverted", m.verifications.WithLabelValues(string(verify.Diverted)), 1},
		{"outcome_no_key", m.verifications.WithLabelValues(string(verify.NoKey)), 1},
		{"outcome_verified", m.verifications.WithLabelValues(string(verify.Verified)), 1},
		{"diverted_refused_and_flagged", m.diverted, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := counterValue(t, tc.c); got != tc.want {
				t.Errorf("%v, want %v", got, tc.want)
			}
		})
	}
}

func counterValue(t *testing.T, c prometheus.Metric) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}
