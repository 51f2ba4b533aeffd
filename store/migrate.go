package store

import (
	"context"
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm"
)

// migration is one versioned schema step. Its SQL is written once; the few
// words that differ between SQLite and Postgres are placeholders:
//
//	{{serial}}   an auto-incrementing bigint primary key
//	{{ts}}       a timestamp (UTC)
//	{{bytes}}    a byte string
//	{{unlogged}} UNLOGGED on Postgres (a table whose writes skip the WAL)
//
// A migration marked postgresOnly is recorded on SQLite without running:
// it changes what only Postgres pays for.
type migration struct {
	version      int
	name         string
	sql          string
	postgresOnly bool
}

var migrations = []migration{
	{1, "initial schema", `
CREATE TABLE organizations (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  scim_enabled BOOLEAN NOT NULL DEFAULT FALSE,
  reconcile_schedule TEXT NOT NULL DEFAULT '',
  role_mapping TEXT NOT NULL DEFAULT '{}',
  created_at {{ts}} NOT NULL,
  updated_at {{ts}} NOT NULL
);
CREATE TABLE settings (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL,
  updated_at {{ts}} NOT NULL
);
CREATE TABLE scim_tokens (
  id TEXT PRIMARY KEY,
  org_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
  description TEXT NOT NULL DEFAULT '',
  token_hash TEXT NOT NULL UNIQUE,
  created_at {{ts}} NOT NULL,
  expires_at {{ts}},
  revoked_at {{ts}},
  last_used_at {{ts}}
);
CREATE INDEX scim_tokens_org ON scim_tokens (org_id, created_at);
CREATE TABLE connectors (
  org_id TEXT PRIMARY KEY REFERENCES organizations(id) ON DELETE CASCADE,
  type TEXT NOT NULL,
  settings TEXT NOT NULL,
  credentials {{bytes}} NOT NULL,
  created_at {{ts}} NOT NULL,
  updated_at {{ts}} NOT NULL
);
CREATE TABLE directory_users (
  id TEXT PRIMARY KEY,
  org_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
  source TEXT NOT NULL,
  external_id TEXT NOT NULL DEFAULT '',
  user_name TEXT NOT NULL,
  user_name_key TEXT NOT NULL,
  email TEXT NOT NULL DEFAULT '',
  email_key TEXT NOT NULL DEFAULT '',
  given_name TEXT NOT NULL DEFAULT '',
  family_name TEXT NOT NULL DEFAULT '',
  display_name TEXT NOT NULL DEFAULT '',
  active BOOLEAN NOT NULL,
  raw_status TEXT NOT NULL DEFAULT '',
  attributes TEXT NOT NULL DEFAULT '{}',
  version BIGINT NOT NULL DEFAULT 1,
  snapshot BIGINT NOT NULL DEFAULT 0,
  created_at {{ts}} NOT NULL,
  updated_at {{ts}} NOT NULL
);
CREATE UNIQUE INDEX directory_users_user_name ON directory_users (org_id, user_name_key);
CREATE UNIQUE INDEX directory_users_external_id ON directory_users (org_id, external_id) WHERE external_id <> '';
CREATE INDEX directory_users_email ON directory_users (org_id, email_key);
CREATE INDEX directory_users_org_created ON directory_users (org_id, created_at, id);
CREATE TABLE directory_groups (
  id TEXT PRIMARY KEY,
  org_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
  source TEXT NOT NULL,
  external_id TEXT NOT NULL DEFAULT '',
  display_name TEXT NOT NULL,
  display_name_key TEXT NOT NULL,
  attributes TEXT NOT NULL DEFAULT '{}',
  version BIGINT NOT NULL DEFAULT 1,
  snapshot BIGINT NOT NULL DEFAULT 0,
  created_at {{ts}} NOT NULL,
  updated_at {{ts}} NOT NULL
);
CREATE UNIQUE INDEX directory_groups_display_name ON directory_groups (org_id, display_name_key);
CREATE UNIQUE INDEX directory_groups_external_id ON directory_groups (org_id, external_id) WHERE external_id <> '';
CREATE INDEX directory_groups_org_created ON directory_groups (org_id, created_at, id);
CREATE TABLE directory_group_members (
  org_id TEXT NOT NULL,
  group_id TEXT NOT NULL REFERENCES directory_groups(id) ON DELETE CASCADE,
  user_id TEXT NOT NULL REFERENCES directory_users(id) ON DELETE CASCADE,
  snapshot BIGINT NOT NULL DEFAULT 0,
  PRIMARY KEY (group_id, user_id)
);
CREATE INDEX directory_group_members_user ON directory_group_members (org_id, user_id);
CREATE TABLE users (
  id TEXT PRIMARY KEY,
  email TEXT NOT NULL,
  email_key TEXT NOT NULL UNIQUE,
  created_at {{ts}} NOT NULL,
  updated_at {{ts}} NOT NULL
);
CREATE TABLE org_memberships (
  id TEXT PRIMARY KEY,
  org_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
  user_id TEXT NOT NULL REFERENCES users(id),
  directory_user_id TEXT NOT NULL,
  status TEXT NOT NULL,
  role TEXT NOT NULL DEFAULT 'member',
  email TEXT NOT NULL DEFAULT '',
  first_name TEXT NOT NULL DEFAULT '',
  last_name TEXT NOT NULL DEFAULT '',
  source TEXT NOT NULL DEFAULT '',
  external_id TEXT NOT NULL DEFAULT '',
  invite_sends INTEGER NOT NULL DEFAULT 0,
  last_invited_at {{ts}},
  deprovisioned_at {{ts}},
  created_at {{ts}} NOT NULL,
  updated_at {{ts}} NOT NULL
);
CREATE UNIQUE INDEX org_memberships_user ON org_memberships (org_id, user_id);
CREATE UNIQUE INDEX org_memberships_directory_user ON org_memberships (org_id, directory_user_id);
CREATE INDEX org_memberships_status ON org_memberships (org_id, status);
CREATE TABLE local_groups (
  id TEXT PRIMARY KEY,
  org_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
  directory_group_id TEXT NOT NULL,
  name TEXT NOT NULL,
  source TEXT NOT NULL DEFAULT '',
  external_id TEXT NOT NULL DEFAULT '',
  created_at {{ts}} NOT NULL,
  updated_at {{ts}} NOT NULL
);
CREATE UNIQUE INDEX local_groups_directory_group ON local_groups (org_id, directory_group_id);
CREATE TABLE local_group_members (
  org_id TEXT NOT NULL,
  group_id TEXT NOT NULL REFERENCES local_groups(id) ON DELETE CASCADE,
  membership_id TEXT NOT NULL REFERENCES org_memberships(id) ON DELETE CASCADE,
  created_at {{ts}} NOT NULL,
  PRIMARY KEY (group_id, membership_id)
);
CREATE INDEX local_group_members_membership ON local_group_members (org_id, membership_id);
CREATE TABLE invites (
  id TEXT PRIMARY KEY,
  org_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
  membership_id TEXT NOT NULL REFERENCES org_memberships(id) ON DELETE CASCADE,
  token_hash TEXT NOT NULL UNIQUE,
  send_number INTEGER NOT NULL,
  created_at {{ts}} NOT NULL,
  expires_at {{ts}} NOT NULL,
  sent_at {{ts}},
  accepted_at {{ts}},
  superseded_at {{ts}}
);
CREATE UNIQUE INDEX invites_send ON invites (membership_id, send_number);
CREATE TABLE outbox (
  id {{serial}},
  org_id TEXT NOT NULL,
  task_type TEXT NOT NULL,
  task_id TEXT NOT NULL,
  queue TEXT NOT NULL DEFAULT 'default',
  payload {{bytes}} NOT NULL,
  created_at {{ts}} NOT NULL,
  sent_at {{ts}},
  attempts INTEGER NOT NULL DEFAULT 0,
  last_error TEXT NOT NULL DEFAULT ''
);
CREATE INDEX outbox_pending ON outbox (id) WHERE sent_at IS NULL;
CREATE TABLE sync_runs (
  id TEXT PRIMARY KEY,
  org_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
  status TEXT NOT NULL,
  dry_run BOOLEAN NOT NULL DEFAULT FALSE,
  allow_mass_deprovision BOOLEAN NOT NULL DEFAULT FALSE,
  trigger_kind TEXT NOT NULL,
  plan TEXT NOT NULL DEFAULT '{}',
  pages_fetched INTEGER NOT NULL DEFAULT 0,
  error TEXT NOT NULL DEFAULT '',
  created_at {{ts}} NOT NULL,
  started_at {{ts}},
  finished_at {{ts}}
);
CREATE INDEX sync_runs_org ON sync_runs (org_id, created_at);
CREATE TABLE sync_run_items (
  id {{serial}},
  run_id TEXT NOT NULL REFERENCES sync_runs(id) ON DELETE CASCADE,
  org_id TEXT NOT NULL,
  action TEXT NOT NULL,
  entity_type TEXT NOT NULL,
  entity_id TEXT NOT NULL,
  detail TEXT NOT NULL DEFAULT ''
);
CREATE INDEX sync_run_items_run ON sync_run_items (run_id, id);
CREATE TABLE audit_events (
  id {{serial}},
  org_id TEXT NOT NULL,
  actor TEXT NOT NULL,
  action TEXT NOT NULL,
  entity_type TEXT NOT NULL,
  entity_id TEXT NOT NULL,
  outcome TEXT NOT NULL DEFAULT '',
  detail TEXT NOT NULL DEFAULT '',
  created_at {{ts}} NOT NULL
);
CREATE INDEX audit_events_org ON audit_events (org_id, id);
CREATE TABLE mail_log (
  id {{serial}},
  org_id TEXT NOT NULL,
  idempotency_key TEXT NOT NULL UNIQUE,
  recipient TEXT NOT NULL,
  subject TEXT NOT NULL,
  text_body TEXT NOT NULL,
  html_body TEXT NOT NULL,
  status TEXT NOT NULL,
  created_at {{ts}} NOT NULL
);
`, false},
	{2, "outbox purge index", `
CREATE INDEX outbox_sent ON outbox (sent_at) WHERE sent_at IS NOT NULL;
`, false},
	// pulled_active holds what the latest pull said about a pulled user; a
	// deactivation reaches active only when a reconciliation applies. The
	// partial unique index lets one run per organization be running at a
	// time.
	{3, "reconciler snapshots and run guard", `
ALTER TABLE directory_users ADD COLUMN pulled_active BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE sync_runs ADD COLUMN snapshot BIGINT NOT NULL DEFAULT 0;
ALTER TABLE sync_runs ADD COLUMN heartbeat_at {{ts}};
CREATE UNIQUE INDEX sync_runs_running ON sync_runs (org_id) WHERE status = 'running';
`, false},
	// pull_seen is a running pull's mark: what it has seen, so that only
	// changed directory rows are written. It is scratch space, unlogged on
	// Postgres: a crash loses it together with the runs that used it.
	{4, "reconciler pull marks", `
CREATE {{unlogged}} TABLE pull_seen (
  run_id TEXT NOT NULL,
  kind TEXT NOT NULL,
  key TEXT NOT NULL,
  PRIMARY KEY (run_id, kind, key)
);
`, false},
	// A foreign key to a single parent row costs every inserted child a
	// lookup and a share lock of that row: for a pull of 100k users, 0.6 s
	// of Postgres's time, and concurrent SCIM creates in one organization
	// all share-lock its one row. Organizations and runs are never
	// deleted, and every writer takes these ids from the row it has just
	// read (the organization of a token, a run it holds), so the keys
	// only ever checked what was already true. SQLite keeps them: it
	// cannot drop a constraint without rebuilding the table.
	{5, "no parent-row checks on bulk rows", `
ALTER TABLE directory_users DROP CONSTRAINT IF EXISTS directory_users_org_id_fkey;
ALTER TABLE directory_groups DROP CONSTRAINT IF EXISTS directory_groups_org_id_fkey;
ALTER TABLE sync_run_items DROP CONSTRAINT IF EXISTS sync_run_items_run_id_fkey;
`, true},
	// A scheduled run records its slot, and an organization's slot runs
	// once, however often its task is delivered (a Redis that lost its
	// task ids lets a scheduler queue the slot again).
	{6, "scheduled runs once per slot", `
ALTER TABLE sync_runs ADD COLUMN slot BIGINT NOT NULL DEFAULT 0;
CREATE UNIQUE INDEX sync_runs_slot ON sync_runs (org_id, slot) WHERE slot > 0;
`, false},
	// The shared users row follows an e-mail change only when every
	// membership of the person agrees (userEmailVerdict): that looks up a
	// user's memberships in every organization.
	{7, "memberships by user", `
CREATE INDEX org_memberships_user_id ON org_memberships (user_id);
`, false},
	// The change feed. An organization's counter row is bumped by a
	// writing transaction just before it commits: its row lock orders the
	// organization's writers, so sequence order is commit order and a
	// reader paging by sequence never passes an event that commits later
	// with a lower number. purged_through is the highest sequence the
	// retention purge deleted: a cursor below it has missed events. An
	// event's id (a UUIDv7, unique as any other id here) is what a
	// consumer deduplicates by; it has no index, nor has created_at (the
	// purge walks each organization's oldest events by sequence): each
	// index is paid by every append.
	{8, "events", `
CREATE TABLE event_counters (
  org_id TEXT PRIMARY KEY,
  last_sequence BIGINT NOT NULL DEFAULT 0,
  purged_through BIGINT NOT NULL DEFAULT 0
);
CREATE TABLE events (
  org_id TEXT NOT NULL,
  sequence BIGINT NOT NULL,
  id TEXT NOT NULL,
  type TEXT NOT NULL,
  entity_type TEXT NOT NULL,
  entity_id TEXT NOT NULL,
  data TEXT NOT NULL,
  created_at {{ts}} NOT NULL,
  PRIMARY KEY (org_id, sequence)
);
`, false},
	// Webhook endpoints: org_id NULL serves every organization; event_types
	// is a JSON array, empty for all; the signing secret is sealed.
	{9, "webhook endpoints", `
CREATE TABLE webhook_endpoints (
  id TEXT PRIMARY KEY,
  org_id TEXT REFERENCES organizations(id) ON DELETE CASCADE,
  url TEXT NOT NULL,
  event_types TEXT NOT NULL DEFAULT '[]',
  description TEXT NOT NULL DEFAULT '',
  enabled BOOLEAN NOT NULL DEFAULT TRUE,
  secret {{bytes}} NOT NULL,
  disabled_reason TEXT NOT NULL DEFAULT '',
  failing_since {{ts}},
  created_at {{ts}} NOT NULL,
  updated_at {{ts}} NOT NULL
);
CREATE INDEX webhook_endpoints_org ON webhook_endpoints (org_id, created_at);
`, false},
	// Webhook delivery: per endpoint and organization, the last sequence
	// delivered; and every attempt, kept for the operator.
	{10, "webhook delivery", `
CREATE TABLE webhook_cursors (
  endpoint_id TEXT NOT NULL REFERENCES webhook_endpoints(id) ON DELETE CASCADE,
  org_id TEXT NOT NULL,
  last_sequence BIGINT NOT NULL DEFAULT 0,
  PRIMARY KEY (endpoint_id, org_id)
);
CREATE TABLE webhook_deliveries (
  id {{serial}},
  endpoint_id TEXT NOT NULL REFERENCES webhook_endpoints(id) ON DELETE CASCADE,
  org_id TEXT NOT NULL,
  event_id TEXT NOT NULL,
  sequence BIGINT NOT NULL,
  attempt INTEGER NOT NULL,
  status_code INTEGER NOT NULL DEFAULT 0,
  error TEXT NOT NULL DEFAULT '',
  latency_ms BIGINT NOT NULL DEFAULT 0,
  response TEXT NOT NULL DEFAULT '',
  created_at {{ts}} NOT NULL
);
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id, id);
`, false},
	// Delta pulls: a connector's cursor, with the generation of settings
	// and credentials it was taken under (generation grows with each
	// change of them) and when it last pulled in full; each organization's
	// schedule of full pulls; and how each run pulled.
	{11, "delta pulls", `
ALTER TABLE connectors ADD COLUMN delta_cursor TEXT NOT NULL DEFAULT '';
ALTER TABLE connectors ADD COLUMN generation BIGINT NOT NULL DEFAULT 1;
ALTER TABLE connectors ADD COLUMN cursor_generation BIGINT NOT NULL DEFAULT 0;
ALTER TABLE connectors ADD COLUMN last_full_at {{ts}};
ALTER TABLE organizations ADD COLUMN full_reconcile_schedule TEXT NOT NULL DEFAULT '@daily';
ALTER TABLE sync_runs ADD COLUMN full_requested BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE sync_runs ADD COLUMN pull_mode TEXT NOT NULL DEFAULT '';
ALTER TABLE sync_runs ADD COLUMN cursor_before TEXT NOT NULL DEFAULT '';
ALTER TABLE sync_runs ADD COLUMN cursor_after TEXT NOT NULL DEFAULT '';
ALTER TABLE sync_runs ADD COLUMN idp_requests BIGINT NOT NULL DEFAULT 0;
`, false},
	// What an operator confirmed of a plan the guard blocked: the run
	// applies no more removals or group deletions than these, and, with a
	// digest, no others than the reviewed ones.
	{12, "confirmed plan bounds", `
ALTER TABLE sync_runs ADD COLUMN confirmed_removals BIGINT;
ALTER TABLE sync_runs ADD COLUMN confirmed_group_deletions BIGINT;
ALTER TABLE sync_runs ADD COLUMN confirmed_losses TEXT NOT NULL DEFAULT '';
`, false},
}

func (s *Store) expand(sql string) string { return s.d.placeholders.Replace(sql) }

// migrationLockKey is the Postgres advisory lock that keeps two processes
// starting at once from migrating together.
const migrationLockKey = 0x5c1a5e

// Migrate applies every migration not yet applied, each in its own
// transaction, and returns how many it applied.
func (s *Store) Migrate(ctx context.Context) (int, error) {
	db := s.db.WithContext(ctx)
	if s.d.migrationLock != "" {
		// A session-level lock needs one connection for lock and unlock.
		conn, err := s.sqlDB.Conn(ctx)
		if err != nil {
			return 0, fmt.Errorf("migrate: %w", err)
		}
		defer conn.Close()
		if _, err := conn.ExecContext(ctx, s.d.migrationLock, migrationLockKey); err != nil {
			return 0, fmt.Errorf("migrate: lock: %w", err)
		}
		defer conn.ExecContext(context.WithoutCancel(ctx), s.d.migrationUnlock, migrationLockKey)
	}
	if err := db.Exec(s.expand(`CREATE TABLE IF NOT EXISTS schema_migrations (
  version INTEGER PRIMARY KEY,
  name TEXT NOT NULL,
  applied_at {{ts}} NOT NULL
)`)).Error; err != nil {
		return 0, fmt.Errorf("migrate: create schema_migrations: %w", err)
	}
	n := 0
	for _, m := range migrations {
		applied := false
		// The check runs in the migration's own transaction: on SQLite that
		// transaction holds the write lock from its start, so concurrent
		// migrators serialise without an advisory lock.
		err := db.Transaction(func(tx *gorm.DB) error {
			var count int64
			if err := tx.Raw("SELECT COUNT(*) FROM schema_migrations WHERE version = ?", m.version).Scan(&count).Error; err != nil {
				return fmt.Errorf("read applied versions: %w", err)
			}
			if count > 0 {
				return nil
			}
			var stmts []string
			if s.d.postgresOnlyMigrations || !m.postgresOnly {
				stmts = splitStatements(s.expand(m.sql))
			}
			for _, stmt := range stmts {
				if err := tx.Exec(stmt).Error; err != nil {
					return fmt.Errorf("%s: %w", firstLine(stmt), err)
				}
			}
			applied = true
			return tx.Exec("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)", m.version, m.name, time.Now().UTC()).Error
		})
		if err != nil {
			return n, fmt.Errorf("migrate: version %d (%s): %w", m.version, m.name, err)
		}
		if applied {
			n++
		}
	}
	return n, nil
}

// SchemaVersion returns the highest applied migration, or 0.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	var v *int
	if err := s.db.WithContext(ctx).Raw("SELECT MAX(version) FROM schema_migrations").Scan(&v).Error; err != nil {
		return 0, fmt.Errorf("schema version: %w", err)
	}
	if v == nil {
		return 0, nil
	}
	return *v, nil
}

// LatestSchemaVersion is the version Migrate brings a database to.
func LatestSchemaVersion() int { return migrations[len(migrations)-1].version }

func splitStatements(sql string) []string {
	var out []string
	for _, s := range strings.Split(sql, ";") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}
