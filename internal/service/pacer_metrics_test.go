package service

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/hashcall/hashcall/media"
)

// TestPacerCollector: media.PacerStats become a cumulative histogram of
// send lateness in seconds, counters of sent, late and skipped packets and
// gauges of the sessions and pacers.
func TestPacerCollector(t *testing.T) {
	st := media.PacingStats{
		Sessions: 3, Pacers: 2, Sent: 10, Late: 1, Skipped: 2,
		Lateness: media.LatenessHistogram{
			Bounds: []time.Duration{time.Millisecond, 20 * time.Millisecond},
			Counts: []uint64{7, 2, 1},
			Count:  10, Sum: 45 * time.Millisecond,
		},
	}
	c := newPacerCollector(func() media.PacingStats { return st })
	want := `
# HELP hashcall_rtp_send_lateness_seconds How late each RTP packet we sent left against its 20 ms slot.
# TYPE hashcall_rtp_send_lateness_seconds histogram
hashcall_rtp_send_lateness_seconds_bucket{le="0.001"} 7
hashcall_rtp_send_lateness_seconds_bucket{le="0.02"} 9
hashcall_rtp_send_lateness_seconds_bucket{le="+Inf"} 10
hashcall_rtp_send_lateness_seconds_sum 0.045
hashcall_rtp_send_lateness_seconds_count 10
# HELP hashcall_rtp_sent_packets_total RTP packets sent by the pacers.
# TYPE hashcall_rtp_sent_packets_total counter
hashcall_rtp_sent_packets_total 10
# HELP hashcall_rtp_send_late_packets_total RTP packets that left a frame (20 ms) or more after their slot.
# TYPE hashcall_rtp_send_late_packets_total counter
hashcall_rtp_send_late_packets_total 1
# HELP hashcall_rtp_send_skipped_slots_total 20 ms slots for which no RTP packet was sent (the process stalled more than 200 ms).
# TYPE hashcall_rtp_send_skipped_slots_total counter
hashcall_rtp_send_skipped_slots_total 2
# HELP hashcall_rtp_paced_sessions Media sessions whose RTP the pacers are sending now.
# TYPE hashcall_rtp_paced_sessions gauge
hashcall_rtp_paced_sessions 3
# HELP hashcall_rtp_pacers Pacer goroutines running.
# TYPE hashcall_rtp_pacers gauge
hashcall_rtp_pacers 2
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
}
