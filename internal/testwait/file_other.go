//go:build !linux

package testwait

import (
	"context"
	"errors"
	"fmt"
	"os"
)

// WaitFile returns nil once cond holds for the contents of the file at
// path (empty while it does not exist), or ctx's error (wrapped) if ctx
// ends first. Without inotify the file is read on every [Until] tick.
func WaitFile(ctx context.Context, path string, cond func(contents string) bool) error {
	var readErr error
	err := Until(ctx, func() bool {
		b, err := os.ReadFile(path)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			readErr = fmt.Errorf("reading %s: %w", path, err)
			return true
		}
		return cond(string(b))
	})
	if readErr != nil {
		return readErr
	}
	if err != nil {
		return fmt.Errorf("%s not as awaited: %w", path, err)
	}
	return nil
}
