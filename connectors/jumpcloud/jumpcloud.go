// Package jumpcloud is the JumpCloud connector: it lists system users
// (API v1), user groups and their members (API v2) over plain net/http.
//
// Settings: {"baseUrl": "https://console.jumpcloud.com", "orgId": "…"}, both
// optional (orgId is for multi-tenant administrators); credentials:
// {"apiKey": "…"}.
//
// JumpCloud pages by offset (skip), so a user deleted while a listing runs
// shifts later users back a page, where the listing would miss them. The user
// listing therefore fails when JumpCloud's total count drops during it: a
// missed user would look deleted.
package jumpcloud

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"

	"github.com/scimsync/scimsync/connectors"
	"github.com/scimsync/scimsync/connectors/internal/config"
	"github.com/scimsync/scimsync/connectors/internal/httpretry"
)

// Type is the connector type name.
const Type = "jumpcloud"

// DefaultBaseURL is JumpCloud's public API.
const DefaultBaseURL = "https://console.jumpcloud.com"

// pageSize is the largest page JumpCloud serves.
const pageSize = 100

func init() { connectors.Register(Type, open) }

// Config is a JumpCloud connector's configuration.
type Config struct {
	BaseURL string            // settings "baseUrl"; DefaultBaseURL when empty
	OrgID   string            // settings "orgId"; sent as x-org-id when set
	APIKey  connectors.Secret // credentials "apiKey"
}

func open(ctx context.Context, settings, credentials json.RawMessage, opts connectors.Options) (connectors.Directory, error) {
	var s struct {
		BaseURL string `json:"baseUrl"`
		OrgID   string `json:"orgId"`
	}
	if err := config.Decode(Type, "settings", settings, &s); err != nil {
		return nil, err
	}
	var c struct {
		APIKey connectors.Secret `json:"apiKey"`
	}
	if err := config.Decode(Type, "credentials", credentials, &c); err != nil {
		return nil, err
	}
	return Config{BaseURL: s.BaseURL, OrgID: s.OrgID, APIKey: c.APIKey}.Open(ctx, opts)
}

// Directory lists a JumpCloud organization. It implements
// connectors.Directory.
type Directory struct {
	base  *url.URL
	orgID string
	key   connectors.Secret
	http  *http.Client
	log   *slog.Logger
}

// Open validates c and returns its Directory. It does no I/O.
func (c Config) Open(_ context.Context, opts connectors.Options) (*Directory, error) {
	base, err := config.BaseURL(Type, "settings.baseUrl", c.BaseURL, DefaultBaseURL)
	if err != nil {
		return nil, err
	}
	if c.OrgID != "" {
		if err := config.ValidID(c.OrgID); err != nil {
			return nil, &connectors.ConfigError{Type: Type, Field: "settings.orgId", Problem: "must be a JumpCloud organization id"}
		}
	}
	if err := config.Required(Type, "credentials.apiKey", c.APIKey.Reveal()); err != nil {
		return nil, err
	}
	log := config.Logger(Type, opts)
	return &Directory{
		base:  base,
		orgID: c.OrgID,
		key:   c.APIKey,
		http:  &http.Client{Transport: httpretry.New(httpretry.Config{Base: opts.Transport, Policy: opts.Retry, Logger: log})},
		log:   log,
	}, nil
}

type systemUser struct {
	ID            string `json:"_id"`
	Username      string `json:"username"`
	Email         string `json:"email"`
	Firstname     string `json:"firstname"`
	Lastname      string `json:"lastname"`
	Activated     bool   `json:"activated"`
	Suspended     bool   `json:"suspended"`
	AccountLocked bool   `json:"account_locked"`
}

// Status names a system user's state for User.RawStatus: "suspended",
// "pending" (invited, never activated), "locked" or "active". A user is
// active when activated and not suspended; a locked account stays active, as
// locking is temporary and does not end the membership.
func Status(activated, suspended, locked bool) (raw string, active bool) {
	switch {
	case suspended:
		return "suspended", false
	case !activated:
		return "pending", false
	case locked:
		return "locked", true
	}
	return "active", true
}

// ListUsers lists the organization's system users, 100 a page.
func (d *Directory) ListUsers(ctx context.Context, fn func([]connectors.User) error) error {
	const op = "list users"
	firstTotal := -1
	return d.walk(ctx, op, func(page, skip int) (int, error) {
		var body struct {
			TotalCount int          `json:"totalCount"`
			Results    []systemUser `json:"results"`
		}
		if err := d.get(ctx, "/api/systemusers", skip, &body); err != nil {
			return 0, fmt.Errorf("jumpcloud: %s (page %d): %w", op, page, err)
		}
		if firstTotal < 0 {
			firstTotal = body.TotalCount
		} else if body.TotalCount < firstTotal {
			return 0, fmt.Errorf("jumpcloud: %s (page %d): user count fell from %d to %d during the listing, which may have skipped users: %w",
				op, page, firstTotal, body.TotalCount, connectors.ErrUnavailable)
		}
		users := make([]connectors.User, 0, len(body.Results))
		for _, u := range body.Results {
			raw, active := Status(u.Activated, u.Suspended, u.AccountLocked)
			users = append(users, connectors.User{
				ExternalID: u.ID, UserName: u.Username, Email: u.Email,
				GivenName: u.Firstname, FamilyName: u.Lastname,
				Active: active, RawStatus: raw,
			})
		}
		return len(body.Results), emit(ctx, d.log, op, page, users, fn)
	})
}

// ListGroups lists the organization's user groups.
func (d *Directory) ListGroups(ctx context.Context, fn func([]connectors.Group) error) error {
	const op = "list groups"
	return d.walk(ctx, op, func(page, skip int) (int, error) {
		var body []struct {
			ID   string `json:"id"`
			Name string `json:"name"`
		}
		if err := d.get(ctx, "/api/v2/usergroups", skip, &body); err != nil {
			return 0, fmt.Errorf("jumpcloud: %s (page %d): %w", op, page, err)
		}
		groups := make([]connectors.Group, 0, len(body))
		for _, g := range body {
			groups = append(groups, connectors.Group{ExternalID: g.ID, Name: g.Name})
		}
		return len(body), emit(ctx, d.log, op, page, groups, fn)
	})
}

// ListGroupMembers lists the ids of the user group's members.
func (d *Directory) ListGroupMembers(ctx context.Context, groupID string, fn func([]string) error) error {
	op := "list members of group " + groupID
	if err := config.ValidID(groupID); err != nil {
		return fmt.Errorf("jumpcloud: %s: %w", op, err)
	}
	return d.walk(ctx, op, func(page, skip int) (int, error) {
		var body []struct {
			To struct {
				ID   string `json:"id"`
				Type string `json:"type"`
			} `json:"to"`
		}
		if err := d.get(ctx, "/api/v2/usergroups/"+groupID+"/members", skip, &body); err != nil {
			return 0, fmt.Errorf("jumpcloud: %s (page %d): %w", op, page, err)
		}
		ids := make([]string, 0, len(body))
		for _, m := range body {
			if m.To.Type == "user" {
				ids = append(ids, m.To.ID)
			}
		}
		return len(body), emit(ctx, d.log, op, page, ids, fn)
	})
}

// TestConnection reads one system user.
func (d *Directory) TestConnection(ctx context.Context) error {
	var body struct {
		TotalCount int `json:"totalCount"`
	}
	if err := d.getLimit(ctx, "/api/systemusers", 0, 1, &body); err != nil {
		return fmt.Errorf("jumpcloud: test connection: %w", err)
	}
	return nil
}

// walk fetches pages at skip 0, 100, 200, … until one comes back short.
// page returns how many items the page held.
func (d *Directory) walk(ctx context.Context, op string, page func(n, skip int) (int, error)) error {
	for n, skip := 1, 0; ; n, skip = n+1, skip+pageSize {
		got, err := page(n, skip)
		if err != nil {
			return err
		}
		if got < pageSize {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("jumpcloud: %s: %w", op, err)
		}
	}
}

// emit hands a non-empty page to fn.
func emit[T any](ctx context.Context, log *slog.Logger, op string, page int, items []T, fn func([]T) error) error {
	log.DebugContext(ctx, "listed page", "op", op, "page", page, "items", len(items))
	if len(items) == 0 {
		return nil
	}
	if err := fn(items); err != nil {
		return fmt.Errorf("jumpcloud: %s: %w", op, err)
	}
	return nil
}

func (d *Directory) get(ctx context.Context, path string, skip int, v any) error {
	return d.getLimit(ctx, path, skip, pageSize, v)
}

// getLimit GETs one page of path and decodes it into v.
func (d *Directory) getLimit(ctx context.Context, path string, skip, limit int, v any) error {
	u := d.base.JoinPath(path)
	u.RawQuery = url.Values{"limit": {strconv.Itoa(limit)}, "skip": {strconv.Itoa(skip)}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return err
	}
	req.Header.Set("x-api-key", d.key.Reveal())
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Content-Type", "application/json")
	if d.orgID != "" {
		req.Header.Set("x-org-id", d.orgID)
	}
	resp, err := d.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return apiError(resp)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return fmt.Errorf("decode %s: %w", path, err)
	}
	return nil
}

// apiError reads JumpCloud's error body: {"message": "...", "error": "..."}.
func apiError(resp *http.Response) error {
	var body struct {
		Message string `json:"message"`
		Error   string `json:"error"`
	}
	_ = json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&body)
	msg := body.Message
	if msg == "" {
		msg = body.Error
	}
	return &connectors.APIError{Status: resp.StatusCode, Message: msg}
}
