package entra

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/scimsync/scimsync/connectors"
)

// Deltas come from Graph's delta queries, users/delta and groups/delta
// (with members, whose changes come as members@delta). A cursor is the
// @odata.deltaLink of each; Graph refuses one it no longer holds state for
// (410 Gone, or the code syncStateNotFound or resyncRequired), which is
// connectors.ErrCursorExpired.
//
// A changed user comes whole: without "Prefer: return=minimal", Graph
// answers a delta round with every $select-ed property, the unchanged ones
// at their old values, and leaves out only properties never set. So an
// absent mail or name is an empty one, as in a full listing.

var _ connectors.DeltaDirectory = (*Directory)(nil)

const (
	usersDelta  = "/v1.0/users/delta?$select=id,userPrincipalName,mail,givenName,surname,accountEnabled"
	groupsDelta = "/v1.0/groups/delta?$select=id,displayName,members"
)

// cursor is a delta cursor: one deltaLink per query.
type cursor struct {
	Users  string `json:"users"`
	Groups string `json:"groups"`
}

// Cursor asks each delta query for a deltaLink of now
// ($deltatoken=latest), which lists nothing.
func (d *Directory) Cursor(ctx context.Context) (string, error) {
	var c cursor
	var err error
	if c.Users, _, err = d.deltaRound(ctx, "users", d.graph.String()+usersDelta+"&$deltatoken=latest", func(json.RawMessage) error { return nil }); err != nil {
		return "", err
	}
	if c.Groups, _, err = d.deltaRound(ctx, "groups", d.graph.String()+groupsDelta+"&$deltatoken=latest", func(json.RawMessage) error { return nil }); err != nil {
		return "", err
	}
	b, _ := json.Marshal(c)
	return string(b), nil
}

// Changes follows both deltaLinks of the cursor to their new deltaLinks.
func (d *Directory) Changes(ctx context.Context, raw string) (connectors.Delta, string, error) {
	var c cursor
	if err := json.Unmarshal([]byte(raw), &c); err != nil || c.Users == "" || c.Groups == "" {
		return connectors.Delta{}, "", fmt.Errorf("entra: delta cursor does not parse: %w", connectors.ErrCursorExpired)
	}
	for _, link := range []string{c.Users, c.Groups} {
		if err := d.checkNextLink(link); err != nil {
			return connectors.Delta{}, "", fmt.Errorf("entra: delta cursor: %w: %w", err, connectors.ErrCursorExpired)
		}
	}
	var delta connectors.Delta
	var next cursor
	var err error
	var pages int
	next.Users, pages, err = d.deltaRound(ctx, "users", c.Users, func(item json.RawMessage) error {
		var u struct {
			graphUser
			Removed *struct{} `json:"@removed"`
		}
		if err := json.Unmarshal(item, &u); err != nil {
			return fmt.Errorf("decode a changed user: %w", err)
		}
		if u.Removed != nil {
			delta.DeletedUsers = append(delta.DeletedUsers, u.ID)
			return nil
		}
		raw, active := Status(u.AccountEnabled)
		delta.Users = append(delta.Users, connectors.User{ExternalID: u.ID, UserName: u.UserPrincipalName, Email: u.Mail,
			GivenName: u.GivenName, FamilyName: u.Surname, Active: active, RawStatus: raw})
		return nil
	})
	if err != nil {
		return connectors.Delta{}, "", err
	}
	delta.Pages = pages
	next.Groups, pages, err = d.deltaRound(ctx, "groups", c.Groups, func(item json.RawMessage) error {
		var g struct {
			ID          string    `json:"id"`
			DisplayName *string   `json:"displayName"`
			Removed     *struct{} `json:"@removed"`
			Members     []struct {
				Type    string    `json:"@odata.type"`
				ID      string    `json:"id"`
				Removed *struct{} `json:"@removed"`
			} `json:"members@delta"`
		}
		if err := json.Unmarshal(item, &g); err != nil {
			return fmt.Errorf("decode a changed group: %w", err)
		}
		if g.Removed != nil {
			delta.DeletedGroups = append(delta.DeletedGroups, g.ID)
			return nil
		}
		// A group whose members alone changed may come without its name.
		if g.DisplayName != nil {
			delta.Groups = append(delta.Groups, connectors.Group{ExternalID: g.ID, Name: *g.DisplayName})
		}
		for _, m := range g.Members {
			if m.Type != "" && m.Type != "#microsoft.graph.user" {
				continue
			}
			link := connectors.Membership{GroupExternalID: g.ID, UserExternalID: m.ID}
			if m.Removed != nil {
				delta.Leaves = append(delta.Leaves, link)
			} else {
				delta.Joins = append(delta.Joins, link)
			}
		}
		return nil
	})
	if err != nil {
		return connectors.Delta{}, "", err
	}
	delta.Pages += pages
	b, _ := json.Marshal(next)
	return delta, string(b), nil
}

// deltaRound follows one delta query from link through its nextLinks,
// handing each item to fn, and returns the deltaLink that ends it and how
// many of its pages held items.
func (d *Directory) deltaRound(ctx context.Context, what, link string, fn func(json.RawMessage) error) (string, int, error) {
	op := "read changed " + what
	full := 0
	for page := 1; ; page++ {
		var body struct {
			Value     []json.RawMessage `json:"value"`
			NextLink  string            `json:"@odata.nextLink"`
			DeltaLink string            `json:"@odata.deltaLink"`
		}
		if err := d.get(ctx, link, &body); err != nil {
			if expired(err) {
				err = fmt.Errorf("%w: %w", connectors.ErrCursorExpired, err)
			}
			return "", 0, fmt.Errorf("entra: %s (page %d): %w", op, page, err)
		}
		if len(body.Value) > 0 {
			full++
		}
		for _, item := range body.Value {
			if err := fn(item); err != nil {
				return "", 0, fmt.Errorf("entra: %s: %w", op, err)
			}
		}
		switch {
		case body.DeltaLink != "":
			if err := d.checkNextLink(body.DeltaLink); err != nil {
				return "", 0, fmt.Errorf("entra: %s: %w", op, err)
			}
			return body.DeltaLink, full, nil
		case body.NextLink == "":
			return "", 0, fmt.Errorf("entra: %s (page %d): the answer has neither a nextLink nor a deltaLink", op, page)
		}
		if err := d.checkNextLink(body.NextLink); err != nil {
			return "", 0, fmt.Errorf("entra: %s (page %d): %w", op, page, err)
		}
		if err := ctx.Err(); err != nil {
			return "", 0, fmt.Errorf("entra: %s: %w", op, err)
		}
		link = body.NextLink
	}
}

// expired reports whether Graph refused a delta token.
func expired(err error) bool {
	var apiErr *connectors.APIError
	if !errors.As(err, &apiErr) {
		return false
	}
	return apiErr.Status == http.StatusGone || apiErr.Code == "syncStateNotFound" || apiErr.Code == "resyncRequired"
}
