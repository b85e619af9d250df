package store

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

type migration struct {
	version int
	name    string
	sql     string
}

// migrations returns the embedded migrations in order. Their names are
// NNNN_what.sql; the numbers are the schema versions.
func migrations() ([]migration, error) {
	ents, err := fs.ReadDir(migrationFS, "migrations")
	if err != nil {
		return nil, err
	}
	var ms []migration
	for _, e := range ents {
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("store: migration %s: want NNNN_name.sql", e.Name())
		}
		b, err := migrationFS.ReadFile("migrations/" + e.Name())
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{v, e.Name(), string(b)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	for i, m := range ms {
		if m.version != i+1 {
			return nil, fmt.Errorf("store: migration %s: versions must run 1, 2, 3, …", m.name)
		}
	}
	return ms, nil
}

// SchemaVersion is the schema version this binary writes.
func SchemaVersion() int {
	ms, _ := migrations()
	return len(ms)
}

// migrationLock is the PostgreSQL advisory lock held while migrating, so
// two nodes starting at once do not both apply a migration.
const migrationLock = 0x68617368 // "hash"

// migrate applies the migrations the database lacks, each in a
// transaction with its version row.
func (s *Store) migrate(ctx context.Context) error {
	all, err := migrations()
	if err != nil {
		return err
	}
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrOpen, err)
	}
	defer conn.Close()
	if s.driver == DriverPostgres {
		if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_lock($1)", migrationLock); err != nil {
			return fmt.Errorf("store: migrate: lock: %w", err)
		}
		defer conn.ExecContext(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", migrationLock) //nolint:errcheck
	}
	if _, err := conn.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS hashcall_schema (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)`); err != nil {
		return fmt.Errorf("%w: %w", ErrOpen, err)
	}
	var cur int
	if err := conn.QueryRowContext(ctx, "SELECT COALESCE(MAX(version), 0) FROM hashcall_schema").Scan(&cur); err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	if cur > len(all) {
		return fmt.Errorf("%w: the database is at schema version %d, this hashcall knows up to %d: run the newer hashcall or restore a backup", ErrSchemaTooNew, cur, len(all))
	}
	for _, m := range all[cur:] {
		tx, err := conn.BeginTx(ctx, nil)
		if err != nil {
			return fmt.Errorf("store: migrate %s: %w", m.name, err)
		}
		if err := applyMigration(ctx, tx, s, m); err != nil {
			_ = tx.Rollback()
			return err
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("store: migrate %s: %w", m.name, err)
		}
		s.log.Info("schema migrated", "version", m.version, "name", m.name)
	}
	return nil
}

func applyMigration(ctx context.Context, tx *sql.Tx, s *Store, m migration) error {
	if _, err := tx.ExecContext(ctx, m.sql); err != nil {
		return fmt.Errorf("store: migrate %s: %w", m.name, err)
	}
	if _, err := tx.ExecContext(ctx, s.q("INSERT INTO hashcall_schema (version, name, applied_at) VALUES (?, ?, ?)"), m.version, m.name, ms(s.now())); err != nil {
		return fmt.Errorf("store: migrate %s: %w", m.name, err)
	}
	return nil
}
