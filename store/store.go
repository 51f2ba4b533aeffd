package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/scimsync/scimsync/config"
	"github.com/scimsync/scimsync/internal/clock"
)

// Errors callers translate at the edges (HTTP status, job retry).
var (
	ErrNotFound = errors.New("not found")
	ErrConflict = errors.New("conflict")
)

// Store is the database. Its methods are safe for concurrent use.
type Store struct {
	db    *gorm.DB
	sqlDB *sql.DB
	d     *dialect
	now   func() time.Time
}

// Options tune Open. The zero value is usable.
type Options struct {
	Logger *slog.Logger
	// Clock tells the time the store writes (default the real clock). Tests
	// inject a fake.
	Clock clock.Clock
	// MaxOpenConns caps the connection pool (default on Postgres four per
	// CPU and at least 8, see postgresConns; 8 on SQLite).
	MaxOpenConns int
}

// Open connects to the database named by a DATABASE_URL. It does not migrate.
func Open(ctx context.Context, databaseURL string, opts Options) (*Store, error) {
	dbc, err := config.ParseDatabaseURL(databaseURL)
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	clk := clock.OrReal(opts.Clock)
	s := &Store{now: func() time.Time { return clk.Now().UTC().Truncate(time.Microsecond) }}
	gcfg := &gorm.Config{
		Logger:                 logger.Discard,
		NowFunc:                s.now,
		SkipDefaultTransaction: true,
		TranslateError:         false,
	}
	d, err := dialectOf(dbc.Driver)
	if err != nil {
		return nil, err
	}
	s.d = d
	dial, err := d.open(dbc)
	if err != nil {
		return nil, err
	}
	db, err := gorm.Open(dial, gcfg)
	// Processes opening a new SQLite file at once race to switch it to
	// WAL, and SQLite refuses the losers at once, without waiting out its
	// busy timeout: they try again for as long as the busy timeout would
	// have waited.
	for giveUp := time.Now().Add(sqliteBusyTimeout); err != nil && isSQLiteBusy(err) && time.Now().Before(giveUp); {
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("open %s database: %w", dbc.Driver, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
		db, err = gorm.Open(dial, gcfg)
	}
	if err != nil {
		return nil, fmt.Errorf("open %s database: %w", dbc.Driver, redactErr(err))
	}
	sqlDB, err := db.DB()
	if err != nil {
		return nil, fmt.Errorf("open %s database: %w", dbc.Driver, err)
	}
	d.pool(sqlDB, opts.MaxOpenConns)
	s.db, s.sqlDB = db, sqlDB
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := sqlDB.PingContext(pctx); err != nil {
		sqlDB.Close()
		return nil, fmt.Errorf("connect to %s database: %w", dbc.Driver, redactErr(err))
	}
	return s, nil
}

// withConnectTimeout gives a postgres:// URL without a connect_timeout one
// of 10 seconds: without it, a database host that drops packets holds each
// new connection, and the request that waits for it, for as long as the
// kernel keeps trying (minutes), instead of failing as unavailable.
func withConnectTimeout(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return dsn // pgx reports it
	}
	q := u.Query()
	if q.Has("connect_timeout") {
		return dsn
	}
	q.Set("connect_timeout", "10")
	u.RawQuery = q.Encode()
	return u.String()
}

// sqliteBusyTimeout is how long a SQLite connection waits for another's
// write lock.
const sqliteBusyTimeout = 10 * time.Second

func sqliteDSN(path string) (string, error) {
	if path != ":memory:" {
		if dir := filepath.Dir(path); dir != "." {
			if err := os.MkdirAll(dir, 0o750); err != nil {
				return "", fmt.Errorf("open sqlite database: %w", err)
			}
		}
	}
	q := url.Values{}
	// WAL lets readers run beside the writer; the busy timeout makes
	// concurrent writers wait instead of failing; immediate transactions
	// take the write lock up front so they never deadlock on upgrade.
	// busy_timeout comes first so that switching to WAL waits too.
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", sqliteBusyTimeout.Milliseconds()))
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", "synchronous(NORMAL)")
	// No _time_format: the driver stops reading parameters after it, and
	// would silently drop _txlock. Times are stored in UTC, whose default
	// text form sorts in time order.
	q.Set("_txlock", "immediate")
	return "file:" + path + "?" + q.Encode(), nil
}

// redactErr drops a password a driver may echo from the URL.
func redactErr(err error) error {
	msg := err.Error()
	if i := strings.Index(msg, "://"); i >= 0 {
		if j := strings.Index(msg[i:], "@"); j > 0 {
			if k := strings.Index(msg[i:i+j], ":"); k >= 0 {
				return errors.New(msg[:i+k+1] + "***" + msg[i+j:])
			}
		}
	}
	return err
}

// Close releases the connections.
func (s *Store) Close() error { return s.sqlDB.Close() }

// PoolStats reports the connection pool: how often and how long callers
// waited for a connection, among others.
func (s *Store) PoolStats() sql.DBStats { return s.sqlDB.Stats() }

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.sqlDB.PingContext(ctx); err != nil {
		return fmt.Errorf("ping database: %w", err)
	}
	return nil
}

// Dialect is "postgres" or "sqlite".
func (s *Store) Dialect() string { return s.d.name }

// Now is the store's clock, in UTC at microsecond precision (what both
// dialects keep).
func (s *Store) Now() time.Time { return s.now() }

// NewID returns a new time-ordered id, so inserts stay local in indexes.
func NewID() string { return uuid.Must(uuid.NewV7()).String() }

// Tx runs fn in one transaction with a Store bound to it.
func (s *Store) Tx(ctx context.Context, fn func(tx *Store) error) error {
	return s.db.WithContext(ctx).Transaction(func(g *gorm.DB) error {
		return fn(&Store{db: g, sqlDB: s.sqlDB, d: s.d, now: s.now})
	})
}

func (s *Store) conn(ctx context.Context) *gorm.DB { return s.db.WithContext(ctx) }

// isUniqueViolation reports a unique-constraint failure on either dialect.
func isUniqueViolation(err error) bool {
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		return pg.Code == "23505"
	}
	return err != nil && strings.Contains(err.Error(), "UNIQUE constraint failed")
}

// notFound names what was missing ("organization not found"), or wraps
// another failure with the operation.
func notFound(err error, what string) error {
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return fmt.Errorf("%s %w", what, ErrNotFound)
	}
	return fmt.Errorf("get %s: %w", what, err)
}

// JSONMap is a string map kept as a JSON text column.
type JSONMap map[string]string

// Value implements driver.Valuer.
func (m JSONMap) Value() (driver.Value, error) {
	if m == nil {
		return "{}", nil
	}
	b, err := json.Marshal(map[string]string(m))
	return string(b), err
}

// Scan implements sql.Scanner.
func (m *JSONMap) Scan(v any) error {
	var b []byte
	switch x := v.(type) {
	case string:
		b = []byte(x)
	case []byte:
		b = x
	case nil:
		*m = JSONMap{}
		return nil
	default:
		return fmt.Errorf("JSONMap: cannot scan %T", v)
	}
	out := JSONMap{}
	if err := json.Unmarshal(b, &out); err != nil {
		return fmt.Errorf("JSONMap: %w", err)
	}
	*m = out
	return nil
}
