package store_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/hashcall/hashcall/internal/store"
)

// A verification is created against a per-number limit, committed, and
// refused once the window is full.
func Example() {
	dir, _ := os.MkdirTemp("", "hashcall-example-")
	defer os.RemoveAll(dir)
	ctx := context.Background()
	now := func() time.Time { return time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC) } // a fixed clock
	s, err := store.Open(ctx, store.Options{Path: filepath.Join(dir, "hashcall.db"), Node: "node-a", AuditKey: []byte("audit key"), Now: now})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer s.Close()
	limit := store.Limit{Kind: "number", Key: s.NumberHMAC("+447700900123"), N: 1, Per: 15 * time.Minute}
	for _, id := range []string{"vrf_1", "vrf_2"} {
		v, _, err := s.Create(ctx, store.Create{ID: id, Scope: "token", Status: "queued",
			Request: store.Request{To: "+4477*****123", Locale: "en-GB"}, Limits: []store.Limit{limit}})
		var le *store.LimitError
		switch {
		case errors.As(err, &le):
			fmt.Println(id, "refused:", le.Kind, "limit, retry after", le.RetryAfter)
		case err != nil:
			fmt.Println(err)
		default:
			fmt.Println(v.ID, v.Status, "on", v.Node)
		}
	}
	// Output:
	// vrf_1 queued on node-a
	// vrf_2 refused: number limit, retry after 15m0s
}
