package inbound_test

import (
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestCreateAnswerMatchesStored checks that the answer to a create, which
// is rendered from the body as written, is what reading the user back
// renders from the database.
func TestCreateAnswerMatchesStored(t *testing.T) {
	bodies := []struct {
		name string
		body map[string]any
	}{
		{"userName only", map[string]any{"schemas": []string{userURN}, "userName": "min@example.com"}},
		{"what Okta sends", map[string]any{
			"schemas": []string{userURN, enterpriseURN}, "userName": "Ann.Lee@example.com", "externalId": "00u1",
			"name":        map[string]any{"givenName": "Ann", "familyName": "Lée", "formatted": "Ann Lée"},
			"displayName": `Ann <&> "Lée"`, "active": "False", "password": "placeholder-Passw0rd!",
			"emails":       []any{map[string]any{"value": "ann@example.com", "type": "work", "primary": "true"}, map[string]any{"value": "a@home.example", "type": "home"}},
			"phoneNumbers": []any{map[string]any{"value": "+1 555 0100", "type": "mobile"}},
			"locale":       "fr-BE", "nickName": nil,
			enterpriseURN: map[string]any{"employeeNumber": "42", "manager": map[string]any{"value": "boss"}},
		}},
	}
	eachBackend(t, func(t *testing.T, h *harness) {
		tn := h.tenant()
		for _, tt := range bodies {
			t.Run(tt.name, func(t *testing.T) {
				created := tn.do("POST", "/Users", tt.body).want(t, http.StatusCreated)
				read := tn.do("GET", "/Users/"+created.id(), nil).want(t, http.StatusOK)
				if diff := cmp.Diff(read.Body, created.Body); diff != "" {
					t.Errorf("create answer differs from the stored user (-read +created):\n%s", diff)
				}
				if c, r := created.Header.Get("ETag"), read.Header.Get("ETag"); c != r || c == "" {
					t.Errorf("ETag on create %q, on read %q", c, r)
				}
				if _, ok := created.Body["password"]; ok {
					t.Error("the create answer shows the password")
				}
			})
		}
	})
}
