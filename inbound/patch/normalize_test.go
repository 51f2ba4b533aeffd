package patch_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/scimsync/scimsync/inbound/patch"
	"github.com/scimsync/scimsync/inbound/schema"
)

func TestNormalize(t *testing.T) {
	tests := []struct {
		name    string
		rt      *schema.ResourceType
		body    string
		want    string
		wantErr schema.ScimType
	}{
		{
			name: "Entra user: nulls, meta, empty roles",
			rt:   schema.User(),
			body: `{
				"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "` + ent + `"],
				"externalId": "0a21f0f2", "userName": "Test_User", "active": true,
				"emails": [{"primary": true, "type": "work", "value": "t@testuser.com"}],
				"meta": {"resourceType": "User"},
				"name": {"formatted": "givenName familyName", "familyName": "familyName", "givenName": "givenName", "honorificPrefix": null},
				"title": null,
				"addresses": [{"country": null, "formatted": "18522 Lisa Unions", "locality": null, "type": "other", "primary": false}],
				"roles": []}`,
			want: `{
				"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "` + ent + `"],
				"externalId": "0a21f0f2", "userName": "Test_User", "active": true,
				"emails": [{"primary": true, "type": "work", "value": "t@testuser.com"}],
				"name": {"formatted": "givenName familyName", "familyName": "familyName", "givenName": "givenName"},
				"addresses": [{"formatted": "18522 Lisa Unions", "type": "other", "primary": false}]}`,
		},
		{
			name: "Okta user: read-only groups dropped, password kept for the caller",
			rt:   schema.User(),
			body: `{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "test.user@okta.local",
				"name": {"givenName": "Test", "familyName": "User"}, "externalId": "00ujl29u0le5T6Aj10h7",
				"groups": [], "password": "1mz050nq", "active": true}`,
			want: `{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "test.user@okta.local",
				"name": {"givenName": "Test", "familyName": "User"}, "externalId": "00ujl29u0le5T6Aj10h7",
				"password": "1mz050nq", "active": true}`,
		},
		{
			name: "OneLogin legacy URNs",
			rt:   schema.User(),
			body: `{"schemas": ["urn:scim:schemas:core:2.0", "urn:scim:schemas:extension:enterprise:2.0"],
				"userName": "ol", "urn:scim:schemas:extension:enterprise:2.0": {"department": "Sales"}}`,
			want: `{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "` + ent + `"],
				"userName": "ol", "` + ent + `": {"department": "Sales"}}`,
		},
		{
			name: "Microsoft's collection: capitalised names, string booleans, complex manager",
			rt:   schema.User(),
			body: `{"userName": "UserName222", "active": "True", "displayName": "lennay",
				"schemas": ["` + ent + `", "urn:ietf:params:scim:schemas:core:2.0:User"],
				"emails": [{"Primary": true, "type": "work", "value": "testing@bob2.com"},
					{"Primary": "false", "type": "home", "value": "testinghome@bob3.com"}],
				"` + ent + `": {"Department": "bob", "Manager": {"Value": "SuzzyQ"}}}`,
			want: `{"userName": "UserName222", "active": true, "displayName": "lennay",
				"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "` + ent + `"],
				"emails": [{"primary": true, "type": "work", "value": "testing@bob2.com"},
					{"primary": false, "type": "home", "value": "testinghome@bob3.com"}],
				"` + ent + `": {"department": "bob", "manager": {"value": "SuzzyQ"}}}`,
		},
		{
			name: "URN-qualified keys fold into the extension; manager as a bare string",
			rt:   schema.User(),
			body: `{"userName": "u", "` + ent + `:employeeNumber": "42", "` + ent + `:manager": "m1",
				"` + ent + `": {"department": "Ops"}}`,
			want: `{"userName": "u", "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "` + ent + `"],
				"` + ent + `": {"department": "Ops", "employeeNumber": "42", "manager": {"value": "m1"}}}`,
		},
		{
			name: "read-only and unknown attributes are dropped; unknown schemas kept",
			rt:   schema.User(),
			body: `{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "urn:example:custom:2.0:User"],
				"id": "client-chosen", "meta": {"created": "2020-01-01T00:00:00Z"}, "groups": [{"value": "g1"}],
				"userName": "u", "bogus": 1, "urn:example:custom:2.0:User": {"x": 1},
				"` + ent + `": {"manager": {"value": "m1", "displayName": "Boss"}, "nope": 2},
				"emails": [{"value": "a@b.c", "extra": true}]}`,
			want: `{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "urn:example:custom:2.0:User", "` + ent + `"],
				"userName": "u", "` + ent + `": {"manager": {"value": "m1"}}, "emails": [{"value": "a@b.c"}]}`,
		},
		{
			name: "attribute names in any case",
			rt:   schema.User(),
			body: `{"UserName": "u", "NAME": {"GivenName": "G", "familyname": "F"}, "Emails": [{"VALUE": "a@b.c", "Type": "work"}]}`,
			want: `{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "u",
				"name": {"givenName": "G", "familyName": "F"}, "emails": [{"value": "a@b.c", "type": "work"}]}`,
		},
		{
			name: "a lone email for a list",
			rt:   schema.User(),
			body: `{"userName": "u", "emails": "a@b.c"}`,
			want: `{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "u", "emails": [{"value": "a@b.c"}]}`,
		},
		{
			name: "an extension without values is not kept",
			rt:   schema.User(),
			body: `{"userName": "u", "` + ent + `": {"department": null, "manager": {"value": ""}}}`,
			want: `{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "u"}`,
		},
		{
			name: "Entra group with the ADSCIM schema",
			rt:   schema.Group(),
			body: `{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group", "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"],
				"externalId": "8aa1a0c0", "displayName": "displayName", "meta": {"resourceType": "Group"}}`,
			want: `{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group", "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"],
				"externalId": "8aa1a0c0", "displayName": "displayName"}`,
		},
		{
			name: "Okta group with no members",
			rt:   schema.Group(),
			body: `{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Test SCIMv2", "members": []}`,
			want: `{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Test SCIMv2"}`,
		},
		{
			name: "group members: null $ref, duplicates",
			rt:   schema.Group(),
			body: `{"displayName": "G", "members": [{"value": "u1", "$ref": null}, {"value": "u2", "display": "Two"}, {"value": "u1", "display": "One"}]}`,
			want: `{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "G",
				"members": [{"value": "u1", "display": "One"}, {"value": "u2", "display": "Two"}]}`,
		},
		{name: "missing userName", rt: schema.User(), body: `{"displayName": "x"}`, wantErr: schema.ScimTypeInvalidValue},
		{name: "null userName", rt: schema.User(), body: `{"userName": null}`, wantErr: schema.ScimTypeInvalidValue},
		{name: "missing group name", rt: schema.Group(), body: `{"members": []}`, wantErr: schema.ScimTypeInvalidValue},
		{name: "number for userName", rt: schema.User(), body: `{"userName": 5}`, wantErr: schema.ScimTypeInvalidValue},
		{name: "not a boolean", rt: schema.User(), body: `{"userName": "u", "active": "yes"}`, wantErr: schema.ScimTypeInvalidValue},
		{name: "extension that is not an object", rt: schema.User(), body: `{"userName": "u", "` + ent + `": [1]}`, wantErr: schema.ScimTypeInvalidValue},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := decode(t, tt.body)
			got, err := patch.Normalize(body, tt.rt)
			if tt.wantErr != "" {
				if scimType(err) != tt.wantErr {
					t.Fatalf("Normalize error = %v, want scimType %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Normalize: %v", err)
			}
			if diff := cmp.Diff(decode(t, tt.want), got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			again, err := patch.Normalize(got, tt.rt)
			if err != nil {
				t.Fatalf("Normalize of its own output: %v", err)
			}
			if diff := cmp.Diff(got, again); diff != "" {
				t.Errorf("Normalize is not idempotent (-once +twice):\n%s", diff)
			}
			if diff := cmp.Diff(decode(t, tt.body), body); diff != "" {
				t.Errorf("Normalize modified its input (-before +after):\n%s", diff)
			}
		})
	}
}
