package entra_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/scimsync/scimsync/connectors"
	"github.com/scimsync/scimsync/connectors/connectortest"
	"github.com/scimsync/scimsync/connectors/entra"
	"github.com/scimsync/scimsync/connectors/entra/entrafake"
)

// fake adapts entrafake to the contract suite; DeleteUser and AddMember
// are the Server's own.
type fake struct{ *entrafake.Server }

func newFake(t *testing.T, env connectortest.Env) connectortest.Fake {
	return fake{entrafake.New(t, entrafake.WithClock(env.Now))}
}

func (f fake) Type() string { return entra.Type }
func (f fake) Settings() map[string]any {
	return map[string]any{"tenantId": f.TenantID(), "graphUrl": f.URL(), "loginUrl": f.URL()}
}
func (f fake) Credentials() map[string]any {
	return map[string]any{"clientId": f.ClientID(), "clientSecret": f.ClientSecret()}
}
func (f fake) BadCredentials() map[string]any {
	return map[string]any{"clientId": f.ClientID(), "clientSecret": "wrong~secret.value-that-entra-refuses"}
}
func (f fake) UnauthorizedMessage() string         { return entrafake.WrongSecretMessage }
func (f fake) PageSize(connectortest.Endpoint) int { return 999 }
func (f fake) AddGroup(name string) string         { return f.Server.AddGroup(name).ID }

func (f fake) Statuses() []connectortest.Status {
	return []connectortest.Status{{Raw: "enabled", Active: true}, {Raw: "disabled", Active: false}}
}

func (f fake) AddUser(u connectors.User) string {
	return f.Server.AddUser(entrafake.User{
		UserPrincipalName: u.UserName, Mail: u.Email, GivenName: u.GivenName, Surname: u.FamilyName,
		Disabled: u.RawStatus == "disabled",
	}).ID
}

func (f fake) UpdateUser(u connectors.User) {
	f.Server.UpdateUser(u.ExternalID, func(x *entrafake.User) {
		x.UserPrincipalName, x.Mail, x.GivenName, x.Surname = u.UserName, u.Email, u.GivenName, u.FamilyName
		x.Disabled = u.RawStatus == "disabled"
	})
}

// routes are the fake's routes of the suite's listings.
var routes = connectortest.Routes{
	Users:   entrafake.RouteUsers,
	Groups:  entrafake.RouteGroups,
	Members: entrafake.RouteGroupMembers,
}

func (f fake) Fail(ep connectortest.Endpoint, page int, flt connectortest.Fault) {
	routes.Fail(f.Server, ep, page, flt)
}
func (f fake) Requests(ep connectortest.Endpoint) int { return routes.Requests(f.Server, ep) }

func TestContract(t *testing.T) { connectortest.Run(t, newFake) }

func config(srv *entrafake.Server) entra.Config {
	return entra.Config{
		TenantID: srv.TenantID(), GraphURL: srv.URL(), LoginURL: srv.URL(),
		ClientID: srv.ClientID(), ClientSecret: connectors.Secret(srv.ClientSecret()),
	}
}

func discard[T any]([]T) error { return nil }

// Following a nextLink off the Graph host would hand it the bearer token.
func TestNextLinkOffGraphHostIsRefused(t *testing.T) {
	srv := entrafake.New(t, entrafake.WithNextLinkBase("http://127.0.0.2:9"))
	for range 1000 { // two pages
		srv.AddUser(entrafake.User{UserPrincipalName: "u@example.com"})
	}
	err := connectortest.Open(t, config(srv)).ListUsers(context.Background(), discard)
	if err == nil || !strings.Contains(err.Error(), "refusing @odata.nextLink") {
		t.Fatalf("got %v, want the nextLink refused", err)
	}
	if got := srv.Requests(entrafake.RouteUsers); got != 1 {
		t.Errorf("fake served %d user requests, want 1", got)
	}
}

func TestTokenReusedAndRenewedAfter401(t *testing.T) {
	srv := entrafake.New(t)
	srv.AddUser(entrafake.User{UserPrincipalName: "u@example.com"})
	d := connectortest.Open(t, config(srv))
	ctx := context.Background()
	for range 2 {
		if err := d.ListUsers(ctx, discard); err != nil {
			t.Fatal(err)
		}
	}
	if got := srv.Requests(entrafake.RouteToken); got != 1 {
		t.Errorf("%d token requests for two listings, want 1", got)
	}
	srv.RevokeTokens()
	if err := d.ListUsers(ctx, discard); err != nil {
		t.Fatalf("listing after the token was revoked: %v", err)
	}
	if got := srv.Requests(entrafake.RouteToken); got != 2 {
		t.Errorf("%d token requests, want 2 after a 401", got)
	}
}

func TestMembersKeepOnlyUsers(t *testing.T) {
	srv := entrafake.New(t)
	u := srv.AddUser(entrafake.User{UserPrincipalName: "u@example.com"})
	g := srv.AddGroup("Engineering")
	srv.AddMember(g.ID, u.ID)
	srv.AddMemberObject(g.ID, srv.AddGroup("Nested").ID, entrafake.TypeGroup)
	srv.AddMemberObject(g.ID, "99999999-0000-4000-8000-000000000001", entrafake.TypeDevice)
	var got []string
	err := connectortest.Open(t, config(srv)).ListGroupMembers(context.Background(), g.ID, func(ids []string) error {
		got = append(got, ids...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{u.ID}, got); diff != "" {
		t.Errorf("members (-want +got):\n%s", diff)
	}
}

func TestUnknownTenantIsUnauthorized(t *testing.T) {
	srv := entrafake.New(t)
	cfg := config(srv)
	cfg.TenantID = "contoso.onmicrosoft.com"
	err := connectortest.Open(t, cfg).TestConnection(context.Background())
	if !errors.Is(err, connectors.ErrUnauthorized) || !strings.Contains(err.Error(), "AADSTS90002") {
		t.Errorf("got %v, want ErrUnauthorized carrying AADSTS90002", err)
	}
}

// recorder answers every request with 401 and keeps the first.
type recorder struct {
	mu   sync.Mutex
	req  *http.Request
	form string
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.req == nil {
		r.req = req
		if req.Body != nil {
			b, _ := io.ReadAll(req.Body)
			r.form = string(b)
		}
	}
	return &http.Response{
		StatusCode: http.StatusUnauthorized, Header: http.Header{"Content-Type": {"application/json"}},
		Body:    io.NopCloser(strings.NewReader(`{"error":"invalid_client","error_description":"no"}`)),
		Request: req,
	}, nil
}

func TestDefaultEndpointsAndScope(t *testing.T) {
	rec := &recorder{}
	d, err := entra.Config{TenantID: "contoso.onmicrosoft.com", ClientID: "client-id", ClientSecret: "s3cret-value"}.
		Open(context.Background(), connectors.Options{Transport: rec})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.TestConnection(context.Background()); !errors.Is(err, connectors.ErrUnauthorized) {
		t.Fatalf("got %v, want ErrUnauthorized", err)
	}
	if got, want := rec.req.URL.String(), "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token"; got != want {
		t.Errorf("token URL %s, want %s", got, want)
	}
	if !strings.Contains(rec.form, "scope=https%3A%2F%2Fgraph.microsoft.com%2F.default") || !strings.Contains(rec.form, "grant_type=client_credentials") {
		t.Errorf("token request form %q lacks the Graph scope or the grant type", rec.form)
	}
}

func TestOpenValidation(t *testing.T) {
	creds := `{"clientId":"client-id","clientSecret":"s3cret-value"}`
	tests := []struct {
		name      string
		settings  string
		creds     string
		wantField string // "" means valid
	}{
		{"defaults", `{"tenantId":"11111111-2222-4333-8444-555555555555"}`, creds, ""},
		{"domain tenant", `{"tenantId":"contoso.onmicrosoft.com","groups":["Eng"]}`, creds, ""},
		{"national cloud", `{"tenantId":"t1","graphUrl":"https://graph.microsoft.us","loginUrl":"https://login.microsoftonline.us"}`, creds, ""},
		{"missing tenant", `{}`, creds, "settings.tenantId"},
		{"tenant with slash", `{"tenantId":"a/../b"}`, creds, "settings.tenantId"},
		{"graph with version", `{"tenantId":"t1","graphUrl":"https://graph.microsoft.com/v1.0"}`, creds, "settings.graphUrl"},
		{"remote http login", `{"tenantId":"t1","loginUrl":"http://login.example.com"}`, creds, "settings.loginUrl"},
		{"missing clientId", `{"tenantId":"t1"}`, `{"clientSecret":"s3cret-value"}`, "credentials.clientId"},
		{"missing secret", `{"tenantId":"t1"}`, `{"clientId":"client-id"}`, "credentials.clientSecret"},
		{"secret in settings", `{"tenantId":"t1","clientSecret":"s3cret-value"}`, creds, "settings.clientSecret"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := connectortest.CheckConfig(t, entra.Type, tt.settings, tt.creds, tt.wantField)
			if err != nil && strings.Contains(err.Error(), "s3cret-value") {
				t.Errorf("config error carries the secret: %v", err)
			}
		})
	}
}
