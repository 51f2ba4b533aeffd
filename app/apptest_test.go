package app

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/scimsync/scimsync/admin"
	"github.com/scimsync/scimsync/broker"
	"github.com/scimsync/scimsync/broker/brokertest"
	"github.com/scimsync/scimsync/config"
	_ "github.com/scimsync/scimsync/connectors/okta" // the type these tests connect; cmd/scimsync links in every one
	"github.com/scimsync/scimsync/internal/secret"
	"github.com/scimsync/scimsync/ops"
	"github.com/scimsync/scimsync/store"
	"github.com/scimsync/scimsync/store/storetest"
)

const adminToken = "test-admin-token-0123456789"

// testServer is the whole HTTP surface over a real store and Redis.
type testServer struct {
	*httptest.Server
	app *App
}

func newTestServer(t *testing.T, b storetest.Backend, br *broker.Broker) *testServer {
	t.Helper()
	return newTestServerWith(t, b, br, nil)
}

// newTestServerWith lets a test change the configuration before the parts
// are built.
func newTestServerWith(t *testing.T, b storetest.Backend, br *broker.Broker, configure func(*config.Config)) *testServer {
	t.Helper()
	return newAppServer(t, storetest.Open(t, b, store.Options{}), br, func(a *App) {
		if configure != nil {
			configure(&a.Cfg)
		}
	})
}

// newAppServer serves an app over st and br, as one `api` replica does;
// configure may change the app before its parts are built.
func newAppServer(t *testing.T, st *store.Store, br *broker.Broker, configure func(*App)) *testServer {
	t.Helper()
	cfg, err := config.FromEnv(func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	box, _ := secret.NewBox(bytes.Repeat([]byte{1}, 32))
	a := &App{
		Cfg:      cfg,
		Log:      slog.New(slog.NewTextHandler(io.Discard, nil)),
		Store:    st,
		Broker:   br,
		Registry: ops.NewRegistry(),
		Box:      box,
	}
	if configure != nil {
		configure(a)
	}
	srv := httptest.NewUnstartedServer(nil)
	a.Cfg.PublicURL = "http://" + srv.Listener.Addr().String()
	h, closeMon := a.Handler(admin.NewAuth(adminToken))
	srv.Config.Handler = h
	srv.Start()
	t.Cleanup(func() { srv.Close(); closeMon() })
	return &testServer{Server: srv, app: a}
}

type call struct {
	method, path, auth, body string
	basic                    string // HTTP Basic password
	header                   map[string]string
}

func (s *testServer) do(t *testing.T, c call) (int, map[string]any, http.Header) {
	t.Helper()
	req, err := http.NewRequest(c.method, s.URL+c.path, strings.NewReader(c.body))
	if err != nil {
		t.Fatal(err)
	}
	if c.auth != "" {
		req.Header.Set("Authorization", "Bearer "+c.auth)
	}
	if c.basic != "" {
		req.SetBasicAuth("admin", c.basic)
	}
	for k, v := range c.header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if ct := resp.Header.Get("Content-Type"); strings.HasPrefix(ct, "application/json") || strings.HasPrefix(ct, "application/scim+json") {
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatalf("%s %s: body is not JSON: %v: %s", c.method, c.path, err, raw)
		}
	}
	return resp.StatusCode, m, resp.Header
}

func TestOperations(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			s := newTestServer(t, b, brokertest.Open(t))
			tests := []struct {
				name string
				call call
				want int
			}{
				{"healthz", call{method: "GET", path: "/healthz"}, 200},
				{"readyz", call{method: "GET", path: "/readyz"}, 200},
				{"metrics", call{method: "GET", path: "/metrics"}, 200},
				{"monitoring without token", call{method: "GET", path: "/monitoring/"}, 401},
				{"monitoring with wrong token", call{method: "GET", path: "/monitoring/", auth: "nope-nope-nope-nope"}, 401},
				{"monitoring with bearer", call{method: "GET", path: "/monitoring/", auth: adminToken}, 200},
				{"monitoring with basic", call{method: "GET", path: "/monitoring/", basic: adminToken}, 200},
				{"monitoring api with basic", call{method: "GET", path: "/monitoring/api/queues", basic: adminToken}, 200},
				{"admin api rejects basic", call{method: "GET", path: "/api/v1/orgs", basic: adminToken}, 401},
				// The browser's own credentials on a request another site made.
				{"monitoring change from another site", call{method: "POST", path: "/monitoring/api/queues/default:pause", basic: adminToken,
					header: map[string]string{"Sec-Fetch-Site": "cross-site"}}, 403},
				{"monitoring change from another origin", call{method: "DELETE", path: "/monitoring/api/queues/default", basic: adminToken,
					header: map[string]string{"Origin": "https://elsewhere.example"}}, 403},
				{"monitoring read from another site", call{method: "GET", path: "/monitoring/api/queues", basic: adminToken,
					header: map[string]string{"Sec-Fetch-Site": "cross-site"}}, 200},
				{"monitoring change from the dashboard", call{method: "POST", path: "/monitoring/api/queues/default:pause", basic: adminToken,
					header: map[string]string{"Sec-Fetch-Site": "same-origin"}}, 204},
				{"monitoring change from a script", call{method: "POST", path: "/monitoring/api/queues/default:resume", auth: adminToken}, 204},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					code, _, hdr := s.do(t, tt.call)
					if code != tt.want {
						t.Errorf("status = %d, want %d", code, tt.want)
					}
					if code == 401 && tt.call.path == "/monitoring/" && !strings.HasPrefix(hdr.Get("WWW-Authenticate"), "Basic") {
						t.Errorf("401 from the dashboard lacks a Basic challenge: %q", hdr.Get("WWW-Authenticate"))
					}
				})
			}
		})
	}
}

func TestMetricsExposeHTTPAndQueues(t *testing.T) {
	s := newTestServer(t, storetest.Backends()[0], brokertest.Open(t))
	s.do(t, call{method: "GET", path: "/api/v1/orgs/x", auth: adminToken})
	resp, err := http.Get(s.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`scimsync_http_requests_total{code="404",method="GET",route="GET /api/v1/orgs/{org}"} 1`,
		`scimsync_queue_up 1`,
		`scimsync_http_request_duration_seconds_bucket`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

func TestReadyzReportsRedisDown(t *testing.T) {
	br, err := broker.Open(context.Background(), "redis://127.0.0.1:1", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { br.Close() })
	s := newTestServer(t, storetest.Backends()[0], br)
	code, body, _ := s.do(t, call{method: "GET", path: "/readyz"})
	if code != http.StatusServiceUnavailable {
		t.Fatalf("readyz = %d, want 503", code)
	}
	checks := body["checks"].(map[string]any)
	if checks["redis"] != "unreachable" || checks["database"] != "ok" {
		t.Errorf("checks = %v", checks)
	}
	if code, _, _ := s.do(t, call{method: "GET", path: "/healthz"}); code != 200 {
		t.Errorf("healthz = %d while Redis is down, want 200", code)
	}
}

func TestAdminAPI(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			s := newTestServer(t, b, brokertest.Open(t))
			code, org, hdr := s.do(t, call{method: "POST", path: "/api/v1/orgs", auth: adminToken, body: `{"name":"Acme"}`})
			if code != 201 || org["name"] != "Acme" || org["scimEnabled"] != false || hdr.Get("Location") == "" {
				t.Fatalf("create org = %d %v", code, org)
			}
			orgID := org["id"].(string)
			_, other, _ := s.do(t, call{method: "POST", path: "/api/v1/orgs", auth: adminToken, body: `{"name":"Other"}`})
			otherID := other["id"].(string)

			code, tok, _ := s.do(t, call{method: "POST", path: "/api/v1/orgs/" + orgID + "/scim-tokens", auth: adminToken, body: `{"description":"okta","ttlDays":30}`})
			if code != 201 || !strings.HasPrefix(tok["token"].(string), secret.PrefixSCIM) || tok["scimUrl"] != s.URL+"/scim/v2" || tok["expiresAt"] == nil {
				t.Fatalf("create token = %d %v", code, tok)
			}
			scimToken, tokID := tok["token"].(string), tok["id"].(string)

			tests := []struct {
				name string
				call call
				want int
				code string
			}{
				{"get org", call{method: "GET", path: "/api/v1/orgs/" + orgID, auth: adminToken}, 200, ""},
				{"enable scim", call{method: "PATCH", path: "/api/v1/orgs/" + orgID, auth: adminToken, body: `{"scimEnabled":true,"reconcileSchedule":"@every 30m"}`}, 200, ""},
				{"bad schedule", call{method: "PATCH", path: "/api/v1/orgs/" + orgID, auth: adminToken, body: `{"reconcileSchedule":"often"}`}, 400, "invalid_request"},
				{"bad role mapping", call{method: "PATCH", path: "/api/v1/orgs/" + orgID, auth: adminToken, body: `{"roleMapping":{"Admins":"root"}}`}, 400, "invalid_request"},
				{"empty name", call{method: "POST", path: "/api/v1/orgs", auth: adminToken, body: `{"name":"  "}`}, 400, "invalid_request"},
				{"malformed json", call{method: "POST", path: "/api/v1/orgs", auth: adminToken, body: `{"name":`}, 400, "invalid_json"},
				{"wrong type", call{method: "PATCH", path: "/api/v1/orgs/" + orgID, auth: adminToken, body: `{"scimEnabled":"yes"}`}, 400, "invalid_json"},
				{"oversized body", call{method: "POST", path: "/api/v1/orgs", auth: adminToken, body: `{"name":"` + strings.Repeat("x", 1<<20) + `"}`}, 413, "too_large"},
				{"unknown org", call{method: "GET", path: "/api/v1/orgs/nope", auth: adminToken}, 404, "not_found"},
				{"patch unknown org", call{method: "PATCH", path: "/api/v1/orgs/nope", auth: adminToken, body: `{"scimEnabled":true}`}, 404, "not_found"},
				{"tokens of unknown org", call{method: "GET", path: "/api/v1/orgs/nope/scim-tokens", auth: adminToken}, 404, "not_found"},
				{"token for unknown org", call{method: "POST", path: "/api/v1/orgs/nope/scim-tokens", auth: adminToken, body: `{}`}, 404, "not_found"},
				{"negative ttl", call{method: "POST", path: "/api/v1/orgs/" + orgID + "/scim-tokens", auth: adminToken, body: `{"ttlDays":-1}`}, 400, "invalid_request"},
				{"revoke through another org", call{method: "DELETE", path: "/api/v1/orgs/" + otherID + "/scim-tokens/" + tokID, auth: adminToken}, 404, "not_found"},
				{"no token", call{method: "GET", path: "/api/v1/orgs/" + orgID}, 401, "unauthorized"},
				{"wrong token", call{method: "GET", path: "/api/v1/orgs/" + orgID, auth: "wrong-wrong-wrong-wrong"}, 401, "unauthorized"},
				{"scim token on admin api", call{method: "GET", path: "/api/v1/orgs/" + orgID, auth: scimToken}, 401, "unauthorized"},
				{"unknown endpoint", call{method: "GET", path: "/api/v1/nothing", auth: adminToken}, 404, "not_found"},
				{"audit limit", call{method: "GET", path: "/api/v1/orgs/" + orgID + "/audit-events?limit=0", auth: adminToken}, 400, "invalid_request"},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					code, body, _ := s.do(t, tt.call)
					if code != tt.want {
						t.Fatalf("status = %d, want %d (%v)", code, tt.want, body)
					}
					if tt.code != "" {
						e, _ := body["error"].(map[string]any)
						if e == nil || e["code"] != tt.code || e["message"] == "" {
							t.Errorf("error body = %v, want code %q with a message", body, tt.code)
						}
					}
				})
			}

			_, got, _ := s.do(t, call{method: "GET", path: "/api/v1/orgs/" + orgID, auth: adminToken})
			if got["scimEnabled"] != true || got["reconcileSchedule"] != "@every 30m" {
				t.Errorf("after patch: %v", got)
			}

			code, list, _ := s.do(t, call{method: "GET", path: "/api/v1/orgs/" + orgID + "/scim-tokens", auth: adminToken})
			toks := list["tokens"].([]any)
			if code != 200 || len(toks) != 1 {
				t.Fatalf("list tokens = %d %v", code, list)
			}
			listed := toks[0].(map[string]any)
			if _, has := listed["token"]; has || listed["status"] != "active" || listed["description"] != "okta" {
				t.Errorf("listed token = %v: must carry no secret", listed)
			}
			raw, _ := json.Marshal(list)
			if strings.Contains(string(raw), scimToken) || strings.Contains(string(raw), secret.Hash(scimToken)) {
				t.Error("token list leaks the token or its hash")
			}

			if code, _, _ := s.do(t, call{method: "DELETE", path: "/api/v1/orgs/" + orgID + "/scim-tokens/" + tokID, auth: adminToken}); code != 204 {
				t.Errorf("revoke = %d, want 204", code)
			}
			_, list, _ = s.do(t, call{method: "GET", path: "/api/v1/orgs/" + orgID + "/scim-tokens", auth: adminToken})
			if st := list["tokens"].([]any)[0].(map[string]any)["status"]; st != "revoked" {
				t.Errorf("status after revoke = %v", st)
			}

			_, ev, _ := s.do(t, call{method: "GET", path: "/api/v1/orgs/" + orgID + "/audit-events", auth: adminToken})
			var actions []string
			for _, e := range ev["events"].([]any) {
				actions = append(actions, e.(map[string]any)["action"].(string))
			}
			if strings.Join(actions, ",") != "scim_token.revoke,org.update,scim_token.create,org.create" {
				t.Errorf("audit actions = %v", actions)
			}
		})
	}
}

func TestAdminTokenBootstrap(t *testing.T) {
	st := storetest.Open(t, storetest.Backends()[0], store.Options{})
	ctx := context.Background()
	var first bytes.Buffer
	a1, err := admin.LoadAuth(ctx, st, "", &first)
	if err != nil {
		t.Fatal(err)
	}
	tok := strings.TrimSpace(first.String()[strings.Index(first.String(), secret.PrefixAdmin):])
	if !a1.Valid(tok) {
		t.Fatalf("printed token %q is not valid", tok)
	}
	var second bytes.Buffer
	a2, err := admin.LoadAuth(ctx, st, "", &second)
	if err != nil {
		t.Fatal(err)
	}
	if second.Len() != 0 {
		t.Errorf("second start printed %q; the token is shown once", second.String())
	}
	if !a2.Valid(tok) {
		t.Error("second start does not accept the first token")
	}
	stored, _ := st.Setting(ctx, store.SettingAdminTokenHash)
	if stored == tok || stored != secret.Hash(tok) {
		t.Error("the admin token is not stored as its hash")
	}
	a3, _ := admin.LoadAuth(ctx, st, "configured-admin-token-123", nil)
	if a3.Valid(tok) || !a3.Valid("configured-admin-token-123") {
		t.Error("a configured token must replace the generated one")
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
