// Package sockopt holds what the UDP sockets of sip and media share: sizing
// the receive buffers of the sockets that take bursts (the SIP listener
// during a burst of call set-ups, the shared RTP socket of media.rtp_mux
// carrying every call's packets), and telling when a server has begun to
// read one (ReadyConn).
package sockopt

import (
	"log/slog"
	"net"
)

// SizeReadBuffer asks the kernel for a receive buffer of want bytes on c
// and logs what it granted: a warning naming key (the configuration key
// that asked) when it was capped at net.core.rmem_max or could not be set.
// It returns the granted size.
func SizeReadBuffer(c *net.UDPConn, want int, log *slog.Logger, key string) int {
	got, err := sizeReadBuffer(c, want)
	switch {
	case err != nil:
		log.Warn("could not size the UDP receive buffer", "key", key, "want_bytes", want, "err", err)
	case got < want:
		log.Warn("the kernel capped the UDP receive buffer at net.core.rmem_max; a burst may be dropped (sysctl -w net.core.rmem_max=N, or run with CAP_NET_ADMIN)",
			"key", key, "want_bytes", want, "got_bytes", got)
	default:
		log.Debug("UDP receive buffer", "key", key, "bytes", got)
	}
	return got
}
