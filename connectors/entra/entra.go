// Package entra is the Microsoft Entra ID connector: it lists users, groups
// and group members through Microsoft Graph over plain net/http, with an
// app-only token from the OAuth client-credentials flow.
//
// Settings: {"tenantId": "…", "graphUrl": "https://graph.microsoft.com",
// "loginUrl": "https://login.microsoftonline.com"} (the URLs default to
// Microsoft's public cloud); credentials: {"clientId": "…", "clientSecret": "…"}.
// The app needs the User.Read.All and GroupMember.Read.All application
// permissions.
package entra

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/scimsync/scimsync/connectors"
	"github.com/scimsync/scimsync/connectors/internal/config"
	"github.com/scimsync/scimsync/connectors/internal/httpretry"
)

// Type is the connector type name.
const Type = "entra"

// Microsoft's public-cloud endpoints, the defaults.
const (
	DefaultGraphURL = "https://graph.microsoft.com"
	DefaultLoginURL = "https://login.microsoftonline.com"
)

// Graph serves at most 999 users, groups or members a page.
const pageSize = "999"

func init() { connectors.Register(Type, open) }

// Config is an Entra ID connector's configuration.
type Config struct {
	TenantID     string            // settings "tenantId": the directory's GUID or a verified domain
	GraphURL     string            // settings "graphUrl"; DefaultGraphURL when empty
	LoginURL     string            // settings "loginUrl"; DefaultLoginURL when empty
	ClientID     string            // credentials "clientId"
	ClientSecret connectors.Secret // credentials "clientSecret"
}

func open(ctx context.Context, settings, credentials json.RawMessage, opts connectors.Options) (connectors.Directory, error) {
	var s struct {
		TenantID string `json:"tenantId"`
		GraphURL string `json:"graphUrl"`
		LoginURL string `json:"loginUrl"`
	}
	if err := config.Decode(Type, "settings", settings, &s); err != nil {
		return nil, err
	}
	var c struct {
		ClientID     string            `json:"clientId"`
		ClientSecret connectors.Secret `json:"clientSecret"`
	}
	if err := config.Decode(Type, "credentials", credentials, &c); err != nil {
		return nil, err
	}
	return Config{TenantID: s.TenantID, GraphURL: s.GraphURL, LoginURL: s.LoginURL, ClientID: c.ClientID, ClientSecret: c.ClientSecret}.Open(ctx, opts)
}

// Directory lists an Entra ID tenant. It implements connectors.Directory.
type Directory struct {
	graph *url.URL
	http  *http.Client
	oauth clientcredentials.Config
	log   *slog.Logger

	mu  sync.Mutex
	tok *oauth2.Token
}

// Open validates c and returns its Directory. It does no I/O.
func (c Config) Open(_ context.Context, opts connectors.Options) (*Directory, error) {
	if err := config.Required(Type, "settings.tenantId", c.TenantID); err != nil {
		return nil, err
	}
	if !validTenant(c.TenantID) {
		return nil, &connectors.ConfigError{Type: Type, Field: "settings.tenantId", Problem: "must be a tenant GUID or domain name"}
	}
	graph, err := config.BaseURL(Type, "settings.graphUrl", c.GraphURL, DefaultGraphURL)
	if err != nil {
		return nil, err
	}
	login, err := config.BaseURL(Type, "settings.loginUrl", c.LoginURL, DefaultLoginURL)
	if err != nil {
		return nil, err
	}
	if err := config.Required(Type, "credentials.clientId", c.ClientID); err != nil {
		return nil, err
	}
	if err := config.Required(Type, "credentials.clientSecret", c.ClientSecret.Reveal()); err != nil {
		return nil, err
	}
	log := config.Logger(Type, opts)
	return &Directory{
		graph: graph,
		http:  &http.Client{Transport: httpretry.New(httpretry.Config{Base: opts.Transport, Policy: opts.Retry, Logger: log})},
		oauth: clientcredentials.Config{
			ClientID:     c.ClientID,
			ClientSecret: c.ClientSecret.Reveal(),
			TokenURL:     login.JoinPath(c.TenantID, "oauth2/v2.0/token").String(),
			Scopes:       []string{graph.String() + "/.default"},
			AuthStyle:    oauth2.AuthStyleInParams,
		},
		log: log,
	}, nil
}

func validTenant(t string) bool {
	for _, r := range t {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.') {
			return false
		}
	}
	return t != "" && !strings.Contains(t, "..")
}

type graphUser struct {
	ID                string `json:"id"`
	UserPrincipalName string `json:"userPrincipalName"`
	Mail              string `json:"mail"`
	GivenName         string `json:"givenName"`
	Surname           string `json:"surname"`
	AccountEnabled    *bool  `json:"accountEnabled"`
}

// Status maps accountEnabled to User.RawStatus and Active. Graph always
// returns it when selected; should it be missing, the user counts as
// disabled, the safe side for access.
func Status(accountEnabled *bool) (raw string, active bool) {
	switch {
	case accountEnabled == nil:
		return "unknown", false
	case *accountEnabled:
		return "enabled", true
	}
	return "disabled", false
}

// ListUsers lists the tenant's users, members and guests alike.
func (d *Directory) ListUsers(ctx context.Context, fn func([]connectors.User) error) error {
	return list(ctx, d, "list users", "/v1.0/users?$select=id,userPrincipalName,mail,givenName,surname,accountEnabled&$top="+pageSize,
		func(page []graphUser) []connectors.User {
			users := make([]connectors.User, 0, len(page))
			for _, u := range page {
				raw, active := Status(u.AccountEnabled)
				users = append(users, connectors.User{
					ExternalID: u.ID, UserName: u.UserPrincipalName, Email: u.Mail,
					GivenName: u.GivenName, FamilyName: u.Surname,
					Active: active, RawStatus: raw,
				})
			}
			return users
		}, fn)
}

// ListGroups lists the tenant's groups of every kind.
func (d *Directory) ListGroups(ctx context.Context, fn func([]connectors.Group) error) error {
	type graphGroup struct {
		ID          string `json:"id"`
		DisplayName string `json:"displayName"`
	}
	return list(ctx, d, "list groups", "/v1.0/groups?$select=id,displayName&$top="+pageSize,
		func(page []graphGroup) []connectors.Group {
			groups := make([]connectors.Group, 0, len(page))
			for _, g := range page {
				groups = append(groups, connectors.Group{ExternalID: g.ID, Name: g.DisplayName})
			}
			return groups
		}, fn)
}

// ListGroupMembers lists the ids of the group's direct members that are
// users; nested groups, devices and service principals are left out.
func (d *Directory) ListGroupMembers(ctx context.Context, groupID string, fn func([]string) error) error {
	op := "list members of group " + groupID
	if err := config.ValidID(groupID); err != nil {
		return fmt.Errorf("entra: %s: %w", op, err)
	}
	type member struct {
		Type string `json:"@odata.type"`
		ID   string `json:"id"`
	}
	return list(ctx, d, op, "/v1.0/groups/"+groupID+"/members?$select=id&$top="+pageSize,
		func(page []member) []string {
			ids := make([]string, 0, len(page))
			for _, m := range page {
				if m.Type == "#microsoft.graph.user" {
					ids = append(ids, m.ID)
				}
			}
			return ids
		}, fn)
}

// TestConnection gets a token and reads one user, which needs valid
// credentials and the User.Read.All permission.
func (d *Directory) TestConnection(ctx context.Context) error {
	var p struct {
		Value []json.RawMessage `json:"value"`
	}
	if err := d.get(ctx, d.graph.String()+"/v1.0/users?$select=id&$top=1", &p); err != nil {
		return fmt.Errorf("entra: test connection: %w", err)
	}
	return nil
}

// list follows a Graph collection from path through its @odata.nextLink
// pages, handing each non-empty converted page to fn.
func list[T, R any](ctx context.Context, d *Directory, op, path string, convert func([]T) []R, fn func([]R) error) error {
	next := d.graph.String() + path
	for page := 1; ; page++ {
		var body struct {
			Value    []T    `json:"value"`
			NextLink string `json:"@odata.nextLink"`
		}
		if err := d.get(ctx, next, &body); err != nil {
			return fmt.Errorf("entra: %s (page %d): %w", op, page, err)
		}
		items := convert(body.Value)
		d.log.DebugContext(ctx, "listed page", "op", op, "page", page, "items", len(items))
		if len(items) > 0 {
			if err := fn(items); err != nil {
				return fmt.Errorf("entra: %s: %w", op, err)
			}
		}
		if body.NextLink == "" {
			return nil
		}
		if err := d.checkNextLink(body.NextLink); err != nil {
			return fmt.Errorf("entra: %s (page %d): %w", op, page, err)
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("entra: %s: %w", op, err)
		}
		next = body.NextLink
	}
}

// checkNextLink refuses a nextLink off the Graph host: following it would
// send the bearer token there.
func (d *Directory) checkNextLink(link string) error {
	u, err := url.Parse(link)
	if err != nil || u.Scheme != d.graph.Scheme || u.Host != d.graph.Host || !strings.HasPrefix(u.Path, "/v1.0/") {
		return fmt.Errorf("refusing @odata.nextLink outside %s/v1.0: %q", d.graph, link)
	}
	return nil
}

// get GETs a Graph URL and decodes the answer into v.
func (d *Directory) get(ctx context.Context, rawURL string, v any) error {
	resp, err := d.send(ctx, rawURL)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return graphError(resp)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return fmt.Errorf("decode Graph answer: %w", err)
	}
	return nil
}

// send GETs rawURL with a bearer token. A 401 on a cached token (revoked,
// or expired early) fetches a new token once.
func (d *Directory) send(ctx context.Context, rawURL string) (*http.Response, error) {
	for attempt := 1; ; attempt++ {
		tok, err := d.token(ctx)
		if err != nil {
			return nil, err
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Accept", "application/json")
		resp, err := d.http.Do(req)
		if err != nil || resp.StatusCode != http.StatusUnauthorized || attempt > 1 {
			return resp, err
		}
		drain(resp)
		d.dropToken(tok)
	}
}

// token returns a valid access token, fetching one when there is none.
// Fetches are serialized so concurrent callers share one token.
func (d *Directory) token(ctx context.Context) (string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.tok.Valid() {
		return d.tok.AccessToken, nil
	}
	tok, err := d.oauth.Token(context.WithValue(ctx, oauth2.HTTPClient, d.http))
	if err != nil {
		return "", fmt.Errorf("get token: %w", tokenError(err))
	}
	d.tok = tok
	return tok.AccessToken, nil
}

func (d *Directory) dropToken(tok string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.tok != nil && d.tok.AccessToken == tok {
		d.tok = nil
	}
}

// tokenError classifies a failed token request. Entra refuses a wrong
// secret with 401 but an unknown tenant or client with 400; all of them mean
// the configured credentials do not work.
func tokenError(err error) error {
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.Response == nil {
		return err
	}
	apiErr := &connectors.APIError{Status: re.Response.StatusCode, Code: re.ErrorCode, Message: re.ErrorDescription}
	if s := apiErr.Status; s >= 400 && s < 500 && s != http.StatusTooManyRequests && !errors.Is(apiErr, connectors.ErrUnauthorized) {
		return fmt.Errorf("%w: %w", connectors.ErrUnauthorized, apiErr)
	}
	return apiErr
}

// graphError reads Graph's error body: {"error": {"code", "message"}}.
func graphError(resp *http.Response) error {
	var body struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	_ = json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&body)
	return &connectors.APIError{Status: resp.StatusCode, Code: body.Error.Code, Message: body.Error.Message}
}

func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
}
