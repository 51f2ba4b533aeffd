package admin_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/scimsync/scimsync/admin"
	"github.com/scimsync/scimsync/converge"
	"github.com/scimsync/scimsync/jobs/invite"
	"github.com/scimsync/scimsync/store"
	"github.com/scimsync/scimsync/store/storetest"
)

// openAPIDoc is the served OpenAPI document, decoded.
type openAPIDoc map[string]any

// fetchOpenAPI gets the document as a client does, and checks that it needs
// the admin token.
func fetchOpenAPI(t *testing.T) openAPIDoc {
	t.Helper()
	srv := httptest.NewServer((&admin.API{Service: &admin.Service{}, Auth: admin.NewAuth(token)}).Handler())
	t.Cleanup(srv.Close)
	get := func(auth string) *http.Response {
		req, _ := http.NewRequest("GET", srv.URL+"/api/v1/openapi.json", nil)
		if auth != "" {
			req.Header.Set("Authorization", "Bearer "+auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	if resp := get(""); resp.StatusCode != http.StatusUnauthorized {
		resp.Body.Close()
		t.Errorf("without the admin token: %d, want 401", resp.StatusCode)
	}
	resp := get(token)
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET openapi.json = %d, %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	var d openAPIDoc
	if err := json.NewDecoder(resp.Body).Decode(&d); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	return d
}

// pointer follows a local reference ("#/components/schemas/Org").
func (d openAPIDoc) pointer(ref string) (any, bool) {
	rest, ok := strings.CutPrefix(ref, "#/")
	if !ok {
		return nil, false
	}
	var cur any = map[string]any(d)
	for _, tok := range strings.Split(rest, "/") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		if cur, ok = m[tok]; !ok {
			return nil, false
		}
	}
	return cur, true
}

// deref follows $ref until an object without one.
func (d openAPIDoc) deref(v any) map[string]any {
	m, _ := v.(map[string]any)
	for i := 0; i < 10 && m != nil; i++ {
		ref, ok := m["$ref"].(string)
		if !ok {
			return m
		}
		next, _ := d.pointer(ref)
		m, _ = next.(map[string]any)
	}
	return m
}

var methods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

type operation struct {
	method, path string
	op           map[string]any
	params       []map[string]any // the path item's and the operation's, resolved
	public       bool             // security: [] overrides the document's
}

func (o operation) String() string { return o.method + " " + o.path }

func (d openAPIDoc) operations() []operation {
	var out []operation
	paths, _ := d["paths"].(map[string]any)
	for path, item := range paths {
		item := d.deref(item)
		for _, m := range methods {
			op, ok := item[m].(map[string]any)
			if !ok {
				continue
			}
			o := operation{method: strings.ToUpper(m), path: path, op: op}
			for _, list := range []any{item["parameters"], op["parameters"]} {
				ps, _ := list.([]any)
				for _, p := range ps {
					o.params = append(o.params, d.deref(p))
				}
			}
			sec, ok := op["security"].([]any)
			o.public = ok && len(sec) == 0
			out = append(out, o)
		}
	}
	slices.SortFunc(out, func(a, b operation) int { return strings.Compare(a.String(), b.String()) })
	return out
}

// responseSchema is the JSON schema of an operation's answer with code.
func (d openAPIDoc) responseSchema(o operation, code int) (map[string]any, bool) {
	responses, _ := o.op["responses"].(map[string]any)
	r, ok := responses[strconv.Itoa(code)]
	if !ok {
		return nil, false
	}
	content, _ := d.deref(r)["content"].(map[string]any)
	media, _ := content["application/json"].(map[string]any)
	s, _ := media["schema"].(map[string]any)
	return s, s != nil
}

var templateParam = regexp.MustCompile(`\{([^}]+)\}`)

// TestOpenAPIWellFormed checks the document's structure as OpenAPI 3.1
// requires it, as far as a reader of it depends on it.
func TestOpenAPIWellFormed(t *testing.T) {
	d := fetchOpenAPI(t)
	if v, _ := d["openapi"].(string); !strings.HasPrefix(v, "3.1.") {
		t.Errorf("openapi = %q, want 3.1.x", v)
	}
	info, _ := d["info"].(map[string]any)
	if title, _ := info["title"].(string); title == "" {
		t.Error("info.title is missing")
	}
	if version, _ := info["version"].(string); version == "" {
		t.Error("info.version is missing")
	}
	// Every $ref resolves.
	var walk func(at string, v any)
	walk = func(at string, v any) {
		switch v := v.(type) {
		case map[string]any:
			if ref, ok := v["$ref"].(string); ok {
				if _, ok := d.pointer(ref); !ok {
					t.Errorf("%s: $ref %q does not resolve", at, ref)
				}
			}
			for k, e := range v {
				walk(at+"/"+k, e)
			}
		case []any:
			for i, e := range v {
				walk(at+"/"+strconv.Itoa(i), e)
			}
		}
	}
	walk("#", map[string]any(d))

	schemes, _ := d.pointer("#/components/securitySchemes")
	checkSecurity := func(at string, v any) {
		reqs, ok := v.([]any)
		if !ok {
			t.Errorf("%s: security is not a list", at)
			return
		}
		for _, req := range reqs {
			for name := range req.(map[string]any) {
				if _, ok := schemes.(map[string]any)[name]; !ok {
					t.Errorf("%s: security scheme %q is not defined", at, name)
				}
			}
		}
	}
	checkSecurity("#/security", d["security"])

	ids := map[string]string{}
	ops := d.operations()
	if len(ops) == 0 {
		t.Fatal("no operations")
	}
	for _, o := range ops {
		if !strings.HasPrefix(o.path, "/") {
			t.Errorf("%s: a path starts with /", o)
		}
		id, _ := o.op["operationId"].(string)
		if prev, dup := ids[id]; id == "" || dup {
			t.Errorf("%s: operationId %q is empty or also %s's", o, id, prev)
		}
		ids[id] = o.String()
		if sec, ok := o.op["security"]; ok {
			checkSecurity(o.String(), sec)
		}
		// Path parameters: each of the template's declared, required, and
		// none declared that the template lacks.
		inTemplate := map[string]bool{}
		for _, m := range templateParam.FindAllStringSubmatch(o.path, -1) {
			inTemplate[m[1]] = true
		}
		declared := map[string]bool{}
		for _, p := range o.params {
			name, _ := p["name"].(string)
			in, _ := p["in"].(string)
			if name == "" || !slices.Contains([]string{"path", "query", "header", "cookie"}, in) || p["schema"] == nil {
				t.Errorf("%s: parameter %v lacks a name, a valid in, or a schema", o, p)
			}
			if in != "path" {
				continue
			}
			declared[name] = true
			if p["required"] != true {
				t.Errorf("%s: path parameter %q is not required", o, name)
			}
			if !inTemplate[name] {
				t.Errorf("%s: path parameter %q is not in the template", o, name)
			}
		}
		for name := range inTemplate {
			if !declared[name] {
				t.Errorf("%s: {%s} is not declared", o, name)
			}
		}
		responses, _ := o.op["responses"].(map[string]any)
		if len(responses) == 0 {
			t.Errorf("%s: no responses", o)
		}
		for code, r := range responses {
			if n, err := strconv.Atoi(code); code != "default" && (err != nil || n < 100 || n > 599) {
				t.Errorf("%s: response code %q", o, code)
			}
			if desc, _ := d.deref(r)["description"].(string); desc == "" {
				t.Errorf("%s %s: a response needs a description", o, code)
			}
		}
	}
}

// normalizeRoute writes a ServeMux pattern's wildcards as an OpenAPI
// template does: {name...} as {name}, and no {$}.
func normalizeRoute(pattern string) string {
	pattern = strings.TrimSuffix(pattern, "{$}")
	return strings.ReplaceAll(pattern, "...}", "}")
}

// TestOpenAPIMatchesRoutes: every route the admin API serves is documented,
// and every documented operation that needs the admin token is served, by
// its own route. Public operations (security: []) are served outside the
// admin API, which needs the token for everything; app's tests check them.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	d := fetchOpenAPI(t)
	documented := map[string]operation{}
	for _, o := range d.operations() {
		documented[o.String()] = o
	}
	served := map[string]bool{}
	for _, r := range admin.Routes() {
		r = normalizeRoute(r)
		served[r] = true
		o, ok := documented[r]
		switch {
		case !ok:
			t.Errorf("%s is served but not documented", r)
		case o.public:
			t.Errorf("%s is documented as public, but the admin API serves it behind the admin token", r)
		}
	}
	for key, o := range documented {
		if o.public {
			continue // served elsewhere, or reported above
		}
		if !served[key] {
			t.Errorf("%s is documented but not served", key)
			continue
		}
		// The mux itself routes a request for it to its pattern.
		path := templateParam.ReplaceAllString(o.path, "x1")
		if got := normalizeRoute(admin.RouteOf(httptest.NewRequest(o.method, path, nil))); got != key {
			t.Errorf("%s %s is routed to %q, want %q", o.method, path, got, key)
		}
	}
}

// matchSchema reports where v departs from schema: a required property
// missing, a property the schema does not name, a value of another type or
// outside its enum. It is the light check of responses, not a validator.
func (d openAPIDoc) matchSchema(schema any, v any, at string) []string {
	s := d.deref(schema)
	if s == nil {
		return []string{at + ": schema does not resolve"}
	}
	if alts, ok := s["anyOf"].([]any); ok {
		for _, a := range alts {
			if len(d.matchSchema(a, v, at)) == 0 {
				return nil
			}
		}
		return []string{fmt.Sprintf("%s: %v matches no anyOf branch", at, v)}
	}
	if typ, ok := s["type"]; ok && !jsonTypeIs(typ, v) {
		return []string{fmt.Sprintf("%s: %v is not of type %v", at, v, typ)}
	}
	if enum, ok := s["enum"].([]any); ok && !slices.Contains(enum, v) {
		return []string{fmt.Sprintf("%s: %v is not one of %v", at, v, enum)}
	}
	var errs []string
	switch v := v.(type) {
	case map[string]any:
		props, _ := s["properties"].(map[string]any)
		req, _ := s["required"].([]any)
		for _, name := range req {
			if _, ok := v[name.(string)]; !ok {
				errs = append(errs, fmt.Sprintf("%s: required %q is missing", at, name))
			}
		}
		for k, pv := range v {
			if ps, ok := props[k]; ok {
				errs = append(errs, d.matchSchema(ps, pv, at+"."+k)...)
			} else if ap, ok := s["additionalProperties"].(map[string]any); ok {
				errs = append(errs, d.matchSchema(ap, pv, at+"."+k)...)
			} else if props != nil {
				errs = append(errs, fmt.Sprintf("%s: %q is not documented", at, k))
			}
		}
	case []any:
		if items, ok := s["items"]; ok {
			for i, e := range v {
				errs = append(errs, d.matchSchema(items, e, at+"["+strconv.Itoa(i)+"]")...)
			}
		}
	}
	return errs
}

func jsonTypeIs(typ any, v any) bool {
	if list, ok := typ.([]any); ok {
		return slices.ContainsFunc(list, func(t any) bool { return jsonTypeIs(t, v) })
	}
	switch typ {
	case "null":
		return v == nil
	case "boolean":
		_, ok := v.(bool)
		return ok
	case "string":
		_, ok := v.(string)
		return ok
	case "number":
		_, ok := v.(float64)
		return ok
	case "integer":
		f, ok := v.(float64)
		return ok && f == float64(int64(f))
	case "array":
		_, ok := v.([]any)
		return ok
	case "object":
		_, ok := v.(map[string]any)
		return ok
	}
	return false
}

// TestMatchSchema: the light check finds what it is there to find.
func TestMatchSchema(t *testing.T) {
	d := fetchOpenAPI(t)
	org := map[string]any{"$ref": "#/components/schemas/Org"}
	valid := `{"id":"o1","name":"Acme","scimEnabled":false,"scimUrl":"http://x/scim/v2","reconcileSchedule":"","roleMapping":{},"createdAt":"2026-01-01T00:00:00Z","updatedAt":"2026-01-01T00:00:00Z"}`
	tests := []struct {
		name, body string
		want       string // in the only error; "" for none
	}{
		{"valid", valid, ""},
		{"missing required", strings.Replace(valid, `"name":"Acme",`, "", 1), `required "name"`},
		{"undocumented", strings.Replace(valid, `{"id"`, `{"secret":"s","id"`, 1), `"secret" is not documented`},
		{"wrong type", strings.Replace(valid, `"scimEnabled":false`, `"scimEnabled":"no"`, 1), "not of type boolean"},
		{"outside enum", strings.Replace(valid, `"roleMapping":{}`, `"roleMapping":{"Eng":"owner"}`, 1), "not one of"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var v any
			if err := json.Unmarshal([]byte(tt.body), &v); err != nil {
				t.Fatal(err)
			}
			errs := d.matchSchema(org, v, "$")
			if tt.want == "" && len(errs) > 0 || tt.want != "" && (len(errs) != 1 || !strings.Contains(errs[0], tt.want)) {
				t.Errorf("errors = %q, want one with %q", errs, tt.want)
			}
		})
	}
}

// TestResponsesMatchOpenAPI: real answers have the documented status and
// the documented schema's required properties, and no property it does
// not name.
func TestResponsesMatchOpenAPI(t *testing.T) {
	d := fetchOpenAPI(t)
	ops := map[string]operation{}
	for _, o := range d.operations() {
		ops[o.String()] = o
	}
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		inv := &invite.Service{Store: st, Config: invite.Config{PublicURL: "https://app.test", TTL: 7 * 24 * time.Hour, ResendAfter: 24 * time.Hour, MaxSends: 5}}
		c := &converge.Converger{Store: st, Invites: inv}
		svc := &admin.Service{Store: st, Converger: c, PublicURL: "https://sync.test", Webhooks: admin.Webhooks{Box: newWebhookBox(t), LookupIP: fakeLookup}}
		srv := httptest.NewServer((&admin.API{Service: svc, Auth: admin.NewAuth(token)}).Handler())
		t.Cleanup(srv.Close)

		// ann and bob are members; cid is deprovisioned.
		acme := newSettleOrg(t, st, c, nil, []string{"cid"}, nil, "ann", "bob", "cid")
		if _, err := c.ApplyUser(ctx, acme.ID, acme.dir["cid"]); err != nil {
			t.Fatal(err)
		}
		revoked, err := (&admin.Service{Store: st}).CreateSCIMToken(ctx, acme.ID, "old", 0)
		if err != nil {
			t.Fatal(err)
		}
		if err := (&admin.Service{Store: st}).RevokeSCIMToken(ctx, acme.ID, revoked.ID); err != nil {
			t.Fatal(err)
		}
		run, err := (&admin.Service{Store: st}).RequestReconcile(ctx, acme.ID, admin.ReconcileRequest{DryRun: true})
		if err != nil {
			t.Fatal(err)
		}

		org := "/api/v1/orgs/" + acme.ID
		hookURL := "https://hooks.example.com/in"
		hook, err := svc.CreateWebhook(ctx, acme.ID, admin.WebhookInput{URL: &hookURL})
		if err != nil {
			t.Fatal(err)
		}
		tests := []struct {
			op, path, body string
			want           int
		}{
			{"POST /api/v1/orgs", "/api/v1/orgs", `{"name":"Other"}`, 201},
			{"POST /api/v1/orgs", "/api/v1/orgs", `{"name":""}`, 400},
			{"GET /api/v1/orgs", "/api/v1/orgs", "", 200},
			{"GET /api/v1/orgs/{org}", "/api/v1/orgs/nope", "", 404},
			{"PATCH /api/v1/orgs/{org}", org, `{"roleMapping":{"Eng":"admin"}}`, 200},
			{"POST /api/v1/orgs/{org}/scim-tokens", org + "/scim-tokens", `{"ttlDays":30}`, 201},
			{"GET /api/v1/orgs/{org}/scim-tokens", org + "/scim-tokens", "", 200},
			{"GET /api/v1/orgs/{org}/members", org + "/members?limit=2", "", 200},
			{"GET /api/v1/orgs/{org}/members", org + "/members?status=deprovisioned", "", 200},
			{"GET /api/v1/orgs/{org}/groups", org + "/groups", "", 200},
			{"GET /api/v1/orgs/{org}/audit-events", org + "/audit-events", "", 200},
			{"GET /api/v1/orgs/{org}/events", org + "/events", "", 200},
			{"GET /api/v1/orgs/{org}/events", org + "/events?types=member.nothing", "", 400},
			{"POST /api/v1/orgs/{org}/reconcile", org + "/reconcile", `{"dryRun":true}`, 202},
			{"GET /api/v1/orgs/{org}/sync-runs", org + "/sync-runs", "", 200},
			{"GET /api/v1/orgs/{org}/sync-runs/{id}", org + "/sync-runs/" + run.ID + "?items=true", "", 200},
			{"GET /api/v1/orgs/{org}/connector", org + "/connector", "", 404},
			{"POST /api/v1/orgs/{org}/webhooks", org + "/webhooks", `{"url":"https://hooks.example.com/a","eventTypes":["member.updated"]}`, 201},
			{"POST /api/v1/orgs/{org}/webhooks", org + "/webhooks", `{"url":"http://hooks.example.com/a"}`, 400},
			{"GET /api/v1/orgs/{org}/webhooks", org + "/webhooks", "", 200},
			{"GET /api/v1/orgs/{org}/webhooks/{id}", org + "/webhooks/" + hook.ID, "", 200},
			{"PATCH /api/v1/orgs/{org}/webhooks/{id}", org + "/webhooks/" + hook.ID, `{"enabled":false}`, 200},
			{"POST /api/v1/orgs/{org}/webhooks/{id}/rotate-secret", org + "/webhooks/" + hook.ID + "/rotate-secret", "", 200},
			{"GET /api/v1/orgs/{org}/webhooks/{id}/deliveries", org + "/webhooks/" + hook.ID + "/deliveries", "", 200},
			{"POST /api/v1/orgs/{org}/webhooks/{id}/deliveries/{delivery}/retry", org + "/webhooks/" + hook.ID + "/deliveries/1/retry", "", 404},
			{"POST /api/v1/webhooks", "/api/v1/webhooks", `{"url":"http://localhost:9/a"}`, 201},
			{"GET /api/v1/webhooks", "/api/v1/webhooks", "", 200},
			{"GET /api/v1/webhooks/{id}", "/api/v1/webhooks/nope", "", 404},
			{"POST /api/v1/orgs/{org}/members/{member}/settle-admin", org + "/members/" + acme.members["bob"] + "/settle-admin", `{"confirmRemoval":true}`, 409},
		}
		for _, tt := range tests {
			o, ok := ops[tt.op]
			if !ok {
				t.Fatalf("%s is not documented", tt.op)
			}
			method, _, _ := strings.Cut(tt.op, " ")
			req, _ := http.NewRequest(method, srv.URL+tt.path, strings.NewReader(tt.body))
			req.Header.Set("Authorization", "Bearer "+token)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var body any
			err = json.NewDecoder(resp.Body).Decode(&body)
			resp.Body.Close()
			if resp.StatusCode != tt.want || err != nil {
				t.Errorf("%s %s = %d (%v), want %d", method, tt.path, resp.StatusCode, err, tt.want)
				continue
			}
			schema, ok := d.responseSchema(o, resp.StatusCode)
			if !ok {
				t.Errorf("%s: no documented JSON answer with %d", tt.op, resp.StatusCode)
				continue
			}
			for _, e := range d.matchSchema(schema, body, "$") {
				t.Errorf("%s %s: %s", method, tt.path, e)
			}
		}
	})
}
