package inbound_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/scimsync/scimsync/store"
)

func TestStatusCodesAndContentType(t *testing.T) {
	eachBackend(t, func(t *testing.T, h *harness) {
		tn := h.tenant()

		created := tn.do("POST", "/Users", map[string]any{"schemas": []string{userURN}, "userName": "ada@example.com"}).want(t, http.StatusCreated)
		id := created.id()
		if got, want := created.Header.Get("Location"), h.scim.PublicURL+"/scim/v2/Users/"+id; got != want {
			t.Errorf("Location %q, want %q", got, want)
		}
		if got := created.Header.Get("ETag"); got != `W/"1"` {
			t.Errorf("ETag %q, want W/\"1\"", got)
		}
		meta, _ := created.Body["meta"].(map[string]any)
		if meta["version"] != `W/"1"` || meta["location"] != created.Header.Get("Location") || meta["resourceType"] != "User" {
			t.Errorf("meta = %v", meta)
		}

		gid := tn.do("POST", "/Groups", map[string]any{"schemas": []string{groupURN}, "displayName": "Eng"}).want(t, http.StatusCreated)
		if gid.Header.Get("Location") == "" || gid.Header.Get("ETag") == "" {
			t.Errorf("group create headers: %v", gid.Header)
		}

		patched := tn.do("PATCH", "/Users/"+id, patchOp(op("replace", "displayName", "Ada"))).want(t, http.StatusOK)
		if patched.Body["displayName"] != "Ada" {
			t.Errorf("user PATCH body: %s", patched.Raw)
		}
		gp := tn.do("PATCH", "/Groups/"+gid.id(), patchOp(op("replace", "displayName", "Engineering"))).want(t, http.StatusNoContent)
		if len(gp.Raw) != 0 {
			t.Errorf("group PATCH 204 has a body: %s", gp.Raw)
		}
		tn.do("DELETE", "/Groups/"+gid.id(), nil).want(t, http.StatusNoContent)
		tn.do("DELETE", "/Users/"+id, nil).want(t, http.StatusNoContent)

		// Okta posts as application/json.
		r := tn.send(request{method: "POST", path: "/Users", body: `{"userName":"json@example.com"}`,
			header: map[string]string{"Content-Type": "application/json", "Accept": "application/json"}})
		r.want(t, http.StatusCreated)

		// Every answer, errors included, is application/scim+json.
		for _, rq := range []request{
			{method: "GET", path: "/Users"},
			{method: "GET", path: "/Users/nope"},
			{method: "GET", path: "/Nope"},
			{method: "PUT", path: "/Users", body: "{}"},
			{method: "GET", path: "/Users", header: map[string]string{"Authorization": ""}},
		} {
			r := tn.send(rq)
			if ct := r.Header.Get("Content-Type"); ct != scimJSON {
				t.Errorf("%s %s: Content-Type %q (status %d)", rq.method, rq.path, ct, r.Status)
			}
		}
		tn.send(request{method: "PUT", path: "/Users", body: "{}"}).wantError(t, http.StatusMethodNotAllowed, "")
	})
}

func TestDiscovery(t *testing.T) {
	eachBackend(t, func(t *testing.T, h *harness) {
		tn := h.tenant()
		spc := tn.do("GET", "/ServiceProviderConfig", nil).want(t, http.StatusOK).Body
		for _, k := range []string{"patch", "bulk", "filter", "changePassword", "sort", "etag", "authenticationSchemes"} {
			if _, ok := spc[k]; !ok {
				t.Errorf("ServiceProviderConfig lacks %s", k)
			}
		}
		if spc["patch"].(map[string]any)["supported"] != true || spc["etag"].(map[string]any)["supported"] != true {
			t.Errorf("ServiceProviderConfig: %v", spc)
		}

		rts := tn.do("GET", "/ResourceTypes", nil).want(t, http.StatusOK)
		if diff := cmp.Diff([]string{"User", "Group"}, pluck(rts.resources(), "id")); diff != "" {
			t.Errorf("ResourceTypes (-want +got):\n%s", diff)
		}
		if rts.Body["totalResults"] != 2.0 {
			t.Errorf("ResourceTypes totalResults = %v", rts.Body["totalResults"])
		}
		rt := tn.do("GET", "/ResourceTypes/User", nil).want(t, http.StatusOK).Body
		if rt["endpoint"] != "/Users" || rt["schema"] != userURN {
			t.Errorf("ResourceTypes/User = %v", rt)
		}
		exts, _ := rt["schemaExtensions"].([]any)
		if len(exts) != 1 || exts[0].(map[string]any)["schema"] != enterpriseURN {
			t.Errorf("ResourceTypes/User extensions = %v", exts)
		}
		tn.do("GET", "/ResourceTypes/Group", nil).want(t, http.StatusOK)

		schemas := tn.do("GET", "/Schemas", nil).want(t, http.StatusOK)
		if diff := cmp.Diff([]string{userURN, enterpriseURN, groupURN}, pluck(schemas.resources(), "id")); diff != "" {
			t.Errorf("Schemas (-want +got):\n%s", diff)
		}
		for _, urn := range []string{userURN, enterpriseURN, groupURN} {
			sc := tn.do("GET", "/Schemas/"+urn, nil).want(t, http.StatusOK).Body
			if sc["id"] != urn {
				t.Errorf("Schemas/%s id = %v", urn, sc["id"])
			}
			if attrs, _ := sc["attributes"].([]any); len(attrs) == 0 {
				t.Errorf("Schemas/%s has no attributes", urn)
			}
		}

		for _, p := range []string{"/ResourceTypes/Widget", "/Schemas/urn:example:nope", "/Widgets", "/Users/x/y"} {
			tn.do("GET", p, nil).wantError(t, http.StatusNotFound, "")
		}
	})
}

func TestAuthentication(t *testing.T) {
	eachBackend(t, func(t *testing.T, h *harness) {
		ctx := context.Background()
		tn := h.tenant()
		revoked, revokedID := h.newToken(tn.org.ID, nil)
		if err := h.st.RevokeSCIMToken(ctx, tn.org.ID, revokedID); err != nil {
			t.Fatal(err)
		}
		past := h.clock.Now().Add(-time.Hour)
		expired, _ := h.newToken(tn.org.ID, &past)

		off := h.tenant()
		disabled := false
		if _, err := h.st.UpdateOrg(ctx, off.org.ID, store.OrgPatch{SCIMEnabled: &disabled}); err != nil {
			t.Fatal(err)
		}

		tests := []struct {
			name   string
			auth   string
			status int
		}{
			{"missing", "", http.StatusUnauthorized},
			{"not bearer", "non-token", http.StatusUnauthorized},
			{"basic", "Basic " + tn.token, http.StatusUnauthorized},
			{"unknown", "Bearer sst_unknown", http.StatusUnauthorized},
			{"revoked", "Bearer " + revoked, http.StatusUnauthorized},
			{"expired", "Bearer " + expired, http.StatusUnauthorized},
			{"scim off", "Bearer " + off.token, http.StatusForbidden},
			{"ok", "Bearer " + tn.token, http.StatusOK},
			{"ok lower-case scheme", "bearer " + tn.token, http.StatusOK},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				for _, p := range []string{"/Users", "/ServiceProviderConfig"} {
					r := tn.send(request{method: "GET", path: p, header: map[string]string{"Authorization": tt.auth}})
					if tt.status == http.StatusOK {
						r.want(t, http.StatusOK)
						continue
					}
					r.wantError(t, tt.status, "")
				}
			})
		}
	})
}

func TestErrors(t *testing.T) {
	eachBackend(t, func(t *testing.T, h *harness) {
		tn := h.tenant()
		id := tn.createUser(user("ada@example.com"))
		gid := tn.createGroup(map[string]any{"displayName": "Eng"})

		tests := []struct {
			name     string
			rq       request
			status   int
			scimType string
		}{
			{"bad JSON", request{method: "POST", path: "/Users", body: `{"userName":`}, 400, "invalidSyntax"},
			{"trailing data", request{method: "POST", path: "/Users", body: `{"userName":"x"} {}`}, 400, "invalidSyntax"},
			{"empty body", request{method: "POST", path: "/Users", body: ``}, 400, "invalidSyntax"},
			{"array body", request{method: "POST", path: "/Users", body: `[]`}, 400, "invalidSyntax"},
			{"null body", request{method: "POST", path: "/Users", body: `null`}, 400, "invalidSyntax"},
			{"missing userName", request{method: "POST", path: "/Users", body: map[string]any{"schemas": []string{userURN}, "displayName": "x"}}, 400, "invalidValue"},
			{"blank userName", request{method: "POST", path: "/Users", body: map[string]any{"userName": "  "}}, 400, "invalidValue"},
			{"userName not a string", request{method: "POST", path: "/Users", body: map[string]any{"userName": 7}}, 400, "invalidValue"},
			{"missing displayName", request{method: "POST", path: "/Groups", body: map[string]any{"members": []any{}}}, 400, "invalidValue"},
			{"bad path", request{method: "PATCH", path: "/Users/" + id, body: patchOp(op("replace", "nope[", "x"))}, 400, "invalidPath"},
			{"unknown attribute path", request{method: "PATCH", path: "/Users/" + id, body: patchOp(op("replace", "nope", "x"))}, 400, "invalidPath"},
			{"unknown op", request{method: "PATCH", path: "/Users/" + id, body: patchOp(op("merge", "displayName", "x"))}, 400, "invalidSyntax"},
			{"no op", request{method: "PATCH", path: "/Users/" + id, body: patchOp(map[string]any{"path": "displayName"})}, 400, "invalidSyntax"},
			{"operations not a list", request{method: "PATCH", path: "/Users/" + id, body: map[string]any{"Operations": "x"}}, 400, "invalidSyntax"},
			{"remove without path", request{method: "PATCH", path: "/Users/" + id, body: patchOp(op("remove", "", nil))}, 400, "noTarget"},
			{"group bad path", request{method: "PATCH", path: "/Groups/" + gid, body: patchOp(op("add", "members[value", "x"))}, 400, "invalidPath"},
			{"bad filter", request{method: "GET", path: "/Users?filter=userName+zz+%22x%22"}, 400, "invalidFilter"},
			{"bad startIndex", request{method: "GET", path: "/Users?startIndex=x"}, 400, "invalidValue"},
			{"bad count", request{method: "GET", path: "/Users?count=x"}, 400, "invalidValue"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				tn.send(tt.rq).wantError(t, tt.status, tt.scimType)
			})
		}

		t.Run("body over 1 MiB", func(t *testing.T) {
			big := `{"userName":"big@example.com","displayName":"` + strings.Repeat("a", 1<<20) + `"}`
			tn.do("POST", "/Users", big).wantError(t, http.StatusRequestEntityTooLarge, "")
			tn.do("PUT", "/Users/"+id, big).wantError(t, http.StatusRequestEntityTooLarge, "")
			tn.do("PATCH", "/Groups/"+gid, `{"Operations":[{"op":"add","path":"displayName","value":"`+strings.Repeat("a", 1<<20)+`"}]}`).
				wantError(t, http.StatusRequestEntityTooLarge, "")
		})
	})
}

func TestNotFoundAndTenantIsolation(t *testing.T) {
	eachBackend(t, func(t *testing.T, h *harness) {
		mine, other := h.tenant(), h.tenant()
		theirUser := other.createUser(user("shared@example.com"))
		theirGroup := other.createGroup(map[string]any{"displayName": "Shared"})

		for _, id := range []struct{ kind, id string }{
			{"Users", "00919288221112222"}, {"Users", theirUser},
			{"Groups", "00919288221112222"}, {"Groups", theirGroup},
		} {
			body := map[string]any{"userName": "x@example.com", "displayName": "X"}
			for _, rq := range []request{
				{method: "GET", path: "/" + id.kind + "/" + id.id},
				{method: "PUT", path: "/" + id.kind + "/" + id.id, body: body},
				{method: "PATCH", path: "/" + id.kind + "/" + id.id, body: patchOp(op("replace", "displayName", "Y"))},
				{method: "DELETE", path: "/" + id.kind + "/" + id.id},
			} {
				t.Run(rq.method+" "+rq.path, func(t *testing.T) {
					mine.send(rq).wantError(t, http.StatusNotFound, "")
				})
			}
		}
		// Filters never reach across either.
		for _, f := range []string{`id eq "` + theirUser + `"`, `userName eq "shared@example.com"`, `userName pr`} {
			r := mine.do("GET", "/Users?filter="+urlQuery(f), nil).want(t, http.StatusOK)
			if r.Body["totalResults"] != 0.0 {
				t.Errorf("filter %s sees another organization: %s", f, r.Raw)
			}
		}
		// The other organization's data is untouched.
		other.do("GET", "/Users/"+theirUser, nil).want(t, http.StatusOK)
		other.do("GET", "/Groups/"+theirGroup, nil).want(t, http.StatusOK)
	})
}

func TestUniqueness(t *testing.T) {
	eachBackend(t, func(t *testing.T, h *harness) {
		a, b := h.tenant(), h.tenant()
		a.createUser(map[string]any{"userName": "ada@example.com", "externalId": "ext-1"})

		a.do("POST", "/Users", map[string]any{"userName": "ADA@example.com"}).wantError(t, http.StatusConflict, "uniqueness")
		a.do("POST", "/Users", map[string]any{"userName": "other@example.com", "externalId": "ext-1"}).wantError(t, http.StatusConflict, "uniqueness")
		// A rename onto a taken userName conflicts too.
		second := a.createUser(user("bob@example.com"))
		a.do("PATCH", "/Users/"+second, patchOp(op("replace", "userName", "ada@example.com"))).wantError(t, http.StatusConflict, "uniqueness")
		a.do("PUT", "/Users/"+second, map[string]any{"userName": "bob@example.com", "externalId": "ext-1"}).wantError(t, http.StatusConflict, "uniqueness")

		// Another organization may use the same names.
		b.createUser(map[string]any{"userName": "ada@example.com", "externalId": "ext-1"})

		a.createGroup(map[string]any{"displayName": "Eng"})
		a.do("POST", "/Groups", map[string]any{"displayName": "eng"}).wantError(t, http.StatusConflict, "uniqueness")
		b.createGroup(map[string]any{"displayName": "Eng"})
	})
}

func TestIfMatch(t *testing.T) {
	eachBackend(t, func(t *testing.T, h *harness) {
		tn := h.tenant()
		id := tn.createUser(user("ada@example.com"))
		gid := tn.createGroup(map[string]any{"displayName": "Eng"})

		tests := []struct {
			name    string
			ifMatch string
			status  int
		}{
			{"stale", `W/"7"`, http.StatusPreconditionFailed},
			{"garbage", `"abc"`, http.StatusPreconditionFailed},
			{"weak match", `W/"1"`, http.StatusOK},
			{"star", `*`, http.StatusOK},
			{"list", `W/"9", W/"3"`, http.StatusOK}, // version 3 after the two writes above
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				r := tn.send(request{method: "PATCH", path: "/Users/" + id, body: patchOp(op("replace", "displayName", tt.name)),
					header: map[string]string{"If-Match": tt.ifMatch}})
				if tt.status != http.StatusOK {
					r.wantError(t, tt.status, "")
					return
				}
				r.want(t, http.StatusOK)
				if r.Header.Get("ETag") != r.Body["meta"].(map[string]any)["version"] {
					t.Errorf("ETag %q differs from meta.version %v", r.Header.Get("ETag"), r.Body["meta"])
				}
			})
		}
		tn.send(request{method: "PUT", path: "/Users/" + id, body: user("ada@example.com"), header: map[string]string{"If-Match": `W/"1"`}}).
			wantError(t, http.StatusPreconditionFailed, "")
		tn.send(request{method: "DELETE", path: "/Users/" + id, header: map[string]string{"If-Match": `W/"1"`}}).
			wantError(t, http.StatusPreconditionFailed, "")
		tn.send(request{method: "PATCH", path: "/Groups/" + gid, body: patchOp(op("replace", "displayName", "x")), header: map[string]string{"If-Match": `W/"2"`}}).
			wantError(t, http.StatusPreconditionFailed, "")
		tn.send(request{method: "PATCH", path: "/Groups/" + gid, body: patchOp(op("replace", "displayName", "x")), header: map[string]string{"If-Match": `W/"1"`}}).
			want(t, http.StatusNoContent)
		tn.send(request{method: "DELETE", path: "/Groups/" + gid, header: map[string]string{"If-Match": `W/"2"`}}).
			want(t, http.StatusNoContent)
	})
}
