// Package google is the Google Workspace connector: it lists users, groups
// and group members through the Admin SDK Directory API with Google's own
// client, google.golang.org/api/admin/directory/v1, authenticated as a
// service account with domain-wide delegation acting for an administrator.
//
// Settings: {"customerId": "C01abc23d"} or {"domain": "example.com"} (one is
// required), {"adminEmail": "admin@example.com"} (the administrator the
// service account impersonates), and "apiUrl" (default
// https://admin.googleapis.com). Credentials: {"serviceAccountKey": "…"},
// the service account's JSON key as Google issues it; its token_uri is where
// access tokens are asked for.
//
// A suspended or archived user is listed, inactive; a deleted user is not
// listed (users.list leaves deleted users out), and is removed. Nested
// groups are flattened: a group's members are its users and those of the
// groups within it.
//
// The Directory API has no delta listing of users, so every pull is a full
// one.
package google

import (
	"bytes"
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"golang.org/x/oauth2"
	oauthgoogle "golang.org/x/oauth2/google"
	admin "google.golang.org/api/admin/directory/v1"
	"google.golang.org/api/googleapi"
	"google.golang.org/api/option"

	"github.com/scimsync/scimsync/connectors"
	"github.com/scimsync/scimsync/connectors/internal/config"
	"github.com/scimsync/scimsync/connectors/internal/httpretry"
	"github.com/scimsync/scimsync/internal/weburl"
)

// Type is the connector type name.
const Type = "google"

// DefaultAPIURL is the Admin SDK's endpoint, the default of "apiUrl".
const DefaultAPIURL = "https://admin.googleapis.com"

// Page sizes: the largest the Directory API serves.
const (
	usersPageSize  = 500
	groupsPageSize = 200
)

// Scopes the service account's client id must be granted in the Admin
// console's domain-wide delegation.
var Scopes = []string{
	admin.AdminDirectoryUserReadonlyScope,
	admin.AdminDirectoryGroupReadonlyScope,
	admin.AdminDirectoryGroupMemberReadonlyScope,
}

// Raw statuses, as User.RawStatus reports them.
const (
	StatusActive    = "active"
	StatusSuspended = "suspended"
	StatusArchived  = "archived"
)

func init() { connectors.Register(Type, open) }

// Config is a Google Workspace connector's configuration.
type Config struct {
	CustomerID        string            // settings "customerId"
	Domain            string            // settings "domain"
	AdminEmail        string            // settings "adminEmail"
	APIURL            string            // settings "apiUrl"; DefaultAPIURL when empty
	ServiceAccountKey connectors.Secret // credentials "serviceAccountKey": the JSON key
}

func open(ctx context.Context, settings, credentials json.RawMessage, opts connectors.Options) (connectors.Directory, error) {
	var s struct {
		CustomerID string `json:"customerId"`
		Domain     string `json:"domain"`
		AdminEmail string `json:"adminEmail"`
		APIURL     string `json:"apiUrl"`
	}
	if err := config.Decode(Type, "settings", settings, &s); err != nil {
		return nil, err
	}
	var c struct {
		ServiceAccountKey connectors.Secret `json:"serviceAccountKey"`
	}
	if err := config.Decode(Type, "credentials", credentials, &c); err != nil {
		return nil, err
	}
	return Config{CustomerID: s.CustomerID, Domain: s.Domain, AdminEmail: s.AdminEmail, APIURL: s.APIURL, ServiceAccountKey: c.ServiceAccountKey}.Open(ctx, opts)
}

// Directory lists a Google Workspace account. It implements
// connectors.Directory.
type Directory struct {
	svc        *admin.Service
	customerID string
	domain     string
	log        *slog.Logger
}

// Open validates c and returns its Directory. It does no I/O.
func (c Config) Open(ctx context.Context, opts connectors.Options) (*Directory, error) {
	bad := func(field, problem string) error {
		return &connectors.ConfigError{Type: Type, Field: field, Problem: problem}
	}
	customer, domain := strings.TrimSpace(c.CustomerID), strings.TrimSpace(c.Domain)
	switch {
	case customer == "" && domain == "":
		return nil, bad("settings.customerId", "is required unless settings.domain is set")
	case customer != "" && domain != "":
		return nil, bad("settings.domain", "must not be set together with settings.customerId")
	case customer != "" && config.ValidID(customer) != nil:
		return nil, bad("settings.customerId", "must be a customer id such as C01abc23d or my_customer")
	case domain != "" && !validDomain(domain):
		return nil, bad("settings.domain", "must be a domain name such as example.com")
	}
	if err := config.Required(Type, "settings.adminEmail", c.AdminEmail); err != nil {
		return nil, err
	}
	adminEmail := strings.TrimSpace(c.AdminEmail)
	if local, host, ok := strings.Cut(adminEmail, "@"); !ok || local == "" || !validDomain(host) {
		return nil, bad("settings.adminEmail", "must be an administrator's e-mail address")
	}
	api, err := config.BaseURL(Type, "settings.apiUrl", c.APIURL, DefaultAPIURL)
	if err != nil {
		return nil, err
	}
	if err := config.Required(Type, "credentials.serviceAccountKey", c.ServiceAccountKey.Reveal()); err != nil {
		return nil, err
	}
	key := []byte(c.ServiceAccountKey.Reveal())
	if err := checkKey(key); err != nil {
		return nil, err
	}
	jwtConf, err := oauthgoogle.JWTConfigFromJSON(key, Scopes...)
	if err != nil {
		// The parser's message may quote the key; say what is wrong instead.
		return nil, bad("credentials.serviceAccountKey", "must be a service account's JSON key")
	}
	jwtConf.Subject = adminEmail
	if jwtConf.TokenURL == "" {
		jwtConf.TokenURL = oauthgoogle.JWTTokenURL
	}

	log := config.Logger(Type, opts)
	base := opts.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	httpClient := &http.Client{Transport: httpretry.New(httpretry.Config{
		Base: rateLimit403{base}, Policy: opts.Retry, Logger: log,
	})}
	// Token requests go through the same retries; the token source outlives
	// the ctx of Open, and each request is bounded by the attempt timeout.
	tokCtx := context.WithValue(context.WithoutCancel(ctx), oauth2.HTTPClient, httpClient)
	authed := &http.Client{Transport: &oauth2.Transport{
		Source: tokenErrors{oauth2.ReuseTokenSource(nil, jwtConf.TokenSource(tokCtx))},
		Base:   httpClient.Transport,
	}}
	svc, err := admin.NewService(ctx,
		option.WithHTTPClient(authed),
		option.WithEndpoint(api.String()+"/"),
		option.WithUserAgent("scimsync"),
		// The client would otherwise log requests when GOOGLE_SDK_GO_LOGGING_LEVEL
		// is set, outside the connector's logger and its redaction.
		option.WithLogger(slog.New(slog.DiscardHandler)),
	)
	if err != nil {
		return nil, fmt.Errorf("google: create client: %w", err)
	}
	return &Directory{svc: svc, customerID: customer, domain: domain, log: log}, nil
}

// checkKey checks the parts of a JSON key the connector relies on, with
// errors that name what is wrong and never quote the key.
func checkKey(key []byte) error {
	bad := func(problem string) error {
		return &connectors.ConfigError{Type: Type, Field: "credentials.serviceAccountKey", Problem: problem}
	}
	var k struct {
		Type        string `json:"type"`
		ClientEmail string `json:"client_email"`
		PrivateKey  string `json:"private_key"`
		TokenURI    string `json:"token_uri"`
	}
	if err := json.Unmarshal(key, &k); err != nil {
		return bad("must be a service account's JSON key (the file the Google Cloud console downloads), not valid JSON")
	}
	if k.Type != "service_account" {
		return bad(`must be a service account's JSON key ("type": "service_account")`)
	}
	if k.ClientEmail == "" {
		return bad("has no client_email")
	}
	block, _ := pem.Decode([]byte(k.PrivateKey))
	if block == nil {
		return bad("has no PEM private_key")
	}
	parsed, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		parsed, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	}
	if _, ok := parsed.(*rsa.PrivateKey); err != nil || !ok {
		return bad("has a private_key that is not an RSA private key")
	}
	if k.TokenURI != "" {
		u, err := url.Parse(k.TokenURI)
		if err != nil || u.Host == "" || u.User != nil {
			return bad("has a token_uri that is not an absolute URL")
		}
		if err := weburl.CheckScheme(u); err != nil {
			return bad("has a token_uri that " + err.Error())
		}
	}
	return nil
}

func validDomain(d string) bool {
	for _, r := range d {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.') {
			return false
		}
	}
	return d != "" && strings.Contains(d, ".") && !strings.Contains(d, "..") && !strings.HasPrefix(d, ".") && !strings.HasSuffix(d, ".")
}

// Status maps a Google user to User.RawStatus and Active: a suspended or
// archived user cannot sign in, and is deprovisioned but kept.
func Status(u *admin.User) (raw string, active bool) {
	switch {
	case u.Archived:
		return StatusArchived, false
	case u.Suspended:
		return StatusSuspended, false
	}
	return StatusActive, true
}

func toUser(u *admin.User) connectors.User {
	raw, active := Status(u)
	out := connectors.User{
		ExternalID: u.Id,
		UserName:   u.PrimaryEmail,
		Email:      u.PrimaryEmail,
		Active:     active,
		RawStatus:  raw,
	}
	if u.Name != nil {
		out.GivenName, out.FamilyName = u.Name.GivenName, u.Name.FamilyName
	}
	return out
}

// scope sets the customer or the domain of a listing call.
func scope[C interface {
	Customer(string) C
	Domain(string) C
}](d *Directory, call C) C {
	if d.customerID != "" {
		return call.Customer(d.customerID)
	}
	return call.Domain(d.domain)
}

// ListUsers lists every user of the account, 500 a page. users.list leaves
// deleted users out, which is what makes them removed.
func (d *Directory) ListUsers(ctx context.Context, fn func([]connectors.User) error) error {
	const op = "list users"
	token := ""
	for page := 1; ; page++ {
		call := scope(d, d.svc.Users.List()).MaxResults(usersPageSize).Projection("basic").
			Fields("nextPageToken", "users(id,primaryEmail,name(givenName,familyName),suspended,archived)")
		if token != "" {
			call = call.PageToken(token)
		}
		resp, err := call.Context(ctx).Do()
		if err != nil {
			return fmt.Errorf("google: %s (page %d): %w", op, page, apiError(ctx, err))
		}
		d.log.DebugContext(ctx, "listed page", "op", op, "page", page, "items", len(resp.Users))
		if len(resp.Users) > 0 {
			users := make([]connectors.User, 0, len(resp.Users))
			for _, u := range resp.Users {
				users = append(users, toUser(u))
			}
			if err := fn(users); err != nil {
				return fmt.Errorf("google: %s: %w", op, err)
			}
		}
		if resp.NextPageToken == "" {
			return nil
		}
		token = resp.NextPageToken
	}
}

// ListGroups lists the account's groups, 200 a page, named by their name.
func (d *Directory) ListGroups(ctx context.Context, fn func([]connectors.Group) error) error {
	const op = "list groups"
	token := ""
	for page := 1; ; page++ {
		call := scope(d, d.svc.Groups.List()).MaxResults(groupsPageSize).Fields("nextPageToken", "groups(id,name,email)")
		if token != "" {
			call = call.PageToken(token)
		}
		resp, err := call.Context(ctx).Do()
		if err != nil {
			return fmt.Errorf("google: %s (page %d): %w", op, page, apiError(ctx, err))
		}
		d.log.DebugContext(ctx, "listed page", "op", op, "page", page, "items", len(resp.Groups))
		if len(resp.Groups) > 0 {
			groups := make([]connectors.Group, 0, len(resp.Groups))
			for _, g := range resp.Groups {
				name := g.Name
				if name == "" {
					name = g.Email
				}
				groups = append(groups, connectors.Group{ExternalID: g.Id, Name: name})
			}
			if err := fn(groups); err != nil {
				return fmt.Errorf("google: %s: %w", op, err)
			}
		}
		if resp.NextPageToken == "" {
			return nil
		}
		token = resp.NextPageToken
	}
}

// ListGroupMembers lists the ids of the group's users, suspended ones
// included, and of the users of the groups nested in it, each once. A group
// reached twice (a cycle, or two paths to it) is read once.
func (d *Directory) ListGroupMembers(ctx context.Context, groupID string, fn func([]string) error) error {
	op := fmt.Sprintf("list members of group %s", groupID)
	if err := config.ValidID(groupID); err != nil {
		return fmt.Errorf("google: %s: %w", op, err)
	}
	seenGroups := map[string]bool{groupID: true}
	seenUsers := map[string]bool{} // a user in two nested groups is listed once
	queue := []string{groupID}
	for len(queue) > 0 {
		g := queue[0]
		queue = queue[1:]
		err := d.members(ctx, g, func(page []*admin.Member) error {
			ids := make([]string, 0, len(page))
			for _, m := range page {
				switch m.Type {
				case "USER":
					if !seenUsers[m.Id] {
						seenUsers[m.Id] = true
						ids = append(ids, m.Id)
					}
				case "GROUP":
					if config.ValidID(m.Id) == nil && !seenGroups[m.Id] {
						seenGroups[m.Id] = true
						queue = append(queue, m.Id)
					}
				default: // CUSTOMER (every user of the account) is not a group link
					d.log.DebugContext(ctx, "skipped member", "group", g, "type", m.Type)
				}
			}
			if len(ids) == 0 {
				return nil
			}
			return fn(ids)
		})
		if err != nil {
			if g == groupID {
				return fmt.Errorf("google: %s: %w", op, err)
			}
			// A nested group that answers 404 was deleted after the link to
			// it was read: it has no members to add. Any other failure (a
			// 403 above all) fails the listing, since skipping the group
			// would make its members look removed.
			if ae := (*connectors.APIError)(nil); errors.As(err, &ae) && ae.Status == http.StatusNotFound {
				d.log.WarnContext(ctx, "skipped deleted nested group", "group", groupID, "nested_group", g)
				continue
			}
			return fmt.Errorf("google: %s: nested group %s: %w", op, g, err)
		}
	}
	return nil
}

// members walks one group's direct members, 200 a page.
func (d *Directory) members(ctx context.Context, groupID string, fn func([]*admin.Member) error) error {
	token := ""
	for page := 1; ; page++ {
		call := d.svc.Members.List(groupID).MaxResults(groupsPageSize).Fields("nextPageToken", "members(id,type,status)")
		if token != "" {
			call = call.PageToken(token)
		}
		resp, err := call.Context(ctx).Do()
		if err != nil {
			return fmt.Errorf("page %d: %w", page, apiError(ctx, err))
		}
		d.log.DebugContext(ctx, "listed page", "op", "list members", "group", groupID, "page", page, "items", len(resp.Members))
		if err := fn(resp.Members); err != nil {
			return err
		}
		if resp.NextPageToken == "" {
			return nil
		}
		token = resp.NextPageToken
	}
}

// TestConnection reads one user, which needs a key the token endpoint
// accepts for adminEmail and the user scope delegated.
func (d *Directory) TestConnection(ctx context.Context) error {
	_, err := scope(d, d.svc.Users.List()).MaxResults(1).Fields("users(id)").Context(ctx).Do()
	if err != nil {
		return fmt.Errorf("google: test connection: %w", apiError(ctx, err))
	}
	return nil
}

// apiError turns the client's error answer into a *connectors.APIError,
// keeping errors that already say what they are (a refused token, the
// context's end, an unavailable IdP).
func apiError(ctx context.Context, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil && !errors.Is(err, ctxErr) {
		return fmt.Errorf("%w: %w", ctxErr, err)
	}
	var ge *googleapi.Error
	if errors.As(err, &ge) {
		code, status := "", ge.Code
		if len(ge.Errors) > 0 {
			code = ge.Errors[0].Reason
		}
		if status == http.StatusForbidden && rateLimitReason(code) {
			status = http.StatusTooManyRequests // the body says 403; it means 429
		}
		return &connectors.APIError{Status: status, Code: code, Message: ge.Message}
	}
	return err
}

// rateLimitReason reports whether a 403's reason is a rate limit, one that
// passes within a minute, unlike quotaExceeded or dailyLimitExceeded.
func rateLimitReason(reason string) bool {
	return reason == "rateLimitExceeded" || reason == "userRateLimitExceeded"
}

// googleError is the error body of Google's APIs.
type googleError struct {
	Error struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
		Errors  []struct {
			Reason string `json:"reason"`
		} `json:"errors"`
	} `json:"error"`
}

// rateLimit403 turns Google's 403 rate-limit answers (reasons
// rateLimitExceeded and userRateLimitExceeded) into the 429 they mean, so
// that httpretry waits them out like any IdP's 429. Other 403s (a missing
// scope, quotaExceeded for the day) pass unchanged.
type rateLimit403 struct{ next http.RoundTripper }

func (t rateLimit403) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	if err != nil || resp.StatusCode != http.StatusForbidden {
		return resp, err
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("read 403 answer: %w", err)
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	var e googleError
	if json.Unmarshal(body, &e) == nil {
		for _, r := range e.Error.Errors {
			if rateLimitReason(r.Reason) {
				resp.StatusCode, resp.Status = http.StatusTooManyRequests, "429 Too Many Requests"
				break
			}
		}
	}
	return resp, nil
}

// tokenErrors turns a refused token request into an error matching
// ErrUnauthorized that carries Google's own words: the token endpoint
// answers a bad key or an adminEmail the service account may not act for
// with 400 or 401 and an OAuth error body.
type tokenErrors struct{ src oauth2.TokenSource }

func (s tokenErrors) Token() (*oauth2.Token, error) {
	tok, err := s.src.Token()
	if err == nil {
		return tok, nil
	}
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.Response == nil {
		return nil, fmt.Errorf("get access token: %w", err)
	}
	var body struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	_ = json.Unmarshal(re.Body, &body)
	apiErr := &connectors.APIError{Status: re.Response.StatusCode, Code: body.Error, Message: body.Description}
	switch status := re.Response.StatusCode; {
	case status == http.StatusTooManyRequests || status >= 500:
		return nil, fmt.Errorf("get access token: %w", apiErr)
	case status >= 400:
		return nil, fmt.Errorf("get access token: %w: %w", connectors.ErrUnauthorized, apiErr)
	}
	return nil, fmt.Errorf("get access token: %w", apiErr)
}
