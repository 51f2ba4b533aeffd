package app

import (
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/scimsync/scimsync/broker/brokertest"
	"github.com/scimsync/scimsync/store/storetest"
)

// TestOpenAPIOperationsServed: the whole HTTP surface serves every
// operation the admin API's document names, under the security it
// documents, answering with a status it documents. The public ones are
// served outside the admin API, so only here are they seen together.
func TestOpenAPIOperationsServed(t *testing.T) {
	s := newTestServer(t, storetest.Backends()[0], brokertest.Open(t))
	code, doc, hdr := s.do(t, call{method: "GET", path: "/api/v1/openapi.json", auth: adminToken})
	if code != 200 || hdr.Get("Content-Type") != "application/json" {
		t.Fatalf("GET /api/v1/openapi.json = %d, %q", code, hdr.Get("Content-Type"))
	}
	if code, _, _ := s.do(t, call{method: "GET", path: "/api/v1/openapi.json"}); code != 401 {
		t.Errorf("GET /api/v1/openapi.json without the admin token = %d, want 401", code)
	}
	param := regexp.MustCompile(`\{[^}]+\}`)
	paths, _ := doc["paths"].(map[string]any)
	public := 0
	for tmpl, item := range paths {
		for method, op := range item.(map[string]any) {
			op, ok := op.(map[string]any)
			if !ok {
				continue // the path item's parameters
			}
			method = strings.ToUpper(method)
			sec, hasSec := op["security"].([]any)
			isPublic := hasSec && len(sec) == 0
			responses, _ := op["responses"].(map[string]any)
			path := param.ReplaceAllString(tmpl, "x1")
			c := call{method: method, path: path}
			if isPublic {
				public++
			} else {
				if code, _, _ := s.do(t, c); code != 401 {
					t.Errorf("%s %s without the admin token = %d, want 401", method, path, code)
				}
				c.auth = adminToken
			}
			code, body, _ := s.do(t, c)
			if _, ok := responses[strconv.Itoa(code)]; !ok || code == 401 {
				t.Errorf("%s %s = %d %v, not a documented answer", method, path, code, body)
			}
			if e, _ := body["error"].(map[string]any); e != nil && strings.HasPrefix(e["message"].(string), "no such endpoint") {
				t.Errorf("%s %s is not served: %v", method, path, e)
			}
		}
	}
	if public == 0 {
		t.Error("no public operation documented; POST /api/v1/invites/accept is one")
	}
}
