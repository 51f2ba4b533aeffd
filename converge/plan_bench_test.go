package converge

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"testing"

	_ "github.com/glebarez/go-sqlite"  // database/sql driver "sqlite"
	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"

	"github.com/scimsync/scimsync/lifecycle"
	"github.com/scimsync/scimsync/store"
	"github.com/scimsync/scimsync/store/storetest"
)

// planBenchUsers is the size of the reconciler's plan benchmark
// (BenchmarkReconcile/100k).
const planBenchUsers = 100_000

// BenchmarkPlanFacts weighs planning an organization in Go against the
// reconciler's SQL plan, on Postgres when TEST_DATABASE_URL is set, else
// SQLite: 100k directory users, first without members (every user a
// provision) and then with every member in step (a no-op plan).
//
//   - sql-plan: store.PlanUsers, as a run after a pull plans;
//
//   - go-stream: the rows decideUser needs (directory user, membership,
//     users row) streamed out of the database in one query, and each
//     decided by decideUser. It leaves out what a Go plan would also need
//     (role mapping, e-mail owners, open invites, the users-row rule, the
//     removal pass, writing the items), so it is a floor for that plan.
//
//     go test ./converge -run '^$' -bench PlanFacts -benchtime 3x
func BenchmarkPlanFacts(b *testing.B) {
	ctx := context.Background()
	backend := storetest.Backends()[len(storetest.Backends())-1]
	url := storetest.DatabaseURL(b, backend)
	s, err := store.Open(ctx, url, store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	org, err := s.CreateOrg(ctx, "Bench")
	if err != nil {
		b.Fatal(err)
	}
	p := store.Pull{OrgID: org.ID, RunID: "seed", Source: "okta", Snapshot: 1}
	for start := 0; start < planBenchUsers; start += 1000 {
		page := make([]store.PulledUser, 1000)
		for i := range page {
			n := start + i
			page[i] = store.PulledUser{ExternalID: fmt.Sprint("x", n), UserName: fmt.Sprintf("user%06d@example.com", n),
				Email: fmt.Sprintf("user%06d@example.com", n), GivenName: fmt.Sprint("Given", n), FamilyName: fmt.Sprint("Family", n), Active: true}
		}
		if err := s.Tx(ctx, func(tx *store.Store) error { return tx.WritePulledUsers(ctx, p, page) }); err != nil {
			b.Fatal(err)
		}
	}
	if err := s.RefreshStats(ctx); err != nil {
		b.Fatal(err)
	}

	driver, dsn, arg := "pgx", url, "$1"
	if backend.URL == "" {
		driver, dsn, arg = "sqlite", "file:"+strings.TrimPrefix(url, "sqlite://")+"?_pragma=busy_timeout(10000)", "?"
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()

	for _, mode := range []struct {
		name string
		// want is how many users decideUser acts on.
		want int
	}{{"first", planBenchUsers}, {"noop", 0}} {
		if mode.name == "noop" {
			seedPlanBenchMembers(b, db, org.ID)
			if backend.URL == "" {
				// Fold the seed into the database file, as a settled
				// database is: reading through a large WAL slows SQLite.
				if _, err := db.Exec("PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
					b.Fatal(err)
				}
			}
			if err := s.RefreshStats(ctx); err != nil {
				b.Fatal(err)
			}
		}
		b.Run(mode.name+"/sql-plan", func(b *testing.B) {
			for b.Loop() {
				run := store.SyncRun{OrgID: org.ID, Trigger: "bench"}
				if err := s.CreateSyncRun(ctx, &run); err != nil {
					b.Fatal(err)
				}
				if err := s.PlanUsers(ctx, store.PlanScope{OrgID: org.ID, RunID: run.ID, Snapshot: p.Snapshot, Pulled: true}); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(mode.name+"/go-stream", func(b *testing.B) {
			for b.Loop() {
				if n := streamDecide(b, db, arg, org.ID, s); n != mode.want {
					b.Fatalf("decided to act on %d users, want %d", n, mode.want)
				}
			}
		})
	}
}

// streamDecide streams the organization's directory users with their
// memberships and users rows, decides each, and returns how many
// decisions act.
func streamDecide(b *testing.B, db *sql.DB, arg, orgID string, s *store.Store) int {
	rows, err := db.QueryContext(context.Background(), `SELECT d.id, d.source, d.external_id, d.email, d.given_name, d.family_name, d.active,
  COALESCE(m.id, ''), COALESCE(m.status, ''), COALESCE(m.role, ''), COALESCE(m.email, ''), COALESCE(m.first_name, ''),
  COALESCE(m.last_name, ''), COALESCE(m.source, ''), COALESCE(m.external_id, ''), COALESCE(m.invite_sends, 0), COALESCE(u.email, '')
FROM directory_users d LEFT JOIN org_memberships m ON m.org_id = d.org_id AND m.directory_user_id = d.id
LEFT JOIN users u ON u.id = m.user_id
WHERE d.org_id = `+arg, orgID)
	if err != nil {
		b.Fatal(err)
	}
	defer rows.Close()
	now := s.Now()
	acting := 0
	for rows.Next() {
		var d store.DirectoryUser
		var m store.Membership
		var userEmail string
		if err := rows.Scan(&d.ID, &d.Source, &d.ExternalID, &d.Email, &d.GivenName, &d.FamilyName, &d.Active,
			&m.ID, &m.Status, &m.Role, &m.Email, &m.FirstName, &m.LastName, &m.Source, &m.ExternalID, &m.InviteSends, &userEmail); err != nil {
			b.Fatal(err)
		}
		f := userFacts{orgID: orgID, directoryUserID: d.ID, dir: &d, openInvite: true}
		if m.ID != "" {
			f.member = &m
		}
		if decideUser(f, now).Action != lifecycle.None {
			acting++
		}
	}
	if err := rows.Err(); err != nil {
		b.Fatal(err)
	}
	return acting
}

// seedPlanBenchMembers gives every directory user an active membership in
// step, as converging them all would.
func seedPlanBenchMembers(b *testing.B, db *sql.DB, orgID string) {
	org := "'" + orgID + "'"
	for _, q := range []string{
		"INSERT INTO users (id, email, email_key, created_at, updated_at) SELECT 'u-' || id, email, email_key, created_at, updated_at FROM directory_users WHERE org_id = " + org,
		`INSERT INTO org_memberships (id, org_id, user_id, directory_user_id, status, role, email, first_name, last_name, source, external_id, created_at, updated_at)
SELECT 'm-' || id, org_id, 'u-' || id, id, 'active', 'member', email, given_name, family_name, source, external_id, created_at, updated_at FROM directory_users WHERE org_id = ` + org,
	} {
		if _, err := db.Exec(q); err != nil {
			b.Fatal(err)
		}
	}
}
