package filter_test

import (
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/scimsync/scimsync/inbound/filter"
	"github.com/scimsync/scimsync/inbound/schema"

	"github.com/scimsync/scimsync/internal/elimity"
)

// Every filtered GET in the fixtures parses, takes the indexed fast path,
// and matches exactly the resources the IdP expected back.
func TestFixtureFilters(t *testing.T) {
	all := elimity.Load(t)
	seen := 0
	for name, fx := range all {
		u, err := url.Parse(fx.Path)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		f := u.Query().Get("filter")
		if fx.Method != "GET" || f == "" {
			continue
		}
		seen++
		t.Run(name, func(t *testing.T) {
			rt, ok := schema.LookupResourceType(strings.Trim(u.Path, "/"))
			if !ok {
				t.Fatalf("no resource type for %s", u.Path)
			}
			e, err := filter.Parse(f, rt)
			if err != nil {
				t.Fatalf("Parse(%q): %v", f, err)
			}
			attr, value, ok := filter.IndexedEq(e)
			if !ok || attr == "" || value == "" {
				t.Errorf("IndexedEq(%s) = %q, %q, %v; want the indexed fast path", e, attr, value, ok)
			}
			resources, _ := fx.Response["Resources"].([]any)
			for _, r := range resources {
				if !filter.Match(e, r.(map[string]any)) {
					t.Errorf("%s does not match returned resource %v", e, r)
				}
			}
			// And nothing else: no single-resource response matches a
			// lookup for a value it does not have.
			for other, ofx := range all {
				if ofx.Response["id"] == nil || ofx.Response["userName"] == value || ofx.Response["displayName"] == value {
					continue
				}
				if strings.HasPrefix(ofx.Path, u.Path) && filter.Match(e, ofx.Response) {
					t.Errorf("%s matches %s", e, other)
				}
			}
		})
	}
	if seen == 0 {
		t.Error("no filtered GET among the fixtures")
	}
}

// microsoftCollection is Microsoft's SCIM reference test collection.
const microsoftCollection = "../../../shared/conformance/third_party/microsoft/PostmanCollection.json"

// The filters in Microsoft's collection: the RFC-conformant ones parse;
// those with unquoted values are rejected, deliberately, since RFC 7644
// requires JSON values and Entra itself always quotes them.
func TestMicrosoftCollectionFilters(t *testing.T) {
	b, err := os.ReadFile(microsoftCollection)
	if os.IsNotExist(err) {
		t.Skipf("no %s", microsoftCollection)
	}
	if err != nil {
		t.Fatal(err)
	}
	var filters []string
	for _, m := range regexp.MustCompile(`[?&]filter=([^"&]+)`).FindAllSubmatch(b, -1) {
		f, err := url.QueryUnescape(string(m[1]))
		if err != nil {
			t.Fatal(err)
		}
		filters = append(filters, f)
	}
	want := map[string]bool{
		`DisplayName eq "BobIsAmazing"`: true,
		`name.FamilyName eq Employee and (emails.Value co example.com or emails.Value co example.org)`: false,
		`userName sw O`: false,
		`meta.Created gt 2015-10-10T14:38:21.8617979-07:00`: false,
	}
	seen := map[string]bool{}
	for _, f := range filters {
		if seen[f] {
			continue
		}
		seen[f] = true
		ok, known := want[f]
		if !known {
			t.Errorf("unexpected filter %q in the collection", f)
			continue
		}
		if _, err := filter.Parse(f, schema.User()); (err == nil) != ok {
			t.Errorf("Parse(%q) error = %v, want success %v", f, err, ok)
		}
	}
	if len(seen) != len(want) {
		t.Errorf("found filters %q, want %d", filters, len(want))
	}
}
