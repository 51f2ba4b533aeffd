package project_test

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/scimsync/scimsync/inbound/project"
	"github.com/scimsync/scimsync/inbound/schema"
)

const ent = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"

const user = `{
	"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "` + ent + `"],
	"id": "u1",
	"externalId": "e1",
	"userName": "bjensen",
	"password": "secret",
	"name": {"givenName": "Barbara", "familyName": "Jensen"},
	"active": true,
	"emails": [
		{"value": "b@example.com", "type": "work", "primary": true},
		{"value": "emailName357", "type": "home"}
	],
	"meta": {"resourceType": "User", "created": "2010-01-23T04:56:22Z"},
	"` + ent + `": {"department": "Tours", "manager": {"value": "m1"}},
	"x-unknown": 1
}`

const group = `{
	"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
	"id": "g1",
	"displayName": "Engineering",
	"members": [{"value": "u1", "display": "Babs"}, {"value": "u2"}],
	"meta": {"resourceType": "Group"}
}`

func decode(t testing.TB, s string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatalf("%v in %s", err, s)
	}
	return m
}

func TestApply(t *testing.T) {
	const (
		always  = `"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "` + ent + `"], "id": "u1"`
		galways = `"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "id": "g1"`
	)
	tests := []struct {
		name                 string
		rt                   *schema.ResourceType
		resource             string
		attributes, excluded string
		want                 string
	}{
		{
			name: "default: everything but the password",
			rt:   schema.User(), resource: user,
			want: `{` + always + `, "externalId": "e1", "userName": "bjensen",
				"name": {"givenName": "Barbara", "familyName": "Jensen"}, "active": true,
				"emails": [{"value": "b@example.com", "type": "work", "primary": true}, {"value": "emailName357", "type": "home"}],
				"meta": {"resourceType": "User", "created": "2010-01-23T04:56:22Z"},
				"` + ent + `": {"department": "Tours", "manager": {"value": "m1"}}, "x-unknown": 1}`,
		},
		{
			name: "attributes: id and schemas always come too",
			rt:   schema.User(), resource: user, attributes: "userName,emails",
			want: `{` + always + `, "userName": "bjensen",
				"emails": [{"value": "b@example.com", "type": "work", "primary": true}, {"value": "emailName357", "type": "home"}]}`,
		},
		{
			name: "attributes in any case, with spaces",
			rt:   schema.User(), resource: user, attributes: " USERNAME , Name.GivenName ",
			want: `{` + always + `, "userName": "bjensen", "name": {"givenName": "Barbara"}}`,
		},
		{
			name: "sub-attribute of a multi-valued attribute",
			rt:   schema.User(), resource: user, attributes: "emails.value",
			want: `{` + always + `, "emails": [{"value": "b@example.com"}, {"value": "emailName357"}]}`,
		},
		{
			name: "Microsoft's value filter in attributes",
			rt:   schema.User(), resource: user, attributes: `emails[type eq "work"]`,
			want: `{` + always + `, "emails": [{"value": "b@example.com", "type": "work", "primary": true}]}`,
		},
		{
			name: "value filter matching a value",
			rt:   schema.User(), resource: user, attributes: `emails[value eq "emailName357"]`,
			want: `{` + always + `, "emails": [{"value": "emailName357", "type": "home"}]}`,
		},
		{
			name: "value filter and sub-attribute, with a comma inside the filter",
			rt:   schema.User(), resource: user, attributes: `emails[type eq "a,b" or type eq "work"].value,userName`,
			want: `{` + always + `, "userName": "bjensen", "emails": [{"value": "b@example.com"}]}`,
		},
		{
			name: "value filter matching nothing drops the attribute",
			rt:   schema.User(), resource: user, attributes: `emails[type eq "other"]`,
			want: `{` + always + `}`,
		},
		{
			name: "meta only when asked for",
			rt:   schema.User(), resource: user, attributes: "meta.created",
			want: `{` + always + `, "meta": {"created": "2010-01-23T04:56:22Z"}}`,
		},
		{
			name: "extension attribute",
			rt:   schema.User(), resource: user, attributes: ent + ":manager.value",
			want: `{` + always + `, "` + ent + `": {"manager": {"value": "m1"}}}`,
		},
		{
			name: "whole extension, by legacy URN",
			rt:   schema.User(), resource: user, attributes: "urn:scim:schemas:extension:enterprise:2.0",
			want: `{` + always + `, "` + ent + `": {"department": "Tours", "manager": {"value": "m1"}}}`,
		},
		{
			name: "the password never, even when asked for",
			rt:   schema.User(), resource: user, attributes: "password,userName",
			want: `{` + always + `, "userName": "bjensen"}`,
		},
		{
			name: "unknown attributes are ignored",
			rt:   schema.User(), resource: user, attributes: "nickName,bogus,urn:example:x:y,userName",
			want: `{` + always + `, "userName": "bjensen"}`,
		},
		{
			name: "only unknown attributes still select",
			rt:   schema.User(), resource: user, attributes: "bogus",
			want: `{` + always + `}`,
		},
		{
			name: "excludedAttributes",
			rt:   schema.User(), resource: user, excluded: "emails,name.givenName,meta," + ent + ":department,x-unknown",
			want: `{` + always + `, "externalId": "e1", "userName": "bjensen", "name": {"familyName": "Jensen"}, "active": true,
				"` + ent + `": {"manager": {"value": "m1"}}, "x-unknown": 1}`,
		},
		{
			name: "excluding a whole extension",
			rt:   schema.User(), resource: user, excluded: ent + ",emails,name,meta,externalId,active",
			want: `{` + always + `, "userName": "bjensen", "x-unknown": 1}`,
		},
		{
			name: "excluding filtered values",
			rt:   schema.User(), resource: user, attributes: "emails", excluded: `emails[type eq "home"]`,
			want: `{` + always + `, "emails": [{"value": "b@example.com", "type": "work", "primary": true}]}`,
		},
		{
			name: "id and schemas cannot be excluded",
			rt:   schema.User(), resource: user, attributes: "userName", excluded: "id,schemas,userName",
			want: `{` + always + `}`,
		},
		{
			name: "Entra's excludedAttributes=members",
			rt:   schema.Group(), resource: group, excluded: "members",
			want: `{` + galways + `, "displayName": "Engineering", "meta": {"resourceType": "Group"}}`,
		},
		{
			name: "group members only",
			rt:   schema.Group(), resource: group, attributes: "members.value",
			want: `{` + galways + `, "members": [{"value": "u1"}, {"value": "u2"}]}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := project.New(tt.rt, tt.attributes, tt.excluded)
			if err != nil {
				t.Fatal(err)
			}
			resource := decode(t, tt.resource)
			got := p.Apply(resource)
			if diff := cmp.Diff(decode(t, tt.want), got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(decode(t, tt.resource), resource); diff != "" {
				t.Errorf("Apply modified its input (-before +after):\n%s", diff)
			}
		})
	}
}

func TestNewErrors(t *testing.T) {
	for _, bad := range []string{`emails[type eq "work"`, `emails[type eq work]`, `emails[nope eq "x"]`, `userName[x eq "y"]`} {
		_, err := project.New(schema.User(), bad, "")
		var se *schema.Error
		if !errors.As(err, &se) || se.ScimType != schema.ScimTypeInvalidPath {
			t.Errorf("New(attributes=%q) error = %v, want invalidPath", bad, err)
		}
		if _, err := project.New(schema.User(), "", bad); err == nil {
			t.Errorf("New(excludedAttributes=%q) succeeded", bad)
		}
	}
}

func TestReturns(t *testing.T) {
	tests := []struct {
		rt                   *schema.ResourceType
		attributes, excluded string
		attribute            string
		want                 bool
	}{
		{schema.Group(), "", "", "members", true},
		{schema.Group(), "", "members", "members", false},
		{schema.Group(), "", "Members", "members", false},
		{schema.Group(), "", "members.display", "members", true},
		{schema.Group(), "displayName", "", "members", false},
		{schema.Group(), "members.value", "", "members", true},
		{schema.Group(), "displayName", "", "id", true},
		{schema.Group(), "", "id", "id", true},
		{schema.User(), "", "", "password", false},
		{schema.User(), "password", "", "password", false},
		{schema.User(), "", "", "groups", true},
		{schema.User(), ent, "", ent + ":manager", true},
		{schema.User(), "userName", "", ent + ":manager", false},
		{schema.User(), "", ent, ent + ":manager", false},
		{schema.User(), "", "", "bogus", false},
	}
	for _, tt := range tests {
		p, err := project.New(tt.rt, tt.attributes, tt.excluded)
		if err != nil {
			t.Fatal(err)
		}
		if got := p.Returns(tt.attribute); got != tt.want {
			t.Errorf("attributes=%q excludedAttributes=%q: Returns(%q) = %v, want %v",
				tt.attributes, tt.excluded, tt.attribute, got, tt.want)
		}
	}
}

func BenchmarkProject(b *testing.B) {
	resource := decode(b, user)
	for _, bm := range []struct{ name, attributes, excluded string }{
		{"default", "", ""},
		{"attributes", "userName,emails.value", ""},
		{"excluded", "", "emails,meta"},
	} {
		b.Run(bm.name, func(b *testing.B) {
			p, err := project.New(schema.User(), bm.attributes, bm.excluded)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				p.Apply(resource)
			}
		})
	}
}
