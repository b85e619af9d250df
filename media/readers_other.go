//go:build !linux

package media

import "errors"

// recvEntry: each session reads its socket from a goroutine of its own
// where epoll is not available.
type recvEntry struct{}

func joinReceiver(*Session) (*recvEntry, error) {
	return nil, errors.New("media: no shared receiver on this system")
}

func leaveReceiver(*recvEntry) {}
