package inbound_test

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestFilters(t *testing.T) {
	eachBackend(t, func(t *testing.T, h *harness) {
		tn := h.tenant()
		tn.createUser(map[string]any{
			"userName": "ada@example.com", "externalId": "e-ada", "displayName": "Ada Lovelace", "title": "Countess",
			"name":        map[string]any{"givenName": "Ada", "familyName": "Lovelace"},
			"emails":      []any{map[string]any{"type": "work", "value": "ada@work.example"}, map[string]any{"type": "home", "value": "ada@home.example"}},
			enterpriseURN: map[string]any{"employeeNumber": "100", "department": "Math"},
		})
		tn.createUser(map[string]any{
			"userName": "Bob@Example.com", "externalId": "e-bob", "displayName": "Bob",
			"emails": []any{map[string]any{"type": "work", "value": "bob@work.example"}},
		})
		carol := tn.createUser(map[string]any{"userName": "carol", "externalId": "e-carol", "active": false})

		tests := []struct {
			filter string
			want   []string
		}{
			{`userName eq "ada@example.com"`, []string{"ada@example.com"}},
			{`userName eq "ADA@EXAMPLE.COM"`, []string{"ada@example.com"}},
			{`UserName Eq "bob@example.com"`, []string{"Bob@Example.com"}},
			{`userName ne "ada@example.com"`, []string{"Bob@Example.com", "carol"}},
			{`userName co "EXAMPLE"`, []string{"ada@example.com", "Bob@Example.com"}},
			{`userName sw "b"`, []string{"Bob@Example.com"}},
			{`userName ew ".com"`, []string{"ada@example.com", "Bob@Example.com"}},
			{`title pr`, []string{"ada@example.com"}},
			{`not (title pr)`, []string{"Bob@Example.com", "carol"}},
			{`userName gt "b"`, []string{"Bob@Example.com", "carol"}},
			{`userName ge "bob@example.com"`, []string{"Bob@Example.com", "carol"}},
			{`userName lt "b"`, []string{"ada@example.com"}},
			{`userName le "bob@example.com"`, []string{"ada@example.com", "Bob@Example.com"}},
			{`externalId eq "e-bob"`, []string{"Bob@Example.com"}},
			{`externalId eq "E-BOB"`, []string{}}, // caseExact
			{`id eq "` + carol + `"`, []string{"carol"}},
			{`active eq false`, []string{"carol"}},
			{`active eq true and userName sw "a"`, []string{"ada@example.com"}},
			{`userName eq "carol" or displayName eq "Bob"`, []string{"Bob@Example.com", "carol"}},
			{`(userName sw "a" or userName sw "b") and not (displayName eq "Bob")`, []string{"ada@example.com"}},
			{`emails[type eq "work"].value eq "bob@work.example"`, []string{"Bob@Example.com"}},
			{`emails[type eq "work"].value eq "ada@home.example"`, []string{}},
			{`emails.value eq "ada@home.example"`, []string{"ada@example.com"}},
			{`emails eq "ada@home.example"`, []string{"ada@example.com"}},
			{`emails[type eq "home" and value co "ada"]`, []string{"ada@example.com"}},
			{`name.familyName eq "lovelace"`, []string{"ada@example.com"}},
			{`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq "100"`, []string{"ada@example.com"}},
			{`meta.resourceType eq "User"`, []string{"ada@example.com", "Bob@Example.com", "carol"}},
			{`meta.created gt "2015-10-10T14:38:21.8617979-07:00"`, []string{"ada@example.com", "Bob@Example.com", "carol"}},
			{`meta.lastModified lt "2015-10-10T14:38:21Z"`, []string{}},
			// Entra's test connection: an unknown GUID is an empty list.
			{`userName eq "5c4b7a3e-93b3-4f6e-b2b1-0b8e7f6a9d21"`, []string{}},
			{`externalId eq "5c4b7a3e-93b3-4f6e-b2b1-0b8e7f6a9d21"`, []string{}},
		}
		for _, tt := range tests {
			t.Run(tt.filter, func(t *testing.T) {
				r := tn.do("GET", "/Users?filter="+urlQuery(tt.filter), nil).want(t, http.StatusOK)
				got := pluck(r.resources(), "userName")
				if diff := cmp.Diff(tt.want, got); diff != "" {
					t.Errorf("filter %s (-want +got):\n%s", tt.filter, diff)
				}
				if r.Body["totalResults"] != float64(len(tt.want)) {
					t.Errorf("totalResults = %v, want %d", r.Body["totalResults"], len(tt.want))
				}
			})
		}

		for _, f := range []string{
			`nope eq "x"`, `name.nope eq "x"`, `userName eq`, `userName eq x`, `(userName eq "x"`,
			`urn:example:unknown:attr eq "x"`, `userName eq "x" and`, `emails[nope eq "x"]`,
		} {
			t.Run("invalid "+f, func(t *testing.T) {
				tn.do("GET", "/Users?filter="+urlQuery(f), nil).wantError(t, http.StatusBadRequest, "invalidFilter")
			})
		}

		t.Run("OneLogin trailing ampersand", func(t *testing.T) {
			r := tn.do("GET", "/Users?filter="+urlQuery(`userName eq "ada@example.com"`)+"&", nil).want(t, http.StatusOK)
			if diff := cmp.Diff([]string{"ada@example.com"}, pluck(r.resources(), "userName")); diff != "" {
				t.Error(diff)
			}
		})
		t.Run("inactive users are still returned", func(t *testing.T) {
			r := tn.do("GET", "/Users/"+carol, nil).want(t, http.StatusOK)
			if r.Body["active"] != false {
				t.Errorf("active = %v", r.Body["active"])
			}
			r = tn.do("GET", "/Users?filter="+urlQuery(`userName eq "carol"`), nil).want(t, http.StatusOK)
			if len(r.resources()) != 1 {
				t.Errorf("inactive user not found by filter: %s", r.Raw)
			}
		})
	})
}

func TestGroupListing(t *testing.T) {
	eachBackend(t, func(t *testing.T, h *harness) {
		tn := h.tenant()
		ada := tn.createUser(user("ada@example.com"))
		tn.createGroup(map[string]any{"displayName": "Eng", "members": []any{map[string]any{"value": ada}}})
		tn.createGroup(map[string]any{"displayName": "Ops"})

		r := tn.do("GET", "/Groups?excludedAttributes=members&filter="+urlQuery(`displayName eq "eng"`), nil).want(t, http.StatusOK)
		res := r.resources()
		if len(res) != 1 || res[0]["displayName"] != "Eng" {
			t.Fatalf("filter by displayName: %s", r.Raw)
		}
		if _, ok := res[0]["members"]; ok {
			t.Errorf("excludedAttributes=members still returns members: %v", res[0])
		}

		r = tn.do("GET", "/Groups?filter="+urlQuery(`displayName eq "Eng"`), nil).want(t, http.StatusOK)
		members, _ := r.resources()[0]["members"].([]any)
		if len(members) != 1 || members[0].(map[string]any)["value"] != ada || members[0].(map[string]any)["display"] != "ada@example.com" {
			t.Errorf("members = %v", members)
		}
		r = tn.do("GET", "/Groups?filter="+urlQuery(`members[value eq "`+ada+`"]`), nil).want(t, http.StatusOK)
		if diff := cmp.Diff([]string{"Eng"}, pluck(r.resources(), "displayName")); diff != "" {
			t.Errorf("filter by member (-want +got):\n%s", diff)
		}

		// A filter on the read-only groups of users sees them too.
		r = tn.do("GET", "/Users?filter="+urlQuery(`groups[display eq "Eng"]`), nil).want(t, http.StatusOK)
		if diff := cmp.Diff([]string{"ada@example.com"}, pluck(r.resources(), "userName")); diff != "" {
			t.Errorf("filter by group (-want +got):\n%s", diff)
		}

		r = tn.do("GET", "/Groups?attributes=displayName", nil).want(t, http.StatusOK)
		for _, g := range r.resources() {
			keys := slices.Sorted(maps.Keys(g))
			if diff := cmp.Diff([]string{"displayName", "id", "schemas"}, keys); diff != "" {
				t.Errorf("attributes=displayName keys (-want +got):\n%s", diff)
			}
		}

		// The user's groups are read-only but shown.
		u := tn.do("GET", "/Users/"+ada, nil).want(t, http.StatusOK)
		gs, _ := u.Body["groups"].([]any)
		if len(gs) != 1 || gs[0].(map[string]any)["display"] != "Eng" {
			t.Errorf("user groups = %v", u.Body["groups"])
		}
	})
}

func TestProjection(t *testing.T) {
	eachBackend(t, func(t *testing.T, h *harness) {
		tn := h.tenant()
		id := tn.createUser(map[string]any{
			"userName": "ada@example.com", "displayName": "Ada", "name": map[string]any{"givenName": "Ada"},
			"emails": []any{map[string]any{"type": "work", "value": "ada@work.example"}},
		})
		tests := []struct {
			query string
			want  []string
		}{
			{"attributes=userName", []string{"id", "schemas", "userName"}},
			{"attributes=userName,name.givenName", []string{"id", "name", "schemas", "userName"}},
			{"attributes=emails.value", []string{"emails", "id", "schemas"}},
			{"excludedAttributes=emails,name", []string{"active", "displayName", "id", "meta", "schemas", "userName"}},
			{"attributes=nope", []string{"id", "schemas"}},
		}
		for _, tt := range tests {
			t.Run(tt.query, func(t *testing.T) {
				for _, p := range []string{"/Users/" + id + "?" + tt.query, "/Users?" + tt.query} {
					r := tn.do("GET", p, nil).want(t, http.StatusOK)
					res := r.Body
					if strings.HasPrefix(p, "/Users?") {
						res = r.resources()[0]
					}
					if diff := cmp.Diff(tt.want, slices.Sorted(maps.Keys(res))); diff != "" {
						t.Errorf("GET %s keys (-want +got):\n%s", p, diff)
					}
				}
			})
		}
	})
}

func TestPaging(t *testing.T) {
	eachBackend(t, func(t *testing.T, h *harness) {
		tn := h.tenant()
		var names []string
		for i := range 7 {
			n := fmt.Sprintf("user%d@example.com", i)
			tn.createUser(user(n))
			names = append(names, n)
		}
		tests := []struct {
			filter string // "" for no filter, else one that matches all
		}{{""}, {`userName ew "@example.com"`}}
		for _, tt := range tests {
			t.Run("filter="+tt.filter, func(t *testing.T) {
				q := ""
				if tt.filter != "" {
					q = "&filter=" + urlQuery(tt.filter)
				}
				var seen []string
				for start := 1; start <= 7; start += 3 {
					r := tn.do("GET", fmt.Sprintf("/Users?startIndex=%d&count=3%s", start, q), nil).want(t, http.StatusOK)
					page := pluck(r.resources(), "userName")
					want := map[string]any{"schemas": []any{listURN}, "totalResults": 7.0, "startIndex": float64(start), "itemsPerPage": float64(len(page))}
					got := map[string]any{"schemas": r.Body["schemas"], "totalResults": r.Body["totalResults"], "startIndex": r.Body["startIndex"], "itemsPerPage": r.Body["itemsPerPage"]}
					if diff := cmp.Diff(want, got); diff != "" {
						t.Errorf("page at %d (-want +got):\n%s", start, diff)
					}
					wantLen := min(3, 7-start+1)
					if len(page) != wantLen {
						t.Errorf("page at %d has %d items, want %d", start, len(page), wantLen)
					}
					seen = append(seen, page...)
					assertIntegers(t, r.Raw, "totalResults", "startIndex", "itemsPerPage")
				}
				if diff := cmp.Diff(names, seen); diff != "" {
					t.Errorf("pages in creation order (-want +got):\n%s", diff)
				}

				r := tn.do("GET", "/Users?count=0"+q, nil).want(t, http.StatusOK)
				if r.Body["totalResults"] != 7.0 || len(r.resources()) != 0 || r.Body["itemsPerPage"] != 0.0 {
					t.Errorf("count=0: %s", r.Raw)
				}
				if _, ok := r.Body["Resources"].([]any); !ok {
					t.Errorf("count=0 Resources is not a list: %s", r.Raw)
				}
				r = tn.do("GET", "/Users?startIndex=50"+q, nil).want(t, http.StatusOK)
				if r.Body["totalResults"] != 7.0 || len(r.resources()) != 0 {
					t.Errorf("beyond the end: %s", r.Raw)
				}
				r = tn.do("GET", "/Users?startIndex=0&count=-5"+q, nil).want(t, http.StatusOK)
				if r.Body["startIndex"] != 1.0 || len(r.resources()) != 0 {
					t.Errorf("startIndex=0 count=-5: %s", r.Raw)
				}
			})
		}
	})
}

// assertIntegers checks that the named top-level numbers are written as
// JSON integers (Okta rejects 1.0).
func assertIntegers(t *testing.T, raw []byte, keys ...string) {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if s := string(m[k]); s == "" || strings.ContainsAny(s, `.eE"`) {
			t.Errorf("%s = %q, want a JSON integer", k, s)
		}
	}
}
