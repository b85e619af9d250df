package testwait

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// WaitFile returns nil once cond holds for the contents of the file at
// path (empty while it does not exist), checking them after every change
// inotify reports in its folder, or ctx's error (wrapped) if ctx ends
// first. It is for files another program writes (its log, SIPp's message
// file): the writes are the events.
func WaitFile(ctx context.Context, path string, cond func(contents string) bool) error {
	fd, err := syscall.InotifyInit1(syscall.IN_CLOEXEC | syscall.IN_NONBLOCK)
	if err != nil {
		return fmt.Errorf("inotify: %w", err)
	}
	f := os.NewFile(uintptr(fd), "inotify") // non-blocking: reads honour deadlines
	defer f.Close()
	const mask = syscall.IN_MODIFY | syscall.IN_CREATE | syscall.IN_CLOSE_WRITE | syscall.IN_MOVED_TO
	if _, err := syscall.InotifyAddWatch(fd, filepath.Dir(path), mask); err != nil {
		return fmt.Errorf("inotify on %s: %w", filepath.Dir(path), err)
	}
	stop := context.AfterFunc(ctx, func() { _ = f.SetReadDeadline(time.Now()) })
	defer stop()
	buf := make([]byte, 64<<10)
	for {
		// Read after the watch is set: a write in between is an event.
		b, err := os.ReadFile(path)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("reading %s: %w", path, err)
		}
		if cond(string(b)) {
			return nil
		}
		if _, err := f.Read(buf); err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("%s not as awaited: %w", path, context.Cause(ctx))
			}
			return fmt.Errorf("inotify: %w", err)
		}
	}
}
