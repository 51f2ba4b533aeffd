// Package storetest gives tests a migrated, isolated store on every backend:
// embedded SQLite always, and Postgres whenever TEST_DATABASE_URL is set. A
// Postgres store lives in a schema of its own that is dropped at cleanup, so
// tests run in parallel against one database.
package storetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/scimsync/scimsync/internal/tcpproxy"
	"github.com/scimsync/scimsync/store"
)

// Backend names a database a test can run on.
type Backend struct {
	Name string
	// URL is the DATABASE_URL, or "" for a fresh SQLite file.
	URL string
}

// Backends lists SQLite, and Postgres when TEST_DATABASE_URL is set.
func Backends() []Backend {
	b := []Backend{{Name: "sqlite"}}
	if u := os.Getenv("TEST_DATABASE_URL"); u != "" {
		b = append(b, Backend{Name: "postgres", URL: u})
	}
	return b
}

// Each runs fn as a subtest on every backend, with a fresh store.
func Each(t *testing.T, fn func(t *testing.T, s *store.Store)) {
	t.Helper()
	for _, b := range Backends() {
		t.Run(b.Name, func(t *testing.T) {
			fn(t, Open(t, b, store.Options{}))
		})
	}
}

// Open returns a fresh migrated store on backend b, closed at cleanup.
func Open(t testing.TB, b Backend, opts store.Options) *store.Store {
	t.Helper()
	u := DatabaseURL(t, b)
	ctx := context.Background()
	s, err := store.Open(ctx, u, opts)
	if err != nil {
		t.Fatalf("open %s store: %v", b.Name, err)
	}
	t.Cleanup(func() { s.Close() })
	if _, err := s.Migrate(ctx); err != nil {
		t.Fatalf("migrate %s store: %v", b.Name, err)
	}
	return s
}

// DatabaseURL returns a DATABASE_URL for an empty database on backend b: a
// SQLite file in a temporary directory, or a new Postgres schema that is
// dropped at cleanup.
func DatabaseURL(t testing.TB, b Backend) string {
	t.Helper()
	if b.URL == "" {
		return "sqlite://" + filepath.Join(t.TempDir(), "test.db")
	}
	var r [6]byte
	rand.Read(r[:])
	schema := "t_" + hex.EncodeToString(r[:])
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, b.URL)
	if err != nil {
		t.Fatalf("TEST_DATABASE_URL is set but Postgres is unreachable: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("create test schema: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, b.URL)
		if err != nil {
			t.Errorf("drop test schema: %v", err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop test schema: %v", err)
		}
	})
	pu, err := url.Parse(b.URL)
	if err != nil {
		t.Fatalf("TEST_DATABASE_URL: %v", err)
	}
	q := pu.Query()
	q.Set("search_path", schema)
	pu.RawQuery = q.Encode()
	if !strings.HasPrefix(pu.Scheme, "postgres") {
		t.Fatalf("TEST_DATABASE_URL must be postgres://…, got scheme %q", pu.Scheme)
	}
	return pu.String()
}

// OpenBehindProxy returns a fresh migrated Postgres store that reaches its
// database through a proxy the test can take down and bring back, or
// skips the test when TEST_DATABASE_URL is not set (an embedded SQLite
// cannot become unreachable).
func OpenBehindProxy(t testing.TB) (*store.Store, *tcpproxy.Proxy) {
	t.Helper()
	b := Backends()[len(Backends())-1]
	if b.URL == "" {
		t.Skip("needs Postgres (TEST_DATABASE_URL)")
	}
	u, err := url.Parse(DatabaseURL(t, b))
	if err != nil {
		t.Fatal(err)
	}
	target := u.Host
	if u.Port() == "" {
		target = net.JoinHostPort(u.Hostname(), "5432")
	}
	px := tcpproxy.New(t, target)
	u.Host = px.Addr()
	q := u.Query()
	q.Set("connect_timeout", "2") // a test that takes the database away should not wait long for it
	u.RawQuery = q.Encode()
	ctx := context.Background()
	s, err := store.Open(ctx, u.String(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if _, err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return s, px
}

// PendingOutbox returns the unsent outbox rows, oldest first, leaving them
// unsent.
func PendingOutbox(t testing.TB, s *store.Store) []store.OutboxRow {
	t.Helper()
	return readOutbox(t, s, false)
}

// TakeOutbox returns the unsent outbox rows, oldest first, and marks them
// sent, as a relay would: the next call returns only rows written since.
func TakeOutbox(t testing.TB, s *store.Store) []store.OutboxRow {
	t.Helper()
	return readOutbox(t, s, true)
}

func readOutbox(t testing.TB, s *store.Store, take bool) []store.OutboxRow {
	t.Helper()
	ctx := context.Background()
	var rows []store.OutboxRow
	err := s.Tx(ctx, func(tx *store.Store) error {
		var err error
		if rows, err = tx.ClaimOutbox(ctx, 1<<30); err != nil || !take {
			return err
		}
		ids := make([]int64, len(rows))
		for i, r := range rows {
			ids[i] = r.ID
		}
		return tx.MarkOutboxSent(ctx, ids)
	})
	if err != nil {
		t.Fatalf("read outbox: %v", err)
	}
	return rows
}
