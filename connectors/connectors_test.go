package connectors_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/scimsync/scimsync/connectors"
)

// stub is an in-memory Directory.
type stub struct {
	users   []connectors.User
	groups  []connectors.Group
	members map[string][]string
	err     error // returned by every method when set
}

func (s *stub) ListUsers(_ context.Context, fn func([]connectors.User) error) error {
	if s.err != nil {
		return s.err
	}
	for i := 0; i < len(s.users); i += 2 { // pages of two
		if err := fn(append([]connectors.User(nil), s.users[i:min(i+2, len(s.users))]...)); err != nil {
			return err
		}
	}
	return nil
}

func (s *stub) ListGroups(_ context.Context, fn func([]connectors.Group) error) error {
	if s.err != nil {
		return s.err
	}
	return fn(s.groups)
}

func (s *stub) ListGroupMembers(_ context.Context, id string, fn func([]string) error) error {
	if s.err != nil {
		return s.err
	}
	m, ok := s.members[id]
	if !ok {
		return fmt.Errorf("no group %s", id)
	}
	return fn(m)
}

func (s *stub) TestConnection(context.Context) error { return s.err }

func directory() *stub {
	u := func(id string) connectors.User { return connectors.User{ExternalID: id, UserName: id, Active: true} }
	return &stub{
		users: []connectors.User{u("u1"), u("u2"), u("u3"), u("u4"), u("u5")},
		groups: []connectors.Group{
			{ExternalID: "g1", Name: "Engineering"},
			{ExternalID: "g2", Name: "Sales"},
			{ExternalID: "g3", Name: "engineering"}, // same name, other case: both match
			{ExternalID: "g4", Name: "Équipe"},
		},
		members: map[string][]string{"g1": {"u1", "u2"}, "g2": {"u3"}, "g3": {"u2", "u4"}, "g4": {"u5"}},
	}
}

func collect(t *testing.T, d connectors.Directory) ([]string, []string, error) {
	t.Helper()
	var users, groups []string
	err := d.ListUsers(context.Background(), func(p []connectors.User) error {
		for _, u := range p {
			users = append(users, u.ExternalID)
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	err = d.ListGroups(context.Background(), func(p []connectors.Group) error {
		for _, g := range p {
			groups = append(groups, g.ExternalID)
		}
		return nil
	})
	return users, groups, err
}

func TestFilterGroups(t *testing.T) {
	tests := []struct {
		name       string
		names      []string
		wantUsers  []string
		wantGroups []string
		wantErr    string // substring; "" for none
	}{
		{"one group, two case variants", []string{"ENGINEERING"}, []string{"u1", "u2", "u4"}, []string{"g1", "g3"}, ""},
		{"two groups", []string{"Sales", "équipe"}, []string{"u3", "u5"}, []string{"g2", "g4"}, ""},
		{"accented name in other case", []string{"ÉQUIPE"}, []string{"u5"}, []string{"g4"}, ""},
		{"unknown name", []string{"Sales", "Nobody"}, nil, nil, `"Nobody"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			users, groups, err := collect(t, connectors.FilterGroups(directory(), tt.names))
			if tt.wantErr != "" {
				if !errors.Is(err, connectors.ErrGroupNotFound) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got %v, want ErrGroupNotFound naming %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			sorted := cmpopts.SortSlices(func(a, b string) bool { return a < b })
			if diff := cmp.Diff(tt.wantUsers, users, sorted); diff != "" {
				t.Errorf("users (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantGroups, groups, sorted); diff != "" {
				t.Errorf("groups (-want +got):\n%s", diff)
			}
		})
	}
}

func TestFilterGroupsPassesErrorsThrough(t *testing.T) {
	d := directory()
	d.err = fmt.Errorf("list groups: %w", connectors.ErrUnavailable)
	f := connectors.FilterGroups(d, []string{"Sales"})
	if _, _, err := collect(t, f); !errors.Is(err, connectors.ErrUnavailable) {
		t.Errorf("listing: got %v, want ErrUnavailable", err)
	}
	if err := f.TestConnection(context.Background()); !errors.Is(err, connectors.ErrUnavailable) {
		t.Errorf("TestConnection: got %v, want ErrUnavailable", err)
	}
}

// register makes typ open d (or fail with openErr). A type is registered
// once per test binary; later calls, as with -count, only swap what it opens.
var (
	stubsMu sync.Mutex
	stubs   = map[string]func() (connectors.Directory, error){}
)

func register(typ string, d connectors.Directory, openErr error) {
	stubsMu.Lock()
	defer stubsMu.Unlock()
	_, known := stubs[typ]
	stubs[typ] = func() (connectors.Directory, error) { return d, openErr }
	if known {
		return
	}
	connectors.Register(typ, func(_ context.Context, settings, _ json.RawMessage, _ connectors.Options) (connectors.Directory, error) {
		var s map[string]any
		if err := json.Unmarshal(settings, &s); err != nil {
			return nil, err
		}
		if _, ok := s["groups"]; ok {
			return nil, errors.New("groups reached the connector")
		}
		stubsMu.Lock()
		open := stubs[typ]
		stubsMu.Unlock()
		return open()
	})
}

const secret = "sup3r/secret+value" // escapes differently in a URL

func TestOpenRedactsCredentials(t *testing.T) {
	leaky := &stub{err: fmt.Errorf("list users: %w", &connectors.APIError{Status: 401, Message: "token " + secret + " is invalid"})}
	register("leaky", leaky, nil)
	d, err := connectors.Open(context.Background(), "leaky", json.RawMessage(`{}`), json.RawMessage(`{"token":"`+secret+`"}`), connectors.Options{})
	if err != nil {
		t.Fatal(err)
	}
	err = d.ListUsers(context.Background(), func([]connectors.User) error { return nil })
	if strings.Contains(err.Error(), secret) {
		t.Errorf("error carries the credential: %v", err)
	}
	if !errors.Is(err, connectors.ErrUnauthorized) {
		t.Errorf("redaction lost the classification: %v", err)
	}
	var apiErr *connectors.APIError
	if !errors.As(err, &apiErr) || apiErr.Status != 401 || strings.Contains(apiErr.Message, secret) {
		t.Errorf("APIError after redaction: %+v", apiErr)
	}

	leaky.err = fmt.Errorf("Get %q: %w", "https://idp.example/x?key="+url.QueryEscape(secret), connectors.ErrUnavailable)
	err = d.TestConnection(context.Background())
	if strings.Contains(err.Error(), url.QueryEscape(secret)) || !errors.Is(err, connectors.ErrUnavailable) {
		t.Errorf("URL-escaped credential or classification: %v", err)
	}

	register("leaky-open", nil, errors.New("bad key "+secret))
	_, err = connectors.Open(context.Background(), "leaky-open", nil, json.RawMessage(`{"k":"`+secret+`"}`), connectors.Options{})
	if err == nil || strings.Contains(err.Error(), secret) {
		t.Errorf("Open error: %v", err)
	}
}

func TestOpenAppliesGroupsSetting(t *testing.T) {
	register("stub", directory(), nil)
	d, err := connectors.Open(context.Background(), "stub", json.RawMessage(`{"groups":["sales"," Sales ","équipe"]}`), nil, connectors.Options{})
	if err != nil {
		t.Fatal(err)
	}
	users, groups, err := collect(t, d)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"u3", "u5"}, users); diff != "" {
		t.Errorf("users (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"g2", "g4"}, groups); diff != "" {
		t.Errorf("groups (-want +got):\n%s", diff)
	}
}

func TestOpenUnknownType(t *testing.T) {
	_, err := connectors.Open(context.Background(), "nope", nil, nil, connectors.Options{})
	var ce *connectors.ConfigError
	if !errors.As(err, &ce) || ce.Field != "type" || !errors.Is(err, connectors.ErrInvalidConfig) {
		t.Errorf("got %v, want a ConfigError on type", err)
	}
}

func TestRegisterTwicePanics(t *testing.T) {
	register("twice", directory(), nil)
	defer func() {
		if recover() == nil {
			t.Error("second Register did not panic")
		}
	}()
	connectors.Register("twice", nil)
}

func TestAPIErrorClassification(t *testing.T) {
	tests := []struct {
		status int
		want   error
	}{
		{401, connectors.ErrUnauthorized},
		{403, connectors.ErrUnauthorized},
		{429, connectors.ErrRateLimited},
		{500, connectors.ErrUnavailable},
		{503, connectors.ErrUnavailable},
		{404, nil},
		{400, nil},
	}
	all := []error{connectors.ErrUnauthorized, connectors.ErrRateLimited, connectors.ErrUnavailable}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.status), func(t *testing.T) {
			err := fmt.Errorf("op: %w", &connectors.APIError{Status: tt.status, Code: "E1", Message: "msg"})
			for _, s := range all {
				if got := errors.Is(err, s); got != (s == tt.want) {
					t.Errorf("errors.Is(%v, %v) = %v", err, s, got)
				}
			}
		})
	}
	got := (&connectors.APIError{Status: 401, Code: "E0000011", Message: "Invalid token provided"}).Error()
	if want := "HTTP 401 Unauthorized: Invalid token provided (E0000011)"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func TestSecretNeverPrints(t *testing.T) {
	type config struct {
		URL   string
		Token connectors.Secret
	}
	c := config{URL: "https://x", Token: secret}
	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("config", "cfg", c, "token", c.Token)
	j, _ := json.Marshal(c)
	for _, s := range []string{fmt.Sprint(c), fmt.Sprintf("%+v", c), fmt.Sprintf("%#v", c), fmt.Sprintf("%s", c.Token), fmt.Sprintf("%q", c.Token), string(j), logs.String()} {
		if strings.Contains(s, secret) {
			t.Errorf("secret printed: %s", s)
		}
	}
	if c.Token.Reveal() != secret {
		t.Error("Reveal lost the value")
	}
}
