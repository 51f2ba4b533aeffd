package inbound_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/scimsync/scimsync/inbound"
	"github.com/scimsync/scimsync/internal/clock"
	"github.com/scimsync/scimsync/internal/secret"
	"github.com/scimsync/scimsync/internal/syncbuf"
	"github.com/scimsync/scimsync/store"
	"github.com/scimsync/scimsync/store/storetest"
)

const (
	userURN       = "urn:ietf:params:scim:schemas:core:2.0:User"
	groupURN      = "urn:ietf:params:scim:schemas:core:2.0:Group"
	enterpriseURN = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
	patchURN      = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
	errorURN      = "urn:ietf:params:scim:api:messages:2.0:Error"
	listURN       = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
	scimJSON      = "application/scim+json"
)

// harness is one SCIM server over one store, with a log capture and an
// adjustable clock.
type harness struct {
	t     testing.TB
	st    *store.Store
	srv   *httptest.Server
	scim  *inbound.Server
	logs  *syncbuf.Buffer
	clock *clock.Fake
}

// harnessOption adjusts the server before its handler is built.
type harnessOption func(*inbound.Server)

// newHarness serves the SCIM handler over st on a loopback test server.
func newHarness(t testing.TB, st *store.Store, opts ...harnessOption) *harness {
	t.Helper()
	h := &harness{t: t, st: st, logs: &syncbuf.Buffer{}, clock: clock.NewFake(time.Now())}
	h.srv = httptest.NewUnstartedServer(nil)
	h.scim = &inbound.Server{
		Store:        st,
		PublicURL:    "http://" + h.srv.Listener.Addr().String(),
		AuthCacheTTL: -1,
		Log:          slog.New(slog.NewJSONHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Clock:        h.clock,
	}
	for _, o := range opts {
		o(h.scim)
	}
	h.srv.Config.Handler = h.scim.Handler()
	h.srv.Start()
	t.Cleanup(h.srv.Close)
	return h
}

// eachBackend runs fn on every storetest backend with a fresh harness.
func eachBackend(t *testing.T, fn func(t *testing.T, h *harness), opts ...harnessOption) {
	t.Helper()
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		fn(t, newHarness(t, st, opts...))
	})
}

// tenant is an organization with SCIM on and a token.
type tenant struct {
	h       *harness
	org     store.Org
	token   string
	tokenID string
}

// tenant creates an organization with SCIM enabled and a fresh token.
func (h *harness) tenant() *tenant {
	h.t.Helper()
	ctx := context.Background()
	org, err := h.st.CreateOrg(ctx, "org-"+store.NewID())
	if err != nil {
		h.t.Fatalf("create org: %v", err)
	}
	on := true
	if org, err = h.st.UpdateOrg(ctx, org.ID, store.OrgPatch{SCIMEnabled: &on}); err != nil {
		h.t.Fatalf("enable scim: %v", err)
	}
	tn := &tenant{h: h, org: org}
	tn.token, tn.tokenID = h.newToken(org.ID, nil)
	return tn
}

// newToken stores a new SCIM token for an organization.
func (h *harness) newToken(orgID string, expiresAt *time.Time) (token, id string) {
	h.t.Helper()
	token = secret.NewToken(secret.PrefixSCIM)
	tok, err := h.st.CreateSCIMToken(context.Background(), orgID, "test", secret.Hash(token), expiresAt)
	if err != nil {
		h.t.Fatalf("create token: %v", err)
	}
	return token, tok.ID
}

// reply is a SCIM response, its body decoded when it is JSON.
type reply struct {
	Status int
	Header http.Header
	Raw    []byte
	Body   map[string]any
}

// request is one SCIM call; body is sent as JSON unless it is a string
// or []byte.
type request struct {
	method, path string
	body         any
	header       map[string]string
}

// send performs a request with the tenant's token.
func (tn *tenant) send(rq request) reply {
	tn.h.t.Helper()
	if rq.header == nil {
		rq.header = map[string]string{}
	}
	if _, ok := rq.header["Authorization"]; !ok {
		rq.header["Authorization"] = "Bearer " + tn.token
	}
	return tn.h.send(rq)
}

// do is send for the common case.
func (tn *tenant) do(method, path string, body any) reply {
	tn.h.t.Helper()
	return tn.send(request{method: method, path: path, body: body})
}

func (h *harness) send(rq request) reply {
	h.t.Helper()
	var rd io.Reader
	switch b := rq.body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			h.t.Fatalf("marshal body: %v", err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(rq.method, h.srv.URL+inbound.Prefix+rq.path, rd)
	if err != nil {
		h.t.Fatalf("new request: %v", err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", scimJSON)
	}
	for k, v := range rq.header {
		req.Header.Set(k, v)
	}
	resp, err := h.srv.Client().Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", rq.method, rq.path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatalf("read body: %v", err)
	}
	r := reply{Status: resp.StatusCode, Header: resp.Header, Raw: raw}
	if len(bytes.TrimSpace(raw)) > 0 {
		if err := json.Unmarshal(raw, &r.Body); err != nil {
			h.t.Fatalf("%s %s: body is not a JSON object: %v\n%s", rq.method, rq.path, err, raw)
		}
	}
	return r
}

// want fails the test unless the reply has the status and SCIM content
// type (when it has a body).
func (r reply) want(t testing.TB, status int) reply {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status %d, want %d; body %s", r.Status, status, r.Raw)
	}
	if len(r.Raw) > 0 && r.Header.Get("Content-Type") != scimJSON {
		t.Errorf("Content-Type %q, want %q", r.Header.Get("Content-Type"), scimJSON)
	}
	return r
}

// wantError checks an RFC 7644 error body: status as a string, and the
// scimType when one is expected.
func (r reply) wantError(t testing.TB, status int, scimType string) {
	t.Helper()
	r.want(t, status)
	got := map[string]any{"schemas": r.Body["schemas"], "status": r.Body["status"], "scimType": r.Body["scimType"]}
	want := map[string]any{"schemas": []any{errorURN}, "status": strconv.Itoa(status), "scimType": nilIfEmpty(scimType)}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("error body mismatch (-want +got):\n%s\nbody: %s", diff, r.Raw)
	}
	if d, _ := r.Body["detail"].(string); d == "" {
		t.Errorf("error body has no detail: %s", r.Raw)
	}
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func jsonText(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// id returns the resource id of a reply.
func (r reply) id() string { s, _ := r.Body["id"].(string); return s }

// createUser posts a user and returns its id.
func (tn *tenant) createUser(body map[string]any) string {
	tn.h.t.Helper()
	if _, ok := body["schemas"]; !ok {
		body["schemas"] = []string{userURN}
	}
	return tn.do("POST", "/Users", body).want(tn.h.t, http.StatusCreated).id()
}

// createGroup posts a group and returns its id.
func (tn *tenant) createGroup(body map[string]any) string {
	tn.h.t.Helper()
	if _, ok := body["schemas"]; !ok {
		body["schemas"] = []string{groupURN}
	}
	return tn.do("POST", "/Groups", body).want(tn.h.t, http.StatusCreated).id()
}

// user is a small user body.
func user(userName string) map[string]any {
	return map[string]any{"schemas": []string{userURN}, "userName": userName}
}

// patchOp wraps operations in a PatchOp body.
func patchOp(ops ...map[string]any) map[string]any {
	return map[string]any{"schemas": []string{patchURN}, "Operations": ops}
}

func op(name, path string, value any) map[string]any {
	m := map[string]any{"op": name}
	if path != "" {
		m["path"] = path
	}
	if value != nil {
		m["value"] = value
	}
	return m
}

// dirUser reads the directory row of a user.
func (tn *tenant) dirUser(id string) store.DirectoryUser {
	tn.h.t.Helper()
	u, err := tn.h.st.DirectoryUser(context.Background(), tn.org.ID, id)
	if err != nil {
		tn.h.t.Fatalf("read directory user %s: %v", id, err)
	}
	return u
}

// outbox returns the tenant's unsent outbox rows, oldest first.
func (tn *tenant) outbox() []store.OutboxRow {
	tn.h.t.Helper()
	var out []store.OutboxRow
	for _, r := range storetest.PendingOutbox(tn.h.t, tn.h.st) {
		if r.OrgID == tn.org.ID {
			out = append(out, r)
		}
	}
	return out
}

// audit returns the tenant's audit events, oldest first.
func (tn *tenant) audit() []store.AuditEvent {
	tn.h.t.Helper()
	evs, err := tn.h.st.AuditEvents(context.Background(), tn.org.ID, 0, 10000)
	if err != nil {
		tn.h.t.Fatalf("read audit events: %v", err)
	}
	for i, j := 0, len(evs)-1; i < j; i, j = i+1, j-1 {
		evs[i], evs[j] = evs[j], evs[i]
	}
	return evs
}

// resources returns the Resources of a list reply.
func (r reply) resources() []map[string]any {
	list, _ := r.Body["Resources"].([]any)
	out := make([]map[string]any, len(list))
	for i, x := range list {
		out[i], _ = x.(map[string]any)
	}
	return out
}

// strings of one attribute over resources.
func pluck(res []map[string]any, attr string) []string {
	out := []string{}
	for _, m := range res {
		s, _ := m[attr].(string)
		out = append(out, s)
	}
	return out
}

// urlQuery escapes a query parameter value.
func urlQuery(s string) string { return url.QueryEscape(s) }

// cmpEmptyNil treats nil and empty slices and maps alike.
var cmpEmptyNil = cmpopts.EquateEmpty()
