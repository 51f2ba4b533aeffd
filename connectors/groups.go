package connectors

import (
	"context"
	"fmt"
	"strings"
)

// FilterGroups limits d to the members of the named groups, for connectors
// configured with the "groups" setting. Names match the IdP's group names
// case-insensitively; a name matching several groups takes them all.
//
// A name that matches no group makes every listing fail with
// ErrGroupNotFound rather than list nobody, which would look like everyone
// left. ListGroups lists only the named groups; ListUsers lists the users
// that are members of at least one of them, deactivated ones included (as
// inactive), since IdPs keep a deactivated user in its groups.
//
// ListUsers holds the member ids of the named groups in memory (a few tens of
// bytes per member) to filter the user pages; everything else streams.
func FilterGroups(d Directory, names []string) Directory {
	return &groupFilter{d: d, names: names}
}

type groupFilter struct {
	d     Directory
	names []string
}

// resolve lists the IdP's groups afresh and returns those named.
func (f *groupFilter) resolve(ctx context.Context) ([]Group, error) {
	var matched []Group
	found := make([]bool, len(f.names))
	err := f.d.ListGroups(ctx, func(page []Group) error {
		for _, g := range page {
			for i, n := range f.names {
				if strings.EqualFold(g.Name, n) {
					matched = append(matched, g)
					found[i] = true
					break
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	var missing []string
	for i, ok := range found {
		if !ok {
			missing = append(missing, fmt.Sprintf("%q", f.names[i]))
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("groups setting names %s: %w", strings.Join(missing, ", "), ErrGroupNotFound)
	}
	return matched, nil
}

func (f *groupFilter) ListGroups(ctx context.Context, fn func([]Group) error) error {
	groups, err := f.resolve(ctx)
	if err != nil {
		return fmt.Errorf("list groups: %w", err)
	}
	if err := fn(groups); err != nil {
		return fmt.Errorf("list groups: %w", err)
	}
	return nil
}

func (f *groupFilter) ListUsers(ctx context.Context, fn func([]User) error) error {
	groups, err := f.resolve(ctx)
	if err != nil {
		return fmt.Errorf("list users: %w", err)
	}
	members := make(map[string]struct{})
	for _, g := range groups {
		err := f.d.ListGroupMembers(ctx, g.ExternalID, func(ids []string) error {
			for _, id := range ids {
				members[id] = struct{}{}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("list users: members of group %q: %w", g.Name, err)
		}
	}
	return f.d.ListUsers(ctx, func(page []User) error {
		kept := page[:0] // the page is ours to reuse
		for _, u := range page {
			if _, ok := members[u.ExternalID]; ok {
				kept = append(kept, u)
			}
		}
		if len(kept) == 0 {
			return nil
		}
		return fn(kept)
	})
}

func (f *groupFilter) ListGroupMembers(ctx context.Context, groupID string, fn func([]string) error) error {
	return f.d.ListGroupMembers(ctx, groupID, fn)
}

func (f *groupFilter) TestConnection(ctx context.Context) error {
	if err := f.d.TestConnection(ctx); err != nil {
		return err
	}
	if _, err := f.resolve(ctx); err != nil {
		return fmt.Errorf("test connection: %w", err)
	}
	return nil
}
