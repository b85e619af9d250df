package store

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
)

// finalChannel is the PostgreSQL NOTIFY channel on which Complete
// announces a verification's final outcome (the payload is its id), so a
// node long-polling for a call another node runs returns at once.
const finalChannel = "hashcall_final"

// watchers fans final-outcome notices out to the waiters of each id.
type watchers struct {
	mu   sync.Mutex
	subs map[string]map[chan struct{}]struct{}
	// live: the LISTEN connection is up (PostgreSQL); waiters may poll
	// less often.
	live      atomic.Bool
	readyOnce sync.Once
	ready     chan struct{} // closed when LISTEN first works
}

func (w *watchers) notify(id string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for ch := range w.subs[id] {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// WatchFinal returns a channel that receives when the verification id
// becomes final: at once for a Complete through this Store, and on
// PostgreSQL for a Complete on any node (LISTEN/NOTIFY). Notices can be
// missed (the LISTEN connection was down), so a waiter also polls; see
// Notifying. stop ends the watch.
func (s *Store) WatchFinal(id string) (ch <-chan struct{}, stop func()) {
	c := make(chan struct{}, 1)
	w := &s.watch
	w.mu.Lock()
	if w.subs == nil {
		w.subs = map[string]map[chan struct{}]struct{}{}
	}
	if w.subs[id] == nil {
		w.subs[id] = map[chan struct{}]struct{}{}
	}
	w.subs[id][c] = struct{}{}
	w.mu.Unlock()
	return c, func() {
		w.mu.Lock()
		delete(w.subs[id], c)
		if len(w.subs[id]) == 0 {
			delete(w.subs, id)
		}
		w.mu.Unlock()
	}
}

// Listening returns a channel closed once the LISTEN connection first
// works (PostgreSQL; never on SQLite).
func (s *Store) Listening() <-chan struct{} { return s.watch.ready }

// Notifying reports whether other nodes' outcomes are being heard
// (PostgreSQL with its LISTEN connection up).
func (s *Store) Notifying() bool { return s.watch.live.Load() }

// listen holds a LISTEN connection to PostgreSQL until ctx ends,
// reconnecting after a failure.
func (s *Store) listen(ctx context.Context, dsn string) {
	defer close(s.listenDone)
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := s.listenOnce(ctx, dsn)
		s.watch.live.Store(false)
		if ctx.Err() != nil {
			return
		}
		s.log.Warn("store: LISTEN connection lost; long-polls poll until it is back", "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 10*time.Second)
	}
}

func (s *Store) listenOnce(ctx context.Context, dsn string) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+finalChannel); err != nil {
		return err
	}
	s.watch.live.Store(true)
	s.watch.readyOnce.Do(func() { close(s.watch.ready) })
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		s.watch.notify(n.Payload)
	}
}
