package store

import (
	"context"
	"fmt"
	"strconv"
	"strings"
)

// A pull writes what the IdP lists into the directory tables and marks what
// it saw; only when its run applies does it delete the pulled rows it did not
// see (mark and sweep). Until then an unseen row stays as it was, so a pull
// that fails part-way, or a plan that is blocked, removes nothing.
//
// The mark is a row of pull_seen per user, group and group link seen, not a
// write to the directory row: a directory row is written only when the IdP
// changed it, so a pull of an unchanged directory of any size writes next to
// nothing there. Rows the pull writes carry its snapshot generation, and a
// user row that carries it needs no mark: the pull wrote it, so it saw it
// (a first pull writes no user marks at all).
//
// Of what a pull writes, only two facts can take anyone's access away: that
// a user is gone, and that a user became inactive. Absence is held back by
// the sweep; a deactivation by writing the IdP's word into pulled_active and
// copying it into active only when the run applies. Everything else is
// written at once: names, e-mail addresses, logins, activations, new users,
// groups and new group members are what the IdP said about users and groups
// it listed completely, and converging them never removes or deprovisions
// anyone.
//
// Rows that SCIM wrote (source "scim") belong to SCIM: a pull neither
// changes nor sweeps them.

// SourceSCIM is the source of directory rows written by SCIM pushes.
const SourceSCIM = "scim"

// Pull names one run's pull of an organization.
type Pull struct {
	OrgID, RunID string
	// Source is the connector type, which pulled rows carry.
	Source string
	// Snapshot is the run's generation, which the rows it writes carry.
	Snapshot int64
	// Delta: the pull reads changes only (see WritePulledDelta), so what
	// it writes needs no marks.
	Delta bool
}

// What pull_seen marks.
const (
	seenUser  = "u" // key: the user's external id
	seenGroup = "g" // key: the group's external id
	seenLink  = "m" // key: group id ":" user id
)

// PulledUser is a user as a connector listed it.
type PulledUser struct {
	ExternalID string
	UserName   string
	Email      string
	GivenName  string
	FamilyName string
	Active     bool
	RawStatus  string
}

// PulledGroup is a group as a connector listed it.
type PulledGroup struct {
	ExternalID string
	Name       string
}

// normalized is u as the SCIM server would store it: userName and e-mail
// trimmed, as inbound's userFields and memberEmail trim them, so that both
// paths write one form and an e-mail of only whitespace is none.
func (u PulledUser) normalized() PulledUser {
	u.UserName, u.Email = strings.TrimSpace(u.UserName), strings.TrimSpace(u.Email)
	return u
}

// normalized is g with its name trimmed, as inbound's groupFields trims a
// SCIM group's displayName.
func (g PulledGroup) normalized() PulledGroup {
	g.Name = strings.TrimSpace(g.Name)
	return g
}

// RefreshStats has Postgres re-read the statistics of tables (by default,
// all that a reconciliation works on). A large pull or plan changes them
// faster than autovacuum notices, and with stale statistics (a new
// organization looks tiny) the planner plans the statements over the whole
// organization as if it were small. Only the columns that reconciliation
// statements select and join by are read, which costs a third of the
// whole table's; autovacuum still analyzes the rest in its time. SQLite
// plans by its indexes and needs nothing. A failure (say, a role that does
// not own the tables) only leaves the planner as it was.
func (s *Store) RefreshStats(ctx context.Context, tables ...string) error {
	if !s.d.analyze {
		return nil
	}
	if len(tables) == 0 {
		tables = []string{"directory_users", "directory_groups", "directory_group_members", "org_memberships", "sync_run_items", "pull_seen"}
	}
	targets := make([]string, len(tables))
	for i, t := range tables {
		targets[i] = t
		if cols, ok := planColumns[t]; ok {
			targets[i] += " (" + cols + ")"
		}
	}
	if err := s.conn(ctx).Exec("ANALYZE " + strings.Join(targets, ", ")).Error; err != nil {
		return fmt.Errorf("analyze reconciliation tables: %w", err)
	}
	return nil
}

// planColumns are, per table, the columns reconciliation statements
// select and join by: those whose statistics shape their plans.
var planColumns = map[string]string{
	"directory_users":         "id, org_id, source, external_id, user_name_key, email_key, snapshot, active, pulled_active",
	"directory_groups":        "id, org_id, source, external_id, display_name_key",
	"directory_group_members": "org_id, group_id, user_id",
	"org_memberships":         "id, org_id, user_id, directory_user_id, status, role",
	"sync_run_items":          "id, run_id, org_id, action, entity_id",
	"pull_seen":               "run_id, kind, key",
}

// pageSettings sets the current transaction up for writing pulled pages:
// it commits without waiting for its WAL to reach the disk (pulled pages
// are safe to lose in a crash: they only ever refresh the directory, and
// the next run writes them again), and without JIT (see noJIT).
func (s *Store) pageSettings(ctx context.Context) error {
	if s.d.pageSettings == "" {
		return nil
	}
	return s.conn(ctx).Exec(s.d.pageSettings).Error
}

// noJIT turns Postgres's JIT compilation off for the current transaction.
// The reconciliation's set-based statements over a whole organization
// cost enough to pass the JIT thresholds, and compiling them takes far
// longer than running them: seconds of CPU for a statement that runs in a
// few hundred milliseconds.
func (s *Store) noJIT(ctx context.Context) error {
	if s.d.noJIT == "" {
		return nil
	}
	if err := s.conn(ctx).Exec(s.d.noJIT).Error; err != nil {
		return fmt.Errorf("turn off jit: %w", err)
	}
	return nil
}

// BatchRows is how many rows of columns bound parameters each one
// statement should write: thousands on Postgres, a few hundred on SQLite
// (see dialect.batchRows).
func (s *Store) BatchRows(columns int) int { return s.d.batchRows(columns) }

// markSeen records that the pull saw keys of a kind.
func (s *Store) markSeen(ctx context.Context, p Pull, kind string, keys []string) error {
	if len(keys) == 0 {
		return nil
	}
	from, arg := s.d.list(keys)
	if err := s.conn(ctx).Exec("INSERT INTO pull_seen (run_id, kind, key) SELECT ?, ?, value FROM ("+from+") AS k WHERE TRUE ON CONFLICT DO NOTHING",
		p.RunID, kind, arg).Error; err != nil {
		return fmt.Errorf("mark seen: %w", err)
	}
	return nil
}

// ForgetPull drops a run's marks, and those of runs no longer running that
// a stopped process left behind. Call it when a run ends, however it ends.
func (s *Store) ForgetPull(ctx context.Context, runID string) error {
	if err := s.conn(ctx).Exec("DELETE FROM pull_seen WHERE run_id = ? OR run_id NOT IN (SELECT id FROM sync_runs WHERE status = ?)", runID, RunRunning).Error; err != nil {
		return fmt.Errorf("forget pull: %w", err)
	}
	return nil
}

// WritePulledUsers records users of a pull: new users are inserted,
// changed ones updated (a deactivation only into pulled_active, until the
// run applies), unchanged ones left alone, and all marked seen. Every user
// must have an external id; of users repeated in the page the last counts.
// Values are written normalized as SCIM writes them (PulledUser.normalized).
// Call it inside Tx.
func (s *Store) WritePulledUsers(ctx context.Context, p Pull, page []PulledUser) error {
	if err := s.pageSettings(ctx); err != nil {
		return fmt.Errorf("write pulled users: %w", err)
	}
	page = lastByExternalID(page, func(u PulledUser) string { return u.ExternalID })
	const n = 1000         // rows per statement; they bind as a few parameters however many they are
	var unwritten []string // users of chunks the upsert did not write in full
	for start := 0; start < len(page); start += n {
		chunk := page[start:min(start+n, len(page))]
		keys := make([]keyOwner, len(chunk))
		for i, u := range chunk {
			keys[i] = keyOwner{key: Key(u.UserName), externalID: u.ExternalID}
		}
		var written int64
		err := s.withFreeKeys(ctx, "directory_users", "user_name_key", p.OrgID, keys, func(own []string) error {
			var err error
			written, err = s.upsertPulledUsers(ctx, p, chunk, own)
			return err
		})
		if err != nil {
			return fmt.Errorf("write pulled users: %w", err)
		}
		// A chunk written in full carries the snapshot throughout: it
		// needs no marks, nor the lookup that finds which need them.
		if p.Snapshot <= 0 || written < int64(len(chunk)) {
			for _, u := range chunk {
				unwritten = append(unwritten, u.ExternalID)
			}
		}
	}
	if p.Delta {
		return nil
	}
	return s.markUsersSeen(ctx, p, unwritten)
}

// markUsersSeen marks the pulled users of a page seen, except those the
// page wrote: their snapshot says they were seen (see seenUserRow), so a
// first pull writes no marks at all.
func (s *Store) markUsersSeen(ctx context.Context, p Pull, exts []string) error {
	if p.Snapshot <= 0 {
		return s.markSeen(ctx, p, seenUser, exts)
	}
	if len(exts) == 0 {
		return nil
	}
	from, arg := s.d.list(exts)
	if err := s.conn(ctx).Exec("INSERT INTO pull_seen (run_id, kind, key) SELECT ?, ?, value FROM ("+from+") AS k"+
		" WHERE NOT EXISTS (SELECT 1 FROM directory_users d WHERE d.org_id = ? AND d.external_id = k.value AND d.external_id <> ''"+
		" AND d.snapshot = ? AND d.source <> ?) ON CONFLICT DO NOTHING",
		p.RunID, seenUser, arg, p.OrgID, p.Snapshot, SourceSCIM).Error; err != nil {
		return fmt.Errorf("mark seen: %w", err)
	}
	return nil
}

// lastByExternalID drops all but the last of rows repeating an id, which
// one upsert statement cannot take twice.
func lastByExternalID[T any](rows []T, id func(T) string) []T {
	last := make(map[string]int, len(rows))
	for i, r := range rows {
		last[id(r)] = i
	}
	if len(last) == len(rows) {
		return rows
	}
	out := make([]T, 0, len(last))
	for i, r := range rows {
		if last[id(r)] == i {
			out = append(out, r)
		}
	}
	return out
}

// withFreeKeys runs write with the keys the page's rows want; when a key is
// held by another row (a unique violation), it undoes the attempt, frees the
// keys (see freeKeys) and writes again. Pages seldom meet a held key, so
// the common case costs no lookup.
func (s *Store) withFreeKeys(ctx context.Context, table, column, orgID string, page []keyOwner, write func(own []string) error) error {
	db := s.conn(ctx)
	if err := db.SavePoint("pull_page").Error; err != nil {
		return err
	}
	own := make([]string, len(page))
	for i, p := range page {
		own[i] = p.key
	}
	err := write(own)
	if err == nil || !isUniqueViolation(err) {
		return err
	}
	if err := db.RollbackTo("pull_page").Error; err != nil {
		return err
	}
	if own, err = s.freeKeys(ctx, table, column, orgID, page); err != nil {
		return err
	}
	return write(own)
}

const userColumns = `id, org_id, source, external_id, user_name, user_name_key, email, email_key,
given_name, family_name, display_name, active, pulled_active, raw_status, attributes, version, snapshot, created_at, updated_at`

// upsertPulledUsers writes the users of page that are new or differ from
// their row, in one statement that compares in the database: a page of an
// unchanged directory writes nothing. A row whose visible attributes change
// gets a new version, as a SCIM write would give it. keys are the
// user_name_key each user is to have.
func (s *Store) upsertPulledUsers(ctx context.Context, p Pull, page []PulledUser, keys []string) (written int64, err error) {
	n := len(page)
	ids, exts, names, emails, ekeys, given, family, display, raw := make([]string, n), make([]string, n), make([]string, n),
		make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	active := make([]bool, n)
	for i, u := range page {
		u = u.normalized()
		ids[i], exts[i], names[i], emails[i], ekeys[i] = NewID(), u.ExternalID, u.UserName, u.Email, Key(u.Email)
		given[i], family[i], display[i] = u.GivenName, u.FamilyName, strings.TrimSpace(u.GivenName+" "+u.FamilyName)
		active[i], raw[i] = u.Active, u.RawStatus
	}
	q := &query{d: s.d}
	// rows: the page as a relation r(id, ext, name, nkey, email, ekey, given,
	// family, display, active, raw).
	rows, err := s.d.rows(q, []column{{name: "id", pgType: "text", text: ids}, {name: "ext", pgType: "text", text: exts},
		{name: "name", pgType: "text", text: names}, {name: "nkey", pgType: "text", text: keys},
		{name: "email", pgType: "text", text: emails}, {name: "ekey", pgType: "text", text: ekeys},
		{name: "given", pgType: "text", text: given}, {name: "family", pgType: "text", text: family},
		{name: "display", pgType: "text", text: display}, {name: "active", pgType: "bool", flags: active},
		{name: "raw", pgType: "text", text: raw}})
	if err != nil {
		return 0, err
	}
	org, now := q.arg(p.OrgID), q.typed(s.now(), "timestamptz")
	q.b.WriteString(`INSERT INTO directory_users (` + userColumns + `)
SELECT r.id, ` + org + `, ` + q.arg(p.Source) + `, r.ext, r.name, r.nkey, r.email, r.ekey, r.given, r.family, r.display, r.active, r.active,
  r.raw, '{}', 1, ` + q.typed(p.Snapshot, "bigint") + `, ` + now + `, ` + now + `
FROM (` + rows + `) r
` + s.d.lookupEach("directory_users", "d", "d.org_id = "+org+" AND d.external_id = r.ext AND d.external_id <> ''") + `
WHERE d.id IS NULL OR (d.source <> '` + SourceSCIM + `' AND (d.source <> ` + q.arg(p.Source) + ` OR d.user_name <> r.name
  OR d.user_name_key <> r.nkey OR d.email <> r.email OR d.given_name <> r.given OR d.family_name <> r.family
  OR d.raw_status <> r.raw OR d.pulled_active <> r.active OR (r.active AND NOT d.active)))
ON CONFLICT (org_id, external_id) WHERE external_id <> '' DO UPDATE SET
  source = excluded.source, user_name = excluded.user_name, user_name_key = excluded.user_name_key,
  email = excluded.email, email_key = excluded.email_key, given_name = excluded.given_name,
  family_name = excluded.family_name, display_name = excluded.display_name,
  active = directory_users.active OR excluded.pulled_active, pulled_active = excluded.pulled_active,
  raw_status = excluded.raw_status, snapshot = excluded.snapshot,
  version = CASE WHEN ` + userChanged + ` THEN directory_users.version + 1 ELSE directory_users.version END,
  updated_at = CASE WHEN ` + userChanged + ` THEN excluded.updated_at ELSE directory_users.updated_at END
WHERE directory_users.source <> '` + SourceSCIM + `'`)
	return q.exec(ctx, s)
}

// query builds a statement with numbered parameters ($n on Postgres, ?n on
// SQLite), so that one can appear more than once.
type query struct {
	d    *dialect
	b    strings.Builder
	args []any
}

func (q *query) arg(v any) string {
	q.args = append(q.args, v)
	return q.d.param + strconv.Itoa(len(q.args))
}

// typed is arg with the type Postgres cannot infer where the parameter
// stands (a select list); SQLite takes values as they come.
func (q *query) typed(v any, pgType string) string {
	return q.d.typed(q.arg(v), pgType)
}

// exec runs the statement past gorm's expansion of slices, so that on
// Postgres each Go slice binds as one array parameter.
// exec runs the statement and returns how many rows it changed.
func (q *query) exec(ctx context.Context, s *Store) (int64, error) {
	res, err := s.conn(ctx).Statement.ConnPool.ExecContext(ctx, q.b.String(), q.args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

const userChanged = `(directory_users.user_name <> excluded.user_name OR directory_users.email <> excluded.email
  OR directory_users.given_name <> excluded.given_name OR directory_users.family_name <> excluded.family_name
  OR directory_users.raw_status <> excluded.raw_status OR directory_users.pulled_active <> excluded.pulled_active
  OR directory_users.source <> excluded.source)`

// WritePulledGroups upserts one page of groups of a pull and marks them
// seen, names trimmed as SCIM trims them (PulledGroup.normalized). Groups
// are few, so they are simply written. Call it inside Tx.
func (s *Store) WritePulledGroups(ctx context.Context, p Pull, page []PulledGroup) error {
	if err := s.pageSettings(ctx); err != nil {
		return fmt.Errorf("write pulled groups: %w", err)
	}
	page = lastByExternalID(page, func(g PulledGroup) string { return g.ExternalID })
	n := s.BatchRows(9)
	for start := 0; start < len(page); start += n {
		chunk := page[start:min(start+n, len(page))]
		keys := make([]keyOwner, len(chunk))
		for i, g := range chunk {
			keys[i] = keyOwner{key: Key(g.Name), externalID: g.ExternalID}
		}
		err := s.withFreeKeys(ctx, "directory_groups", "display_name_key", p.OrgID, keys, func(own []string) error {
			now := s.now()
			var b strings.Builder
			args := make([]any, 0, len(chunk)*9)
			for i, g := range chunk {
				g = g.normalized()
				if i > 0 {
					b.WriteByte(',')
				}
				b.WriteString("(?,?,?,?,?,?,'{}',1,?,?,?)")
				args = append(args, NewID(), p.OrgID, p.Source, g.ExternalID, g.Name, own[i], p.Snapshot, now, now)
			}
			return s.conn(ctx).Exec(`INSERT INTO directory_groups (id, org_id, source, external_id, display_name, display_name_key,
attributes, version, snapshot, created_at, updated_at) VALUES `+b.String()+`
ON CONFLICT (org_id, external_id) WHERE external_id <> '' DO UPDATE SET
  source = excluded.source, display_name = excluded.display_name, display_name_key = excluded.display_name_key,
  snapshot = excluded.snapshot,
  version = CASE WHEN `+groupChanged+` THEN directory_groups.version + 1 ELSE directory_groups.version END,
  updated_at = CASE WHEN `+groupChanged+` THEN excluded.updated_at ELSE directory_groups.updated_at END
WHERE directory_groups.source <> '`+SourceSCIM+`' AND (`+groupChanged+` OR directory_groups.display_name_key <> excluded.display_name_key)`, args...).Error
		})
		if err != nil {
			return fmt.Errorf("write pulled groups: %w", err)
		}
	}
	if p.Delta {
		return nil
	}
	exts := make([]string, len(page))
	for i, g := range page {
		exts[i] = g.ExternalID
	}
	return s.markSeen(ctx, p, seenGroup, exts)
}

const groupChanged = `(directory_groups.display_name <> excluded.display_name OR directory_groups.source <> excluded.source)`

// keyOwner is a page row that wants a unique key (a userName or a group
// name) for the row with its external id.
type keyOwner struct{ key, externalID string }

// freeKeys makes the keys of a page free for the rows that want them, and
// returns the key each page row is to be written with.
//
// Keys are unique in an organization, but a pull learns them one page at a
// time: a user deleted in the IdP may still hold a login that a new user has
// taken, and two users may have swapped logins across pages. Another pulled
// row holding a wanted key is given a placeholder key (it is written again
// later in the pull or swept when the run applies); a key held by a SCIM
// row stays with it, and the pulled row gets the placeholder instead. A
// placeholder starts with a space, which Key never leaves, so it matches no
// lookup.
func (s *Store) freeKeys(ctx context.Context, table, column, orgID string, page []keyOwner) ([]string, error) {
	out := make([]string, len(page))
	want := make(map[string]string, len(page))
	var keys []string
	for i, p := range page {
		out[i] = p.key
		if _, dup := want[p.key]; dup {
			out[i] = placeholderKey(p.externalID)
			continue
		}
		want[p.key] = p.externalID
		keys = append(keys, p.key)
	}
	var holders []struct {
		ID         string
		ExternalID string
		Source     string
		Key        string
	}
	from, arg := s.d.list(keys)
	if err := s.conn(ctx).Raw("SELECT id, external_id, source, "+column+" AS key FROM "+table+" WHERE org_id = ? AND "+column+" IN ("+from+")", orgID, arg).
		Scan(&holders).Error; err != nil {
		return nil, fmt.Errorf("check keys: %w", err)
	}
	var displaced []string
	taken := map[string]bool{}
	for _, h := range holders {
		if h.ExternalID != "" && h.ExternalID == want[h.Key] {
			continue
		}
		if h.Source == SourceSCIM {
			taken[h.Key] = true
			continue
		}
		displaced = append(displaced, h.ID)
	}
	for i, p := range page {
		if taken[p.key] {
			out[i] = placeholderKey(p.externalID)
		}
	}
	if len(displaced) > 0 {
		from, arg := s.d.list(displaced)
		if err := s.conn(ctx).Exec("UPDATE "+table+" SET "+column+" = ' displaced ' || id WHERE org_id = ? AND id IN ("+from+")", orgID, arg).Error; err != nil {
			return nil, fmt.Errorf("free keys: %w", err)
		}
	}
	return out, nil
}

func placeholderKey(externalID string) string { return " pulled " + externalID }

// WritePulledGroupMembers records one page of a pulled group's member list
// (the members' external ids): links are added where missing and all are
// marked seen. Ids of users the pull has not seen are ignored. Call it
// inside Tx.
func (s *Store) WritePulledGroupMembers(ctx context.Context, p Pull, groupID string, userExternalIDs []string) error {
	if err := s.pageSettings(ctx); err != nil {
		return fmt.Errorf("write pulled group members: %w", err)
	}
	from, arg := s.d.list(userExternalIDs)
	members := ` FROM directory_users u WHERE u.org_id = ? AND u.external_id <> '' AND u.external_id IN (` + from + `)
AND (u.source = ? OR (u.snapshot = ? AND u.snapshot > 0) OR EXISTS (SELECT 1 FROM pull_seen s WHERE s.run_id = ? AND s.kind = ? AND s.key = u.external_id))`
	args := []any{p.OrgID, arg, SourceSCIM, p.Snapshot, p.RunID, seenUser}
	db := s.conn(ctx)
	if err := db.Exec("INSERT INTO directory_group_members (org_id, group_id, user_id, snapshot) SELECT u.org_id, CAST(? AS TEXT), u.id, CAST(? AS BIGINT)"+
		members+" ON CONFLICT DO NOTHING", append([]any{groupID, p.Snapshot}, args...)...).Error; err != nil {
		return fmt.Errorf("write pulled group members: %w", err)
	}
	if err := db.Exec("INSERT INTO pull_seen (run_id, kind, key) SELECT CAST(? AS TEXT), CAST(? AS TEXT), ? || u.id"+members+" ON CONFLICT DO NOTHING",
		append([]any{p.RunID, seenLink, groupID + ":"}, args...)...).Error; err != nil {
		return fmt.Errorf("write pulled group members: mark seen: %w", err)
	}
	return nil
}

// EachPulledGroup calls fn for every group the pull has seen, a batch at a
// time.
func (s *Store) EachPulledGroup(ctx context.Context, p Pull, fn func(DirectoryGroup) error) error {
	q := s.conn(ctx).Where("org_id = ? AND source <> ? AND external_id IN (SELECT key FROM pull_seen WHERE run_id = ? AND kind = ?)",
		p.OrgID, SourceSCIM, p.RunID, seenGroup)
	return eachBatch(ctx, q, 500, fn)
}

// SweepCounts says what ApplyPull changed.
type SweepCounts struct {
	Deactivated, UsersDeleted, GroupsDeleted, LinksDeleted int64
}

// ApplyPull makes the pull the organization's directory: pulled users it
// saw inactive are deactivated, and pulled users, groups and group links it
// did not see are deleted. Users in keep (and their group links) are left
// exactly as they are. Call it inside Tx, together with the work the plan
// implies.
func (s *Store) ApplyPull(ctx context.Context, p Pull, keep []string) (SweepCounts, error) {
	var c SweepCounts
	if len(keep) == 0 {
		keep = []string{""} // NOT IN over an empty list would match nothing
	}
	seen := func(kind, key string) string {
		return "EXISTS (SELECT 1 FROM pull_seen s WHERE s.run_id = @run AND s.kind = '" + kind + "' AND s.key = " + key + ")"
	}
	if err := s.noJIT(ctx); err != nil {
		return c, fmt.Errorf("apply pull: %w", err)
	}
	pulled := "org_id = @org AND source <> '" + SourceSCIM + "'"
	args := map[string]any{"org": p.OrgID, "run": p.RunID, "snapshot": p.Snapshot, "keep": keep, "now": s.now()}
	steps := []struct {
		n   *int64
		sql string
	}{
		{&c.Deactivated, "UPDATE directory_users SET active = FALSE, version = version + 1, updated_at = @now WHERE " + pulled +
			" AND active AND NOT pulled_active AND id NOT IN @keep AND " + seenUserRow("directory_users")},
		// Links of unseen groups go whoever the member is: the group goes.
		{&c.LinksDeleted, "DELETE FROM directory_group_members WHERE org_id = @org AND group_id IN (SELECT g.id FROM directory_groups g WHERE g." +
			pulled + " AND NOT " + seen(seenGroup, "g.external_id") + ")"},
		{&c.LinksDeleted, "DELETE FROM directory_group_members WHERE org_id = @org AND user_id NOT IN @keep AND (" +
			"(group_id IN (SELECT g.id FROM directory_groups g WHERE g." + pulled + ") AND NOT " +
			seen(seenLink, "directory_group_members.group_id || ':' || directory_group_members.user_id") + ")" +
			" OR user_id IN (SELECT u.id FROM directory_users u WHERE u." + pulled + " AND NOT " + seenUserRow("u") + "))"},
		{&c.UsersDeleted, "DELETE FROM directory_users WHERE " + pulled + " AND id NOT IN @keep AND NOT " + seenUserRow("directory_users")},
		{&c.GroupsDeleted, "DELETE FROM directory_groups WHERE " + pulled + " AND NOT " + seen(seenGroup, "directory_groups.external_id")},
	}
	for _, st := range steps {
		res := s.conn(ctx).Exec(st.sql, args)
		if res.Error != nil {
			return c, fmt.Errorf("apply pull: %w", res.Error)
		}
		*st.n += res.RowsAffected
	}
	return c, nil
}
