package patch_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/scimsync/scimsync/inbound/patch"
	"github.com/scimsync/scimsync/inbound/schema"
)

const ent = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"

// baseUser and baseGroup are stored resources in canonical form.
const baseUser = `{
	"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "` + ent + `"],
	"id": "u1",
	"userName": "bjensen",
	"name": {"givenName": "Barbara", "familyName": "Jensen", "middleName": "Jane"},
	"title": "Tour Guide",
	"active": true,
	"emails": [
		{"value": "b@example.com", "type": "work", "primary": true},
		{"value": "babs@home.org", "type": "home"}
	],
	"meta": {"resourceType": "User", "created": "2010-01-23T04:56:22Z", "lastModified": "2011-05-13T04:42:34Z"},
	"` + ent + `": {"department": "Tours", "manager": {"value": "m1", "$ref": "../Users/m1"}}
}`

const baseGroup = `{
	"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
	"id": "g1",
	"displayName": "Engineering",
	"members": [{"value": "u1", "display": "Babs"}, {"value": "u2"}]
}`

func decode(t testing.TB, s string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatalf("%v in %s", err, s)
	}
	return m
}

func decodeOps(t testing.TB, s string) []patch.Operation {
	t.Helper()
	var ops []patch.Operation
	if err := json.Unmarshal([]byte(s), &ops); err != nil {
		t.Fatalf("%v in %s", err, s)
	}
	return ops
}

// merged applies a JSON merge patch (RFC 7386) to a decoded base, so that
// each expectation states only what changes.
func merged(t testing.TB, base, mergePatch string) map[string]any {
	t.Helper()
	return mergeInto(decode(t, base), decode(t, mergePatch))
}

func mergeInto(dst, p map[string]any) map[string]any {
	for k, v := range p {
		switch v := v.(type) {
		case nil:
			delete(dst, k)
		case map[string]any:
			sub, _ := dst[k].(map[string]any)
			if sub == nil {
				sub = map[string]any{}
			}
			dst[k] = mergeInto(sub, v)
		default:
			dst[k] = v
		}
	}
	return dst
}

func scimType(err error) schema.ScimType {
	var se *schema.Error
	if errors.As(err, &se) {
		return se.ScimType
	}
	return ""
}

type applyCase struct {
	name     string
	resource string // baseUser when empty
	ops      string
	want     string // a merge patch on the resource
	wantErr  schema.ScimType
}

func runApplyCases(t *testing.T, rt *schema.ResourceType, base string, tests []applyCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resource := tt.resource
			if resource == "" {
				resource = base
			}
			got, err := patch.Apply(decode(t, resource), decodeOps(t, tt.ops), rt)
			if tt.wantErr != "" {
				if scimType(err) != tt.wantErr {
					t.Fatalf("Apply error = %v, want scimType %s", err, tt.wantErr)
				}
				if got != nil {
					t.Errorf("Apply returned a resource with its error: %v", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("Apply: %v", err)
			}
			if diff := cmp.Diff(merged(t, resource, tt.want), got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestApplyUser(t *testing.T) {
	const noWorkEmail = `{
		"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
		"id": "u2", "userName": "x", "emails": [{"value": "x@home.org", "type": "home"}]}`
	runApplyCases(t, schema.User(), baseUser, []applyCase{
		// Op names and request shape.
		{
			name: "op names in any case",
			ops: `[{"op": "Replace", "path": "active", "value": false},
				{"op": "ADD", "path": "nickName", "value": "Babs"},
				{"op": "remove", "path": "name.middleName"}]`,
			want: `{"active": false, "nickName": "Babs", "name": {"middleName": null}}`,
		},
		{name: "unknown op", ops: `[{"op": "copy", "path": "title", "value": "x"}]`, wantErr: schema.ScimTypeInvalidSyntax},
		{name: "missing op", ops: `[{"path": "title", "value": "x"}]`, wantErr: schema.ScimTypeInvalidSyntax},
		{name: "empty Operations is a no-op", ops: `[]`, want: `{}`},

		// Path-less values.
		{name: "Okta deactivation", ops: `[{"op": "replace", "value": {"active": false}}]`, want: `{"active": false}`},
		{
			name: "Entra path-less replace with dotted and URN keys",
			ops: `[{"op": "replace", "value": {
				"name.givenName": "Babs",
				"displayName": "Babs Jensen",
				"` + ent + `:employeeNumber": "42",
				"` + ent + `:manager": "m2"}}]`,
			want: `{"name": {"givenName": "Babs"}, "displayName": "Babs Jensen",
				"` + ent + `": {"employeeNumber": "42", "manager": {"value": "m2", "$ref": null}}}`,
		},
		{
			name: "path-less extension object",
			ops:  `[{"op": "add", "value": {"` + ent + `": {"costCenter": "cc1", "Division": "North"}}}]`,
			want: `{"` + ent + `": {"costCenter": "cc1", "division": "North"}}`,
		},
		{
			name: "path-less legacy enterprise URN",
			ops:  `[{"op": "replace", "value": {"urn:scim:schemas:extension:enterprise:2.0": {"Department": "Ops"}}}]`,
			want: `{"` + ent + `": {"department": "Ops"}}`,
		},
		{
			name: "path-less keys qualified by the core URN",
			ops: `[{"op": "replace", "value": {
				"urn:ietf:params:scim:schemas:core:2.0:User:displayName": "D",
				"urn:ietf:params:scim:schemas:core:2.0:User": {"nickName": "N"}}}]`,
			want: `{"displayName": "D", "nickName": "N"}`,
		},
		{
			name: "path-less readOnly and unknown keys are ignored",
			ops: `[{"op": "replace", "value": {"id": "zzz", "meta": {"created": "2020-01-01T00:00:00Z"},
				"groups": [{"value": "g"}], "bogus": 1, "urn:example:custom:2.0:User": {"x": 1}, "displayName": "D"}}]`,
			want: `{"displayName": "D"}`,
		},
		{
			name: "path-less complex value merges sub-attributes",
			ops:  `[{"op": "replace", "value": {"name": {"givenName": "B"}}}]`,
			want: `{"name": {"givenName": "B"}}`,
		},
		{
			name: "path-less dotted key applies after its attribute",
			ops:  `[{"op": "replace", "value": {"name.givenName": "G", "name": {"familyName": "F", "givenName": "X"}}}]`,
			want: `{"name": {"givenName": "G", "familyName": "F"}}`,
		},
		{
			name: "path-less case variants resolve deterministically",
			ops:  `[{"op": "replace", "value": {"DISPLAYNAME": "upper", "displayName": "canonical", "DisplayName": "mixed"}}]`,
			want: `{"displayName": "canonical"}`,
		},
		{name: "path-less value must be an object", ops: `[{"op": "replace", "value": "x"}]`, wantErr: schema.ScimTypeInvalidValue},
		{name: "path-less null value", ops: `[{"op": "add"}]`, wantErr: schema.ScimTypeInvalidValue},

		// Value filters.
		{
			name:     "Entra replace through a filter that matches nothing creates the value",
			resource: noWorkEmail,
			ops:      `[{"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "x@work.com"}]`,
			want:     `{"emails": [{"value": "x@home.org", "type": "home"}, {"value": "x@work.com", "type": "work"}]}`,
		},
		{
			name:     "add through a filter that matches nothing creates the value",
			resource: noWorkEmail,
			ops:      `[{"op": "add", "path": "emails[type eq \"work\"]", "value": {"value": "x@work.com", "primary": true}}]`,
			want:     `{"emails": [{"value": "x@home.org", "type": "home"}, {"value": "x@work.com", "type": "work", "primary": true}]}`,
		},
		{
			name: "replace through a filter updates the match",
			ops:  `[{"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "new@example.com"}]`,
			want: `{"emails": [{"value": "new@example.com", "type": "work", "primary": true}, {"value": "babs@home.org", "type": "home"}]}`,
		},
		{
			name: "addresses[type eq work].streetAddress creates the address",
			ops:  `[{"op": "Add", "path": "addresses[type eq \"work\"].streetAddress", "value": "1 Main St"}]`,
			want: `{"addresses": [{"type": "work", "streetAddress": "1 Main St"}]}`,
		},
		{
			name: "phoneNumbers[type eq mobile].value creates the number",
			ops:  `[{"op": "Replace", "path": "phoneNumbers[type eq \"mobile\"].value", "value": "555-1234"}]`,
			want: `{"phoneNumbers": [{"type": "mobile", "value": "555-1234"}]}`,
		},
		{
			name: "replacing a filtered value keeps what the filter selected",
			ops:  `[{"op": "replace", "path": "emails[type eq \"work\"]", "value": {"value": "n@example.com"}}]`,
			want: `{"emails": [{"value": "n@example.com", "type": "work"}, {"value": "babs@home.org", "type": "home"}]}`,
		},
		{
			name: "adding to a filtered value merges",
			ops:  `[{"op": "add", "path": "emails[type eq \"work\"]", "value": {"display": "Work"}}]`,
			want: `{"emails": [{"value": "b@example.com", "type": "work", "primary": true, "display": "Work"}, {"value": "babs@home.org", "type": "home"}]}`,
		},
		{
			name: "a value created primary takes primary from the others",
			ops:  `[{"op": "add", "path": "emails[type eq \"other\" and primary eq true].value", "value": "o@x.org"}]`,
			want: `{"emails": [{"value": "b@example.com", "type": "work", "primary": false}, {"value": "babs@home.org", "type": "home"},
				{"value": "o@x.org", "type": "other", "primary": true}]}`,
		},
		{
			name: "an equality on the empty string sets nothing",
			ops:  `[{"op": "add", "path": "emails[type eq \"\"]", "value": {"value": "x@y.z"}}]`,
			want: `{"emails": [{"value": "b@example.com", "type": "work", "primary": true}, {"value": "babs@home.org", "type": "home"},
				{"value": "x@y.z"}]}`,
		},
		{
			name:    "a filter without equalities cannot create",
			ops:     `[{"op": "replace", "path": "emails[value co \"zzz\"].type", "value": "work"}]`,
			wantErr: schema.ScimTypeNoTarget,
		},
		{
			name:    "a filter with or cannot create",
			ops:     `[{"op": "add", "path": "emails[type eq \"a\" or type eq \"b\"].value", "value": "x@y.z"}]`,
			wantErr: schema.ScimTypeNoTarget,
		},
		{
			name: "remove filtered values",
			ops:  `[{"op": "remove", "path": "emails[type eq \"home\"]"}]`,
			want: `{"emails": [{"value": "b@example.com", "type": "work", "primary": true}]}`,
		},
		{
			name: "remove a sub-attribute of filtered values",
			ops:  `[{"op": "remove", "path": "emails[type eq \"work\"].value"}]`,
			want: `{"emails": [{"type": "work", "primary": true}, {"value": "babs@home.org", "type": "home"}]}`,
		},
		{
			name: "replace filtered values with null removes them",
			ops:  `[{"op": "replace", "path": "emails[type eq \"home\"]", "value": null}]`,
			want: `{"emails": [{"value": "b@example.com", "type": "work", "primary": true}]}`,
		},
		{
			name: "remove through a filter that matches nothing",
			ops:  `[{"op": "remove", "path": "emails[type eq \"other\"]"}]`,
			want: `{}`,
		},
		{
			name: "removing every value removes the attribute",
			ops:  `[{"op": "remove", "path": "emails[value ew \"com\" or value ew \"org\"]"}]`,
			want: `{"emails": null}`,
		},
		{
			name: "sub-attribute of every value",
			ops:  `[{"op": "replace", "path": "emails.display", "value": "E"}]`,
			want: `{"emails": [{"value": "b@example.com", "type": "work", "primary": true, "display": "E"}, {"value": "babs@home.org", "type": "home", "display": "E"}]}`,
		},
		{
			name: "filter values match case-insensitively",
			ops:  `[{"op": "replace", "path": "emails[Type EQ \"WORK\"].Value", "value": "w@x.org"}]`,
			want: `{"emails": [{"value": "w@x.org", "type": "work", "primary": true}, {"value": "babs@home.org", "type": "home"}]}`,
		},
		{
			name:    "a value filter on a single-valued attribute",
			ops:     `[{"op": "replace", "path": "name[givenName eq \"Barbara\"].familyName", "value": "J"}]`,
			wantErr: schema.ScimTypeInvalidPath,
		},

		// Booleans sent as strings.
		{name: "string boolean", ops: `[{"op": "Replace", "path": "active", "value": "False"}]`, want: `{"active": false}`},
		{name: "string boolean path-less", ops: `[{"op": "Replace", "value": {"active": "TRUE"}}]`, want: `{"active": true}`},
		{
			name: "string boolean inside a value",
			ops:  `[{"op": "add", "path": "emails", "value": [{"value": "n@x.org", "type": "other", "Primary": "True"}]}]`,
			want: `{"emails": [{"value": "b@example.com", "type": "work", "primary": false}, {"value": "babs@home.org", "type": "home"},
				{"value": "n@x.org", "type": "other", "primary": true}]}`,
		},
		{name: "not a boolean", ops: `[{"op": "replace", "path": "active", "value": "maybe"}]`, wantErr: schema.ScimTypeInvalidValue},

		// Clearing.
		{name: "replace with null clears", ops: `[{"op": "replace", "path": "title", "value": null}]`, want: `{"title": null}`},
		{name: "replace with empty string clears", ops: `[{"op": "Replace", "path": "title", "value": ""}]`, want: `{"title": null}`},
		{name: "path-less null clears", ops: `[{"op": "replace", "value": {"title": null, "nickName": "N"}}]`, want: `{"title": null, "nickName": "N"}`},
		{name: "add with empty string clears a single value", ops: `[{"op": "add", "path": "title", "value": ""}]`, want: `{"title": null}`},
		{name: "add nothing to a list", ops: `[{"op": "add", "path": "emails", "value": []}]`, want: `{}`},
		{name: "replace a list with nothing", ops: `[{"op": "replace", "path": "emails", "value": []}]`, want: `{"emails": null}`},
		{
			name: "Entra removes the manager with Replace and an empty value",
			ops:  `[{"op": "Replace", "path": "` + ent + `:manager", "value": ""}]`,
			want: `{"` + ent + `": {"manager": null}}`,
		},
		{
			name: "manager removed with an empty value object",
			ops:  `[{"op": "Replace", "path": "` + ent + `:manager", "value": {"value": ""}}]`,
			want: `{"` + ent + `": {"manager": null}}`,
		},
		{
			name: "removing the last extension attribute removes the extension",
			ops: `[{"op": "remove", "path": "` + ent + `:manager"},
				{"op": "remove", "path": "` + ent + `:department"}]`,
			want: `{"` + ent + `": null}`,
		},
		{name: "remove a whole extension", ops: `[{"op": "remove", "path": "` + ent + `"}]`, want: `{"` + ent + `": null}`},
		{name: "remove an absent attribute", ops: `[{"op": "remove", "path": "nickName"}]`, want: `{}`},

		// Manager.
		{
			name: "Entra manager as a bare string",
			ops:  `[{"op": "Add", "path": "` + ent + `:manager", "value": "m9"}]`,
			want: `{"` + ent + `": {"manager": {"value": "m9", "$ref": null}}}`,
		},
		{
			name: "manager as an object with a new value drops the old reference",
			ops:  `[{"op": "replace", "path": "` + ent + `:manager", "value": {"Value": "m9"}}]`,
			want: `{"` + ent + `": {"manager": {"value": "m9", "$ref": null}}}`,
		},
		{
			name: "manager sub-attribute",
			ops:  `[{"op": "replace", "path": "` + ent + `:manager.value", "value": "m9"}]`,
			want: `{"` + ent + `": {"manager": {"value": "m9"}}}`,
		},
		{
			name:     "manager on a user without the extension",
			resource: noWorkEmail,
			ops:      `[{"op": "add", "path": "` + ent + `:manager", "value": "m9"}]`,
			want: `{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "` + ent + `"],
				"` + ent + `": {"manager": {"value": "m9"}}}`,
		},
		{
			name: "legacy URN path",
			ops:  `[{"op": "replace", "path": "urn:scim:schemas:extension:enterprise:2.0:department", "value": "Ops"}]`,
			want: `{"` + ent + `": {"department": "Ops"}}`,
		},

		// Mutability.
		{name: "explicit path to id", ops: `[{"op": "replace", "path": "id", "value": "x"}]`, wantErr: schema.ScimTypeMutability},
		{name: "explicit path to groups", ops: `[{"op": "add", "path": "groups", "value": [{"value": "g"}]}]`, wantErr: schema.ScimTypeMutability},
		{name: "remove groups", ops: `[{"op": "remove", "path": "groups"}]`, wantErr: schema.ScimTypeMutability},
		{name: "explicit path to meta", ops: `[{"op": "replace", "path": "meta.lastModified", "value": "2020-01-01T00:00:00Z"}]`, wantErr: schema.ScimTypeMutability},
		{name: "readOnly sub-attribute", ops: `[{"op": "replace", "path": "` + ent + `:manager.displayName", "value": "M"}]`, wantErr: schema.ScimTypeMutability},

		// Errors.
		{name: "malformed path", ops: `[{"op": "replace", "path": "emails[type eq \"work\"", "value": "x"}]`, wantErr: schema.ScimTypeInvalidPath},
		{name: "unknown attribute", ops: `[{"op": "replace", "path": "bogus", "value": "x"}]`, wantErr: schema.ScimTypeInvalidPath},
		{name: "unquoted filter value", ops: `[{"op": "remove", "path": "emails[type eq work]"}]`, wantErr: schema.ScimTypeInvalidPath},
		{name: "remove without a path", ops: `[{"op": "remove"}]`, wantErr: schema.ScimTypeNoTarget},
		{name: "number for a string", ops: `[{"op": "replace", "path": "userName", "value": 5}]`, wantErr: schema.ScimTypeInvalidValue},
		{name: "object for a string", ops: `[{"op": "replace", "path": "emails[type eq \"work\"].value", "value": {"a": 1}}]`, wantErr: schema.ScimTypeInvalidValue},
		{name: "list for a complex value", ops: `[{"op": "replace", "path": "name", "value": [{"givenName": "x"}]}]`, wantErr: schema.ScimTypeInvalidValue},
		{name: "list for a simple value", ops: `[{"op": "replace", "path": "title", "value": ["x"]}]`, wantErr: schema.ScimTypeInvalidValue},
		{name: "bad value inside a list", ops: `[{"op": "add", "path": "emails", "value": [{"value": "a@b.c", "primary": 3}]}]`, wantErr: schema.ScimTypeInvalidValue},
		{name: "removing a required attribute", ops: `[{"op": "remove", "path": "userName"}]`, wantErr: schema.ScimTypeInvalidValue},
		{name: "clearing a required attribute", ops: `[{"op": "replace", "path": "userName", "value": ""}]`, wantErr: schema.ScimTypeInvalidValue},
		{
			name:    "a later failure undoes earlier operations",
			ops:     `[{"op": "replace", "path": "title", "value": "New"}, {"op": "replace", "path": "id", "value": "x"}]`,
			wantErr: schema.ScimTypeMutability,
		},

		// Multi-valued attributes.
		{
			name: "a single value for a multi-valued attribute",
			ops:  `[{"op": "replace", "path": "emails", "value": {"value": "only@x.org", "type": "work"}}]`,
			want: `{"emails": [{"value": "only@x.org", "type": "work"}]}`,
		},
		{
			name: "adding a value already present adds nothing",
			ops:  `[{"op": "add", "path": "emails", "value": [{"value": "babs@home.org", "type": "home"}]}]`,
			want: `{}`,
		},
		{
			name: "replacing a list drops duplicates",
			ops:  `[{"op": "replace", "path": "emails", "value": [{"value": "a@x.org"}, {"value": "a@x.org"}, {"value": "b@x.org"}]}]`,
			want: `{"emails": [{"value": "a@x.org"}, {"value": "b@x.org"}]}`,
		},
		{
			name: "add replaces a single value",
			ops:  `[{"op": "add", "path": "title", "value": "Chief"}]`,
			want: `{"title": "Chief"}`,
		},
		{
			name: "schemas are kept canonical",
			ops:  `[{"op": "replace", "path": "schemas", "value": ["urn:scim:schemas:core:2.0", "urn:example:custom"]}]`,
			want: `{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "urn:example:custom", "` + ent + `"]}`,
		},
	})
}

func TestApplyGroup(t *testing.T) {
	const adscim = "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"
	runApplyCases(t, schema.Group(), baseGroup, []applyCase{
		{
			name: "Okta rename carries the group id",
			ops:  `[{"op": "replace", "value": {"id": "g1", "displayName": "Renamed"}}]`,
			want: `{"displayName": "Renamed"}`,
		},
		{
			name: "Okta rename with a different id still leaves the id alone",
			ops:  `[{"op": "replace", "value": {"id": "other", "displayName": "Renamed"}}]`,
			want: `{"displayName": "Renamed"}`,
		},
		{
			name: "remove a member by value filter",
			ops:  `[{"op": "remove", "path": "members[value eq \"u1\"]"}]`,
			want: `{"members": [{"value": "u2"}]}`,
		},
		{
			name: "remove a member who is not there",
			ops:  `[{"op": "remove", "path": "members[value eq \"nobody\"]"}]`,
			want: `{}`,
		},
		{
			name: "Entra removes members listed in value",
			ops:  `[{"op": "Remove", "path": "members", "value": [{"$ref": null, "value": "u2"}]}]`,
			want: `{"members": [{"value": "u1", "display": "Babs"}]}`,
		},
		{
			name: "JumpCloud removes members listed in value, whatever their display",
			ops:  `[{"op": "remove", "path": "members", "value": [{"value": "u1", "display": "Someone"}, {"value": "u9"}]}]`,
			want: `{"members": [{"value": "u2"}]}`,
		},
		{
			name: "removing every listed member removes the attribute",
			ops:  `[{"op": "Remove", "path": "members", "value": [{"value": "u1"}, {"value": "u2"}]}]`,
			want: `{"members": null}`,
		},
		{
			name: "remove with an empty list removes nothing",
			ops:  `[{"op": "Remove", "path": "members", "value": []}]`,
			want: `{}`,
		},
		{
			name: "remove members without a value removes them all",
			ops:  `[{"op": "remove", "path": "members"}]`,
			want: `{"members": null}`,
		},
		{
			name: "add merges members without duplicates",
			ops:  `[{"op": "Add", "path": "members", "value": [{"value": "u2", "display": "Two"}, {"value": "u3"}, {"value": "u3"}]}]`,
			want: `{"members": [{"value": "u1", "display": "Babs"}, {"value": "u2", "display": "Two"}, {"value": "u3"}]}`,
		},
		{
			name: "member ids are case-exact",
			ops:  `[{"op": "add", "path": "members", "value": [{"value": "U1"}]}]`,
			want: `{"members": [{"value": "u1", "display": "Babs"}, {"value": "u2"}, {"value": "U1"}]}`,
		},
		{
			name: "Microsoft's bare member id",
			ops:  `[{"op": "add", "path": "members", "value": "string id 1"}]`,
			want: `{"members": [{"value": "u1", "display": "Babs"}, {"value": "u2"}, {"value": "string id 1"}]}`,
		},
		{
			name: "replace members replaces the set",
			ops:  `[{"op": "replace", "path": "members", "value": [{"value": "u3"}, {"value": "u1"}]}]`,
			want: `{"members": [{"value": "u3"}, {"value": "u1"}]}`,
		},
		{
			name: "replace members with none",
			ops:  `[{"op": "replace", "path": "members", "value": []}]`,
			want: `{"members": null}`,
		},
		{
			name: "Okta membership update: remove and add in one request",
			ops: `[{"op": "remove", "path": "members[value eq \"u2\"]"},
				{"op": "add", "path": "members", "value": [{"value": "u3", "display": "three@example.com"}]}]`,
			want: `{"members": [{"value": "u1", "display": "Babs"}, {"value": "u3", "display": "three@example.com"}]}`,
		},
		{
			name: "Entra group update: Replace, Add and Remove",
			ops: `[{"op": "Replace", "path": "displayName", "value": "Renamed"},
				{"op": "Add", "path": "members", "value": [{"$ref": null, "value": "u9"}]},
				{"op": "Remove", "path": "members", "value": [{"$ref": null, "value": "u1"}]}]`,
			want: `{"displayName": "Renamed", "members": [{"value": "u2"}, {"value": "u9"}]}`,
		},
		{
			name:     "unknown schemas are kept",
			resource: `{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group", "` + adscim + `"], "id": "g2", "displayName": "D"}`,
			ops:      `[{"op": "add", "path": "members", "value": [{"value": "u1"}]}]`,
			want:     `{"members": [{"value": "u1"}]}`,
		},
		{name: "removing the group's name", ops: `[{"op": "remove", "path": "displayName"}]`, wantErr: schema.ScimTypeInvalidValue},
		{name: "user attribute on a group", ops: `[{"op": "replace", "path": "userName", "value": "x"}]`, wantErr: schema.ScimTypeInvalidPath},
	})
}

func TestApplyErrorNamesTheOperation(t *testing.T) {
	ops := decodeOps(t, `[{"op": "replace", "path": "title", "value": "x"}, {"op": "replace", "path": "bogus", "value": "x"}]`)
	_, err := patch.Apply(decode(t, baseUser), ops, schema.User())
	var se *schema.Error
	if !errors.As(err, &se) || !strings.HasPrefix(se.Detail, "Operations[1]: ") {
		t.Errorf("error %v does not name Operations[1]", err)
	}
}

// Apply must leave the caller's resource alone, whether it succeeds or
// fails, since the caller keeps it when the patch is rejected.
func TestApplyDoesNotModifyItsInput(t *testing.T) {
	ops := decodeOps(t, `[
		{"op": "replace", "path": "name.givenName", "value": "X"},
		{"op": "replace", "path": "emails[type eq \"work\"].value", "value": "w@x.org"},
		{"op": "add", "path": "emails", "value": {"value": "p@x.org", "primary": true}},
		{"op": "remove", "path": "emails[type eq \"home\"].type"},
		{"op": "replace", "path": "`+ent+`:manager.value", "value": "m2"},
		{"op": "remove", "path": "`+ent+`:department"},
		{"op": "replace", "value": {"schemas": ["x"]}}]`)
	for _, fail := range []bool{false, true} {
		ops := ops
		if fail {
			ops = append(ops, patch.Operation{Op: "replace", Path: "id", Value: "x"})
		}
		resource := decode(t, baseUser)
		if _, err := patch.Apply(resource, ops, schema.User()); (err != nil) != fail {
			t.Fatalf("Apply error = %v", err)
		}
		if diff := cmp.Diff(decode(t, baseUser), resource); diff != "" {
			t.Errorf("Apply (failing: %v) modified its input (-before +after):\n%s", fail, diff)
		}
	}
}

func TestParsePath(t *testing.T) {
	tests := []struct {
		rt      *schema.ResourceType
		path    string
		want    string
		wantErr bool
	}{
		{schema.User(), "name.givenName", "name.givenName", false},
		{schema.User(), `emails[type eq "work"].value`, `emails[type eq "work"].value`, false},
		{schema.User(), `addresses[type eq "work"].streetAddress`, `addresses[type eq "work"].streetAddress`, false},
		{schema.User(), ent + ":manager", ent + ":manager", false},
		{schema.User(), "urn:scim:schemas:extension:enterprise:2.0:manager.value", ent + ":manager.value", false},
		{schema.User(), ent, ent, false},
		{schema.Group(), `members[value eq "2819c223"]`, `members[value eq "2819c223"]`, false},
		{schema.User(), `name[givenName eq "x"]`, "", true},
		{schema.User(), `emails[type eq "work"]value`, "", true},
		{schema.User(), `emails[type eq "work"].value.x`, "", true},
		{schema.User(), `members`, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			p, err := patch.ParsePath(tt.path, tt.rt)
			if tt.wantErr {
				if scimType(err) != schema.ScimTypeInvalidPath {
					t.Errorf("ParsePath(%q) = %v, %v; want an invalidPath error", tt.path, p, err)
				}
				return
			}
			if err != nil || p.String() != tt.want {
				t.Errorf("ParsePath(%q) = %v, %v; want %s", tt.path, p, err, tt.want)
			}
		})
	}
}
