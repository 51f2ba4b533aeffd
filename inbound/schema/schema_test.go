package schema_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/scimsync/scimsync/inbound/schema"
)

func TestResolve(t *testing.T) {
	tests := []struct {
		rt      *schema.ResourceType
		path    string
		want    string // the canonical path
		wantExt string
		wantErr bool
	}{
		{rt: schema.User(), path: "userName", want: "userName"},
		{rt: schema.User(), path: "USERNAME", want: "userName"},
		{rt: schema.User(), path: "DisplayName", want: "displayName"},
		{rt: schema.User(), path: "name.familyName", want: "name.familyName"},
		{rt: schema.User(), path: "name.FamilyName", want: "name.familyName"},
		{rt: schema.User(), path: "emails.Value", want: "emails.value"},
		{rt: schema.User(), path: "meta.Created", want: "meta.created"},
		{rt: schema.User(), path: "id", want: "id"},
		{rt: schema.User(), path: "externalId", want: "externalId"},
		{rt: schema.User(), path: "schemas", want: "schemas"},
		{rt: schema.User(), path: "urn:ietf:params:scim:schemas:core:2.0:User:userName", want: "userName"},
		{rt: schema.User(), path: "URN:IETF:PARAMS:SCIM:SCHEMAS:CORE:2.0:USER:name.givenName", want: "name.givenName"},
		{rt: schema.User(), path: "urn:scim:schemas:core:2.0:userName", want: "userName"},
		{
			rt:      schema.User(),
			path:    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber",
			want:    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber",
			wantExt: schema.EnterpriseUserURN,
		},
		{
			rt:      schema.User(),
			path:    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value",
			want:    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value",
			wantExt: schema.EnterpriseUserURN,
		},
		{
			rt:      schema.User(),
			path:    "urn:scim:schemas:extension:enterprise:2.0:Department",
			want:    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
			wantExt: schema.EnterpriseUserURN,
		},
		{
			rt:      schema.User(),
			path:    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
			want:    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
			wantExt: schema.EnterpriseUserURN,
		},
		{
			rt:      schema.User(),
			path:    "urn:scim:schemas:extension:enterprise:2.0",
			want:    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
			wantExt: schema.EnterpriseUserURN,
		},
		{rt: schema.Group(), path: "displayName", want: "displayName"},
		{rt: schema.Group(), path: "members.value", want: "members.value"},
		{rt: schema.Group(), path: "members.$ref", want: "members.$ref"},
		{rt: schema.Group(), path: "urn:scim:schemas:core:2.0:displayName", want: "displayName"},

		{rt: schema.User(), path: "nope", wantErr: true},
		{rt: schema.User(), path: "", wantErr: true},
		{rt: schema.User(), path: "name.nope", wantErr: true},
		{rt: schema.User(), path: "name.", wantErr: true},
		{rt: schema.User(), path: "name.givenName.x", wantErr: true},
		{rt: schema.User(), path: "userName.x", wantErr: true},
		{rt: schema.User(), path: "employeeNumber", wantErr: true}, // extension attributes must be qualified
		{rt: schema.User(), path: "urn:ietf:params:scim:schemas:core:2.0:User", wantErr: true},
		{rt: schema.User(), path: "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:", wantErr: true},
		{rt: schema.User(), path: "urn:example:unknown:attr", wantErr: true},
		{rt: schema.User(), path: "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:nope", wantErr: true},
		{rt: schema.Group(), path: "userName", wantErr: true},
		{rt: schema.Group(), path: "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.rt.ID+"/"+tt.path, func(t *testing.T) {
			got, err := tt.rt.Resolve(tt.path)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("Resolve(%q) = %v, want an error", tt.path, got)
				}
				return
			}
			if err != nil {
				t.Fatalf("Resolve(%q): %v", tt.path, err)
			}
			if got.String() != tt.want || got.Extension != tt.wantExt {
				t.Errorf("Resolve(%q) = %q in %q, want %q in %q", tt.path, got, got.Extension, tt.want, tt.wantExt)
			}
		})
	}
}

func TestCanonicalURN(t *testing.T) {
	tests := []struct {
		rt   *schema.ResourceType
		urn  string
		want string
		ok   bool
	}{
		{schema.User(), "urn:ietf:params:scim:schemas:core:2.0:User", schema.UserURN, true},
		{schema.User(), "urn:ietf:params:scim:schemas:core:2.0:user", schema.UserURN, true},
		{schema.User(), "urn:scim:schemas:core:2.0", schema.UserURN, true},
		{schema.User(), "urn:scim:schemas:extension:enterprise:2.0", schema.EnterpriseUserURN, true},
		{schema.User(), schema.EnterpriseUserURN, schema.EnterpriseUserURN, true},
		{schema.Group(), "urn:scim:schemas:core:2.0", schema.GroupURN, true},
		{schema.Group(), schema.EnterpriseUserURN, "", false},
		{schema.Group(), "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group", "", false},
		{schema.User(), schema.GroupURN, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.rt.ID+"/"+tt.urn, func(t *testing.T) {
			got, ok := tt.rt.CanonicalURN(tt.urn)
			if got != tt.want || ok != tt.ok {
				t.Errorf("CanonicalURN(%q) = %q, %v; want %q, %v", tt.urn, got, ok, tt.want, tt.ok)
			}
		})
	}
}

// characteristics flattens what callers rely on into a comparable form.
type characteristics struct {
	Type        schema.Type
	MultiValued bool
	CaseExact   bool
	Required    bool
	Mutability  schema.Mutability
	Returned    schema.Returned
	Uniqueness  schema.Uniqueness
}

func TestAttributeCharacteristics(t *testing.T) {
	tests := []struct {
		rt   *schema.ResourceType
		path string
		want characteristics
	}{
		{schema.User(), "id", characteristics{schema.TypeString, false, true, false, schema.ReadOnly, schema.ReturnedAlways, schema.UniquenessServer}},
		{schema.User(), "externalId", characteristics{schema.TypeString, false, true, false, schema.ReadWrite, schema.ReturnedDefault, schema.UniquenessNone}},
		{schema.User(), "meta", characteristics{schema.TypeComplex, false, false, false, schema.ReadOnly, schema.ReturnedDefault, schema.UniquenessNone}},
		{schema.User(), "meta.lastModified", characteristics{schema.TypeDateTime, false, false, false, schema.ReadOnly, schema.ReturnedDefault, schema.UniquenessNone}},
		{schema.User(), "meta.version", characteristics{schema.TypeString, false, true, false, schema.ReadOnly, schema.ReturnedDefault, schema.UniquenessNone}},
		{schema.User(), "userName", characteristics{schema.TypeString, false, false, true, schema.ReadWrite, schema.ReturnedDefault, schema.UniquenessServer}},
		{schema.User(), "active", characteristics{schema.TypeBoolean, false, false, false, schema.ReadWrite, schema.ReturnedDefault, schema.UniquenessNone}},
		{schema.User(), "password", characteristics{schema.TypeString, false, false, false, schema.WriteOnly, schema.ReturnedNever, schema.UniquenessNone}},
		{schema.User(), "emails", characteristics{schema.TypeComplex, true, false, false, schema.ReadWrite, schema.ReturnedDefault, schema.UniquenessNone}},
		{schema.User(), "emails.primary", characteristics{schema.TypeBoolean, false, false, false, schema.ReadWrite, schema.ReturnedDefault, schema.UniquenessNone}},
		{schema.User(), "groups", characteristics{schema.TypeComplex, true, false, false, schema.ReadOnly, schema.ReturnedDefault, schema.UniquenessNone}},
		{schema.User(), "photos.value", characteristics{schema.TypeReference, false, false, false, schema.ReadWrite, schema.ReturnedDefault, schema.UniquenessNone}},
		{schema.User(), "x509Certificates.value", characteristics{schema.TypeBinary, false, false, false, schema.ReadWrite, schema.ReturnedDefault, schema.UniquenessNone}},
		{schema.User(), schema.EnterpriseUserURN + ":manager", characteristics{schema.TypeComplex, false, false, false, schema.ReadWrite, schema.ReturnedDefault, schema.UniquenessNone}},
		{schema.User(), schema.EnterpriseUserURN + ":manager.value", characteristics{schema.TypeString, false, true, false, schema.ReadWrite, schema.ReturnedDefault, schema.UniquenessNone}},
		{schema.User(), schema.EnterpriseUserURN + ":manager.displayName", characteristics{schema.TypeString, false, false, false, schema.ReadOnly, schema.ReturnedDefault, schema.UniquenessNone}},
		{schema.Group(), "displayName", characteristics{schema.TypeString, false, false, true, schema.ReadWrite, schema.ReturnedDefault, schema.UniquenessNone}},
		{schema.Group(), "members", characteristics{schema.TypeComplex, true, false, false, schema.ReadWrite, schema.ReturnedDefault, schema.UniquenessNone}},
		{schema.Group(), "members.value", characteristics{schema.TypeString, false, true, false, schema.Immutable, schema.ReturnedDefault, schema.UniquenessNone}},
	}
	for _, tt := range tests {
		t.Run(tt.rt.ID+"/"+tt.path, func(t *testing.T) {
			p, err := tt.rt.Resolve(tt.path)
			if err != nil {
				t.Fatal(err)
			}
			a := p.Attribute
			if p.Sub != nil {
				a = p.Sub
			}
			got := characteristics{a.Type, a.MultiValued, a.CaseExact, a.Required, a.Mutability, a.Returned, a.Uniqueness}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("%s (-want +got):\n%s", tt.path, diff)
			}
		})
	}
}

// The tables must hold together: every complex attribute has
// sub-attributes, no simple one does, and names are unique.
func TestTablesAreWellFormed(t *testing.T) {
	for _, s := range schema.Schemas() {
		seen := map[string]bool{}
		for _, a := range s.Attributes {
			if seen[a.Name] {
				t.Errorf("%s: duplicate attribute %s", s.ID, a.Name)
			}
			seen[a.Name] = true
			if (a.Type == schema.TypeComplex) != (len(a.SubAttributes) > 0) {
				t.Errorf("%s: %s has type %s and %d sub-attributes", s.ID, a.Name, a.Type, len(a.SubAttributes))
			}
			for _, sub := range a.SubAttributes {
				if sub.Type == schema.TypeComplex || sub.MultiValued {
					t.Errorf("%s: %s.%s must be simple and single-valued", s.ID, a.Name, sub.Name)
				}
				if got, ok := a.SubAttribute(sub.Name); !ok || got != sub {
					t.Errorf("%s: %s.%s is not found by name", s.ID, a.Name, sub.Name)
				}
			}
		}
	}
}

func TestSchemaResource(t *testing.T) {
	r := schema.User().Schema.Resource("https://example.com/scim/v2/")
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Schemas    []string         `json:"schemas"`
		ID         string           `json:"id"`
		Name       string           `json:"name"`
		Attributes []map[string]any `json:"attributes"`
		Meta       map[string]any   `json:"meta"`
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{schema.SchemaURN}, got.Schemas); diff != "" {
		t.Errorf("schemas (-want +got):\n%s", diff)
	}
	if got.ID != schema.UserURN || got.Name != "User" {
		t.Errorf("id, name = %q, %q", got.ID, got.Name)
	}
	wantMeta := map[string]any{
		"resourceType": "Schema",
		"location":     "https://example.com/scim/v2/Schemas/" + schema.UserURN,
	}
	if diff := cmp.Diff(wantMeta, got.Meta); diff != "" {
		t.Errorf("meta (-want +got):\n%s", diff)
	}
	byName := map[string]map[string]any{}
	for _, a := range got.Attributes {
		byName[a["name"].(string)] = a
	}
	wantUserName := map[string]any{
		"name":        "userName",
		"type":        "string",
		"multiValued": false,
		"description": "Unique identifier for the User, typically used to sign in.",
		"required":    true,
		"caseExact":   false,
		"mutability":  "readWrite",
		"returned":    "default",
		"uniqueness":  "server",
	}
	if diff := cmp.Diff(wantUserName, byName["userName"]); diff != "" {
		t.Errorf("userName (-want +got):\n%s", diff)
	}
	emailType := byName["emails"]["subAttributes"].([]any)[2].(map[string]any)
	if diff := cmp.Diff([]any{"work", "home", "other"}, emailType["canonicalValues"]); diff != "" {
		t.Errorf("emails.type canonicalValues (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]any{"external"}, byName["profileUrl"]["referenceTypes"]); diff != "" {
		t.Errorf("profileUrl referenceTypes (-want +got):\n%s", diff)
	}
	// Common attributes are not part of any schema (RFC 7643 §3.1).
	for _, common := range []string{"id", "externalId", "meta", "schemas"} {
		if _, ok := byName[common]; ok {
			t.Errorf("schema lists common attribute %s", common)
		}
	}
}

func TestResourceTypeResource(t *testing.T) {
	tests := []struct {
		rt   *schema.ResourceType
		want schema.ResourceTypeResource
	}{
		{
			rt: schema.User(),
			want: schema.ResourceTypeResource{
				Schemas:     []string{schema.ResourceTypeURN},
				ID:          "User",
				Name:        "User",
				Endpoint:    "/Users",
				Description: "User Account",
				Schema:      schema.UserURN,
				SchemaExtensions: []schema.SchemaExtension{
					{Schema: schema.EnterpriseUserURN, Required: false},
				},
				Meta: schema.Meta{ResourceType: "ResourceType", Location: "https://example.com/scim/v2/ResourceTypes/User"},
			},
		},
		{
			rt: schema.Group(),
			want: schema.ResourceTypeResource{
				Schemas:     []string{schema.ResourceTypeURN},
				ID:          "Group",
				Name:        "Group",
				Endpoint:    "/Groups",
				Description: "Group",
				Schema:      schema.GroupURN,
				Meta:        schema.Meta{ResourceType: "ResourceType", Location: "https://example.com/scim/v2/ResourceTypes/Group"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.rt.ID, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, tt.rt.Resource("https://example.com/scim/v2")); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestLookup(t *testing.T) {
	for _, name := range []string{"User", "user", "Users", "/Users", "/users"} {
		if rt, ok := schema.LookupResourceType(name); !ok || rt != schema.User() {
			t.Errorf("LookupResourceType(%q) = %v, %v; want User", name, rt, ok)
		}
	}
	if _, ok := schema.LookupResourceType("Devices"); ok {
		t.Error("LookupResourceType(Devices) found a resource type")
	}
	for urn, want := range map[string]string{
		schema.UserURN: schema.UserURN,
		"urn:ietf:params:scim:schemas:core:2.0:group": schema.GroupURN,
		schema.LegacyEnterpriseURN:                    schema.EnterpriseUserURN,
	} {
		if s, ok := schema.LookupSchema(urn); !ok || s.ID != want {
			t.Errorf("LookupSchema(%q) = %v, %v; want %s", urn, s, ok, want)
		}
	}
	for _, urn := range []string{"", "urn:example:nope"} {
		if _, ok := schema.LookupSchema(urn); ok {
			t.Errorf("LookupSchema(%q) found a schema", urn)
		}
	}
}

func TestError(t *testing.T) {
	err := fmt.Errorf("wrapped: %w", schema.Errorf(schema.ScimTypeInvalidPath, "bad %s", "path"))
	var se *schema.Error
	if !errors.As(err, &se) {
		t.Fatal("errors.As found no *schema.Error")
	}
	if se.ScimType != schema.ScimTypeInvalidPath || se.Detail != "bad path" || se.Status() != 400 {
		t.Errorf("got %+v, status %d", se, se.Status())
	}
	if got, want := se.Error(), "invalidPath: bad path"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}
