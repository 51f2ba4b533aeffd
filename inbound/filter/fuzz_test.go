package filter_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/scimsync/scimsync/inbound/filter"
	"github.com/scimsync/scimsync/inbound/schema"
)

var filterSeeds = []string{
	`userName eq "bjensen"`,
	`name.familyName co "O'Malley"`,
	`userName sw "J"`,
	`urn:ietf:params:scim:schemas:core:2.0:User:userName sw "J"`,
	`title pr`,
	`meta.lastModified gt "2011-05-13T04:42:34Z"`,
	`meta.lastModified ge "2011-05-13T04:42:34Z"`,
	`title pr and userType eq "Employee"`,
	`title pr or userType eq "Intern"`,
	`schemas eq "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"`,
	`userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")`,
	`userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")`,
	`userType eq "Employee" and (emails.type eq "work")`,
	`userType eq "Employee" and emails[type eq "work" and value co "@example.com"]`,
	`emails[type eq "work" and value co "@example.com"] or ims[type eq "xmpp" and value co "@foo.com"]`,
	`emails[type eq "work"].value eq "a@b.c"`,
	`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq "x"`,
	`urn:scim:schemas:extension:enterprise:2.0:employeeNumber eq "1"`,
	`active eq "False" or active eq true`,
	`title eq null or title ne NULL`,
	`userName eq "a\"b\\c\u00e9\ud83d\ude00\ud800"`,
	`DisplayName eq "BobIsAmazing"`,
	`meta.Created gt 2015-10-10T14:38:21.8617979-07:00`,
	`not (not (userName eq "x"))`,
	`((title pr))`,
	`emails[not (primary eq true)]`,
}

// fuzzUser is matched by every fuzzed filter, so that evaluation runs too.
const fuzzUser = `{"userName": "bjensen", "title": "Tour Guide", "active": "true",
	"name": {"familyName": "Jensen"},
	"emails": [{"value": "b@example.com", "type": "work", "primary": true}, "junk", null, 7],
	"meta": {"created": "2010-01-23T04:56:22Z", "lastModified": "not a date"},
	"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"manager": "bare"}}`

// FuzzParse checks that parsing never panics and that every parsed
// filter prints as a filter that parses back to the same expression and
// evaluates the same way.
func FuzzParse(f *testing.F) {
	for _, s := range filterSeeds {
		f.Add(s)
	}
	user := decode(f, fuzzUser)
	f.Fuzz(func(t *testing.T, s string) {
		e, err := filter.Parse(s, schema.User())
		if err != nil {
			return
		}
		printed := e.String()
		again, err := filter.Parse(printed, schema.User())
		if err != nil {
			t.Fatalf("Parse(%q) printed %q, which does not parse: %v", s, printed, err)
		}
		if diff := cmp.Diff(e, again, exprEqual...); diff != "" {
			t.Fatalf("Parse(%q) printed %q, which parses differently (-first +again):\n%s", s, printed, diff)
		}
		if again.String() != printed {
			t.Fatalf("printing is unstable: %q, then %q", printed, again.String())
		}
		if filter.Match(e, user) != filter.Match(again, user) {
			t.Fatalf("%q and its re-parse %q match differently", s, printed)
		}
		filter.IndexedEq(e)
	})
}

func BenchmarkParseFilter(b *testing.B) {
	benchmarks := []struct{ name, filter string }{
		{"userName", `userName eq "bjensen@example.com"`},
		{"emailWork", `emails[type eq "work"].value eq "bjensen@example.com"`},
		{"complex", `userType eq "Employee" and (emails co "example.com" or emails.value co "example.org") and not (title pr) and meta.lastModified gt "2011-05-13T04:42:34Z"`},
	}
	for _, bm := range benchmarks {
		b.Run(bm.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := filter.Parse(bm.filter, schema.User()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkMatch(b *testing.B) {
	user := decode(b, richUser)
	benchmarks := []struct{ name, filter string }{
		{"userName", `userName eq "BJENSEN@example.com"`},
		{"emailWork", `emails[type eq "work"].value eq "bjensen@example.com"`},
		{"complex", `displayName sw "babs" and (emails co "EXAMPLE.com" or emails.value co "example.org") and not (title pr) and meta.lastModified ge "2011-05-13T04:42:34Z"`},
	}
	for _, bm := range benchmarks {
		b.Run(bm.name, func(b *testing.B) {
			e := mustParse(b, schema.User(), bm.filter)
			if !filter.Match(e, user) {
				b.Fatal("no match")
			}
			b.ReportAllocs()
			for b.Loop() {
				filter.Match(e, user)
			}
		})
	}
}
