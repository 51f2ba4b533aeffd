package main

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// FeedEvent is one event of an organization's change feed.
type FeedEvent struct {
	ID       string          `json:"id"`
	OrgID    string          `json:"orgId"`
	Type     string          `json:"type"`
	Sequence int64           `json:"sequence"`
	Data     json.RawMessage `json:"data"`
}

// Events reads an organization's whole change feed, as an application
// catching up from the start would.
func (a *Admin) Events(ctx context.Context, org string) ([]FeedEvent, error) {
	const limit = 1000
	var all []FeedEvent
	var after int64
	for {
		var page struct {
			Events    []FeedEvent `json:"events"`
			NextAfter int64       `json:"nextAfter"`
		}
		path := "/orgs/" + org + "/events?limit=" + strconv.Itoa(limit) + "&after=" + strconv.FormatInt(after, 10)
		if err := a.call(ctx, "GET", path, nil, &page, http.StatusOK); err != nil {
			return nil, err
		}
		all = append(all, page.Events...)
		if len(page.Events) < limit {
			return all, nil
		}
		after = page.NextAfter
	}
}

// feedMember is a member as its events carry it.
type feedMember struct {
	ID        string `json:"id"`
	UserID    string `json:"userId"`
	Status    string `json:"status"`
	Email     string `json:"email"`
	FirstName string `json:"firstName"`
}

type feedGroup struct {
	name  string
	users map[string]bool // by user id
}

// CheckFeed rebuilds an organization's members and groups from its change
// feed alone and compares them with what the admin API lists: an
// application that follows the feed must end where scimsync is. The feed
// must also be whole: sequences 1, 2, 3… with none missing.
func CheckFeed(org string, events []FeedEvent, members []Member, groups []LocalGroup) []Divergence {
	var out []Divergence
	bad := func(subject, format string, args ...any) {
		out = append(out, Divergence{Check: "feed", Org: org, Subject: subject, Detail: fmt.Sprintf(format, args...)})
	}
	ms := map[string]feedMember{}
	gs := map[string]*feedGroup{}
	for i, e := range events {
		if want := int64(i + 1); e.Sequence != want {
			bad("sequence", "event %d of the feed has sequence %d, want %d", i+1, e.Sequence, want)
			return out
		}
		decode := func(v any) bool {
			if err := json.Unmarshal(e.Data, v); err != nil {
				bad(e.Type, "sequence %d: %v", e.Sequence, err)
				return false
			}
			return true
		}
		switch e.Type {
		case "member.removed":
			var m feedMember
			if decode(&m) {
				delete(ms, m.ID)
				for _, g := range gs {
					delete(g.users, m.UserID)
				}
			}
		case "member.provisioned", "member.activated", "member.updated", "member.deprovisioned", "member.reactivated":
			var m feedMember
			if decode(&m) {
				ms[m.ID] = m
			}
		case "group.created", "group.updated":
			var g struct {
				ID      string `json:"id"`
				Name    string `json:"name"`
				Members []struct {
					UserID string `json:"userId"`
				} `json:"members"`
			}
			if decode(&g) {
				fg := &feedGroup{name: g.Name, users: map[string]bool{}}
				for _, m := range g.Members {
					fg.users[m.UserID] = true
				}
				gs[g.ID] = fg
			}
		case "group.deleted":
			var g struct {
				ID string `json:"id"`
			}
			if decode(&g) {
				delete(gs, g.ID)
			}
		case "group.member_added", "group.member_removed":
			var c struct {
				Group struct {
					ID string `json:"id"`
				} `json:"group"`
				Member feedMember `json:"member"`
			}
			if !decode(&c) {
				continue
			}
			g, ok := gs[c.Group.ID]
			if !ok {
				bad(e.Type, "sequence %d: group %s not created in the feed", e.Sequence, c.Group.ID)
				continue
			}
			if e.Type == "group.member_added" {
				g.users[c.Member.UserID] = true
			} else {
				delete(g.users, c.Member.UserID)
			}
		}
	}

	listed := map[string]Member{}
	for _, m := range members {
		listed[m.ID] = m
		f, ok := ms[m.ID]
		switch {
		case !ok:
			bad(m.Email, "a member (%s) the feed never provisioned or removed since", m.Status)
		case f.Status != m.Status || f.Email != m.Email || f.FirstName != m.FirstName:
			bad(m.Email, "the feed says %s %q %q, the members list %s %q %q", f.Status, f.Email, f.FirstName, m.Status, m.Email, m.FirstName)
		}
	}
	emailOf := map[string]string{}
	for _, id := range slices.Sorted(maps.Keys(ms)) {
		emailOf[ms[id].UserID] = ms[id].Email
		if _, ok := listed[id]; !ok {
			bad(ms[id].Email, "a member (%s) in the feed but not in the members list", ms[id].Status)
		}
	}
	seen := map[string]bool{}
	for _, g := range groups {
		seen[g.ID] = true
		f, ok := gs[g.ID]
		if !ok {
			bad(g.Name, "a group the feed never created")
			continue
		}
		var want, got []string
		for _, m := range g.Members {
			want = append(want, m.Email)
		}
		for u := range f.users {
			got = append(got, emailOf[u])
		}
		slices.Sort(want)
		slices.Sort(got)
		if f.name != g.Name || !slices.Equal(want, got) {
			bad(g.Name, "the feed says %q [%s], the groups list %q [%s]", f.name, strings.Join(got, ","), g.Name, strings.Join(want, ","))
		}
	}
	for _, id := range slices.Sorted(maps.Keys(gs)) {
		if !seen[id] {
			bad(gs[id].name, "a group in the feed but not in the groups list")
		}
	}
	return out
}
