package filter_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/scimsync/scimsync/inbound/filter"
	"github.com/scimsync/scimsync/inbound/schema"
)

// tree renders an expression as an s-expression, to check its shape.
func tree(e filter.Expr) string {
	switch e := e.(type) {
	case *filter.Logical:
		return fmt.Sprintf("(%s %s %s)", e.Op, tree(e.Left), tree(e.Right))
	case *filter.Not:
		return fmt.Sprintf("(not %s)", tree(e.X))
	case *filter.Compare:
		p := e.Path
		p.Filter = nil
		s := fmt.Sprintf("(%s %s", e.Op, p)
		if e.Path.Filter != nil {
			s += " [" + tree(e.Path.Filter) + "]"
		}
		if e.Op != filter.Pr {
			s += fmt.Sprintf(" %#v", e.Value)
		}
		return s + ")"
	case *filter.ValuePath:
		return fmt.Sprintf("(%s [%s])", e.Path.Attribute.Name, tree(e.Path.Filter))
	}
	return fmt.Sprintf("?%T", e)
}

// exprEqual compares parsed expressions: attributes by identity, since
// they come from the shared schema tables.
var exprEqual = []cmp.Option{
	cmp.Comparer(func(a, b *schema.Attribute) bool { return a == b }),
	cmpopts.IgnoreUnexported(filter.Compare{}),
}

func mustParse(t testing.TB, rt *schema.ResourceType, s string) filter.Expr {
	t.Helper()
	e, err := filter.Parse(s, rt)
	if err != nil {
		t.Fatalf("Parse(%q): %v", s, err)
	}
	return e
}

func TestParse(t *testing.T) {
	const ent = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
	tests := []struct {
		name, filter string
		tree         string // the expected shape
		canonical    string // String(); the input when empty
	}{
		{"eq", `userName eq "bjensen"`, `(eq userName "bjensen")`, ""},
		{"every operator", `title ne "a" or title co "b" or title sw "c" or title ew "d" or title gt "e" or title ge "f" or title lt "g" or title le "h" or title pr`,
			`(or (or (or (or (or (or (or (or (ne title "a") (co title "b")) (sw title "c")) (ew title "d")) (gt title "e")) (ge title "f")) (lt title "g")) (le title "h")) (pr title))`, ""},
		{"and binds tighter than or", `userName eq "a" or userName eq "b" and title pr`,
			`(or (eq userName "a") (and (eq userName "b") (pr title)))`, ""},
		{"and binds tighter than or on the left", `title pr and userName eq "a" or userName eq "b"`,
			`(or (and (pr title) (eq userName "a")) (eq userName "b"))`, ""},
		{"parentheses override precedence", `(userName eq "a" or userName eq "b") and title pr`,
			`(and (or (eq userName "a") (eq userName "b")) (pr title))`, ""},
		{"redundant parentheses vanish", `((userName eq "a"))`, `(eq userName "a")`, `userName eq "a"`},
		{"right-nested and keeps its parentheses", `title pr and (userName eq "a" and nickName pr)`,
			`(and (pr title) (and (eq userName "a") (pr nickName)))`, ""},
		{"not binds tightest", `not (title pr) and userName eq "a"`,
			`(and (not (pr title)) (eq userName "a"))`, ""},
		{"not without space", `not(title pr)`, `(not (pr title))`, `not (title pr)`},
		{"keywords and operators in any case", `userName EQ "a" AND Title Pr OR NOT (active Eq TRUE)`,
			`(or (and (eq userName "a") (pr title)) (not (eq active true)))`, `userName eq "a" and title pr or not (active eq true)`},
		{"mixed-case attribute names", `DisplayName eq "BobIsAmazing"`, `(eq displayName "BobIsAmazing")`, `displayName eq "BobIsAmazing"`},
		{"mixed-case sub-attributes", `name.FamilyName eq "Employee" and (emails.Value co "example.com" or emails.Value co "example.org")`,
			`(and (eq name.familyName "Employee") (or (co emails.value "example.com") (co emails.value "example.org")))`,
			`name.familyName eq "Employee" and (emails.value co "example.com" or emails.value co "example.org")`},
		{"dateTime", `meta.Created gt "2015-10-10T14:38:21.8617979-07:00"`, `(gt meta.created "2015-10-10T14:38:21.8617979-07:00")`,
			`meta.created gt "2015-10-10T14:38:21.8617979-07:00"`},
		{"core URN qualified", `urn:ietf:params:scim:schemas:core:2.0:User:userName sw "J"`, `(sw userName "J")`, `userName sw "J"`},
		{"enterprise attribute", ent + `:employeeNumber eq "42"`, `(eq ` + ent + `:employeeNumber "42")`, ""},
		{"enterprise sub-attribute", ent + `:manager.value eq "m1"`, `(eq ` + ent + `:manager.value "m1")`, ""},
		{"legacy enterprise URN", `urn:scim:schemas:extension:enterprise:2.0:department eq "x"`, `(eq ` + ent + `:department "x")`,
			ent + `:department eq "x"`},
		{"value filter", `emails[type eq "work" and value co "@example.com"]`, `(emails [(and (eq type "work") (co value "@example.com"))])`, ""},
		{"value filter with sub-attribute", `emails[type eq "work"].value eq "x@example.com"`, `(eq emails.value [(eq type "work")] "x@example.com")`, ""},
		{"value filters joined", `emails[type eq "work" and value co "@example.com"] or ims[type eq "xmpp" and value co "@foo.com"]`,
			`(or (emails [(and (eq type "work") (co value "@example.com"))]) (ims [(and (eq type "xmpp") (co value "@foo.com"))]))`, ""},
		{"not inside value filter", `emails[not (type eq "work")]`, `(emails [(not (eq type "work"))])`, ""},
		{"value filter on a single complex attribute", `name[givenName eq "x"]`, `(name [(eq givenName "x")])`, ""},
		{"implied value sub-attribute", `emails co "example.com"`, `(co emails.value "example.com")`, `emails.value co "example.com"`},
		{"multi-valued pr", `emails pr`, `(pr emails)`, ""},
		{"complex pr", `name pr`, `(pr name)`, ""},
		{"schemas", `schemas eq "` + ent + `"`, `(eq schemas "` + ent + `")`, ""},
		{"json escapes", `userName eq "a\"b\\c\/d\u00e9\n\t\ud83d\ude00"`, "(eq userName \"a\\\"b\\\\c/dé\\n\\t😀\")",
			"userName eq \"a\\\"b\\\\c/dé\\n\\t😀\""},
		{"lone surrogate", `userName eq "\ud800x"`, "(eq userName \"\ufffdx\")", `userName eq "` + "\ufffd" + `x"`},
		{"booleans", `active eq false`, `(eq active false)`, ""},
		{"quoted boolean", `active eq "True"`, `(eq active true)`, `active eq true`},
		{"null", `title eq null`, `(eq title <nil>)`, ""},
		{"ne null", `title ne NULL`, `(ne title <nil>)`, `title ne null`},
		{"whitespace", "  userName\teq  \"a\"\n", `(eq userName "a")`, `userName eq "a"`},
		{"no space before string", `userName eq"a"`, `(eq userName "a")`, `userName eq "a"`},
		{"$ref", `groups.$ref pr`, `(pr groups.$ref)`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := mustParse(t, schema.User(), tt.filter)
			if got := tree(e); got != tt.tree {
				t.Errorf("tree:\n got %s\nwant %s", got, tt.tree)
			}
			want := tt.canonical
			if want == "" {
				want = tt.filter
			}
			if got := e.String(); got != want {
				t.Errorf("String:\n got %s\nwant %s", got, want)
			}
			again := mustParse(t, schema.User(), e.String())
			if diff := cmp.Diff(e, again, exprEqual...); diff != "" {
				t.Errorf("String does not re-parse to the same expression (-first +again):\n%s", diff)
			}
		})
	}
}

func TestParseGroup(t *testing.T) {
	for _, f := range []string{
		`displayName eq "Engineering"`,
		`members[value eq "2819c223"]`,
		`members.value eq "2819c223"`,
		`externalId eq "abc" and members pr`,
	} {
		mustParse(t, schema.Group(), f)
	}
	if _, err := filter.Parse(`userName eq "x"`, schema.Group()); err == nil {
		t.Error("Group filter on userName parsed")
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct{ name, filter, detail string }{
		{"empty", ``, "empty filter"},
		{"blank", `   `, "empty filter"},
		{"unknown attribute", `nope eq "x"`, `unknown attribute "nope"`},
		{"unknown sub-attribute", `name.nope eq "x"`, `unknown sub-attribute`},
		{"unknown schema", `urn:example:x:attr eq "x"`, `unknown schema`},
		{"unqualified extension attribute", `employeeNumber eq "1"`, `unknown attribute`},
		{"whole schema", `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User eq "x"`, `names a schema`},
		{"unquoted string, as Microsoft's collection sends", `userName sw O`, `expected a value`},
		{"unquoted dateTime", `meta.Created gt 2015-10-10T14:38:21.8617979-07:00`, `expected a value`},
		{"unknown operator", `userName is "x"`, `unknown operator "is"`},
		{"missing operator", `userName`, `expected an operator`},
		{"missing value", `userName eq`, `expected a value`},
		{"value after pr", `title pr "x"`, `unexpected a string`},
		{"trailing and", `title pr and`, `expected an attribute path`},
		{"leading and", `and title pr`, `unknown attribute "and"`},
		{"unbalanced open", `(title pr`, `expected ")"`},
		{"unbalanced close", `title pr)`, `unexpected ")"`},
		{"not without parentheses", `not title pr`, `expected "(" after "not"`},
		{"empty parentheses", `()`, `expected an attribute path`},
		{"nested value filter", `emails[type eq "work" and emails[value pr]]`, `unknown sub-attribute "emails"`},
		{"bracket inside value filter", `emails[value[type pr]]`, `value filters cannot be nested`},
		{"value filter on a simple attribute", `userName[value eq "x"]`, `not a complex attribute`},
		{"value filter after a sub-attribute", `name.givenName[x eq "y"]`, `not a complex attribute`},
		{"unclosed value filter", `emails[type eq "work"`, `expected "]"`},
		{"space before sub-attribute", `emails[type eq "work"] .value eq "x"`, `unexpected ".value"`},
		{"unknown sub-attribute after filter", `emails[type eq "work"].nope eq "x"`, `unknown sub-attribute "nope"`},
		{"complex compared", `name eq "x"`, `is complex`},
		{"boolean ordered", `active gt true`, `supports only eq, ne and pr`},
		{"boolean substring", `active co "tr"`, `is a boolean`},
		{"boolean compared with number", `active eq 1`, `is a boolean`},
		{"string compared with number", `userName eq 5`, `needs a quoted value`},
		{"string compared with boolean", `userName eq true`, `needs a quoted value`},
		{"bad dateTime", `meta.created gt "yesterday"`, `not an RFC 3339 dateTime`},
		{"null ordered", `title gt null`, `null can only be compared with eq or ne`},
		{"bad number", `userName eq 01`, `expected a value`},
		{"number out of range", `meta.created eq 1e999`, `out of range`},
		{"unterminated string", `userName eq "abc`, `unterminated string`},
		{"bad escape", `userName eq "a\x"`, `invalid escape`},
		{"bad unicode escape", `userName eq "\u12"`, `invalid \u escape`},
		{"control character", "userName eq \"a\tb\"", `control character`},
		{"too deep", strings.Repeat("(", 40) + `title pr` + strings.Repeat(")", 40), `nested more than`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := filter.Parse(tt.filter, schema.User())
			if err == nil {
				t.Fatalf("Parse(%q) = %s, want an error", tt.filter, e)
			}
			var se *schema.Error
			if !errors.As(err, &se) || se.ScimType != schema.ScimTypeInvalidFilter {
				t.Fatalf("Parse(%q) error %#v is not an invalidFilter *schema.Error", tt.filter, err)
			}
			if !strings.Contains(se.Detail, tt.detail) {
				t.Errorf("Parse(%q) detail %q does not mention %q", tt.filter, se.Detail, tt.detail)
			}
		})
	}
}

func TestParsePath(t *testing.T) {
	const ent = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
	tests := []struct {
		rt         *schema.ResourceType
		path, want string
	}{
		{schema.User(), "name.givenName", "name.givenName"},
		{schema.User(), `emails[type eq "work"].value`, `emails[type eq "work"].value`},
		{schema.Group(), `members[value eq "2819c223"]`, `members[value eq "2819c223"]`},
		{schema.User(), `addresses[type eq "work"].streetAddress`, `addresses[type eq "work"].streetAddress`},
		{schema.User(), ent + ":manager", ent + ":manager"},
		{schema.User(), ent, ent},
		{schema.User(), "urn:scim:schemas:extension:enterprise:2.0", ent},
		{schema.User(), " userName ", "userName"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			p, err := filter.ParsePath(tt.path, tt.rt)
			if err != nil {
				t.Fatal(err)
			}
			if p.String() != tt.want {
				t.Errorf("ParsePath(%q) = %s, want %s", tt.path, p, tt.want)
			}
		})
	}
	for _, bad := range []string{"", "nope", `emails[type eq "work"`, "userName eq", `emails[type eq "work"]]`, ent + `[x eq "y"]`, "(userName)"} {
		_, err := filter.ParsePath(bad, schema.User())
		var se *schema.Error
		if !errors.As(err, &se) || se.ScimType != schema.ScimTypeInvalidPath {
			t.Errorf("ParsePath(%q) error = %v, want invalidPath", bad, err)
		}
	}
}

// richUser is a resource exercising every kind of attribute.
const richUser = `{
	"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
	"id": "2819c223-7f76-453a-919d-413861904646",
	"externalId": "Ext-1",
	"userName": "BJensen@example.com",
	"name": {"familyName": "Jensen", "givenName": "Barbara", "middleName": ""},
	"displayName": "Babs Jensen",
	"title": "",
	"active": true,
	"emails": [
		{"value": "bjensen@example.com", "type": "work", "primary": true},
		{"value": "babs@jensen.org", "type": "home"}
	],
	"phoneNumbers": [{"value": "555-555-8377", "type": "work"}],
	"roles": [],
	"meta": {"created": "2010-01-23T04:56:22Z", "lastModified": "2011-05-13T04:42:34Z", "version": "W/\"a330bc54f0671c9\""},
	"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
		"employeeNumber": "701984",
		"department": "Tour Operations",
		"manager": {"value": "26118915-6090-4610-87e4-49d8ca9f808d"}
	}
}`

func decode(t testing.TB, s string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestMatch(t *testing.T) {
	user := decode(t, richUser)
	tests := []struct {
		filter string
		want   bool
	}{
		// userName is case-insensitive; id and externalId are caseExact.
		{`userName eq "bjensen@example.com"`, true},
		{`USERNAME eq "BJENSEN@EXAMPLE.COM"`, true},
		{`userName ne "bjensen@example.com"`, false},
		{`id eq "2819c223-7f76-453a-919d-413861904646"`, true},
		{`id eq "2819C223-7F76-453A-919D-413861904646"`, false},
		{`externalId eq "ext-1"`, false},
		{`externalId eq "Ext-1"`, true},
		{`userName co "JENSEN@"`, true},
		{`userName sw "bj"`, true},
		{`userName ew ".COM"`, true},
		{`userName ew "example"`, false},
		{`userName gt "a"`, true},
		{`userName lt "a"`, false},
		{`userName ge "bjensen@example.com"`, true},
		{`userName le "BJENSEN@EXAMPLE.COM"`, true},
		{`displayName co "babs"`, true},
		{`name.familyName eq "jensen"`, true},
		{`name.FamilyName sw "Jen"`, true},
		// Multi-valued attributes match when any value does.
		{`emails.value eq "babs@jensen.org"`, true},
		{`emails co "jensen.org"`, true},
		{`emails.type eq "home"`, true},
		{`emails.type ne "work"`, true},
		{`emails[type eq "work"].value eq "bjensen@example.com"`, true},
		{`emails[type eq "work"].value eq "babs@jensen.org"`, false},
		{`emails[type eq "work" and primary eq true]`, true},
		{`emails[type eq "home" and primary eq true]`, false},
		{`emails[type eq "other"]`, false},
		{`emails[not (type eq "work")].value ew ".org"`, true},
		{`phoneNumbers[type eq "mobile"]`, false},
		{`name[givenName eq "barbara"]`, true},
		// Booleans.
		{`active eq true`, true},
		{`active eq false`, false},
		{`active ne false`, true},
		{`emails.primary eq true`, true},
		// dateTimes compare as instants, in any zone.
		{`meta.created gt "2010-01-01T00:00:00Z"`, true},
		{`meta.created lt "2010-01-23T05:56:22+01:00"`, false},
		{`meta.created eq "2010-01-23T05:56:22+01:00"`, true},
		{`meta.lastModified ge "2011-05-13T04:42:34Z"`, true},
		{`meta.lastModified gt "2011-05-13T04:42:34.000000001Z"`, false},
		{`meta.created sw "2010-01"`, true},
		// meta.version is caseExact.
		{`meta.version eq "W/\"A330BC54F0671C9\""`, false},
		{`meta.version eq "W/\"a330bc54f0671c9\""`, true},
		// Presence: empty strings and lists are absent.
		{`title pr`, false},
		{`name.middleName pr`, false},
		{`roles pr`, false},
		{`emails pr`, true},
		{`name pr`, true},
		{`nickName pr`, false},
		{`nickName eq null`, true},
		{`title eq null`, true},
		{`userName eq null`, false},
		{`userName ne null`, true},
		// An absent attribute is unequal to everything.
		{`nickName ne "x"`, true},
		{`nickName eq "x"`, false},
		{`nickName co ""`, false},
		// Extension attributes.
		{`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq "701984"`, true},
		{`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq "26118915-6090-4610-87e4-49d8ca9f808d"`, true},
		{`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq "26118915-6090-4610-87E4-49D8CA9F808D"`, false},
		{`urn:scim:schemas:extension:enterprise:2.0:department co "tour"`, true},
		{`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:costCenter pr`, false},
		{`schemas eq "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"`, true},
		// Logic.
		{`userName eq "x" or active eq true`, true},
		{`userName eq "x" or active eq true and title pr`, false},
		{`(userName eq "x" or active eq true) and not (title pr)`, true},
		{`not (emails[type eq "work"])`, false},
	}
	for _, tt := range tests {
		t.Run(tt.filter, func(t *testing.T) {
			e := mustParse(t, schema.User(), tt.filter)
			if got := filter.Match(e, user); got != tt.want {
				t.Errorf("Match(%s) = %v, want %v", tt.filter, got, tt.want)
			}
		})
	}
}

// Resources that were not normalized still match: other spellings of
// attribute names, string booleans.
func TestMatchUnnormalized(t *testing.T) {
	user := decode(t, `{"UserName": "bob", "Emails": [{"Value": "b@x.org", "Type": "work"}], "active": "False",
		"urn:ietf:params:scim:schemas:extension:enterprise:2.0:user": {"Department": "Ops"}}`)
	for _, f := range []string{
		`userName eq "BOB"`,
		`emails[type eq "work"].value eq "b@x.org"`,
		`active eq false`,
		`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq "ops"`,
	} {
		if !filter.Match(mustParse(t, schema.User(), f), user) {
			t.Errorf("Match(%s) = false, want true", f)
		}
	}
}

func TestMatchNil(t *testing.T) {
	if !filter.Match(nil, map[string]any{}) {
		t.Error("a nil filter must match every resource")
	}
}

// Hand-built comparisons, without the parser's preparation, must match
// the same way.
func TestMatchHandBuilt(t *testing.T) {
	userName, _ := schema.User().Attribute("userName")
	e := &filter.Compare{Path: filter.Path{Attribute: userName}, Op: filter.Sw, Value: "BJ"}
	if !filter.Match(e, decode(t, richUser)) {
		t.Error("hand-built userName sw \"BJ\" did not match")
	}
}

func TestMatchNumbers(t *testing.T) {
	// The schemas have no numeric attributes, so build one.
	var count schema.Attribute
	count.Name, count.Type = "count", schema.TypeInteger
	res := map[string]any{"count": float64(3), "many": []any{1.0, 2.0}}
	tests := []struct {
		op   filter.Operator
		v    float64
		want bool
	}{
		{filter.Eq, 3, true}, {filter.Ne, 3, false}, {filter.Gt, 2, true}, {filter.Ge, 3, true},
		{filter.Lt, 3, false}, {filter.Le, 3.5, true},
	}
	for _, tt := range tests {
		e := &filter.Compare{Path: filter.Path{Attribute: &count}, Op: tt.op, Value: tt.v}
		if got := filter.Match(e, res); got != tt.want {
			t.Errorf("count %s %v = %v, want %v", tt.op, tt.v, got, tt.want)
		}
	}
}

func TestIndexedEq(t *testing.T) {
	tests := []struct {
		rt                *schema.ResourceType
		filter            string
		wantAttr, wantVal string
		wantOK            bool
	}{
		{schema.User(), `userName eq "bjensen"`, "userName", "bjensen", true},
		{schema.User(), `UserName EQ "BJensen"`, "userName", "BJensen", true},
		{schema.User(), `urn:ietf:params:scim:schemas:core:2.0:User:userName eq "b"`, "userName", "b", true},
		{schema.User(), `externalId eq "e1"`, "externalId", "e1", true},
		{schema.User(), `displayName eq "Babs"`, "displayName", "Babs", true},
		{schema.User(), `id eq "2819c223"`, "id", "2819c223", true},
		{schema.User(), `emails[type eq "work"].value eq "b@x.org"`, filter.IndexedEmail, "b@x.org", true},
		{schema.User(), `emails[Type eq "WORK"].Value eq "b@x.org"`, filter.IndexedEmail, "b@x.org", true},
		{schema.User(), `emails.value eq "b@x.org"`, filter.IndexedEmail, "b@x.org", true},
		{schema.User(), `emails eq "b@x.org"`, filter.IndexedEmail, "b@x.org", true},
		{schema.Group(), `displayName eq "Engineering"`, "displayName", "Engineering", true},
		{schema.Group(), `externalId eq "8aa1a0c0"`, "externalId", "8aa1a0c0", true},

		{schema.User(), `emails[type eq "home"].value eq "b@x.org"`, "", "", false},
		{schema.User(), `emails[type eq "work" and primary eq true].value eq "b@x.org"`, "", "", false},
		{schema.User(), `emails.type eq "work"`, "", "", false},
		{schema.User(), `userName ne "b"`, "", "", false},
		{schema.User(), `userName sw "b"`, "", "", false},
		{schema.User(), `userName eq null`, "", "", false},
		{schema.User(), `userName eq "a" and active eq true`, "", "", false},
		{schema.User(), `not (userName eq "a")`, "", "", false},
		{schema.User(), `title eq "x"`, "", "", false},
		{schema.User(), `name.givenName eq "x"`, "", "", false},
		{schema.User(), `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq "1"`, "", "", false},
		{schema.Group(), `members.value eq "x"`, "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.rt.ID+"/"+tt.filter, func(t *testing.T) {
			attr, val, ok := filter.IndexedEq(mustParse(t, tt.rt, tt.filter))
			if attr != tt.wantAttr || val != tt.wantVal || ok != tt.wantOK {
				t.Errorf("IndexedEq = (%q, %q, %v), want (%q, %q, %v)", attr, val, ok, tt.wantAttr, tt.wantVal, tt.wantOK)
			}
		})
	}
}

// The attributes IndexedEq reports must exist, or the store would be
// asked for a column nobody defined.
func TestIndexedAttributesExist(t *testing.T) {
	for _, name := range []string{"userName", "externalId", "displayName", "id"} {
		if _, ok := schema.User().Attribute(name); !ok {
			t.Errorf("User has no attribute %s", name)
		}
	}
}

// A parsed filter is shared by the goroutines serving a request; the race
// detector checks that matching writes nothing.
func TestMatchConcurrently(t *testing.T) {
	e := mustParse(t, schema.User(), `userName sw "BJ" and emails[type eq "work"].value co "example"`)
	user := decode(t, richUser)
	done := make(chan bool)
	for range 8 {
		go func() {
			ok := true
			for range 100 {
				ok = ok && filter.Match(e, user)
			}
			done <- ok
		}()
	}
	for range 8 {
		if !<-done {
			t.Error("Match failed under concurrency")
		}
	}
}
