package directory

import (
	"context"
	"errors"
)

// Chain is a directory that asks each of its directories in turn and
// returns the first entry found: the store's enrolments before the
// organisation's export, say. ErrNotFound from one moves on to the next;
// any other error stops the lookup.
type Chain []Directory

// Lookup implements Directory.
func (c Chain) Lookup(ctx context.Context, key string) (Entry, error) {
	for _, d := range c {
		e, err := d.Lookup(ctx, key)
		if err == nil {
			return e, nil
		}
		if !errors.Is(err, ErrNotFound) {
			return Entry{}, err
		}
	}
	return Entry{}, ErrNotFound
}
