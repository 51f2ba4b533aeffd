package google_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/scimsync/scimsync/connectors"
	"github.com/scimsync/scimsync/connectors/connectortest"
	"github.com/scimsync/scimsync/connectors/google"
	"github.com/scimsync/scimsync/connectors/google/googlefake"
	"github.com/scimsync/scimsync/internal/clock"
)

// fake adapts googlefake to the contract suite; DeleteUser and AddMember
// are the Server's own.
type fake struct{ *googlefake.Server }

func newFake(t *testing.T, env connectortest.Env) connectortest.Fake {
	return fake{googlefake.New(t, googlefake.WithClock(env.Now))}
}

func (f fake) Type() string { return google.Type }
func (f fake) Settings() map[string]any {
	return map[string]any{"customerId": f.CustomerID(), "adminEmail": f.AdminEmail(), "apiUrl": f.URL()}
}
func (f fake) Credentials() map[string]any { return map[string]any{"serviceAccountKey": f.Key()} }
func (f fake) BadCredentials() map[string]any {
	return map[string]any{"serviceAccountKey": f.ForeignKey()}
}
func (f fake) UnauthorizedMessage() string { return googlefake.BadSignatureMessage }
func (f fake) AddGroup(name string) string { return f.Server.AddGroup(name).ID }

// EmailIsUserName: primaryEmail is both the login and the address.
func (f fake) EmailIsUserName() bool { return true }

func (f fake) PageSize(ep connectortest.Endpoint) int {
	if ep == connectortest.Users {
		return 500
	}
	return 200
}

func (f fake) Statuses() []connectortest.Status {
	return []connectortest.Status{
		{Raw: google.StatusActive, Active: true},
		{Raw: google.StatusSuspended, Active: false},
		{Raw: google.StatusArchived, Active: false},
	}
}

func (f fake) AddUser(u connectors.User) string {
	return f.Server.AddUser(googlefake.User{
		PrimaryEmail: u.UserName, GivenName: u.GivenName, FamilyName: u.FamilyName,
		Suspended: u.RawStatus == google.StatusSuspended, Archived: u.RawStatus == google.StatusArchived,
	}).ID
}

func (f fake) UpdateUser(u connectors.User) {
	f.Server.UpdateUser(u.ExternalID, func(x *googlefake.User) {
		x.PrimaryEmail, x.GivenName, x.FamilyName = u.UserName, u.GivenName, u.FamilyName
		x.Suspended = u.RawStatus == google.StatusSuspended
		x.Archived = u.RawStatus == google.StatusArchived
	})
}

var routes = connectortest.Routes{
	Users:   googlefake.RouteUsers,
	Groups:  googlefake.RouteGroups,
	Members: googlefake.RouteMembers,
}

func (f fake) Fail(ep connectortest.Endpoint, page int, flt connectortest.Fault) {
	routes.Fail(f.Server, ep, page, flt)
}
func (f fake) Requests(ep connectortest.Endpoint) int { return routes.Requests(f.Server, ep) }

func TestContract(t *testing.T) { connectortest.Run(t, newFake) }

func config(srv *googlefake.Server) google.Config {
	return google.Config{
		CustomerID: srv.CustomerID(), AdminEmail: srv.AdminEmail(), APIURL: srv.URL(),
		ServiceAccountKey: connectors.Secret(srv.Key()),
	}
}

func listUsers(t *testing.T, d connectors.Directory) ([]connectors.User, error) {
	t.Helper()
	var got []connectors.User
	err := d.ListUsers(context.Background(), func(page []connectors.User) error {
		got = append(got, page...)
		return nil
	})
	return got, err
}

func members(t *testing.T, d connectors.Directory, groupID string) ([]string, error) {
	t.Helper()
	var got []string
	err := d.ListGroupMembers(context.Background(), groupID, func(ids []string) error {
		got = append(got, ids...)
		return nil
	})
	return got, err
}

func TestUserStatusMapping(t *testing.T) {
	srv := googlefake.New(t)
	tests := []struct {
		name                string
		suspended, archived bool
		wantRaw             string
		wantActive          bool
	}{
		{"active", false, false, google.StatusActive, true},
		{"suspended", true, false, google.StatusSuspended, false},
		{"archived", false, true, google.StatusArchived, false},
		{"suspended and archived", true, true, google.StatusArchived, false},
	}
	var want []connectors.User
	for i, tt := range tests {
		u := srv.AddUser(googlefake.User{PrimaryEmail: tt.name + "@example.com", GivenName: "G", FamilyName: string(rune('A' + i)), Suspended: tt.suspended, Archived: tt.archived})
		want = append(want, connectors.User{ExternalID: u.ID, UserName: u.PrimaryEmail, Email: u.PrimaryEmail, GivenName: "G", FamilyName: u.FamilyName, Active: tt.wantActive, RawStatus: tt.wantRaw})
	}
	gone := srv.AddUser(googlefake.User{PrimaryEmail: "gone@example.com"})
	srv.DeleteUser(gone.ID)

	got, err := listUsers(t, connectortest.Open(t, config(srv)))
	if err != nil {
		t.Fatal(err)
	}
	// The deleted user is absent: that is what makes the reconciler remove it.
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("users (-want +got):\n%s", diff)
	}
}

func TestNestedGroupsFlattened(t *testing.T) {
	srv := googlefake.New(t)
	u := func(name string) string { return srv.AddUser(googlefake.User{PrimaryEmail: name + "@example.com"}).ID }
	alice, bob, carol, dave := u("alice"), u("bob"), u("carol"), u("dave")
	top, mid, leaf := srv.AddGroup("top").ID, srv.AddGroup("mid").ID, srv.AddGroup("leaf").ID
	lone := srv.AddGroup("lone").ID
	srv.AddMember(top, alice)
	srv.AddMemberObject(top, mid, googlefake.TypeGroup)
	srv.AddMember(mid, bob)
	srv.AddMember(mid, alice) // reached twice: listed once
	srv.AddMemberObject(mid, leaf, googlefake.TypeGroup)
	srv.AddMember(leaf, carol)
	srv.AddMemberObject(leaf, top, googlefake.TypeGroup) // a cycle back to top
	srv.AddMemberObject(top, "C01abc23d", googlefake.TypeCustomer)
	srv.AddMember(lone, dave)
	d := connectortest.Open(t, config(srv))

	tests := []struct {
		group string
		want  []string
	}{
		{top, []string{alice, bob, carol}},
		{leaf, []string{alice, bob, carol}},
		{lone, []string{dave}},
	}
	for _, tt := range tests {
		t.Run(tt.group, func(t *testing.T) {
			got, err := members(t, d, tt.group)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got, cmpopts.SortSlices(func(a, b string) bool { return a < b })); diff != "" {
				t.Errorf("members (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRateLimitRetried(t *testing.T) {
	tests := []struct {
		name   string
		inject func(srv *googlefake.Server)
	}{
		{"429", func(srv *googlefake.Server) { srv.FailNext(googlefake.RouteUsers, http.StatusTooManyRequests, 2) }},
		{"403 rateLimitExceeded", func(srv *googlefake.Server) { srv.FailRateLimit403(googlefake.RouteUsers, "rateLimitExceeded", 2) }},
		{"403 userRateLimitExceeded", func(srv *googlefake.Server) {
			srv.FailRateLimit403(googlefake.RouteUsers, "userRateLimitExceeded", 2)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := googlefake.New(t)
			srv.AddUser(googlefake.User{PrimaryEmail: "a@example.com"})
			tt.inject(srv)
			got, err := listUsers(t, connectortest.Open(t, config(srv)))
			if err != nil || len(got) != 1 {
				t.Fatalf("got %d users, err %v; want the user after waiting", len(got), err)
			}
			if n := srv.Requests(googlefake.RouteUsers); n != 3 {
				t.Errorf("requests = %d, want 3 (two refused, one served)", n)
			}
		})
	}
}

func TestRateLimit403BeyondBudget(t *testing.T) {
	srv := googlefake.New(t)
	srv.FailRateLimit403(googlefake.RouteUsers, "rateLimitExceeded", 100)
	_, err := listUsers(t, connectortest.Open(t, config(srv)))
	if !errors.Is(err, connectors.ErrRateLimited) {
		t.Errorf("got %v, want ErrRateLimited", err)
	}
}

func TestOtherForbiddenNotRetried(t *testing.T) {
	srv := googlefake.New(t)
	srv.FailRateLimit403(googlefake.RouteUsers, "forbidden", 1)
	_, err := listUsers(t, connectortest.Open(t, config(srv)))
	if !errors.Is(err, connectors.ErrUnauthorized) {
		t.Errorf("got %v, want ErrUnauthorized", err)
	}
	if n := srv.Requests(googlefake.RouteUsers); n != 1 {
		t.Errorf("requests = %d, want 1", n)
	}
}

func TestWrongAdminEmailRefused(t *testing.T) {
	srv := googlefake.New(t)
	cfg := config(srv)
	cfg.AdminEmail = "someone@example.com"
	err := connectortest.Open(t, cfg).TestConnection(context.Background())
	if !errors.Is(err, connectors.ErrUnauthorized) {
		t.Fatalf("got %v, want ErrUnauthorized", err)
	}
	if !strings.Contains(err.Error(), googlefake.BadSubjectMessage) || !strings.Contains(err.Error(), "unauthorized_client") {
		t.Errorf("error %q does not carry Google's answer", err)
	}
}

func TestOpenValidation(t *testing.T) {
	srv := googlefake.New(t)
	key := srv.Key()
	creds := `{"serviceAccountKey":` + quote(key) + `}`
	tests := []struct {
		name, settings, creds, wantField string
	}{
		{"customer id", `{"customerId":"C01abc23d","adminEmail":"admin@example.com"}`, creds, ""},
		{"domain", `{"domain":"example.com","adminEmail":"admin@example.com","groups":["Eng"]}`, creds, ""},
		{"neither", `{"adminEmail":"admin@example.com"}`, creds, "settings.customerId"},
		{"both", `{"customerId":"C01abc23d","domain":"example.com","adminEmail":"admin@example.com"}`, creds, "settings.domain"},
		{"bad customer", `{"customerId":"C01/../x","adminEmail":"admin@example.com"}`, creds, "settings.customerId"},
		{"bad domain", `{"domain":"exa mple","adminEmail":"admin@example.com"}`, creds, "settings.domain"},
		{"no admin", `{"customerId":"C01abc23d"}`, creds, "settings.adminEmail"},
		{"bad admin", `{"customerId":"C01abc23d","adminEmail":"admin"}`, creds, "settings.adminEmail"},
		{"http api", `{"customerId":"C01abc23d","adminEmail":"admin@example.com","apiUrl":"http://admin.example.com"}`, creds, "settings.apiUrl"},
		{"unknown setting", `{"customerId":"C01abc23d","adminEmail":"admin@example.com","token":"x"}`, creds, "settings.token"},
		{"no key", `{"customerId":"C01abc23d","adminEmail":"admin@example.com"}`, `{}`, "credentials.serviceAccountKey"},
		{"key not JSON", `{"customerId":"C01abc23d","adminEmail":"admin@example.com"}`, `{"serviceAccountKey":"-----BEGIN PRIVATE KEY-----secret"}`, "credentials.serviceAccountKey"},
		{"key of a user", `{"customerId":"C01abc23d","adminEmail":"admin@example.com"}`, `{"serviceAccountKey":` + quote(strings.Replace(key, `"service_account"`, `"authorized_user"`, 1)) + `}`, "credentials.serviceAccountKey"},
		{"key broken", `{"customerId":"C01abc23d","adminEmail":"admin@example.com"}`, `{"serviceAccountKey":` + quote(strings.Replace(key, "MII", "XXX", 1)) + `}`, "credentials.serviceAccountKey"},
		{"http token uri", `{"customerId":"C01abc23d","adminEmail":"admin@example.com"}`, `{"serviceAccountKey":` + quote(strings.Replace(key, srv.URL(), "http://oauth2.example.com", 1)) + `}`, "credentials.serviceAccountKey"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := connectortest.CheckConfig(t, google.Type, tt.settings, tt.creds, tt.wantField)
			if err != nil && (strings.Contains(err.Error(), "PRIVATE KEY") || strings.Contains(err.Error(), "secret")) {
				t.Errorf("error leaks the key: %v", err)
			}
		})
	}
}

func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"', '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case '\n':
			b.WriteString(`\n`)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

func TestNestedGroupGoneOrForbidden(t *testing.T) {
	srv := googlefake.New(t)
	alice := srv.AddUser(googlefake.User{PrimaryEmail: "alice@example.com"}).ID
	bob := srv.AddUser(googlefake.User{PrimaryEmail: "bob@example.com"}).ID
	top, hidden := srv.AddGroup("top").ID, srv.AddGroup("hidden").ID
	srv.AddMember(top, alice)
	srv.AddMember(hidden, bob)
	gone := "1" + strings.Repeat("9", 20) // linked, never found: deleted meanwhile
	srv.AddMemberObject(top, gone, googlefake.TypeGroup)
	var logs bytes.Buffer
	opts := connectortest.Options(clock.NewFake(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC), clock.SleepAdvances))
	opts.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	d, err := config(srv).Open(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("404 skipped", func(t *testing.T) {
		got, err := members(t, d, top)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{alice}, got); diff != "" {
			t.Errorf("members (-want +got):\n%s", diff)
		}
		if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "nested_group="+gone) {
			t.Errorf("no WARN naming %s in the log:\n%s", gone, logs.String())
		}
	})
	t.Run("403 fails", func(t *testing.T) {
		srv.AddMemberObject(top, hidden, googlefake.TypeGroup)
		srv.ForbidGroup(hidden)
		_, err := members(t, d, top)
		if !errors.Is(err, connectors.ErrUnauthorized) {
			t.Fatalf("got %v, want ErrUnauthorized", err)
		}
		if !strings.Contains(err.Error(), hidden) {
			t.Errorf("error %q does not name group %s", err, hidden)
		}
	})
}
