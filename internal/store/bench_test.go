package store

import (
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashcall/hashcall/internal/pgtest"
)

// BenchmarkCreate commits a verification with its idempotency key and its
// count in a per-number, a global and a per-token window, as a request
// does, from as many goroutines as GOMAXPROCS (SQLite serialises them on
// its one writer).
func BenchmarkCreate(b *testing.B) {
	b.Run("sqlite", func(b *testing.B) {
		s := mustOpen(b, Options{Driver: DriverSQLite, Path: filepath.Join(b.TempDir(), "h.db"), Node: "a", AuditKey: []byte("k")})
		benchCreate(b, s)
	})
	b.Run("postgres", func(b *testing.B) {
		pg := pgtest.Start(b)
		s := mustOpen(b, Options{Driver: DriverPostgres, DSN: pg.NewDatabase(b), Node: "a", AuditKey: []byte("k")})
		benchCreate(b, s)
	})
}

func benchCreate(b *testing.B, s *Store) {
	ctx := context.Background()
	var n atomic.Int64
	b.SetParallelism(4)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			c := Create{ID: fmt.Sprintf("vrf_%d", i), Scope: "tok", Status: "queued",
				Request: Request{To: "+4477*****123", Locale: "en-GB", Reference: "bench"},
				IdemKey: fmt.Sprintf("key-%d", i), Digest: "d", IdemTTL: 24 * time.Hour,
				Limits: []Limit{
					{Kind: "number", Key: fmt.Sprintf("n%d", i), N: 3, Per: 15 * time.Minute},
					{Kind: "global", N: 1 << 30, Per: time.Minute},
					{Kind: "token", Key: "tok", N: 1 << 30, Per: time.Minute},
				}}
			if _, _, err := s.Create(ctx, c); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "creates/s")
}
