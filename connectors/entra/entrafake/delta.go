package entrafake

import (
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// Routes of Graph's delta queries. The fake serves rounds from a token
// ($deltatoken=latest, or one from its own deltaLink), each in one page
// with the deltaLink of the next round; the first round without a token
// (a full listing) is not modelled.
const (
	RouteUsersDelta  = "/v1.0/users/delta"
	RouteGroupsDelta = "/v1.0/groups/delta"
)

// change is one entry of the change log: a user, a group, or a group
// member (group and member set) that was added, changed or removed.
type change struct {
	user, group, member, memberType string
	removed                         bool
}

// record appends to the change log; s.mu is held.
func (s *Server) record(c change) { s.changes = append(s.changes, c) }

// RenameGroup renames a group.
func (s *Server) RenameGroup(groupID, displayName string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mustGroup("RenameGroup", groupID).DisplayName = displayName
	s.record(change{group: groupID})
}

// DeleteGroup deletes a group.
func (s *Server) DeleteGroup(groupID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.mustGroup("DeleteGroup", groupID)
	delete(s.gByID, groupID)
	s.groups = slices.DeleteFunc(s.groups, func(x *group) bool { return x == g })
	s.record(change{group: groupID, removed: true})
}

// ExpireDeltaTokens makes Graph forget the state of every delta token
// issued so far: using one gets 410 Gone with syncStateNotFound.
func (s *Server) ExpireDeltaTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.epoch++
}

func (s *Server) serveDelta(w http.ResponseWriter, r *http.Request) {
	v := s.core.Admit(r.URL.Path, 1)
	if !s.authorized(w, r) {
		return
	}
	if s.core.Fail(w, r, v) {
		return
	}
	q := r.URL.Query()
	tok := q.Get("$deltatoken")
	s.mu.Lock()
	defer s.mu.Unlock()
	from := len(s.changes)
	switch {
	case tok == "latest":
	case tok == "":
		graphError(w, http.StatusBadRequest, "BadRequest", "The fake serves delta rounds from a $deltatoken only.")
		return
	default:
		epoch, pos, _ := strings.Cut(strings.TrimPrefix(tok, "d"), ".")
		e, err1 := strconv.Atoi(epoch)
		n, err2 := strconv.Atoi(pos)
		if err1 != nil || err2 != nil || n > len(s.changes) {
			graphError(w, http.StatusBadRequest, "BadRequest", "Invalid $deltatoken.")
			return
		}
		if e != s.epoch {
			graphError(w, http.StatusGone, "syncStateNotFound", "The sync state for this delta token was not found; resync.")
			return
		}
		from = n
	}
	var value []map[string]any
	if r.URL.Path == RouteUsersDelta {
		value = s.usersDelta(s.changes[from:])
	} else {
		value = s.groupsDelta(s.changes[from:])
	}
	q.Set("$deltatoken", "d"+strconv.Itoa(s.epoch)+"."+strconv.Itoa(len(s.changes)))
	body := map[string]any{
		"@odata.context":   "https://graph.microsoft.com/v1.0/$metadata#" + strings.TrimPrefix(r.URL.Path, "/v1.0/"),
		"value":            value,
		"@odata.deltaLink": "http://" + r.Host + r.URL.Path + "?" + odataQuery(q),
	}
	w.Header().Set("Content-Type", "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8")
	_ = json.NewEncoder(w).Encode(body)
}

// usersDelta is each user the changes touch, once, as it is now or as
// removed.
func (s *Server) usersDelta(changes []change) []map[string]any {
	out := []map[string]any{}
	seen := map[string]bool{}
	for _, c := range changes {
		if c.user == "" || seen[c.user] {
			continue
		}
		seen[c.user] = true
		u, ok := s.byID[c.user]
		if !ok {
			out = append(out, map[string]any{"id": c.user, "@removed": map[string]string{"reason": "deleted"}})
			continue
		}
		out = append(out, map[string]any{
			"id": u.ID, "userPrincipalName": u.UserPrincipalName, "mail": orNull(u.Mail),
			"givenName": orNull(u.GivenName), "surname": orNull(u.Surname), "accountEnabled": !u.Disabled,
		})
	}
	return out
}

// groupsDelta is each group the changes touch, once: as removed, or with
// its name and the net change of each member touched in members@delta.
func (s *Server) groupsDelta(changes []change) []map[string]any {
	type link struct{ group, member string }
	var order []string
	touched := map[string]bool{}
	last := map[link]change{}
	var links []link
	for _, c := range changes {
		if c.group == "" {
			continue
		}
		if !touched[c.group] {
			touched[c.group] = true
			order = append(order, c.group)
		}
		if c.member != "" {
			l := link{c.group, c.member}
			if _, ok := last[l]; !ok {
				links = append(links, l)
			}
			last[l] = c
		}
	}
	out := []map[string]any{}
	for _, id := range order {
		g, ok := s.gByID[id]
		if !ok {
			out = append(out, map[string]any{"id": id, "@removed": map[string]string{"reason": "deleted"}})
			continue
		}
		members := []map[string]any{}
		for _, l := range links {
			if l.group != id {
				continue
			}
			c := last[l]
			m := map[string]any{"@odata.type": c.memberType, "id": c.member}
			if c.removed {
				m["@removed"] = map[string]string{"reason": "deleted"}
			}
			members = append(members, m)
		}
		out = append(out, map[string]any{"id": g.ID, "displayName": g.DisplayName, "members@delta": members})
	}
	return out
}
