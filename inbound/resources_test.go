package inbound_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestEnterpriseExtensionRoundTrip(t *testing.T) {
	eachBackend(t, func(t *testing.T, h *harness) {
		tn := h.tenant()
		ext := map[string]any{
			"employeeNumber": "701984", "costCenter": "4130", "organization": "Universal Studios",
			"division": "Theme Park", "department": "Tour Operations",
			"manager": map[string]any{"value": "26118915-6090-4610-87e4-49d8ca9f808d"},
		}
		r := tn.do("POST", "/Users", map[string]any{
			"schemas":  []string{userURN, enterpriseURN},
			"userName": "bjensen@example.com", enterpriseURN: ext,
		}).want(t, http.StatusCreated)
		if diff := cmp.Diff(ext, r.Body[enterpriseURN]); diff != "" {
			t.Errorf("POST answer (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]any{userURN, enterpriseURN}, r.Body["schemas"]); diff != "" {
			t.Errorf("schemas (-want +got):\n%s", diff)
		}
		got := tn.do("GET", "/Users/"+r.id(), nil).want(t, http.StatusOK)
		if diff := cmp.Diff(ext, got.Body[enterpriseURN]); diff != "" {
			t.Errorf("GET (-want +got):\n%s", diff)
		}
		// PUT without the extension drops it, and its schema URN.
		put := tn.do("PUT", "/Users/"+r.id(), map[string]any{"schemas": []string{userURN}, "userName": "bjensen@example.com"}).want(t, http.StatusOK)
		if _, ok := put.Body[enterpriseURN]; ok {
			t.Errorf("PUT kept the extension: %s", put.Raw)
		}
		if diff := cmp.Diff([]any{userURN}, put.Body["schemas"]); diff != "" {
			t.Errorf("schemas after PUT (-want +got):\n%s", diff)
		}
	})
}

func TestPasswordNeverKept(t *testing.T) {
	eachBackend(t, func(t *testing.T, h *harness) {
		tn := h.tenant()
		const pw = "S3cret-Pl4ceholder-1mz050nq"
		r := tn.do("POST", "/Users", map[string]any{
			"schemas": []string{userURN}, "userName": "okta@example.com", "externalId": "00ujl29u0le5T6Aj10h7",
			"password": pw, "groups": []any{}, "active": true,
		}).want(t, http.StatusCreated)
		id := r.id()
		tn.do("PUT", "/Users/"+id, map[string]any{"userName": "okta@example.com", "password": pw + "2"}).want(t, http.StatusOK)
		tn.do("PATCH", "/Users/"+id, patchOp(op("replace", "password", pw+"3"))).want(t, http.StatusOK)
		tn.do("PATCH", "/Users/"+id, patchOp(op("replace", "", map[string]any{"password": pw + "4"}))).want(t, http.StatusOK)
		tn.do("GET", "/Users/"+id+"?attributes=password", nil).want(t, http.StatusOK)
		list := tn.do("GET", "/Users?filter="+urlQuery(`userName eq "okta@example.com"`), nil).want(t, http.StatusOK)

		for _, b := range [][]byte{r.Raw, list.Raw, tn.do("GET", "/Users/"+id, nil).Raw} {
			if strings.Contains(string(b), "password") || strings.Contains(string(b), pw) {
				t.Errorf("a response shows the password: %s", b)
			}
		}
		if row := tn.dirUser(id); strings.Contains(row.Attributes, "password") || strings.Contains(row.Attributes, pw) {
			t.Errorf("the row keeps the password: %s", row.Attributes)
		}
		if logs := h.logs.String(); strings.Contains(logs, pw) {
			t.Errorf("the log shows the password:\n%s", logs)
		}
	})
}

func TestUserCreateQuirks(t *testing.T) {
	eachBackend(t, func(t *testing.T, h *harness) {
		tn := h.tenant()
		t.Run("groups on POST are ignored", func(t *testing.T) {
			gid := tn.createGroup(map[string]any{"displayName": "Sneaky"})
			r := tn.do("POST", "/Users", map[string]any{
				"userName": "g@example.com", "groups": []any{map[string]any{"value": gid, "display": "Sneaky"}},
			}).want(t, http.StatusCreated)
			if _, ok := r.Body["groups"]; ok {
				t.Errorf("groups were linked: %s", r.Raw)
			}
			if row := tn.dirUser(r.id()); strings.Contains(row.Attributes, "groups") {
				t.Errorf("row keeps groups: %s", row.Attributes)
			}
		})
		t.Run("Entra nulls are absent", func(t *testing.T) {
			r := tn.do("POST", "/Users", map[string]any{
				"schemas": []string{userURN, enterpriseURN}, "externalId": "e-null", "userName": "null@example.com",
				"active": true, "title": nil, "displayName": nil, "roles": []any{},
				"meta":        map[string]any{"resourceType": "User"},
				"name":        map[string]any{"givenName": "N", "familyName": nil, "formatted": nil},
				"addresses":   []any{map[string]any{"type": "work", "streetAddress": nil, "locality": "Paris", "postalCode": nil}},
				"emails":      []any{map[string]any{"primary": true, "type": "work", "value": "null@work.example"}},
				enterpriseURN: map[string]any{"department": nil, "manager": nil},
			}).want(t, http.StatusCreated)
			want := map[string]any{
				"schemas": []any{userURN}, "id": r.id(), "externalId": "e-null", "userName": "null@example.com", "active": true,
				"name":      map[string]any{"givenName": "N"},
				"addresses": []any{map[string]any{"type": "work", "locality": "Paris"}},
				"emails":    []any{map[string]any{"primary": true, "type": "work", "value": "null@work.example"}},
			}
			got := r.Body
			delete(got, "meta")
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("answer (-want +got):\n%s", diff)
			}
		})
		t.Run("OneLogin legacy URNs", func(t *testing.T) {
			id := tn.createUser(user("legacy@example.com"))
			r := tn.do("PUT", "/Users/"+id, map[string]any{
				"schemas":  []string{"urn:scim:schemas:core:2.0", "urn:scim:schemas:extension:enterprise:2.0"},
				"userName": "legacy@example.com", "name": map[string]any{"givenName": "Leg", "familyName": "Acy"},
				"urn:scim:schemas:extension:enterprise:2.0": map[string]any{"department": "History"},
			}).want(t, http.StatusOK)
			if diff := cmp.Diff(map[string]any{"department": "History"}, r.Body[enterpriseURN]); diff != "" {
				t.Errorf("extension (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]any{userURN, enterpriseURN}, r.Body["schemas"]); diff != "" {
				t.Errorf("schemas (-want +got):\n%s", diff)
			}
			if row := tn.dirUser(id); row.GivenName != "Leg" || row.FamilyName != "Acy" {
				t.Errorf("row names %q %q", row.GivenName, row.FamilyName)
			}
		})
		t.Run("PUT replaces the whole resource", func(t *testing.T) {
			id := tn.createUser(map[string]any{"userName": "put@example.com", "title": "T", "displayName": "D"})
			r := tn.do("PUT", "/Users/"+id, map[string]any{"userName": "put@example.com", "displayName": "E", "id": "ignored"}).want(t, http.StatusOK)
			if _, ok := r.Body["title"]; ok || r.Body["displayName"] != "E" || r.id() != id {
				t.Errorf("PUT answer %s", r.Raw)
			}
		})
	})
}

func TestMemberEmail(t *testing.T) {
	eachBackend(t, func(t *testing.T, h *harness) {
		tn := h.tenant()
		email := func(typ, value string, primary bool) map[string]any {
			m := map[string]any{"value": value}
			if typ != "" {
				m["type"] = typ
			}
			if primary {
				m["primary"] = true
			}
			return m
		}
		tests := []struct {
			name     string
			userName string
			emails   []any
			want     string
		}{
			{"primary wins", "u1", []any{email("work", "w@x", false), email("home", "p@x", true)}, "p@x"},
			{"else first work", "u2", []any{email("home", "h@x", false), email("work", "w1@x", false), email("work", "w2@x", false)}, "w1@x"},
			{"else first", "u3", []any{email("home", "h1@x", false), email("other", "o@x", false)}, "h1@x"},
			{"else userName when an address", "u4@example.com", nil, "u4@example.com"},
			{"else nothing", "u5", nil, ""},
			{"primary as a string", "u6", []any{email("work", "w@x", false), map[string]any{"value": "p@x", "primary": "True"}}, "p@x"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				body := user(tt.userName)
				if tt.emails != nil {
					body["emails"] = tt.emails
				}
				id := tn.createUser(body)
				if got := tn.dirUser(id).Email; got != tt.want {
					t.Errorf("Email = %q, want %q", got, tt.want)
				}
			})
		}
		t.Run("follows the IdP", func(t *testing.T) {
			id := tn.createUser(map[string]any{"userName": "f@example.com", "emails": []any{email("work", "old@x", true)}})
			tn.do("PATCH", "/Users/"+id, patchOp(op("replace", `emails[type eq "work"].value`, "new@x"))).want(t, http.StatusOK)
			if got := tn.dirUser(id).Email; got != "new@x" {
				t.Errorf("Email = %q, want new@x", got)
			}
		})
	})
}

func TestGroupSemantics(t *testing.T) {
	eachBackend(t, func(t *testing.T, h *harness) {
		ctx := context.Background()
		mine, other := h.tenant(), h.tenant()
		const msURN = "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"
		r := mine.do("POST", "/Groups", map[string]any{
			"schemas": []string{groupURN, msURN}, "externalId": "e-g", "displayName": "Entra Group",
			"meta": map[string]any{"resourceType": "Group"},
		}).want(t, http.StatusCreated)
		gid := r.id()
		if r.Body["displayName"] != "Entra Group" || r.Body["externalId"] != "e-g" {
			t.Errorf("answer %s", r.Raw)
		}
		if m, ok := r.Body["members"].([]any); ok && len(m) != 0 {
			t.Errorf("new group has members: %v", m)
		}

		mineUser := mine.createUser(user("me@example.com"))
		theirUser := other.createUser(user("them@example.com"))
		mine.do("PATCH", "/Groups/"+gid, patchOp(op("Add", "members", []any{
			map[string]any{"value": mineUser}, map[string]any{"value": theirUser},
		}))).want(t, http.StatusNoContent)
		refs, err := h.st.DirectoryGroupMembers(ctx, mine.org.ID, gid)
		if err != nil {
			t.Fatal(err)
		}
		if len(refs) != 1 || refs[0].UserID != mineUser {
			t.Errorf("members %+v, want only %s", refs, mineUser)
		}
		theirs, err := h.st.DirectoryGroupsOfUsers(ctx, other.org.ID, theirUser)
		if err != nil || len(theirs) != 0 {
			t.Errorf("another organization's user was linked: %+v %v", theirs, err)
		}
		// The same holds on create and PUT.
		g2 := mine.createGroup(map[string]any{"displayName": "Mixed", "members": []any{map[string]any{"value": theirUser}}})
		mine.do("PUT", "/Groups/"+g2, map[string]any{"displayName": "Mixed", "members": []any{map[string]any{"value": theirUser}}}).want(t, http.StatusOK)
		if refs, _ := h.st.DirectoryGroupMembers(ctx, mine.org.ID, g2); len(refs) != 0 {
			t.Errorf("members %+v, want none", refs)
		}

		// displayName is unique per organization, also on rename.
		mine.do("PATCH", "/Groups/"+g2, patchOp(op("replace", "displayName", "ENTRA GROUP"))).wantError(t, http.StatusConflict, "uniqueness")
		other.createGroup(map[string]any{"displayName": "Entra Group"})
	})
}
