package patch_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/scimsync/scimsync/inbound/patch"
	"github.com/scimsync/scimsync/inbound/schema"

	"github.com/scimsync/scimsync/internal/elimity"
)

func resourceType(t testing.TB, path string) *schema.ResourceType {
	t.Helper()
	endpoint, _, _ := strings.Cut(strings.TrimPrefix(path, "/"), "/")
	endpoint, _, _ = strings.Cut(endpoint, "?")
	rt, ok := schema.LookupResourceType(endpoint)
	if !ok {
		t.Fatalf("no resource type for %s", path)
	}
	return rt
}

// A POST or PUT body normalises to what the IdP expects back, less the
// password, which is written but never returned.
func TestFixtureBodies(t *testing.T) {
	seen := 0
	for name, fx := range elimity.Load(t) {
		if fx.Method != "POST" && fx.Method != "PUT" {
			continue
		}
		seen++
		t.Run(name, func(t *testing.T) {
			rt := resourceType(t, fx.Path)
			got, err := patch.Normalize(decode(t, string(fx.Request)), rt)
			if err != nil {
				t.Fatalf("Normalize(request): %v", err)
			}
			delete(got, "password")
			want, err := patch.Normalize(fx.Response, rt)
			if err != nil {
				t.Fatalf("Normalize(response): %v", err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("(-response +request):\n%s", diff)
			}
		})
	}
	if seen == 0 {
		t.Error("no POST or PUT among the fixtures")
	}
}

// Every PATCH request, applied to the resource the same IdP showed
// before, gives the resource its documentation shows after.
func TestFixturePatches(t *testing.T) {
	all := elimity.Load(t)
	const (
		oktaUserID  = "23a35c27-23d3-4c03-b4c5-6443c09e7173"
		oktaOtherID = "89bb1940-b905-4575-9e7f-6f887cfb368e"
	)
	tests := []struct {
		fixture, before string
		// want is a merge patch on before. The expectation is spelled out
		// where the recorded response is not a faithful "after".
		want func(t *testing.T, before, response map[string]any) map[string]any
	}{
		{
			fixture: "okta/update_user_patch.json",
			before:  "okta/retrieve_user.json",
			want: func(t *testing.T, before, response map[string]any) map[string]any {
				before["active"] = response["active"]
				return before
			},
		},
		{
			// The recorded response says "Test SCIMv20", a slip in Okta's
			// documentation: the request renames the group "Test SCIMv2".
			fixture: "okta/update_group_name.json",
			before:  "okta/retrieve_group.json",
			want: func(t *testing.T, before, _ map[string]any) map[string]any {
				before["displayName"] = "Test SCIMv2"
				return before
			},
		},
		{
			fixture: "okta/update_group_membership.json",
			before:  "okta/retrieve_group.json",
			want: func(t *testing.T, before, _ map[string]any) map[string]any {
				before["members"] = []any{
					map[string]any{"value": oktaUserID, "display": "test.user@okta.local"},
					map[string]any{"value": oktaOtherID, "display": "test.user@okta.local"},
				}
				return before
			},
		},
		{
			// The response's name.formatted is derived by that server;
			// everything the request changed must match it.
			fixture: "azuread/update_user.json",
			before:  "azuread/get_user_resp.json",
			want: func(t *testing.T, before, response map[string]any) map[string]any {
				for _, k := range []string{"userName", "active", "emails"} {
					before[k] = response[k]
				}
				before["name"].(map[string]any)["familyName"] = response["name"].(map[string]any)["familyName"]
				return before
			},
		},
		{
			fixture: "azuread/update_group.json",
			before:  "azuread/get_group.json",
			want: func(t *testing.T, before, response map[string]any) map[string]any {
				before["displayName"] = response["displayName"]
				if _, ok := response["members"]; ok {
					t.Fatal("the recorded group has members")
				}
				return before
			},
		},
	}
	covered := map[string]bool{}
	for _, tt := range tests {
		covered[tt.fixture] = true
		t.Run(tt.fixture, func(t *testing.T) {
			fx, ok := all[tt.fixture]
			if !ok {
				t.Fatalf("missing fixture %s", tt.fixture)
			}
			var req patch.Request
			if err := json.Unmarshal(fx.Request, &req); err != nil {
				t.Fatal(err)
			}
			if len(req.Schemas) != 1 || req.Schemas[0] != patch.PatchOpURN {
				t.Errorf("schemas = %v", req.Schemas)
			}
			rt := resourceType(t, fx.Path)
			before := clone(t, all[tt.before].Response)
			got, err := patch.Apply(before, req.Operations, rt)
			if err != nil {
				t.Fatalf("Apply: %v", err)
			}
			want := tt.want(t, clone(t, before), fx.Response)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
	for name, fx := range all {
		if fx.Method == "PATCH" && !covered[name] {
			t.Errorf("PATCH fixture %s has no test", name)
		}
	}
}

// Every resource the IdPs' documentation shows normalises, and
// normalising again changes nothing.
func TestFixtureResponsesNormalize(t *testing.T) {
	for name, fx := range elimity.Load(t) {
		resources := []any{fx.Response}
		if list, ok := fx.Response["Resources"].([]any); ok {
			resources = list
		} else if fx.Response["id"] == nil {
			continue
		}
		t.Run(name, func(t *testing.T) {
			for _, r := range resources {
				rt := resourceType(t, fx.Path)
				once, err := patch.Normalize(r.(map[string]any), rt)
				if err != nil {
					t.Fatalf("Normalize: %v", err)
				}
				twice, err := patch.Normalize(once, rt)
				if err != nil {
					t.Fatalf("Normalize again: %v", err)
				}
				if diff := cmp.Diff(once, twice); diff != "" {
					t.Errorf("not idempotent (-once +twice):\n%s", diff)
				}
			}
		})
	}
}

func clone(t testing.TB, m map[string]any) map[string]any {
	t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return decode(t, string(b))
}
