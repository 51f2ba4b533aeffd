package source_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/scimsync/scimsync/connectors"
	"github.com/scimsync/scimsync/internal/secret"
	"github.com/scimsync/scimsync/source"
	"github.com/scimsync/scimsync/store"
	"github.com/scimsync/scimsync/store/storetest"
)

const goodToken = "good-token-value"

// tokenDirectory accepts goodToken only; its refusal quotes the token it
// was given, as some IdPs do, so the test can see it is redacted.
type tokenDirectory struct{ token string }

func (d tokenDirectory) TestConnection(context.Context) error {
	if d.token != goodToken {
		return fmt.Errorf("%w: token %s is invalid", connectors.ErrUnauthorized, d.token)
	}
	return nil
}

func (tokenDirectory) ListUsers(context.Context, func([]connectors.User) error) error { return nil }
func (tokenDirectory) ListGroups(context.Context, func([]connectors.Group) error) error {
	return nil
}
func (tokenDirectory) ListGroupMembers(context.Context, string, func([]string) error) error {
	return nil
}

func openToken(_ context.Context, _, credentials json.RawMessage, _ connectors.Options) (connectors.Directory, error) {
	var c struct{ Token string }
	if err := json.Unmarshal(credentials, &c); err != nil || c.Token == "" {
		return nil, &connectors.ConfigError{Type: "token", Field: "credentials.token", Problem: "is required"}
	}
	return tokenDirectory{token: c.Token}, nil
}

func init() {
	connectors.Register("token", openToken)
	connectors.Register("other", openToken)
}

func creds(token string) json.RawMessage { return json.RawMessage(`{"token":"` + token + `"}`) }

func TestCheckAndDirectory(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		box, err := secret.NewBox(make([]byte, 32))
		if err != nil {
			t.Fatal(err)
		}
		o := &source.Opener{Store: st, Box: box}
		org, _ := st.CreateOrg(ctx, "Acme")
		other, _ := st.CreateOrg(ctx, "Other")

		if _, _, err := o.Directory(ctx, org.ID); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("Directory without a connector = %v, want ErrNotFound", err)
		}
		for _, tt := range []struct {
			name, typ string
			creds     json.RawMessage
			want      error
		}{
			{"nothing stored to keep", "token", nil, source.ErrNoCredentials},
			{"unknown type", "ldap", creds(goodToken), connectors.ErrInvalidConfig},
			{"invalid credentials", "token", json.RawMessage(`{}`), connectors.ErrInvalidConfig},
			{"refused", "token", creds("wrong-secret"), source.ErrConnection},
		} {
			_, err := o.Check(ctx, org.ID, tt.typ, json.RawMessage(`{}`), tt.creds)
			if !errors.Is(err, tt.want) {
				t.Errorf("%s: Check = %v, want %v", tt.name, err, tt.want)
			}
			if err != nil && strings.Contains(err.Error(), "wrong-secret") {
				t.Errorf("%s: the error shows a credential: %v", tt.name, err)
			}
		}

		sealed, err := o.Check(ctx, org.ID, "token", json.RawMessage(`{}`), creds(goodToken))
		if err != nil {
			t.Fatalf("Check = %v", err)
		}
		if strings.Contains(string(sealed), goodToken) {
			t.Fatal("the credentials are not sealed")
		}
		if err := st.PutConnector(ctx, &store.Connector{OrgID: org.ID, Type: "token", Settings: "{}", Credentials: sealed}); err != nil {
			t.Fatal(err)
		}
		dir, typ, err := o.Directory(ctx, org.ID)
		if err != nil || typ != "token" {
			t.Fatalf("Directory = %q, %v", typ, err)
		}
		if err := dir.TestConnection(ctx); err != nil {
			t.Errorf("the stored connector does not connect: %v", err)
		}

		// Nil credentials keep the stored ones, of the same type only.
		if resealed, err := o.Check(ctx, org.ID, "token", json.RawMessage(`{}`), nil); err != nil {
			t.Errorf("Check keeping the stored credentials = %v", err)
		} else if got, err := box.Open(resealed, []byte(org.ID)); err != nil || string(got) != string(creds(goodToken)) {
			t.Errorf("kept credentials = %q, %v", got, err)
		}
		if _, err := o.Check(ctx, org.ID, "other", json.RawMessage(`{}`), nil); !errors.Is(err, source.ErrNoCredentials) {
			t.Errorf("Check of another type without credentials = %v, want ErrNoCredentials", err)
		}

		// Sealed for one organization, the credentials open for no other.
		if err := st.PutConnector(ctx, &store.Connector{OrgID: other.ID, Type: "token", Settings: "{}", Credentials: sealed}); err != nil {
			t.Fatal(err)
		}
		if _, _, err := o.Directory(ctx, other.ID); err == nil {
			t.Error("credentials sealed for another organization opened")
		}
	})
}
