package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
)

// The two SCIM hot paths, creating a directory user and looking users up by
// an indexed attribute, run on Postgres as hand-written statements on the
// connection (or transaction) underneath gorm: one round trip each, no
// reflection. pgx prepares and caches them per connection. SQLite keeps the
// gorm methods, which give the same results.

// Record is what a directory write commits with it: the audit event and
// the outbox row of the work it implies.
type Record struct {
	Audit  AuditEvent
	Outbox OutboxRow
}

// CreateDirectoryUserRecorded inserts u (as CreateDirectoryUser does) and
// rec's audit event and outbox row, all in one transaction: either all
// three commit or none does. Set u.ID first when rec refers to it. A taken
// userName or externalId is a *ConflictError.
func (s *Store) CreateDirectoryUserRecorded(ctx context.Context, u *DirectoryUser, rec Record) error {
	if !s.d.rawHotPaths {
		return s.Tx(ctx, func(tx *Store) error {
			if err := tx.CreateDirectoryUser(ctx, u); err != nil {
				return err
			}
			if err := tx.AddAuditEvent(ctx, rec.Audit); err != nil {
				return err
			}
			return tx.AddOutbox(ctx, rec.Outbox)
		})
	}
	s.fillNewUser(u)
	now := u.CreatedAt
	a, o := rec.Audit, rec.Outbox
	if a.CreatedAt.IsZero() {
		a.CreatedAt = now
	}
	if o.Queue == "" {
		o.Queue = "default"
	}
	// One statement is one transaction on Postgres: a unique violation on
	// the user aborts the audit and outbox inserts with it.
	_, err := s.pool().ExecContext(ctx, createUserRecordedSQL,
		u.ID, u.OrgID, u.Source, u.ExternalID, u.UserName, u.UserNameKey, u.Email, u.EmailKey,
		u.GivenName, u.FamilyName, u.DisplayName, u.Active, u.RawStatus, u.Attributes, u.Snapshot, now,
		a.OrgID, a.Actor, a.Action, a.EntityType, a.EntityID, a.Outcome, a.Detail, a.CreatedAt,
		o.OrgID, o.TaskType, o.TaskID, o.Queue, o.Payload)
	if err != nil {
		if c := uniqueConflict(err); c != nil {
			return fmt.Errorf("create directory user: %w", c)
		}
		return fmt.Errorf("create directory user: %w", err)
	}
	return nil
}

const createUserRecordedSQL = `WITH u AS (
  INSERT INTO directory_users (id, org_id, source, external_id, user_name, user_name_key, email, email_key,
    given_name, family_name, display_name, active, raw_status, attributes, version, snapshot, created_at, updated_at)
  VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, 1, $15, $16, $16)
  RETURNING id
), a AS (
  INSERT INTO audit_events (org_id, actor, action, entity_type, entity_id, outcome, detail, created_at)
  SELECT $17, $18, $19, $20, $21, $22, $23, $24 FROM u
)
INSERT INTO outbox (org_id, task_type, task_id, queue, payload, created_at)
SELECT $25, $26, $27, $28, $29, $16 FROM u`

// DirectoryUsersWithGroupsBy is DirectoryUsersBy together with the groups
// of the users found, as DirectoryGroupsOfUsers lists them.
func (s *Store) DirectoryUsersWithGroupsBy(ctx context.Context, orgID string, field UserField, value string) ([]DirectoryUser, []GroupRef, error) {
	if !s.d.rawHotPaths {
		users, err := s.DirectoryUsersBy(ctx, orgID, field, value)
		if err != nil || len(users) == 0 {
			return users, nil, err
		}
		ids := make([]string, len(users))
		for i, u := range users {
			ids[i] = u.ID
		}
		refs, err := s.DirectoryGroupsOfUsers(ctx, orgID, ids...)
		return users, refs, err
	}
	value, err := lookupValue(field, value)
	if err != nil {
		return nil, nil, err
	}
	rows, err := s.pool().QueryContext(ctx, usersWithGroupsSQL[field], orgID, value)
	if err != nil {
		return nil, nil, fmt.Errorf("find directory users: %w", err)
	}
	defer rows.Close()
	var (
		users []DirectoryUser
		refs  []GroupRef
	)
	for rows.Next() {
		var u DirectoryUser
		var groups []byte
		if err := rows.Scan(&u.ID, &u.OrgID, &u.Source, &u.ExternalID, &u.UserName, &u.UserNameKey, &u.Email, &u.EmailKey,
			&u.GivenName, &u.FamilyName, &u.DisplayName, &u.Active, &u.RawStatus, &u.Attributes, &u.Version, &u.Snapshot,
			&u.CreatedAt, &u.UpdatedAt, &groups); err != nil {
			return nil, nil, fmt.Errorf("find directory users: %w", err)
		}
		u.CreatedAt, u.UpdatedAt = u.CreatedAt.UTC(), u.UpdatedAt.UTC()
		users = append(users, u)
		if groups == nil {
			continue
		}
		var pairs [][2]string // [group id, display name], in list order
		if err := json.Unmarshal(groups, &pairs); err != nil {
			return nil, nil, fmt.Errorf("find directory users: decode groups: %w", err)
		}
		for _, p := range pairs {
			refs = append(refs, GroupRef{UserID: u.ID, GroupID: p[0], DisplayName: p[1]})
		}
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("find directory users: %w", err)
	}
	return users, refs, nil
}

// usersWithGroupsSQL holds one statement per indexed field, so each is a
// fixed text pgx can keep prepared.
var usersWithGroupsSQL = func() map[UserField]string {
	m := map[UserField]string{}
	for _, f := range []UserField{ByUserName, ByExternalID, ByEmail, ByID} {
		m[f] = strings.Replace(`SELECT u.id, u.org_id, u.source, u.external_id, u.user_name, u.user_name_key, u.email, u.email_key,
  u.given_name, u.family_name, u.display_name, u.active, u.raw_status, u.attributes, u.version, u.snapshot,
  u.created_at, u.updated_at,
  (SELECT json_agg(json_build_array(g.id, g.display_name) ORDER BY g.created_at, g.id)
     FROM directory_group_members m JOIN directory_groups g ON g.id = m.group_id AND g.org_id = m.org_id
    WHERE m.org_id = u.org_id AND m.user_id = u.id)
FROM directory_users u
WHERE u.org_id = $1 AND u.FIELD = $2
ORDER BY u.created_at, u.id`, "FIELD", string(f), 1)
	}
	return m
}()

// pool is what raw statements run on: the transaction when s is bound to
// one, else the connection pool.
func (s *Store) pool() interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
} {
	return s.db.Statement.ConnPool
}
