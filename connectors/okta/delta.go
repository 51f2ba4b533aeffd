package okta

import (
	"context"
	"fmt"
	"net/http"
	"time"

	oktasdk "github.com/okta/okta-sdk-golang/v2/okta"
	"github.com/okta/okta-sdk-golang/v2/okta/query"

	"github.com/scimsync/scimsync/connectors"
)

// Okta has no delta API; a delta is read from three listings since the
// cursor, a time on Okta's clock (its Date header):
//
//   - users with filter=lastUpdated gt "…", which lists every status,
//     DEPROVISIONED included, so deactivations come with the rest;
//   - groups with the same filter, for new and renamed groups;
//   - the System Log for membership changes and deletions, which no
//     listing shows.
//
// Each reads from overlap before the cursor: the System Log is eventually
// consistent, and a change that lands just before the cursor's time must
// not fall between two deltas. Changes read twice are applied twice, which
// is harmless.

// overlap is how far before its cursor a delta reads.
const overlap = 5 * time.Minute

// logFilter names the System Log events a delta reads.
const logFilter = `eventType eq "` + eventMemberAdd + `" or eventType eq "` + eventMemberRemove +
	`" or eventType eq "` + eventUserDelete + `" or eventType eq "` + eventGroupDelete + `"`

// System Log event types.
const (
	eventMemberAdd    = "group.user_membership.add"
	eventMemberRemove = "group.user_membership.remove"
	eventUserDelete   = "user.lifecycle.delete.initiated"
	eventGroupDelete  = "group.lifecycle.delete"
)

// timeFormat is how Okta writes times in filters and the System Log.
const timeFormat = "2006-01-02T15:04:05.000Z"

// logRetention is how long the System Log keeps events: a cursor older
// than that may have missed some.
const logRetention = 90 * 24 * time.Hour

// logPageSize is the System Log's largest page.
const logPageSize = 1000

var _ connectors.DeltaDirectory = (*Directory)(nil)

// Cursor returns Okta's time now, read from the Date of a one-user listing.
func (d *Directory) Cursor(ctx context.Context) (string, error) {
	var resp *oktasdk.Response
	err := guard(func() (err error) {
		_, resp, err = d.client.User.ListUsers(ctx, &query.Params{Limit: 1})
		return err
	})
	if err != nil {
		return "", fmt.Errorf("okta: read the time: %w", apiError(resp, err))
	}
	t, err := dateOf(resp)
	if err != nil {
		return "", fmt.Errorf("okta: read the time: %w", err)
	}
	return t.Format(timeFormat), nil
}

// Changes reads what changed since cursor (see above). The next cursor is
// the Date of its first answer, so whatever changes while it reads comes
// again next time.
func (d *Directory) Changes(ctx context.Context, cursor string) (connectors.Delta, string, error) {
	at, err := time.Parse(time.RFC3339Nano, cursor)
	if err != nil {
		return connectors.Delta{}, "", fmt.Errorf("okta: delta cursor %q: %w", cursor, connectors.ErrCursorExpired)
	}
	since := at.Add(-overlap).UTC().Format(timeFormat)
	var delta connectors.Delta
	var now time.Time
	err = list(ctx, d, "list changed users",
		func() ([]*oktasdk.User, *oktasdk.Response, error) {
			users, resp, err := d.client.User.ListUsers(ctx, &query.Params{Limit: pageSize, Filter: `lastUpdated gt "` + since + `"`})
			if err == nil {
				now, err = dateOf(resp)
			}
			return users, resp, err
		},
		func(page []*oktasdk.User) error {
			delta.Pages++
			for _, u := range page {
				delta.Users = append(delta.Users, toUser(u))
			}
			return nil
		})
	if err != nil {
		return connectors.Delta{}, "", err
	}
	if now.Sub(at) > logRetention {
		return connectors.Delta{}, "", fmt.Errorf("okta: delta cursor %s is older than the System Log keeps events: %w", cursor, connectors.ErrCursorExpired)
	}
	err = list(ctx, d, "list changed groups",
		func() ([]*oktasdk.Group, *oktasdk.Response, error) {
			return d.client.Group.ListGroups(ctx, &query.Params{Limit: pageSize, Filter: `lastUpdated gt "` + since + `"`})
		},
		func(page []*oktasdk.Group) error {
			delta.Pages++
			for _, g := range page {
				name := ""
				if g.Profile != nil {
					name = g.Profile.Name
				}
				delta.Groups = append(delta.Groups, connectors.Group{ExternalID: g.Id, Name: name})
			}
			return nil
		})
	if err != nil {
		return connectors.Delta{}, "", err
	}
	// until bounds the read: a System Log request without it is a poll
	// whose pages never end. Date is in whole seconds and until excludes
	// itself, so it reaches a second further (the next delta reads from
	// overlap before now in any case).
	var events []*oktasdk.LogEvent
	err = list(ctx, d, "read the System Log",
		func() ([]*oktasdk.LogEvent, *oktasdk.Response, error) {
			return d.client.LogEvent.GetLogs(ctx, &query.Params{Since: since, Until: now.Add(time.Second).Format(timeFormat), Filter: logFilter,
				SortOrder: "ASCENDING", Limit: logPageSize})
		},
		func(page []*oktasdk.LogEvent) error {
			delta.Pages++
			events = append(events, page...)
			return nil
		})
	if err != nil {
		return connectors.Delta{}, "", err
	}
	net(&delta, events)
	return delta, now.Format(timeFormat), nil
}

// net folds the events, oldest first, into delta: the last word on each
// membership counts, and a deleted user or group takes its changes and
// memberships with it.
func net(delta *connectors.Delta, events []*oktasdk.LogEvent) {
	links := map[connectors.Membership]bool{} // true: joined
	var order []connectors.Membership
	deletedUsers, deletedGroups := map[string]bool{}, map[string]bool{}
	for _, e := range events {
		var user, group string
		for _, t := range e.Target {
			if t == nil {
				continue
			}
			switch t.Type {
			case "User":
				user = t.Id
			case "UserGroup":
				group = t.Id
			}
		}
		switch e.EventType {
		case eventMemberAdd, eventMemberRemove:
			if user == "" || group == "" {
				continue
			}
			m := connectors.Membership{GroupExternalID: group, UserExternalID: user}
			if _, seen := links[m]; !seen {
				order = append(order, m)
			}
			links[m] = e.EventType == eventMemberAdd
		case eventUserDelete:
			if user != "" {
				deletedUsers[user] = true
			}
		case eventGroupDelete:
			if group != "" {
				deletedGroups[group] = true
			}
		}
	}
	for _, m := range order {
		switch {
		case deletedUsers[m.UserExternalID] || deletedGroups[m.GroupExternalID]:
		case links[m]:
			delta.Joins = append(delta.Joins, m)
		default:
			delta.Leaves = append(delta.Leaves, m)
		}
	}
	users := delta.Users[:0]
	for _, u := range delta.Users {
		if !deletedUsers[u.ExternalID] {
			users = append(users, u)
		}
	}
	delta.Users = users
	groups := delta.Groups[:0]
	for _, g := range delta.Groups {
		if !deletedGroups[g.ExternalID] {
			groups = append(groups, g)
		}
	}
	delta.Groups = groups
	for id := range deletedUsers {
		delta.DeletedUsers = append(delta.DeletedUsers, id)
	}
	for id := range deletedGroups {
		delta.DeletedGroups = append(delta.DeletedGroups, id)
	}
}

// dateOf reads the time of Okta's answer.
func dateOf(resp *oktasdk.Response) (time.Time, error) {
	if resp == nil || resp.Response == nil {
		return time.Time{}, fmt.Errorf("no answer")
	}
	t, err := http.ParseTime(resp.Header.Get("Date"))
	if err != nil {
		return time.Time{}, fmt.Errorf("the answer's Date %q: %w", resp.Header.Get("Date"), err)
	}
	return t.UTC(), nil
}
