package inbound_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/scimsync/scimsync/inbound"
	"github.com/scimsync/scimsync/store"
	"github.com/scimsync/scimsync/store/storetest"
)

// fuzzTargets are the requests a fuzz input is sent as; %u and %g stand for
// the seeded user's and group's ids, and a query target gets the input as
// its parameter value.
var fuzzTargets = []struct {
	method, path, query string
}{
	{"POST", "/Users", ""},
	{"PUT", "/Users/%u", ""},
	{"PATCH", "/Users/%u", ""},
	{"POST", "/Groups", ""},
	{"PUT", "/Groups/%g", ""},
	{"PATCH", "/Groups/%g", ""},
	{"GET", "/Users", "filter"},
	{"GET", "/Groups", "filter"},
	{"GET", "/Users/%u", "attributes"},
	{"GET", "/Groups", "excludedAttributes"},
}

// FuzzSCIMRequest sends arbitrary bodies (and query values) to the write
// and read endpoints: whatever arrives, the answer is never a 5xx and the
// handler never panics.
func FuzzSCIMRequest(f *testing.F) {
	seeds := []string{
		`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"a@example.com","name":{"givenName":"A"},"emails":[{"value":"a@x","primary":true}]}`,
		`{"userName":"b","password":"p","groups":[],"active":"False","title":null,"roles":[],"meta":{"resourceType":"User"}}`,
		`{"userName":"c","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"manager":"m","employeeNumber":"1"}}`,
		`{"schemas":["urn:scim:schemas:core:2.0","urn:scim:schemas:extension:enterprise:2.0"],"userName":"d","urn:scim:schemas:extension:enterprise:2.0":{"department":"x"}}`,
		`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","value":{"active":false}}]}`,
		`{"Operations":[{"op":"Replace","path":"emails[type eq \"work\"].value","value":"x@y"},{"op":"Remove","path":"members","value":[{"value":"u"}]}]}`,
		`{"Operations":[{"op":"add","path":"members","value":[{"value":"%u"}]},{"op":"remove","path":"members[value eq \"%u\"]"}]}`,
		`{"Operations":[{"op":"replace","value":{"name.givenName":"x","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber":"2","id":"z","displayName":"G"}}]}`,
		`{"displayName":"Eng","members":[{"value":"%u"}],"schemas":["http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"]}`,
		`{"Operations":[]}`, `{"Operations":null}`, `{"Operations":[{"op":"add","path":"groups","value":"x"}]}`,
		`userName eq "a@example.com"`, `emails[type eq "work"].value eq "x" or not (title pr)`, `members[value eq "x"]`,
		`userName,name.givenName`, `members`, `{"userName":1e400}`, `{"userName":"x","emails":{"value":"x"}}`,
		`[]`, `null`, `"x"`, `{`, ``,
	}
	for i, s := range seeds {
		f.Add(uint8(i%len(fuzzTargets)), []byte(s))
	}
	b := storetest.Backends()[0] // SQLite: fast enough to fuzz
	st := storetest.Open(f, b, store.Options{})
	h := newHarness(f, st)
	tn := h.tenant()
	uid := tn.createUser(map[string]any{"userName": "seed@example.com", "emails": []any{map[string]any{"value": "seed@example.com"}}})
	gid := tn.createGroup(map[string]any{"displayName": "Seed", "members": []any{map[string]any{"value": uid}}})
	handler := h.srv.Config.Handler

	f.Fuzz(func(t *testing.T, target uint8, body []byte) {
		tg := fuzzTargets[int(target)%len(fuzzTargets)]
		body = bytes.ReplaceAll(bytes.ReplaceAll(body, []byte("%u"), []byte(uid)), []byte("%g"), []byte(gid))
		path := string(bytes.ReplaceAll(bytes.ReplaceAll([]byte(tg.path), []byte("%u"), []byte(uid)), []byte("%g"), []byte(gid)))
		var req *http.Request
		if tg.query != "" {
			req = httptest.NewRequest(tg.method, inbound.Prefix+path+"?"+tg.query+"="+url.QueryEscape(string(body)), nil)
		} else {
			req = httptest.NewRequest(tg.method, inbound.Prefix+path, bytes.NewReader(body))
			req.Header.Set("Content-Type", scimJSON)
		}
		req.Header.Set("Authorization", "Bearer "+tn.token)
		w := httptest.NewRecorder()
		handler.ServeHTTP(w, req)
		if w.Code >= 500 {
			t.Fatalf("%s %s with %q: status %d: %s", tg.method, path, body, w.Code, w.Body.Bytes())
		}
		if ct := w.Header().Get("Content-Type"); w.Body.Len() > 0 && ct != scimJSON {
			t.Fatalf("%s %s: Content-Type %q", tg.method, path, ct)
		}
	})
}
