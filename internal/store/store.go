package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
	"github.com/prometheus/client_golang/prometheus"
	_ "modernc.org/sqlite" // database/sql driver "sqlite"
)

// Drivers.
const (
	DriverSQLite   = "sqlite"
	DriverPostgres = "postgres"
)

// Errors Open returns, wrapped with the detail.
var (
	// ErrOpen: the database cannot be opened or reached.
	ErrOpen = errors.New("store: cannot open the database")
	// ErrBadDSN: store.dsn is not a PostgreSQL connection string.
	ErrBadDSN = errors.New("store: bad store.dsn")
	// ErrLogin: PostgreSQL refused the user or password.
	ErrLogin = errors.New("store: PostgreSQL refused the login")
	// ErrSchemaTooNew: the database was migrated by a newer hashcall.
	ErrSchemaTooNew = errors.New("store: the database schema is newer than this binary")
	// ErrDriver: store.driver is neither sqlite nor postgres.
	ErrDriver = errors.New("store: unknown driver")
)

// Errors of the operations.
var (
	// ErrNotFound: no such row.
	ErrNotFound = errors.New("store: not found")
	// ErrIdempotencyReused: the idempotency key was first used with another
	// request.
	ErrIdempotencyReused = errors.New("store: idempotency key used with another request")
	// ErrFinal: the verification already has a final outcome (another node
	// may have marked it interrupted).
	ErrFinal = errors.New("store: verification already final")
)

// Options configure Open.
type Options struct {
	Driver string // sqlite (default) or postgres
	Path   string // SQLite file
	DSN    string // PostgreSQL connection string (a secret)
	// Node names this hashcall node; it owns the verifications it places.
	// It must stay the same across restarts (default: the host name).
	Node string
	// Lease is how long a node's claim on an in-flight verification lasts
	// without renewal; default 30 s.
	Lease time.Duration
	// AuditKey keys the HMAC of the numbers in the audit log.
	AuditKey []byte
	// Now is the clock; default time.Now.
	Now        func() time.Time
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// Store is an open database.
type Store struct {
	db     *sql.DB
	dsn    string // PostgreSQL, for tests reopening the database
	driver string
	node   string
	lease  time.Duration
	key    []byte
	now    func() time.Time
	log    *slog.Logger
	m      *metrics
	qs     sync.Map // query text → rebound text
	stmts  map[string]*sql.Stmt

	watch      watchers
	stopListen context.CancelFunc
	listenDone chan struct{}

	creates    chan *createReq
	stop       chan struct{}
	writerDone chan struct{}
	closeOnce  sync.Once
}

// Open opens the database, applies the migrations and returns the store.
func Open(ctx context.Context, o Options) (*Store, error) {
	if o.Driver == "" {
		o.Driver = DriverSQLite
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Lease <= 0 {
		o.Lease = 30 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Node == "" {
		h, err := os.Hostname()
		if err != nil || h == "" {
			h = "hashcall"
		}
		o.Node = h
	}
	s := &Store{driver: o.Driver, node: o.Node, lease: o.Lease, key: o.AuditKey, now: o.Now,
		log: o.Logger.With("component", "store")}
	s.watch.ready = make(chan struct{})
	var err error
	if s.m, err = newMetrics(o.Registerer); err != nil {
		return nil, err
	}
	switch o.Driver {
	case DriverSQLite:
		err = s.openSQLite(ctx, o.Path)
	case DriverPostgres:
		err = s.openPostgres(ctx, o.DSN)
	default:
		return nil, fmt.Errorf("%w %q: want sqlite or postgres", ErrDriver, o.Driver)
	}
	if err != nil {
		return nil, err
	}
	if err := s.migrate(ctx); err != nil {
		s.db.Close()
		return nil, err
	}
	if err := s.prepare(ctx); err != nil {
		s.db.Close()
		return nil, err
	}
	s.creates, s.stop, s.writerDone = make(chan *createReq), make(chan struct{}), make(chan struct{})
	go s.writer()
	if s.driver == DriverPostgres {
		var lctx context.Context
		lctx, s.stopListen = context.WithCancel(context.Background())
		s.listenDone = make(chan struct{})
		go s.listen(lctx, o.DSN)
	}
	return s, nil
}

func (s *Store) openSQLite(ctx context.Context, path string) error {
	if path == "" {
		return fmt.Errorf("%w: store.path is empty", ErrOpen)
	}
	if fi, err := os.Stat(filepath.Dir(path)); err != nil || !fi.IsDir() {
		return fmt.Errorf("%w: %s: the directory %s does not exist", ErrOpen, path, filepath.Dir(path))
	}
	q := url.Values{}
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(FULL)")
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_txlock", "immediate")
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrOpen, path, err)
	}
	// One writer: SQLite serialises writers anyway; one connection keeps
	// them from waiting on each other's locks.
	db.SetMaxOpenConns(1)
	db.SetConnMaxLifetime(0)
	var mode string
	if err := db.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		db.Close()
		return fmt.Errorf("%w: %s: %w", ErrOpen, path, err)
	}
	if !strings.EqualFold(mode, "wal") {
		db.Close()
		return fmt.Errorf("%w: %s: journal mode is %s, not WAL", ErrOpen, path, mode)
	}
	s.db = db
	return nil
}

func (s *Store) openPostgres(ctx context.Context, dsn string) error {
	if dsn == "" {
		return fmt.Errorf("%w: empty (store.driver postgres needs store.dsn, e.g. postgres://hashcall:…@db:5432/hashcall)", ErrBadDSN)
	}
	if _, err := pgx.ParseConfig(dsn); err != nil {
		// pgx's message quotes the string with the password removed.
		return fmt.Errorf("%w: %w", ErrBadDSN, err)
	}
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrBadDSN, err)
	}
	db.SetMaxOpenConns(20)
	db.SetMaxIdleConns(20)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		var pe *pgconn.PgError
		if errors.As(err, &pe) && (pe.Code == "28P01" || pe.Code == "28000") {
			return fmt.Errorf("%w: %s", ErrLogin, pe.Message)
		}
		return fmt.Errorf("%w: %w", ErrOpen, err)
	}
	s.db, s.dsn = db, dsn
	return nil
}

// Close stops the create writer (after its batch) and closes the database.
func (s *Store) Close() error {
	var err error
	s.closeOnce.Do(func() {
		close(s.stop)
		<-s.writerDone
		if s.stopListen != nil {
			s.stopListen()
			<-s.listenDone
		}
		err = s.db.Close()
	})
	return err
}

// Driver returns sqlite or postgres.
func (s *Store) Driver() string { return s.driver }

// Lease returns how long a lease lasts without renewal.
func (s *Store) Lease() time.Duration { return s.lease }

// Node returns this node's name.
func (s *Store) Node() string { return s.node }

// Ping checks that the database answers (readyz).
func (s *Store) Ping(ctx context.Context) error {
	start := time.Now()
	err := s.db.PingContext(ctx)
	if err == nil {
		var one int
		err = s.db.QueryRowContext(ctx, "SELECT 1").Scan(&one)
	}
	s.m.done("ping", start, err)
	return err
}

// q rebinds a query written with ? placeholders for the driver.
func (s *Store) q(query string) string {
	if s.driver != DriverPostgres {
		return query
	}
	if v, ok := s.qs.Load(query); ok {
		return v.(string)
	}
	var b strings.Builder
	n := 0
	for i := 0; i < len(query); i++ {
		if query[i] == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(query[i])
	}
	s.qs.Store(query, b.String())
	return b.String()
}

// forUpdate is the row-locking clause: PostgreSQL locks, SQLite (one
// writer, transactions begun IMMEDIATE) needs none.
func (s *Store) forUpdate(skipLocked bool) string {
	if s.driver != DriverPostgres {
		return ""
	}
	if skipLocked {
		return " FOR UPDATE SKIP LOCKED"
	}
	return " FOR UPDATE"
}

// tx runs fn in a transaction, counting it as op.
func (s *Store) tx(ctx context.Context, op string, fn func(*sql.Tx) error) (err error) {
	start := time.Now()
	defer func() { s.m.done(op, start, err) }()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: %s: %w", op, err)
	}
	if err = fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err = tx.Commit(); err != nil {
		return fmt.Errorf("store: %s: commit: %w", op, err)
	}
	return nil
}

func ms(t time.Time) int64 { return t.UnixMilli() }

func fromMS(v int64) time.Time { return time.UnixMilli(v).UTC() }

func nullMS(v sql.NullInt64) *time.Time {
	if !v.Valid {
		return nil
	}
	t := fromMS(v.Int64)
	return &t
}

// metrics are the store's latency and error counts.
type metrics struct {
	latency *prometheus.HistogramVec
	errors  *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "hashcall_store_seconds", Help: "Store operations' latency, by operation.",
			Buckets: []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5},
		}, []string{"op"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hashcall_store_errors_total", Help: "Store operations that failed, by operation.",
		}, []string{"op"}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.latency, m.errors} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("store: metrics: %w", err)
			}
		}
	}
	return m, nil
}

// done records one operation; refusals the caller expects (not found, a
// limit, a reused key) are not errors of the store.
func (m *metrics) done(op string, start time.Time, err error) {
	m.latency.WithLabelValues(op).Observe(time.Since(start).Seconds())
	var le *LimitError
	if err != nil && !errors.Is(err, ErrNotFound) && !errors.Is(err, ErrIdempotencyReused) && !errors.Is(err, ErrFinal) && !errors.As(err, &le) {
		m.errors.WithLabelValues(op).Inc()
	}
}
