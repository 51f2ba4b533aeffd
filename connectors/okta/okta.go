// Package okta is the Okta connector: it lists users, groups and group
// members through Okta's Management API with github.com/okta/okta-sdk-golang/v2,
// kept behind connectors.Directory so that a move to a newer SDK touches only
// this package.
//
// Settings: {"orgUrl": "https://acme.okta.com"}; credentials: {"apiToken": "…"}
// (an SSWS API token).
//
// A user deactivated in Okta (status DEPROVISIONED) is listed, inactive, as
// on every other path: Okta's user listing leaves such users out, so
// ListUsers reads them with a second listing, filter=status eq
// "DEPROVISIONED". Only a user Okta no longer returns at all, one deleted,
// is absent. See ListUsers for a user whose status changes between the two
// listings.
package okta

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	oktasdk "github.com/okta/okta-sdk-golang/v2/okta"
	"github.com/okta/okta-sdk-golang/v2/okta/query"

	"github.com/scimsync/scimsync/connectors"
	"github.com/scimsync/scimsync/connectors/internal/config"
	"github.com/scimsync/scimsync/connectors/internal/httpretry"
)

// Type is the connector type name.
const Type = "okta"

// pageSize is the largest page Okta serves for users and group members.
const pageSize = 200

func init() { connectors.Register(Type, open) }

// Config is an Okta connector's configuration.
type Config struct {
	OrgURL   string            // settings "orgUrl": https://<org>.okta.com
	APIToken connectors.Secret // credentials "apiToken"
}

func open(ctx context.Context, settings, credentials json.RawMessage, opts connectors.Options) (connectors.Directory, error) {
	var s struct {
		OrgURL string `json:"orgUrl"`
	}
	if err := config.Decode(Type, "settings", settings, &s); err != nil {
		return nil, err
	}
	var c struct {
		APIToken connectors.Secret `json:"apiToken"`
	}
	if err := config.Decode(Type, "credentials", credentials, &c); err != nil {
		return nil, err
	}
	return Config{OrgURL: s.OrgURL, APIToken: c.APIToken}.Open(ctx, opts)
}

// Directory lists an Okta org. It implements connectors.Directory.
type Directory struct {
	client *oktasdk.Client
	log    *slog.Logger
}

// Open validates c and returns its Directory. It does no I/O.
func (c Config) Open(ctx context.Context, opts connectors.Options) (*Directory, error) {
	u, err := config.BaseURL(Type, "settings.orgUrl", c.OrgURL, "")
	if err != nil {
		return nil, err
	}
	if h := strings.ToLower(u.Hostname()); strings.Contains(h, "-admin.okta") {
		return nil, &connectors.ConfigError{Type: Type, Field: "settings.orgUrl", Problem: "must be the org URL, not the admin console's (drop \"-admin\")"}
	}
	if err := config.Required(Type, "credentials.apiToken", c.APIToken.Reveal()); err != nil {
		return nil, err
	}
	log := config.Logger(Type, opts)
	policy := httpretry.WithDefaults(opts.Retry)
	httpClient := &http.Client{Transport: rateLimitErrors{httpretry.New(httpretry.Config{
		Base: opts.Transport, Policy: policy, Logger: log, PaceKey: paceKey,
	})}}

	// NewClient first loads ~/.okta/okta.yaml, a .okta.yaml beside the SDK's
	// source and OKTA_* environment variables, then applies these setters.
	// Every setting the SSWS listing path reads is set here, so none of those
	// sources can redirect requests, swap the token or turn the cache back on.
	_, client, err := oktasdk.NewClient(ctx,
		oktasdk.WithOrgUrl(u.String()),
		oktasdk.WithToken(c.APIToken.Reveal()),
		oktasdk.WithAuthorizationMode("SSWS"),
		// The default cache serves lists up to 300 s old; a reconciler needs
		// what Okta says now.
		oktasdk.WithCache(false),
		oktasdk.WithHttpClientPtr(httpClient),
		// 429s are waited out below the SDK, in httpretry: context-aware, on
		// an injectable clock and within the same budget as every connector.
		// An SDK retry on top would multiply that budget.
		oktasdk.WithRateLimitMaxRetries(0),
		oktasdk.WithRateLimitMaxBackOff(int64(policy.MaxRateLimitWait/time.Second)),
		oktasdk.WithRequestTimeout(0),                            // per-attempt timeouts are httpretry's
		oktasdk.WithTestingDisableHttpsCheck(u.Scheme == "http"), // loopback only, see config.BaseURL
		oktasdk.WithUserAgentExtra("scimsync"),
	)
	if err != nil {
		return nil, fmt.Errorf("okta: create client: %w", err)
	}
	return &Directory{client: client, log: log}, nil
}

// Active reports whether an Okta status lets the user sign in. Statuses Okta
// may add later count as inactive; RawStatus keeps them visible.
func Active(status string) bool {
	switch status {
	case "ACTIVE", "PROVISIONED", "RECOVERY", "LOCKED_OUT", "PASSWORD_EXPIRED":
		return true
	}
	return false // STAGED, SUSPENDED, DEPROVISIONED
}

// deprovisionedFilter lists the users Okta deactivated, which its default
// user listing leaves out.
const deprovisionedFilter = `status eq "DEPROVISIONED"`

// ListUsers lists the org's users, 200 a page: the default listing, then
// the deactivated users (filter=status eq "DEPROVISIONED"), who come
// inactive with RawStatus DEPROVISIONED.
//
// Nothing is kept between the two listings, so memory stays flat. A user
// Okta deactivates between the two listings' reads of it is handed over
// twice, active and then deactivated: the later sighting is the newer, and
// the pull keeps it. The other way round, a user re-activated after the
// first listing passed it and before the second reached it is in neither,
// and looks deleted for this one listing (the reconciler removes its
// member); the next listing finds it again, and it is provisioned anew. The
// default listing goes first for that reason: deactivations are the common
// change, and one during the listing is never mistaken for a deletion.
func (d *Directory) ListUsers(ctx context.Context, fn func([]connectors.User) error) error {
	page := func(users []*oktasdk.User) error {
		out := make([]connectors.User, 0, len(users))
		for _, u := range users {
			out = append(out, toUser(u))
		}
		return fn(out)
	}
	err := list(ctx, d, "list users",
		func() ([]*oktasdk.User, *oktasdk.Response, error) {
			return d.client.User.ListUsers(ctx, &query.Params{Limit: pageSize})
		}, page)
	if err != nil {
		return err
	}
	return list(ctx, d, "list deactivated users",
		func() ([]*oktasdk.User, *oktasdk.Response, error) {
			return d.client.User.ListUsers(ctx, &query.Params{Limit: pageSize, Filter: deprovisionedFilter})
		}, page)
}

// ListGroups lists the org's groups of every type.
func (d *Directory) ListGroups(ctx context.Context, fn func([]connectors.Group) error) error {
	return list(ctx, d, "list groups",
		func() ([]*oktasdk.Group, *oktasdk.Response, error) {
			return d.client.Group.ListGroups(ctx, &query.Params{Limit: pageSize})
		},
		func(page []*oktasdk.Group) error {
			groups := make([]connectors.Group, 0, len(page))
			for _, g := range page {
				name := ""
				if g.Profile != nil {
					name = g.Profile.Name
				}
				groups = append(groups, connectors.Group{ExternalID: g.Id, Name: name})
			}
			return fn(groups)
		})
}

// ListGroupMembers lists the ids of the group's members.
func (d *Directory) ListGroupMembers(ctx context.Context, groupID string, fn func([]string) error) error {
	op := fmt.Sprintf("list members of group %s", groupID)
	if err := config.ValidID(groupID); err != nil {
		return fmt.Errorf("okta: %s: %w", op, err)
	}
	return list(ctx, d, op,
		func() ([]*oktasdk.User, *oktasdk.Response, error) {
			return d.client.Group.ListGroupUsers(ctx, groupID, &query.Params{Limit: pageSize})
		},
		func(page []*oktasdk.User) error {
			ids := make([]string, 0, len(page))
			for _, u := range page {
				ids = append(ids, u.Id)
			}
			return fn(ids)
		})
}

// TestConnection reads one user, which needs a valid token with read access.
func (d *Directory) TestConnection(ctx context.Context) error {
	var resp *oktasdk.Response
	err := guard(func() (err error) {
		_, resp, err = d.client.User.ListUsers(ctx, &query.Params{Limit: 1})
		return err
	})
	if err != nil {
		return fmt.Errorf("okta: test connection: %w", apiError(resp, err))
	}
	return nil
}

// list walks an Okta listing by its Link headers, handing each non-empty page
// to fn. Each page decodes into a fresh slice: the SDK's documented
// resp.Next(ctx, &sameSlice) decodes into the previous page's structs, and a
// profile attribute missing from a later user would keep the earlier user's
// value.
func list[T any](ctx context.Context, d *Directory, op string, first func() ([]T, *oktasdk.Response, error), fn func([]T) error) error {
	var (
		items []T
		resp  *oktasdk.Response
	)
	err := guard(func() (err error) {
		items, resp, err = first()
		return err
	})
	for page := 1; ; page++ {
		if err != nil {
			return fmt.Errorf("okta: %s (page %d): %w", op, page, apiError(resp, err))
		}
		d.log.DebugContext(ctx, "listed page", "op", op, "page", page, "items", len(items))
		if len(items) > 0 {
			if err := fn(items); err != nil {
				return fmt.Errorf("okta: %s: %w", op, err)
			}
		}
		if !resp.HasNextPage() {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("okta: %s: %w", op, err)
		}
		err = guard(func() (err error) {
			var next []T
			resp, err = resp.Next(ctx, &next)
			items = next
			return err
		})
	}
}

// guard turns a panic inside the SDK into an error. The SDK dereferences
// what it parsed from Link headers without checking, and a malformed header
// from the network must not take the process down.
func guard(call func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("okta SDK panicked: %v", r)
		}
	}()
	return call()
}

// apiError turns the SDK's error answer into a *connectors.APIError.
func apiError(resp *oktasdk.Response, err error) error {
	var oe *oktasdk.Error
	if errors.As(err, &oe) && resp != nil && resp.Response != nil {
		return &connectors.APIError{Status: resp.StatusCode, Code: oe.ErrorCode, Message: oe.ErrorSummary}
	}
	return err
}

func toUser(u *oktasdk.User) connectors.User {
	var p oktasdk.UserProfile
	if u.Profile != nil {
		p = *u.Profile
	}
	str := func(k string) string {
		s, _ := p[k].(string)
		return s
	}
	return connectors.User{
		ExternalID: u.Id,
		UserName:   str("login"),
		Email:      str("email"),
		GivenName:  str("firstName"),
		FamilyName: str("lastName"),
		Active:     Active(u.Status),
		RawStatus:  u.Status,
	}
}

// paceKey names the Okta rate-limit bucket of a listing request. Okta counts
// each endpoint separately, so each is paced on its own budget.
func paceKey(r *http.Request) string {
	p := r.URL.Path
	switch {
	case p == "/api/v1/users":
		return "users"
	case p == "/api/v1/groups":
		return "groups"
	case strings.HasPrefix(p, "/api/v1/groups/") && strings.HasSuffix(p, "/users"):
		return "group-members"
	}
	return ""
}

// rateLimitErrors turns a 429 that httpretry gave up on into an error. The
// SDK would otherwise retry it on its own (with real sleeps) or, with
// retries off, drop the answer for a bare "too many requests".
type rateLimitErrors struct{ next http.RoundTripper }

func (t rateLimitErrors) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	if err != nil || resp.StatusCode != http.StatusTooManyRequests {
		return resp, err
	}
	defer resp.Body.Close()
	var e oktasdk.Error
	_ = json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&e)
	return nil, &connectors.APIError{Status: resp.StatusCode, Code: e.ErrorCode, Message: e.ErrorSummary}
}
