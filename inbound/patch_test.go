package inbound_test

import (
	"net/http"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestPatchUser(t *testing.T) {
	eachBackend(t, func(t *testing.T, h *harness) {
		tn := h.tenant()
		base := func() map[string]any {
			return map[string]any{
				"userName": "ada@example.com", "displayName": "Ada", "title": "Countess",
				"name":   map[string]any{"givenName": "Ada", "familyName": "Lovelace"},
				"emails": []any{map[string]any{"type": "home", "value": "ada@home.example"}},
			}
		}
		tests := []struct {
			name string
			ops  []map[string]any
			want map[string]any // attributes of the result; nil values must be absent
		}{
			{
				name: "Okta deactivate",
				ops:  []map[string]any{op("replace", "", map[string]any{"active": false})},
				want: map[string]any{"active": false},
			},
			{
				name: "Entra capitalised op and string boolean",
				ops:  []map[string]any{op("Replace", "active", "False")},
				want: map[string]any{"active": false},
			},
			{
				name: "Entra string boolean True",
				ops:  []map[string]any{op("Replace", "active", "False"), op("Replace", "active", "True")},
				want: map[string]any{"active": true},
			},
			{
				name: "path-less dotted and URN keys",
				ops: []map[string]any{op("replace", "", map[string]any{
					"name.givenName":                  "Augusta",
					enterpriseURN + ":employeeNumber": "1815",
				})},
				want: map[string]any{
					"name":        map[string]any{"givenName": "Augusta", "familyName": "Lovelace"},
					enterpriseURN: map[string]any{"employeeNumber": "1815"},
				},
			},
			{
				name: "replace on a value filter matching nothing creates the value",
				ops:  []map[string]any{op("replace", `emails[type eq "work"].value`, "ada@work.example")},
				want: map[string]any{"emails": []any{
					map[string]any{"type": "home", "value": "ada@home.example"},
					map[string]any{"type": "work", "value": "ada@work.example"},
				}},
			},
			{
				name: "add on a value filter matching nothing creates the value",
				ops:  []map[string]any{op("add", `phoneNumbers[type eq "mobile"].value`, "+1 555")},
				want: map[string]any{"phoneNumbers": []any{map[string]any{"type": "mobile", "value": "+1 555"}}},
			},
			{
				name: "empty string and null clear",
				ops:  []map[string]any{op("replace", "title", ""), {"op": "replace", "path": "displayName", "value": nil}},
				want: map[string]any{"title": nil, "displayName": nil},
			},
			{
				name: "path-less null clears",
				ops:  []map[string]any{op("replace", "", map[string]any{"title": nil})},
				want: map[string]any{"title": nil, "displayName": "Ada"},
			},
			{
				name: "remove with a path",
				ops:  []map[string]any{op("remove", "name.familyName", nil), op("remove", `emails[type eq "home"]`, nil)},
				want: map[string]any{"name": map[string]any{"givenName": "Ada"}, "emails": nil},
			},
			{
				name: "manager as a bare string",
				ops:  []map[string]any{op("Add", enterpriseURN+":manager", "mgr-1")},
				want: map[string]any{enterpriseURN: map[string]any{"manager": map[string]any{"value": "mgr-1"}}},
			},
			{
				name: "manager as an object",
				ops:  []map[string]any{op("replace", enterpriseURN+":manager", map[string]any{"value": "mgr-2"})},
				want: map[string]any{enterpriseURN: map[string]any{"manager": map[string]any{"value": "mgr-2"}}},
			},
			{
				name: "manager removed by an empty replace",
				ops:  []map[string]any{op("Add", enterpriseURN+":manager", "mgr-1"), op("Replace", enterpriseURN+":manager", "")},
				want: map[string]any{enterpriseURN: nil},
			},
			{
				name: "lower-case Operations key",
				ops:  nil, // sent below as "operations"
				want: map[string]any{"displayName": "Ada"},
			},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				id := tn.createUser(base())
				body := patchOp(tt.ops...)
				if tt.ops == nil {
					body = map[string]any{"schemas": []string{patchURN}, "operations": []any{}}
				}
				r := tn.do("PATCH", "/Users/"+id, body).want(t, http.StatusOK)
				for k, want := range tt.want {
					got, ok := r.Body[k]
					if want == nil {
						if ok {
							t.Errorf("%s = %v, want it absent", k, got)
						}
						continue
					}
					if diff := cmp.Diff(want, got); diff != "" {
						t.Errorf("%s (-want +got):\n%s", k, diff)
					}
				}
				// The stored resource says the same as the answer.
				again := tn.do("GET", "/Users/"+id, nil).want(t, http.StatusOK)
				if diff := cmp.Diff(r.Body, again.Body); diff != "" {
					t.Errorf("GET after PATCH differs (-patch +get):\n%s", diff)
				}
				tn.do("DELETE", "/Users/"+id, nil).want(t, http.StatusNoContent)
			})
		}

		t.Run("deactivation reaches the row", func(t *testing.T) {
			id := tn.createUser(user("deact@example.com"))
			tn.do("PATCH", "/Users/"+id, patchOp(op("replace", "", map[string]any{"active": false}))).want(t, http.StatusOK)
			if row := tn.dirUser(id); row.Active || row.RawStatus != "inactive" {
				t.Errorf("row active=%v status=%q", row.Active, row.RawStatus)
			}
		})
		t.Run("empty Operations is a no-op", func(t *testing.T) {
			id := tn.createUser(user("noop@example.com"))
			before := len(tn.outbox())
			r := tn.do("PATCH", "/Users/"+id, patchOp()).want(t, http.StatusOK)
			if r.Header.Get("ETag") != `W/"1"` {
				t.Errorf("ETag after empty PATCH = %q, want W/\"1\"", r.Header.Get("ETag"))
			}
			if after := len(tn.outbox()); after != before {
				t.Errorf("empty PATCH queued work: %d rows, want %d", after, before)
			}
		})
		t.Run("groups is read-only", func(t *testing.T) {
			id := tn.createUser(user("ro@example.com"))
			for _, o := range []string{"add", "replace", "remove"} {
				tn.do("PATCH", "/Users/"+id, patchOp(op(o, "groups", []any{map[string]any{"value": "g"}}))).
					wantError(t, http.StatusBadRequest, "mutability")
			}
		})
	})
}

func TestPatchGroupMembers(t *testing.T) {
	eachBackend(t, func(t *testing.T, h *harness) {
		tn := h.tenant()
		ids := make([]string, 4)
		for i := range ids {
			ids[i] = tn.createUser(user(string(rune('a'+i)) + "@example.com"))
		}
		members := func(vs ...string) []any {
			out := []any{}
			for _, v := range vs {
				out = append(out, map[string]any{"value": v})
			}
			return out
		}
		tests := []struct {
			name    string
			initial []string
			ops     []map[string]any
			want    []string
		}{
			{"add", nil, []map[string]any{op("add", "members", members(ids[0], ids[1]))}, []string{ids[0], ids[1]}},
			{"add twice is once", []string{ids[0]}, []map[string]any{op("add", "members", members(ids[0]))}, []string{ids[0]}},
			{
				"Entra removal by value list", []string{ids[0], ids[1]},
				[]map[string]any{op("Remove", "members", members(ids[0]))}, []string{ids[1]},
			},
			{
				"Okta remove by filter and add in one request", []string{ids[0], ids[1]},
				[]map[string]any{op("remove", `members[value eq "`+ids[0]+`"]`, nil), op("add", "members", members(ids[2]))},
				[]string{ids[1], ids[2]},
			},
			{"full replace", []string{ids[0], ids[1]}, []map[string]any{op("replace", "members", members(ids[2], ids[3]))}, []string{ids[2], ids[3]}},
			{"replace with nothing", []string{ids[0]}, []map[string]any{op("replace", "members", []any{})}, []string{}},
			{"remove all", []string{ids[0], ids[1]}, []map[string]any{op("remove", "members", nil)}, []string{}},
			{
				"Okta rename op carrying an id", []string{ids[0]},
				[]map[string]any{op("replace", "", map[string]any{"id": "abc", "displayName": "Renamed"})},
				[]string{ids[0]},
			},
			{"unknown member ids are ignored", nil, []map[string]any{op("add", "members", members("nope", ids[0]))}, []string{ids[0]}},
		}
		for i, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				gid := tn.createGroup(map[string]any{"displayName": "G" + string(rune('A'+i)), "members": members(tt.initial...)})
				pr := tn.do("PATCH", "/Groups/"+gid, patchOp(tt.ops...)).want(t, http.StatusNoContent)
				g := tn.do("GET", "/Groups/"+gid, nil).want(t, http.StatusOK)
				// The version names the whole group, members included.
				wantVersion := `W/"2"`
				if tt.name == "add twice is once" {
					wantVersion = `W/"1"`
				}
				if pr.Header.Get("ETag") != wantVersion || g.Body["meta"].(map[string]any)["version"] != wantVersion {
					t.Errorf("ETag %q, meta.version %v, want %s", pr.Header.Get("ETag"), g.Body["meta"], wantVersion)
				}
				var got []string
				list, _ := g.Body["members"].([]any)
				for _, m := range list {
					got = append(got, m.(map[string]any)["value"].(string))
				}
				slices.Sort(got)
				want := slices.Sorted(slices.Values(tt.want))
				if diff := cmp.Diff(want, got, cmpEmptyNil); diff != "" {
					t.Errorf("members (-want +got):\n%s", diff)
				}
				if tt.name == "Okta rename op carrying an id" {
					if g.Body["displayName"] != "Renamed" || g.Body["id"] != gid {
						t.Errorf("rename: %s", g.Raw)
					}
				}
			})
		}
		t.Run("empty Operations", func(t *testing.T) {
			gid := tn.createGroup(map[string]any{"displayName": "Quiet"})
			tn.do("PATCH", "/Groups/"+gid, patchOp()).want(t, http.StatusNoContent)
		})
		t.Run("attributes asks for the group back", func(t *testing.T) {
			gid := tn.createGroup(map[string]any{"displayName": "Loud"})
			r := tn.do("PATCH", "/Groups/"+gid+"?attributes=displayName", patchOp(op("replace", "displayName", "Louder"))).want(t, http.StatusOK)
			if r.Body["displayName"] != "Louder" {
				t.Errorf("body %s", r.Raw)
			}
		})
	})
}
