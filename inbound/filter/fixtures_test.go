package filter_test

import (
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/scimsync/scimsync/inbound/filter"
	"github.com/scimsync/scimsync/inbound/schema"
)

// fixtureDir holds request and response pairs recorded from Okta's and
// Microsoft's documentation. It lives outside the module; checkouts
// without it skip these tests.
const fixtureDir = "../../../shared/conformance/third_party/elimity-fixtures"

type fixture struct {
	Method     string         `json:"method"`
	Path       string         `json:"path"`
	StatusCode int            `json:"statusCode"`
	Response   map[string]any `json:"response"`
}

func loadFixtures(t *testing.T) map[string]fixture {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(fixtureDir, "*", "*.json"))
	if len(files) == 0 {
		t.Skipf("no fixtures in %s", fixtureDir)
	}
	out := make(map[string]fixture, len(files))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var fx fixture
		if err := json.Unmarshal(b, &fx); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		rel, _ := filepath.Rel(fixtureDir, f)
		out[filepath.ToSlash(rel)] = fx
	}
	return out
}

// Every filtered GET in the fixtures parses, takes the indexed fast path,
// and matches exactly the resources the IdP expected back.
func TestFixtureFilters(t *testing.T) {
	all := loadFixtures(t)
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
