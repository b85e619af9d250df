package service

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/hashcall/hashcall/media"
)

// pacerCollector exposes media.PacerStats: how late our RTP packets left
// against their 20 ms slots, the late and skipped slots, and the sessions
// being paced. It reads the counters at scrape time, so the media package
// needs no Prometheus.
type pacerCollector struct {
	stats                        func() media.PacingStats
	lateness, late, skipped, cur *prometheus.Desc
	sent, pacers                 *prometheus.Desc
}

func newPacerCollector(stats func() media.PacingStats) *pacerCollector {
	return &pacerCollector{
		stats:    stats,
		lateness: prometheus.NewDesc("hashcall_rtp_send_lateness_seconds", "How late each RTP packet we sent left against its 20 ms slot.", nil, nil),
		sent:     prometheus.NewDesc("hashcall_rtp_sent_packets_total", "RTP packets sent by the pacers.", nil, nil),
		late:     prometheus.NewDesc("hashcall_rtp_send_late_packets_total", "RTP packets that left a frame (20 ms) or more after their slot.", nil, nil),
		skipped:  prometheus.NewDesc("hashcall_rtp_send_skipped_slots_total", "20 ms slots for which no RTP packet was sent (the process stalled more than 200 ms).", nil, nil),
		cur:      prometheus.NewDesc("hashcall_rtp_paced_sessions", "Media sessions whose RTP the pacers are sending now.", nil, nil),
		pacers:   prometheus.NewDesc("hashcall_rtp_pacers", "Pacer goroutines running.", nil, nil),
	}
}

func (c *pacerCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.lateness, c.sent, c.late, c.skipped, c.cur, c.pacers} {
		ch <- d
	}
}

func (c *pacerCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.stats()
	h := st.Lateness
	buckets := make(map[float64]uint64, len(h.Bounds))
	var cum uint64
	for i, b := range h.Bounds {
		cum += h.Counts[i]
		buckets[b.Seconds()] = cum
	}
	ch <- prometheus.MustNewConstHistogram(c.lateness, h.Count, h.Sum.Seconds(), buckets)
	ch <- prometheus.MustNewConstMetric(c.sent, prometheus.CounterValue, float64(st.Sent))
	ch <- prometheus.MustNewConstMetric(c.late, prometheus.CounterValue, float64(st.Late))
	ch <- prometheus.MustNewConstMetric(c.skipped, prometheus.CounterValue, float64(st.Skipped))
	ch <- prometheus.MustNewConstMetric(c.cur, prometheus.GaugeValue, float64(st.Sessions))
	ch <- prometheus.MustNewConstMetric(c.pacers, prometheus.GaugeValue, float64(st.Pacers))
}
