package inbound

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/scimsync/scimsync/inbound/filter"
	"github.com/scimsync/scimsync/inbound/patch"
	"github.com/scimsync/scimsync/inbound/schema"
	"github.com/scimsync/scimsync/jobs/task"
	"github.com/scimsync/scimsync/store"
)

// sourceSCIM marks directory rows written by SCIM pushes.
const sourceSCIM = "scim"

// userUnstored are the attributes of a user body never stored: groups are
// read-only (kept by group membership), a password is never kept.
var userUnstored = []string{"groups", "password"}

// userFields fills the indexed columns of a directory user from its
// normalized SCIM resource.
func userFields(u *store.DirectoryUser, res map[string]any) error {
	name := strings.TrimSpace(str(res["userName"]))
	if name == "" {
		return schema.Errorf(schema.ScimTypeInvalidValue, "userName is required")
	}
	u.UserName = name
	u.ExternalID = str(res["externalId"])
	u.Active = true
	if a, ok := res["active"].(bool); ok {
		u.Active = a
	}
	u.RawStatus = map[bool]string{true: "active", false: "inactive"}[u.Active]
	u.DisplayName = str(res["displayName"])
	if n, ok := res["name"].(map[string]any); ok {
		u.GivenName, u.FamilyName = str(n["givenName"]), str(n["familyName"])
	} else {
		u.GivenName, u.FamilyName = "", ""
	}
	u.Email = memberEmail(res, name)
	attrs, err := encodeAttributes(res, userUnstored...)
	if err != nil {
		return err
	}
	u.Attributes = attrs
	return nil
}

// memberEmail picks a member's e-mail: the primary one, else the first
// work one, else the first, else the userName when it is an address.
func memberEmail(res map[string]any, userName string) string {
	emails, _ := res["emails"].([]any)
	var first, work string
	for _, e := range emails {
		m, _ := e.(map[string]any)
		v := strings.TrimSpace(str(m["value"]))
		if v == "" {
			continue
		}
		if p, _ := m["primary"].(bool); p {
			return v
		}
		if work == "" && strings.EqualFold(str(m["type"]), "work") {
			work = v
		}
		if first == "" {
			first = v
		}
	}
	switch {
	case work != "":
		return work
	case first != "":
		return first
	case strings.Contains(userName, "@"):
		return userName
	}
	return ""
}

// userResource renders a directory user without its groups.
func (s *Server) userResource(u store.DirectoryUser) (map[string]any, error) {
	m, err := decodeAttributes(u.Attributes)
	if err != nil {
		return nil, err
	}
	return s.userFromBody(u, m), nil
}

// userFromBody completes a user's stored body m (decoded, or as just
// written) into its resource without groups.
func (s *Server) userFromBody(u store.DirectoryUser, m map[string]any) map[string]any {
	s.addOwned(m, schema.User(), u.ID, u.CreatedAt, u.UpdatedAt, u.Version)
	// The row's flag is the truth: a user created without "active" is
	// active, and filters and IdPs must see it so.
	m["active"] = u.Active
	return m
}

// joinUserGroups adds each user's groups to its rendering, with one query
// for them all.
func (s *Server) joinUserGroups(ctx context.Context, org string, rows []store.DirectoryUser, res []map[string]any) error {
	ids := make([]string, len(rows))
	for i, u := range rows {
		ids[i] = u.ID
	}
	refs, err := s.Store.DirectoryGroupsOfUsers(ctx, org, ids...)
	if err != nil {
		return err
	}
	s.addUserGroups(rows, res, refs)
	return nil
}

// addUserGroups puts each user's groups (refs, in order) into its
// rendering; a user without groups gets no attribute.
func (s *Server) addUserGroups(rows []store.DirectoryUser, res []map[string]any, refs []store.GroupRef) {
	if len(refs) == 0 {
		return
	}
	byUser := map[string][]any{}
	for _, g := range refs {
		byUser[g.UserID] = append(byUser[g.UserID], map[string]any{
			"value": g.GroupID, "display": g.DisplayName, "$ref": s.baseURL() + "/Groups/" + g.GroupID, "type": "direct",
		})
	}
	for i, u := range rows {
		if gs := byUser[u.ID]; len(gs) > 0 {
			res[i]["groups"] = gs
		}
	}
}

// userIndex maps the indexed attributes of users to their store fields.
var userIndex = map[string]store.UserField{
	"userName": store.ByUserName, "externalId": store.ByExternalID, "id": store.ByID, filter.IndexedEmail: store.ByEmail,
}

func (s *Server) users() *lister[store.DirectoryUser] {
	return &lister[store.DirectoryUser]{
		rt: schema.User(),
		byIndex: func(ctx context.Context, org, attr, value string) ([]store.DirectoryUser, bool, error) {
			field, ok := userIndex[attr]
			if !ok {
				return nil, false, nil
			}
			rows, err := s.Store.DirectoryUsersBy(ctx, org, field, value)
			return rows, true, err
		},
		byIndexJoined: func(ctx context.Context, org, attr, value string) ([]store.DirectoryUser, []map[string]any, bool, error) {
			field, ok := userIndex[attr]
			if !ok {
				return nil, nil, false, nil
			}
			rows, refs, err := s.Store.DirectoryUsersWithGroupsBy(ctx, org, field, value)
			if err != nil {
				return nil, nil, true, err
			}
			res := make([]map[string]any, len(rows))
			for i, u := range rows {
				if res[i], err = s.userResource(u); err != nil {
					return nil, nil, true, err
				}
			}
			s.addUserGroups(rows, res, refs)
			return rows, res, true, nil
		},
		page:     s.Store.DirectoryUserPage,
		each:     s.Store.EachDirectoryUser,
		resource: s.userResource,
		join:     s.joinUserGroups,
		joined:   "groups",
		ref:      func(u store.DirectoryUser) (string, string, int64) { return u.ID, u.OrgID, u.Version },
	}
}

func (s *Server) listUsers(w http.ResponseWriter, r *http.Request) { s.users().serve(s, w, r) }

func (s *Server) getUser(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	org := principalFrom(ctx).OrgID
	// The lookup by id reads the user's groups in the same query.
	l := s.users()
	rows, res, _, err := l.byIndexJoined(ctx, org, "id", r.PathValue("id"))
	if err == nil && len(rows) == 0 {
		err = fmt.Errorf("user %w", store.ErrNotFound)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	l.respondRendered(s, w, r, http.StatusOK, rows[0], res[0])
}

func (s *Server) createUser(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	p := principalFrom(ctx)
	res, err := decodeResource(w, r, schema.User())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	u := store.DirectoryUser{OrgID: p.OrgID, Source: sourceSCIM}
	if err := userFields(&u, res); err != nil {
		s.fail(w, r, err)
		return
	}
	u.ID = store.NewID() // the audit event and outbox row name it
	if err := s.Store.CreateDirectoryUserRecorded(ctx, &u, userRecord(p, "user.create", u, !u.Active)); err != nil {
		s.fail(w, r, err)
		return
	}
	s.notify()
	// Rendered from the body just stored rather than decoding it again;
	// groups is read-only, so a new user has none.
	s.users().respondRendered(s, w, r, http.StatusCreated, u, s.userFromBody(u, storedBody(res, userUnstored...)))
}

// userRecord is the audit event and the outbox row of a change to a
// directory user.
func userRecord(p principal, action string, u store.DirectoryUser, urgent bool) store.Record {
	return store.Record{
		Audit:  store.AuditEvent{OrgID: p.OrgID, Actor: p.Actor(), Action: action, EntityType: "directory_user", EntityID: u.ID},
		Outbox: task.ConvergeUserRow(p.OrgID, u.ID, urgent),
	}
}

// recordUser writes, in the caller's transaction, the audit event and the
// outbox row of a change to a directory user.
func (s *Server) recordUser(ctx context.Context, tx *store.Store, p principal, action string, u store.DirectoryUser, urgent bool) error {
	rec := userRecord(p, action, u, urgent)
	if err := tx.AddAuditEvent(ctx, rec.Audit); err != nil {
		return err
	}
	return tx.AddOutbox(ctx, rec.Outbox)
}

// updateUser runs a read-modify-write of one user (see txRetry).
func (s *Server) updateUser(w http.ResponseWriter, r *http.Request, action string, change func(cur map[string]any) (map[string]any, error)) {
	ctx := r.Context()
	p := principalFrom(ctx)
	id := r.PathValue("id")
	var out store.DirectoryUser
	var changed bool
	err := s.txRetry(ctx, r, func(tx *store.Store) error {
		cur, err := tx.DirectoryUser(ctx, p.OrgID, id)
		if err != nil {
			return err
		}
		if err := checkIfMatch(r, cur.Version); err != nil {
			return err
		}
		res, err := decodeAttributes(cur.Attributes)
		if err != nil {
			return err
		}
		next, err := change(res)
		if err != nil {
			return err
		}
		u := cur
		if err := userFields(&u, next); err != nil {
			return err
		}
		out, changed = cur, false
		if u == cur {
			return nil // nothing differs: no write, no job
		}
		if err := tx.UpdateDirectoryUser(ctx, &u, cur.Version); err != nil {
			return err
		}
		out, changed = u, true
		return s.recordUser(ctx, tx, p, action, u, cur.Active && !u.Active)
	})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if changed {
		s.notify()
	}
	s.users().respond(s, w, r, http.StatusOK, out, false)
}

func (s *Server) replaceUser(w http.ResponseWriter, r *http.Request) {
	res, err := decodeResource(w, r, schema.User())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.updateUser(w, r, "user.replace", func(map[string]any) (map[string]any, error) { return res, nil })
}

func (s *Server) patchUser(w http.ResponseWriter, r *http.Request) {
	ops, err := decodePatch(w, r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.updateUser(w, r, "user.patch", func(cur map[string]any) (map[string]any, error) {
		return patch.Apply(cur, ops, schema.User())
	})
}

// decodeResource reads a resource body (POST, PUT) and normalizes it
// against the resource type's schema.
func decodeResource(w http.ResponseWriter, r *http.Request, rt *schema.ResourceType) (map[string]any, error) {
	body, err := decode(w, r)
	if err != nil {
		return nil, err
	}
	return patch.Normalize(body, rt)
}

// decodePatch reads a PatchOp body.
func decodePatch(w http.ResponseWriter, r *http.Request) ([]patch.Operation, error) {
	body, err := decode(w, r)
	if err != nil {
		return nil, err
	}
	raw, ok := body["Operations"]
	if !ok {
		for k, v := range body { // some clients lower-case it
			if strings.EqualFold(k, "Operations") {
				raw, ok = v, true
			}
		}
	}
	if !ok || raw == nil {
		return nil, nil
	}
	list, isList := raw.([]any)
	if !isList {
		return nil, schema.Errorf(schema.ScimTypeInvalidSyntax, "Operations must be a list")
	}
	ops := make([]patch.Operation, 0, len(list))
	for _, x := range list {
		m, isMap := x.(map[string]any)
		if !isMap {
			return nil, schema.Errorf(schema.ScimTypeInvalidSyntax, "each operation must be an object")
		}
		op := patch.Operation{Value: m["value"]}
		for k, v := range m {
			switch strings.ToLower(k) {
			case "op":
				op.Op = str(v)
			case "path":
				op.Path = str(v)
			case "value":
				op.Value = v
			}
		}
		if op.Op == "" {
			return nil, schema.Errorf(schema.ScimTypeInvalidSyntax, "an operation has no op")
		}
		ops = append(ops, op)
	}
	return ops, nil
}

func (s *Server) deleteUser(w http.ResponseWriter, r *http.Request) {
	deletion[store.DirectoryUser]{
		get:     (*store.Store).DirectoryUser,
		version: func(u store.DirectoryUser) int64 { return u.Version },
		remove:  (*store.Store).DeleteDirectoryUser,
		record: func(ctx context.Context, tx *store.Store, p principal, u store.DirectoryUser) error {
			return s.recordUser(ctx, tx, p, "user.delete", u, true)
		},
	}.serve(s, w, r)
}
