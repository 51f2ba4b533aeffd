package jumpcloud_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/scimsync/scimsync/connectors"
	"github.com/scimsync/scimsync/connectors/connectortest"
	"github.com/scimsync/scimsync/connectors/jumpcloud"
	"github.com/scimsync/scimsync/connectors/jumpcloud/jumpcloudfake"
)

// fake adapts jumpcloudfake to the contract suite; DeleteUser and AddMember
// are the Server's own.
type fake struct{ *jumpcloudfake.Server }

func newFake(t *testing.T, env connectortest.Env) connectortest.Fake {
	return fake{jumpcloudfake.New(t, jumpcloudfake.WithClock(env.Now))}
}

func (f fake) Type() string                { return jumpcloud.Type }
func (f fake) Settings() map[string]any    { return map[string]any{"baseUrl": f.URL()} }
func (f fake) Credentials() map[string]any { return map[string]any{"apiKey": f.APIKey()} }
func (f fake) BadCredentials() map[string]any {
	return map[string]any{"apiKey": "jc-wrong-key-0000000000000000000000"}
}
func (f fake) UnauthorizedMessage() string         { return jumpcloudfake.UnauthorizedMessage }
func (f fake) PageSize(connectortest.Endpoint) int { return 100 }
func (f fake) AddGroup(name string) string         { return f.Server.AddGroup(name).ID }

func (f fake) Statuses() []connectortest.Status {
	return []connectortest.Status{
		{Raw: "active", Active: true},
		{Raw: "pending", Active: false},
		{Raw: "suspended", Active: false},
		{Raw: "locked", Active: true},
	}
}

func setStatus(u *jumpcloudfake.User, raw string) {
	u.Pending, u.Suspended, u.Locked = raw == "pending", raw == "suspended", raw == "locked"
}

func (f fake) AddUser(u connectors.User) string {
	jc := jumpcloudfake.User{Username: u.UserName, Email: u.Email, Firstname: u.GivenName, Lastname: u.FamilyName}
	setStatus(&jc, u.RawStatus)
	return f.Server.AddUser(jc).ID
}

func (f fake) UpdateUser(u connectors.User) {
	f.Server.UpdateUser(u.ExternalID, func(x *jumpcloudfake.User) {
		x.Username, x.Email, x.Firstname, x.Lastname = u.UserName, u.Email, u.GivenName, u.FamilyName
		setStatus(x, u.RawStatus)
	})
}

// routes are the fake's routes of the suite's listings.
var routes = connectortest.Routes{
	Users:   jumpcloudfake.RouteUsers,
	Groups:  jumpcloudfake.RouteGroups,
	Members: jumpcloudfake.RouteGroupMembers,
}

func (f fake) Fail(ep connectortest.Endpoint, page int, flt connectortest.Fault) {
	routes.Fail(f.Server, ep, page, flt)
}
func (f fake) Requests(ep connectortest.Endpoint) int { return routes.Requests(f.Server, ep) }

func TestContract(t *testing.T) { connectortest.Run(t, newFake) }

// Offset paging misses a user when an earlier one is deleted mid-listing; the
// listing must fail rather than look complete without that user.
func TestUserDeletedDuringListingFails(t *testing.T) {
	srv := jumpcloudfake.New(t)
	var ids []string
	for i := range 250 {
		ids = append(ids, srv.AddUser(jumpcloudfake.User{Username: fmt.Sprintf("user%d", i)}).ID)
	}
	d := connectortest.Open(t, jumpcloud.Config{BaseURL: srv.URL(), APIKey: connectors.Secret(srv.APIKey())})
	pages := 0
	err := d.ListUsers(context.Background(), func([]connectors.User) error {
		pages++
		if pages == 1 {
			srv.DeleteUser(ids[0])
		}
		return nil
	})
	if !errors.Is(err, connectors.ErrUnavailable) {
		t.Fatalf("got %v, want ErrUnavailable", err)
	}
}

func TestOrgIDHeader(t *testing.T) {
	const org = "5f0000000000000000000abc"
	srv := jumpcloudfake.New(t, jumpcloudfake.WithOrgID(org))
	srv.AddUser(jumpcloudfake.User{Username: "ada"})
	withOrg := connectortest.Open(t, jumpcloud.Config{BaseURL: srv.URL(), OrgID: org, APIKey: connectors.Secret(srv.APIKey())})
	if err := withOrg.TestConnection(context.Background()); err != nil {
		t.Errorf("with orgId: %v", err)
	}
	withoutOrg := connectortest.Open(t, jumpcloud.Config{BaseURL: srv.URL(), APIKey: connectors.Secret(srv.APIKey())})
	err := withoutOrg.TestConnection(context.Background())
	if !errors.Is(err, connectors.ErrUnauthorized) || !strings.Contains(err.Error(), "no organization selected") {
		t.Errorf("without orgId: got %v, want ErrUnauthorized with JumpCloud's message", err)
	}
}

func TestOpenValidation(t *testing.T) {
	tests := []struct {
		name      string
		settings  string
		creds     string
		wantField string // "" means valid
	}{
		{"defaults", `{}`, `{"apiKey":"k3y-value"}`, ""},
		{"all settings", `{"baseUrl":"https://console.eu.jumpcloud.com","orgId":"5f0000000000000000000abc","groups":["Eng"]}`, `{"apiKey":"k3y-value"}`, ""},
		{"loopback http", `{"baseUrl":"http://127.0.0.1:9000"}`, `{"apiKey":"k3y-value"}`, ""},
		{"remote http", `{"baseUrl":"http://console.jumpcloud.com"}`, `{"apiKey":"k3y-value"}`, "settings.baseUrl"},
		{"base with path", `{"baseUrl":"https://console.jumpcloud.com/api"}`, `{"apiKey":"k3y-value"}`, "settings.baseUrl"},
		{"bad orgId", `{"orgId":"../x"}`, `{"apiKey":"k3y-value"}`, "settings.orgId"},
		{"missing apiKey", `{}`, `{}`, "credentials.apiKey"},
		{"unknown credential", `{}`, `{"apiKey":"k3y-value","password":"x"}`, "credentials.password"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			connectortest.CheckConfig(t, jumpcloud.Type, tt.settings, tt.creds, tt.wantField)
		})
	}
}
