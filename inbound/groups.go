package inbound

import (
	"context"
	"net/http"
	"slices"
	"strings"

	"github.com/scimsync/scimsync/inbound/patch"
	"github.com/scimsync/scimsync/inbound/schema"
	"github.com/scimsync/scimsync/jobs/task"
	"github.com/scimsync/scimsync/store"
)

// groupFields fills a directory group's columns from its normalized
// resource, and returns the member ids it names.
func groupFields(g *store.DirectoryGroup, res map[string]any) ([]string, error) {
	name := strings.TrimSpace(str(res["displayName"]))
	if name == "" {
		return nil, schema.Errorf(schema.ScimTypeInvalidValue, "displayName is required")
	}
	g.DisplayName = name
	g.ExternalID = str(res["externalId"])
	var members []string
	list, _ := res["members"].([]any)
	for _, m := range list {
		mm, _ := m.(map[string]any)
		if v := strings.TrimSpace(str(mm["value"])); v != "" {
			members = append(members, v)
		}
	}
	attrs, err := encodeAttributes(res, "members")
	if err != nil {
		return nil, err
	}
	g.Attributes = attrs
	return members, nil
}

func (s *Server) groupResource(g store.DirectoryGroup) (map[string]any, error) {
	return s.stored(schema.Group(), g.Attributes, g.ID, g.CreatedAt, g.UpdatedAt, g.Version)
}

// joinGroupMembers adds each group's members to its rendering, with one
// query for them all.
func (s *Server) joinGroupMembers(ctx context.Context, org string, rows []store.DirectoryGroup, res []map[string]any) error {
	ids := make([]string, len(rows))
	for i, g := range rows {
		ids[i] = g.ID
	}
	refs, err := s.Store.DirectoryGroupMembers(ctx, org, ids...)
	if err != nil {
		return err
	}
	byGroup := map[string][]any{}
	for _, m := range refs {
		byGroup[m.GroupID] = append(byGroup[m.GroupID], map[string]any{
			"value": m.UserID, "display": m.UserName, "$ref": s.baseURL() + "/Users/" + m.UserID, "type": "User",
		})
	}
	for i, id := range ids {
		ms := byGroup[id]
		if ms == nil {
			ms = []any{}
		}
		res[i]["members"] = ms
	}
	return nil
}

func (s *Server) groups() *lister[store.DirectoryGroup] {
	return &lister[store.DirectoryGroup]{
		rt: schema.Group(),
		byIndex: func(ctx context.Context, org, attr, value string) ([]store.DirectoryGroup, bool, error) {
			field, ok := map[string]store.UserField{"displayName": store.ByDisplayName, "externalId": store.ByExternalID, "id": store.ByID}[attr]
			if !ok {
				return nil, false, nil
			}
			rows, err := s.Store.DirectoryGroupsBy(ctx, org, field, value)
			return rows, true, err
		},
		page:     s.Store.DirectoryGroupPage,
		each:     s.Store.EachDirectoryGroup,
		resource: s.groupResource,
		join:     s.joinGroupMembers,
		joined:   "members",
		zero:     []any{},
		ref:      func(g store.DirectoryGroup) (string, string, int64) { return g.ID, g.OrgID, g.Version },
	}
}

func (s *Server) listGroups(w http.ResponseWriter, r *http.Request) { s.groups().serve(s, w, r) }

func (s *Server) getGroup(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	g, err := s.Store.DirectoryGroup(ctx, principalFrom(ctx).OrgID, r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.groups().respond(s, w, r, http.StatusOK, g, false)
}

// recordGroup writes the audit event and outbox row of a group change, and
// logs member ids that are not users of the organization.
func (s *Server) recordGroup(ctx context.Context, tx *store.Store, p principal, action string, g store.DirectoryGroup, ignored []string) error {
	if len(ignored) > 0 {
		s.log.WarnContext(ctx, "group members ignored: not users of this organization", "org_id", p.OrgID, "group_id", g.ID, "count", len(ignored))
	}
	if err := tx.AddAuditEvent(ctx, store.AuditEvent{OrgID: p.OrgID, Actor: p.Actor(), Action: action, EntityType: "directory_group", EntityID: g.ID}); err != nil {
		return err
	}
	return tx.AddOutbox(ctx, task.ConvergeGroupRow(p.OrgID, g.ID))
}

func (s *Server) createGroup(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	p := principalFrom(ctx)
	res, err := decodeResource(w, r, schema.Group())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	g := store.DirectoryGroup{OrgID: p.OrgID, Source: sourceSCIM}
	members, err := groupFields(&g, res)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	err = s.tx(ctx, func(tx *store.Store) error {
		if err := tx.CreateDirectoryGroup(ctx, &g); err != nil {
			return err
		}
		var ignored []string
		if len(members) > 0 { // Entra creates groups empty and fills them by PATCH
			if ignored, err = tx.SetDirectoryGroupMembers(ctx, p.OrgID, g.ID, members); err != nil {
				return err
			}
		}
		return s.recordGroup(ctx, tx, p, "group.create", g, ignored)
	})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.notify()
	s.groups().respond(s, w, r, http.StatusCreated, g, len(members) == 0)
}

// updateGroup runs a read-modify-write of one group and its members.
func (s *Server) updateGroup(w http.ResponseWriter, r *http.Request, action string, status int, change func(cur map[string]any) (map[string]any, error)) {
	ctx := r.Context()
	p := principalFrom(ctx)
	id := r.PathValue("id")
	var out store.DirectoryGroup
	var changed bool
	err := s.txRetry(ctx, r, func(tx *store.Store) error {
		cur, err := tx.DirectoryGroup(ctx, p.OrgID, id)
		if err != nil {
			return err
		}
		if err := checkIfMatch(r, cur.Version); err != nil {
			return err
		}
		res, err := s.groupResource(cur)
		if err != nil {
			return err
		}
		refs, err := tx.DirectoryGroupMembers(ctx, p.OrgID, id)
		if err != nil {
			return err
		}
		before := make([]string, len(refs))
		list := make([]any, len(refs))
		for i, m := range refs {
			before[i] = m.UserID
			list[i] = map[string]any{"value": m.UserID, "display": m.UserName}
		}
		res["members"] = list
		next, err := change(res)
		if err != nil {
			return err
		}
		g := cur
		members, err := groupFields(&g, next)
		if err != nil {
			return err
		}
		out, changed = cur, false
		sameMembers := sameSet(before, members)
		if g == cur && sameMembers {
			return nil
		}
		// The version moves with the members too: the ETag names the
		// whole resource, and the versioned update, taken before the
		// members are written, is what orders concurrent membership
		// changes (each computes its set from the members it read).
		if err := tx.UpdateDirectoryGroup(ctx, &g, cur.Version); err != nil {
			return err
		}
		var ignored []string
		if !sameMembers {
			if ignored, err = tx.SetDirectoryGroupMembers(ctx, p.OrgID, id, members); err != nil {
				return err
			}
		}
		out, changed = g, true
		return s.recordGroup(ctx, tx, p, action, g, ignored)
	})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if changed {
		s.notify()
	}
	if status == http.StatusNoContent {
		w.Header().Set("ETag", etag(out.Version))
		w.WriteHeader(status)
		return
	}
	s.groups().respond(s, w, r, status, out, false)
}

func sameSet(a, b []string) bool {
	x, y := slices.Clone(a), slices.Clone(b)
	slices.Sort(x)
	slices.Sort(y)
	return slices.Equal(slices.Compact(x), slices.Compact(y))
}

func (s *Server) replaceGroup(w http.ResponseWriter, r *http.Request) {
	res, err := decodeResource(w, r, schema.Group())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if _, ok := res["members"]; !ok {
		res["members"] = []any{} // PUT replaces the whole resource
	}
	s.updateGroup(w, r, "group.replace", http.StatusOK, func(map[string]any) (map[string]any, error) { return res, nil })
}

// patchGroup answers 204: Entra expects it, RFC 7644 §3.5.2 allows it, and it
// spares listing a large group's members on every membership change.
func (s *Server) patchGroup(w http.ResponseWriter, r *http.Request) {
	ops, err := decodePatch(w, r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	status := http.StatusNoContent
	if r.URL.Query().Has("attributes") {
		status = http.StatusOK // the client asked for the resource back
	}
	s.updateGroup(w, r, "group.patch", status, func(cur map[string]any) (map[string]any, error) {
		return patch.Apply(cur, ops, schema.Group())
	})
}

func (s *Server) deleteGroup(w http.ResponseWriter, r *http.Request) {
	deletion[store.DirectoryGroup]{
		get:     (*store.Store).DirectoryGroup,
		version: func(g store.DirectoryGroup) int64 { return g.Version },
		remove:  (*store.Store).DeleteDirectoryGroup,
		record: func(ctx context.Context, tx *store.Store, p principal, g store.DirectoryGroup) error {
			return s.recordGroup(ctx, tx, p, "group.delete", g, nil)
		},
	}.serve(s, w, r)
}
