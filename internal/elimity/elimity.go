// Package elimity loads, for tests, the SCIM request and response pairs
// recorded from Okta's and Microsoft's documentation that shared/ keeps
// beside the repository (conformance/third_party/elimity-fixtures).
package elimity

import (
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// Fixture is one recorded exchange.
type Fixture struct {
	Method     string          `json:"method"`
	Path       string          `json:"path"`
	StatusCode int             `json:"statusCode"`
	Request    json.RawMessage `json:"request"`
	Response   map[string]any  `json:"response"`
	// Raw is the file as recorded.
	Raw []byte `json:"-"`
}

// Dir is where the fixtures are: shared/ beside the repository.
func Dir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..", "shared", "conformance", "third_party", "elimity-fixtures")
}

// Load reads every fixture, keyed by its path below Dir ("okta/create_user.json").
// It skips the test when shared/ is not beside the repository.
func Load(t testing.TB) map[string]Fixture {
	t.Helper()
	dir := Dir()
	files, _ := filepath.Glob(filepath.Join(dir, "*", "*.json"))
	if len(files) == 0 {
		t.Skipf("no conformance fixtures in %s", dir)
	}
	out := make(map[string]Fixture, len(files))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		fx := Fixture{Raw: b}
		if err := json.Unmarshal(b, &fx); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		rel, _ := filepath.Rel(dir, f)
		out[filepath.ToSlash(rel)] = fx
	}
	return out
}
