package patch_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/scimsync/scimsync/inbound/filter"
	"github.com/scimsync/scimsync/inbound/patch"
	"github.com/scimsync/scimsync/inbound/schema"
)

var opSeeds = []string{
	`[{"op": "replace", "value": {"active": false}}]`,
	`[{"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "x@y.z"}, {"op": "Replace", "path": "active", "value": "False"}]`,
	`[{"op": "replace", "value": {"name.givenName": "G", "` + ent + `:employeeNumber": "1", "` + ent + `:manager": "m"}}]`,
	`[{"op": "add", "path": "emails[type eq \"other\" and primary eq true]", "value": {"value": "o@x"}}]`,
	`[{"op": "remove", "path": "emails[type eq \"home\"].type"}, {"op": "replace", "path": "emails.type", "value": "work"}]`,
	`[{"op": "Replace", "path": "` + ent + `:manager", "value": ""}]`,
	`[{"op": "add", "path": "addresses[type eq \"work\"].streetAddress", "value": "1 Main"}]`,
	`[{"op": "replace", "path": "schemas", "value": ["urn:scim:schemas:core:2.0"]}]`,
	`[{"op": "remove", "path": "` + ent + `"}]`,
	`[{"op": "add", "value": {"urn:scim:schemas:extension:enterprise:2.0": {"Manager": {"Value": "m"}}}}]`,
	`[{"op": "remove", "path": "members[value eq \"u1\"]"}, {"op": "add", "path": "members", "value": [{"value": "u3"}]}]`,
	`[{"op": "Remove", "path": "members", "value": [{"$ref": null, "value": "u2"}]}]`,
	`[{"op": "replace", "value": {"id": "g", "displayName": "New"}}]`,
	`[{"op": "add", "path": "members", "value": "string id 1"}]`,
	`[{"op": "replace", "path": "members", "value": [{"value": "a"}, {"value": "a", "display": "A"}]}]`,
	`[]`,
}

// FuzzApply checks that Apply never panics, never modifies its input,
// and always leaves a canonical resource: one that Normalize would not
// change. Each input is two operations, so that the fuzzer mutates ops,
// paths and values rather than JSON punctuation; a value that is not
// JSON is used as a string.
func FuzzApply(f *testing.F) {
	for _, s := range opSeeds {
		ops := decodeOps(f, s)
		for len(ops) < 2 {
			ops = append(ops, patch.Operation{Op: "add"})
		}
		for _, group := range []bool{false, true} {
			f.Add(ops[0].Op, ops[0].Path, jsonOf(f, ops[0].Value), ops[1].Op, ops[1].Path, jsonOf(f, ops[1].Value), group)
		}
	}
	f.Fuzz(func(t *testing.T, op1, path1, value1, op2, path2, value2 string, group bool) {
		ops := []patch.Operation{
			{Op: op1, Path: path1, Value: valueOf(value1)},
			{Op: op2, Path: path2, Value: valueOf(value2)},
		}
		rt, base := schema.User(), baseUser
		if group {
			rt, base = schema.Group(), baseGroup
		}
		resource := decode(t, base)
		got, err := patch.Apply(resource, ops, rt)
		if diff := cmp.Diff(decode(t, base), resource); diff != "" {
			t.Fatalf("Apply modified its input (-before +after):\n%s", diff)
		}
		if err != nil {
			if scimType(err) == "" {
				t.Fatalf("Apply error %v is not a *schema.Error", err)
			}
			return
		}
		checkCanonical(t, rt, got)
	})
}

func jsonOf(t testing.TB, v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func valueOf(s string) any {
	var v any
	if json.Unmarshal([]byte(s), &v) != nil {
		return s
	}
	return v
}

// FuzzParsePath checks that parsing a PATCH path never panics and that
// every parsed path prints as a path that parses back to the same path.
func FuzzParsePath(f *testing.F) {
	for _, s := range []string{
		`name.givenName`, `emails[type eq "work"].value`, `members[value eq "2819c223"]`,
		ent + `:manager`, ent, `urn:scim:schemas:extension:enterprise:2.0:manager.value`,
		`addresses[type eq "work"].streetAddress`, `phoneNumbers[type eq "mobile" and primary eq true].value`,
		`emails[not (value co "@") or display pr]`, `meta.created`,
	} {
		f.Add(s, false)
	}
	f.Add(`members[value eq "2819c223" and type eq "User"].display`, true)
	equal := []cmp.Option{
		cmp.Comparer(func(a, b *schema.Attribute) bool { return a == b }),
		cmpopts.IgnoreUnexported(filter.Compare{}),
	}
	f.Fuzz(func(t *testing.T, s string, group bool) {
		rt := schema.User()
		if group {
			rt = schema.Group()
		}
		p, err := patch.ParsePath(s, rt)
		if err != nil {
			if scimType(err) != schema.ScimTypeInvalidPath {
				t.Fatalf("ParsePath(%q) error %v is not invalidPath", s, err)
			}
			return
		}
		again, err := patch.ParsePath(p.String(), rt)
		if err != nil {
			t.Fatalf("ParsePath(%q) printed %q, which does not parse: %v", s, p, err)
		}
		if diff := cmp.Diff(p, again, equal...); diff != "" {
			t.Fatalf("ParsePath(%q) printed %q, which parses differently (-first +again):\n%s", s, p, diff)
		}
	})
}

// FuzzNormalize checks that Normalize never panics and is idempotent.
func FuzzNormalize(f *testing.F) {
	f.Add(baseUser, false)
	f.Add(baseGroup, true)
	f.Add(`{"userName": "u", "active": "True", "emails": [{"Primary": "true", "value": "a"}, {"primary": true, "value": "b"}],
		"urn:scim:schemas:extension:enterprise:2.0": {"Manager": "m"}, "`+ent+`:department": "d", "title": null}`, false)
	f.Add(`{"displayName": "g", "members": [{"value": "a"}, {"value": "a", "display": "x"}, "b", null]}`, true)
	f.Fuzz(func(t *testing.T, body string, group bool) {
		var resource map[string]any
		if json.Unmarshal([]byte(body), &resource) != nil {
			return
		}
		rt := schema.User()
		if group {
			rt = schema.Group()
		}
		got, err := patch.Normalize(resource, rt)
		if err != nil {
			if scimType(err) == "" {
				t.Fatalf("Normalize error %v is not a *schema.Error", err)
			}
			return
		}
		checkCanonical(t, rt, got)
	})
}

// checkCanonical fails unless the resource is JSON, holds no nulls or
// empty values, and is a fixed point of Normalize apart from the
// read-only attributes Normalize drops.
func checkCanonical(t *testing.T, rt *schema.ResourceType, res map[string]any) {
	t.Helper()
	if _, err := json.Marshal(res); err != nil {
		t.Fatalf("result is not JSON: %v", err)
	}
	if path := findEmpty(res, ""); path != "" {
		t.Fatalf("result holds an empty value at %s: %v", path, res)
	}
	writable := make(map[string]any, len(res))
	for k, v := range res {
		if a, ok := rt.Attribute(k); !ok || a.Mutability != schema.ReadOnly {
			writable[k] = v
		}
	}
	again, err := patch.Normalize(writable, rt)
	if err != nil {
		t.Fatalf("Normalize(result): %v\nresult: %v", err, res)
	}
	if diff := cmp.Diff(writable, again); diff != "" {
		t.Fatalf("result is not canonical (-result +normalized):\n%s", diff)
	}
}

func findEmpty(v any, path string) string {
	switch v := v.(type) {
	case nil:
		return path + " (null)"
	case string:
		if v == "" {
			return path
		}
	case []any:
		if len(v) == 0 {
			return path
		}
		for i, el := range v {
			if p := findEmpty(el, fmt.Sprintf("%s[%d]", path, i)); p != "" {
				return p
			}
		}
	case map[string]any:
		if len(v) == 0 {
			return path
		}
		for k, el := range v {
			if p := findEmpty(el, path+"."+k); p != "" {
				return p
			}
		}
	}
	return ""
}

func BenchmarkApplyPatch(b *testing.B) {
	bigGroup := func(n int) map[string]any {
		members := make([]any, n)
		for i := range members {
			members[i] = map[string]any{"value": fmt.Sprintf("user-%06d", i), "display": fmt.Sprintf("user%d@example.com", i)}
		}
		return map[string]any{"schemas": []any{schema.GroupURN}, "id": "g", "displayName": "Everyone", "members": members}
	}
	replaceAll := func(n int) string {
		var sb strings.Builder
		sb.WriteString(`[{"op": "replace", "path": "members", "value": [`)
		for i := range n {
			if i > 0 {
				sb.WriteByte(',')
			}
			fmt.Fprintf(&sb, `{"value": "user-%06d"}`, n-i)
		}
		sb.WriteString(`]}]`)
		return sb.String()
	}
	benchmarks := []struct {
		name     string
		rt       *schema.ResourceType
		resource func() map[string]any
		ops      string
	}{
		{"OktaDeactivate", schema.User(), func() map[string]any { return decode(b, baseUser) },
			`[{"op": "replace", "value": {"active": false}}]`},
		{"EntraUserUpdate", schema.User(), func() map[string]any { return decode(b, baseUser) },
			`[{"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "updatedEmail@microsoft.com"},
			{"op": "Replace", "path": "name.familyName", "value": "updatedFamilyName"},
			{"op": "Replace", "path": "userName", "value": "5b50642d@testuser.com"},
			{"op": "Replace", "path": "active", "value": "False"}]`},
		{"OktaMembership/10k", schema.Group(), func() map[string]any { return bigGroup(10000) },
			`[{"op": "remove", "path": "members[value eq \"user-000042\"]"},
			{"op": "add", "path": "members", "value": [{"value": "newcomer", "display": "new@example.com"}]}]`},
		{"EntraAddMember/10k", schema.Group(), func() map[string]any { return bigGroup(10000) },
			`[{"op": "Add", "path": "members", "value": [{"$ref": null, "value": "newcomer"}]}]`},
		{"ReplaceMembers/10k", schema.Group(), func() map[string]any { return bigGroup(10000) }, replaceAll(10000)},
	}
	for _, bm := range benchmarks {
		b.Run(bm.name, func(b *testing.B) {
			resource, ops := bm.resource(), decodeOps(b, bm.ops)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := patch.Apply(resource, ops, bm.rt); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkNormalize(b *testing.B) {
	body := decode(b, `{
		"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "`+ent+`"],
		"externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef", "userName": "Test_User_ab6490ee", "active": true,
		"emails": [{"primary": true, "type": "work", "value": "Test_User_fd0ea19b@testuser.com"}],
		"meta": {"resourceType": "User"},
		"name": {"formatted": "givenName familyName", "familyName": "familyName", "givenName": "givenName"},
		"title": null, "roles": [],
		"`+ent+`": {"department": "Ops", "manager": "m1"}}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := patch.Normalize(body, schema.User()); err != nil {
			b.Fatal(err)
		}
	}
}
