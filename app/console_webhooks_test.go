package app

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/scimsync/scimsync/admin"
	"github.com/scimsync/scimsync/broker/brokertest"
	"github.com/scimsync/scimsync/connectors/okta/oktafake"
	"github.com/scimsync/scimsync/lifecycle"
	"github.com/scimsync/scimsync/store"
)

var secretValue = regexp.MustCompile(`id="secret-value" readonly value="(whsec_[^"]+)"`)

// TestConsoleWebhooksEventsAndSettle walks, without JavaScript, what the
// admin API offers the application's side: webhook endpoints (the secret
// shown once, edit, rotate, deliveries and a re-send, delete), the change
// feed, and settling a last admin.
func TestConsoleWebhooksEventsAndSettle(t *testing.T) {
	s := newTestServer(t, lastBackend(), brokertest.Open(t))
	ctx := startWorker(t, s.app)
	_, org, _ := s.do(t, call{method: "POST", path: "/api/v1/orgs", auth: adminToken, body: `{"name":"Acme"}`})
	orgID := org["id"].(string)
	orgHooks := "/console/orgs/" + orgID + "/webhooks"

	var answered atomic.Int64
	var status atomic.Int64
	status.Store(200)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		answered.Add(1)
		w.WriteHeader(int(status.Load()))
	}))
	defer recv.Close()

	c := newConsoleClient(t, s.URL)
	c.signin(adminToken)
	if code, body, _ := c.get(orgHooks); code != 200 || !strings.Contains(body, "No webhooks yet") {
		t.Fatalf("empty webhooks page = %d:\n%s", code, body)
	}

	t.Run("a private address is refused next to the field", func(t *testing.T) {
		code, body, _ := c.post(orgHooks, url.Values{"csrf": {c.csrf(orgHooks)}, "url": {"http://10.1.2.3/hook"}, "enabled": {"true"}})
		if code != http.StatusBadRequest || !strings.Contains(body, `id="webhook-error"`) || !strings.Contains(body, `value="http://10.1.2.3/hook"`) {
			t.Errorf("= %d, want 400 with the error and the URL kept:\n%s", code, body)
		}
		if hooks, _ := s.app.AdminService().ListWebhooks(ctx, orgID); len(hooks) != 0 {
			t.Errorf("a refused endpoint was stored: %+v", hooks)
		}
	})

	// Created: the page the answer redirects to shows the secret, once.
	code, _, h := c.post(orgHooks, url.Values{"csrf": {c.csrf(orgHooks)}, "url": {recv.URL + "/hook"}, "description": {"the app"},
		"types": {"member.provisioned", "member.deprovisioned"}, "enabled": {"true"}})
	if code != http.StatusSeeOther || h.Get("Location") != orgHooks {
		t.Fatalf("create = %d to %q, want 303 to the list", code, h.Get("Location"))
	}
	code, body, _ := c.get(orgHooks)
	m := secretValue.FindStringSubmatch(body)
	if code != http.StatusOK || m == nil {
		t.Fatalf("list after create = %d, no secret shown:\n%s", code, body)
	}
	sec := m[1]
	hooks, err := s.app.AdminService().ListWebhooks(ctx, orgID)
	if err != nil || len(hooks) != 1 || hooks[0].Description != "the app" || strings.Join(hooks[0].EventTypes, ",") != "member.provisioned,member.deprovisioned" {
		t.Fatalf("stored = %+v, %v", hooks, err)
	}
	hook := hooks[0]
	hookPath := "/console/webhooks/" + hook.ID
	for _, path := range []string{orgHooks, hookPath, "/console/webhooks", "/console/orgs/" + orgID + "/audit"} {
		code, body, _ := c.get(path)
		if code != 200 || strings.Contains(body, sec) || !strings.Contains(body, recv.URL) && path != "/console/orgs/"+orgID+"/audit" {
			t.Errorf("%s = %d: the secret shown again, or the endpoint missing", path, code)
		}
	}

	t.Run("edit: switched off, types cleared means all", func(t *testing.T) {
		code, _, h := c.post(hookPath, url.Values{"csrf": {c.csrf(hookPath)}, "url": {recv.URL + "/hook2"}, "description": {"renamed"}})
		if code != http.StatusSeeOther || !strings.Contains(h.Get("Location"), "done=webhook") {
			t.Fatalf("save = %d %s", code, h.Get("Location"))
		}
		got, _ := s.app.AdminService().Webhook(ctx, "", hook.ID)
		if got.Enabled || got.URL != recv.URL+"/hook2" || got.Description != "renamed" || len(got.EventTypes) != 0 {
			t.Errorf("after the edit: %+v", got)
		}
		if _, body, _ := c.get(hookPath); !strings.Contains(body, `id="webhook-state">off`) {
			t.Errorf("the page does not show it off:\n%s", body)
		}
		c.post(hookPath, url.Values{"csrf": {c.csrf(hookPath)}, "url": {recv.URL + "/hook2"}, "enabled": {"true"}})
		if got, _ := s.app.AdminService().Webhook(ctx, "", hook.ID); !got.Enabled {
			t.Error("not switched back on")
		}
	})

	t.Run("rotate shows a new secret once", func(t *testing.T) {
		code, _, h := c.post(hookPath+"/rotate", url.Values{"csrf": {c.csrf(hookPath)}})
		if code != http.StatusSeeOther || h.Get("Location") != hookPath {
			t.Fatalf("rotate = %d to %q, want 303 to the endpoint", code, h.Get("Location"))
		}
		code, body, _ := c.get(hookPath)
		m := secretValue.FindStringSubmatch(body)
		if code != 200 || m == nil || m[1] == sec {
			t.Fatalf("endpoint after rotate = %d, secret %v", code, m)
		}
		if _, body, _ := c.get(hookPath); strings.Contains(body, m[1]) {
			t.Error("the rotated secret is shown again")
		}
	})

	// A member pushed over SCIM makes an event; the feed shows it, and
	// the endpoint's deliveries list its attempt.
	s.do(t, call{method: "PATCH", path: "/api/v1/orgs/" + orgID, auth: adminToken, body: `{"scimEnabled":true}`})
	_, tok, _ := s.do(t, call{method: "POST", path: "/api/v1/orgs/" + orgID + "/scim-tokens", auth: adminToken, body: `{}`})
	scimToken := tok["token"].(string)
	if code, u, _ := s.do(t, call{method: "POST", path: "/scim/v2/Users", auth: scimToken, body: `{
		"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"ann@example.com",
		"emails":[{"value":"ann@example.com","primary":true}],"active":true}`}); code != 201 {
		t.Fatalf("SCIM create = %d %v", code, u)
	}
	events := "/console/orgs/" + orgID + "/events"
	waitFor(t, "the member.provisioned event", func() bool {
		_, body, _ := c.get(events)
		return strings.Contains(body, "member.provisioned") && strings.Contains(body, "ann@example.com")
	})
	if code, body, _ := c.get(events + "?type=group.created"); code != 200 || !strings.Contains(body, "No event matches") {
		t.Errorf("filtered events = %d:\n%s", code, body)
	}
	if code, _, _ := c.get(events + "?type=member.exploded"); code != http.StatusBadRequest {
		t.Errorf("an unknown type = %d, want 400", code)
	}

	if err := s.app.jobs().deliver.Deliver(ctx, hook.ID, orgID); err != nil {
		t.Fatalf("deliver: %v", err)
	}
	sent := answered.Load()
	_, body, _ = c.get(hookPath)
	if sent == 0 || !strings.Contains(body, `id="deliveries"`) || !strings.Contains(body, ">200<") {
		t.Fatalf("%d sent; deliveries:\n%s", sent, body)
	}
	dels, _ := s.app.AdminService().WebhookDeliveries(ctx, "", hook.ID, 0, 10)
	status.Store(500)
	code, _, h = c.post(hookPath+"/deliveries/"+strconv.FormatInt(dels[0].ID, 10)+"/retry", url.Values{"csrf": {c.csrf(hookPath)}})
	if code != http.StatusSeeOther || !strings.Contains(h.Get("Location"), "done=retry-failed") || answered.Load() != sent+1 {
		t.Errorf("re-send = %d %s, %d sent", code, h.Get("Location"), answered.Load()-sent)
	}
	if code, _, _ := c.post(hookPath+"/deliveries/999999/retry", url.Values{"csrf": {c.csrf(hookPath)}}); code != http.StatusNotFound {
		t.Errorf("re-send of an unknown delivery = %d", code)
	}

	t.Run("settle: a member that is not a kept last admin is refused with the reason", func(t *testing.T) {
		ms, _ := s.app.AdminService().Members(ctx, orgID, admin.MemberQuery{Email: "ann@", Limit: 10})
		if len(ms) != 1 {
			t.Fatalf("members = %+v", ms)
		}
		settle := "/console/orgs/" + orgID + "/members/" + ms[0].ID + "/settle"
		if code, body, _ := c.get(settle); code != 200 || !strings.Contains(body, "ann@example.com") {
			t.Fatalf("settle page = %d", code)
		}
		code, body, _ := c.post(settle, url.Values{"csrf": {c.csrf(settle)}, "how": {"remove"}, "confirm_email": {"someone@else"}})
		if code != http.StatusBadRequest || !strings.Contains(body, "Type ann@example.com") {
			t.Errorf("a wrong confirmation = %d", code)
		}
		code, body, _ = c.post(settle, url.Values{"csrf": {c.csrf(settle)}, "how": {"remove"}, "confirm_email": {"ANN@example.com"}})
		if code != http.StatusConflict || !strings.Contains(body, "is not an admin") {
			t.Errorf("settling a plain member = %d:\n%s", code, body)
		}
		code, body, _ = c.post(settle, url.Values{"csrf": {c.csrf(settle)}, "how": {"heir"}, "new_admin": {"nobody@example.com"}})
		if code != http.StatusBadRequest || !strings.Contains(body, "No member of this organization has that e-mail") {
			t.Errorf("an unknown heir = %d", code)
		}
	})

	t.Run("settle: a kept last admin is deprovisioned once the removal is confirmed", func(t *testing.T) {
		st := s.app.Store
		ms, _ := s.app.AdminService().Members(ctx, orgID, admin.MemberQuery{Email: "ann@", Limit: 10})
		ann := ms[0]
		ann.Role = lifecycle.RoleAdmin
		if err := st.UpdateMembership(ctx, &ann); err != nil {
			t.Fatal(err)
		}
		// The IdP deactivates its only admin: converge keeps her.
		if code, u, _ := s.do(t, call{method: "PATCH", path: "/scim/v2/Users/" + ann.DirectoryUserID, auth: scimToken, body: `{
			"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","value":{"active":false}}]}`}); code != 200 {
			t.Fatalf("SCIM deactivate = %d %v", code, u)
		}
		waitFor(t, "the member.keep audit event", func() bool {
			evs, _ := s.app.AdminService().AuditEvents(ctx, orgID, 0, 50)
			for _, e := range evs {
				if e.Action == "member.keep" {
					return true
				}
			}
			return false
		})
		if m, _ := s.app.AdminService().Member(ctx, orgID, ann.ID); m.Status == lifecycle.StatusDeprovisioned {
			t.Fatal("the last admin was deprovisioned before the settlement")
		}
		settle := "/console/orgs/" + orgID + "/members/" + ann.ID + "/settle"
		if _, page, _ := c.get("/console/orgs/" + orgID + "/members"); !strings.Contains(page, `href="`+settle+`"`) {
			t.Error("the members page does not link the admin's settlement")
		}
		code, _, h := c.post(settle, url.Values{"csrf": {c.csrf(settle)}, "how": {"remove"}, "confirm_email": {"ann@example.com"}})
		if code != http.StatusSeeOther || !strings.Contains(h.Get("Location"), "done=settled") {
			t.Fatalf("settle = %d %s", code, h.Get("Location"))
		}
		if m, _ := s.app.AdminService().Member(ctx, orgID, ann.ID); m.Status != lifecycle.StatusDeprovisioned {
			t.Errorf("after the settlement: %s", m.Status)
		}
	})

	// Deleted after a confirmation page.
	if code, body, _ := c.get(hookPath + "/delete"); code != 200 || !strings.Contains(body, "confirm-delete") {
		t.Fatalf("delete page = %d", code)
	}
	code, _, h = c.post(hookPath+"/delete", url.Values{"csrf": {c.csrf(hookPath + "/delete")}})
	if code != http.StatusSeeOther || h.Get("Location") != orgHooks+"?done=webhook-deleted" {
		t.Errorf("delete = %d %s", code, h.Get("Location"))
	}
	if _, err := s.app.AdminService().Webhook(context.Background(), "", hook.ID); err == nil {
		t.Error("still there after the delete")
	}
	if code, _, _ := c.get(hookPath); code != http.StatusNotFound {
		t.Errorf("the deleted endpoint's page = %d", code)
	}
	// Without the CSRF token nothing is created.
	if code, _, _ := c.post("/console/webhooks", url.Values{"url": {recv.URL}}); code != http.StatusForbidden {
		t.Errorf("create without CSRF = %d", code)
	}
}

// TestConsoleWebhookInBrowser adds an endpoint in Chromium: the event
// type boxes, the secret shown once with its copy button, and the list.
func TestConsoleWebhookInBrowser(t *testing.T) {
	bctx := browser(t)
	s := newTestServer(t, lastBackend(), brokertest.Open(t))
	_, org, _ := s.do(t, call{method: "POST", path: "/api/v1/orgs", auth: adminToken, body: `{"name":"Acme"}`})
	p := &page{t: t, ctx: bctx, base: s.URL}
	p.open("/console/signin")
	p.fill("#token", adminToken)
	p.click("#signin")
	p.waitFor("the organizations page", `document.querySelector("#create-org")`)

	p.open("/console/orgs/" + org["id"].(string) + "/webhooks")
	p.waitFor("the webhooks page", `document.querySelector("#create-webhook")`)
	p.fill("#url", "http://127.0.0.1:9/hook")
	p.click(`input[value="member.deprovisioned"]`)
	p.click("#create-webhook")
	p.waitFor("the secret", `document.querySelector("#secret-value")`)
	sec, _ := p.eval(`document.querySelector("#secret-value").value`)
	if !strings.HasPrefix(sec, "whsec_") || !strings.Contains(p.text("#webhooks"), "member.deprovisioned") {
		t.Fatalf("secret %q, list %q", sec, p.text("#webhooks"))
	}
	p.screenshot("11-webhook-created")
	p.do("phone size", chromedp.EmulateViewport(390, 844))
	p.screenshot("11b-webhook-created-phone")
	p.do("laptop size", chromedp.EmulateViewport(1280, 900))
	p.do("reload", chromedp.Reload())
	p.waitFor("the list again", `document.querySelector("#webhooks") && !document.querySelector("#secret-value")`)
	if n, _ := p.eval(`document.querySelectorAll("#webhooks tbody tr").length`); n != "1" {
		t.Errorf("%s endpoints after a reload, want 1", n)
	}
	p.click("#webhooks a")
	p.waitFor("the endpoint's page", `document.querySelector("#rotate-secret")`)
	if html, _ := p.eval("document.documentElement.outerHTML"); strings.Contains(html, sec) {
		t.Fatal("the secret is shown again")
	}
	p.open("/console/orgs/" + org["id"].(string) + "/events")
	p.waitFor("the events page", `document.querySelector(".empty")`)
	p.screenshot("12-events-empty")
}

// TestConsoleRemovesConnector removes a connector after a confirmation
// page, as DELETE /orgs/{org}/connector does.
func TestConsoleRemovesConnector(t *testing.T) {
	s := newTestServer(t, lastBackend(), brokertest.Open(t))
	okta := oktafake.New(t)
	_, org, _ := s.do(t, call{method: "POST", path: "/api/v1/orgs", auth: adminToken, body: `{"name":"Acme"}`})
	orgID := org["id"].(string)
	conn := "/console/orgs/" + orgID + "/connector"
	c := newConsoleClient(t, s.URL)
	c.signin(adminToken)
	if code, body, _ := c.get(conn); code != 200 || strings.Contains(body, "delete-connector") {
		t.Fatalf("no connector yet, yet a removal is offered (%d)", code)
	}
	if code, _, _ := c.get(conn + "/delete"); code != http.StatusNotFound {
		t.Errorf("removal page without a connector = %d", code)
	}
	body := `{"type":"okta","settings":{"orgUrl":"` + okta.URL() + `"},"credentials":{"apiToken":"` + oktafake.DefaultToken + `"}}`
	if code, m, _ := s.do(t, call{method: "PUT", path: "/api/v1/orgs/" + orgID + "/connector", auth: adminToken, body: body}); code != 200 {
		t.Fatalf("put connector = %d %v", code, m)
	}
	if _, page, _ := c.get(conn); !strings.Contains(page, `id="delete-connector"`) {
		t.Fatal("a saved connector offers no removal")
	}
	code, page, _ := c.get(conn + "/delete")
	if code != 200 || !strings.Contains(page, "Remove the okta connector?") || strings.Contains(page, oktafake.DefaultToken) {
		t.Fatalf("removal page = %d:\n%s", code, page)
	}
	code, _, h := c.post(conn+"/delete", url.Values{"csrf": {c.csrf(conn + "/delete")}})
	if code != http.StatusSeeOther || !strings.Contains(h.Get("Location"), "done=connector-deleted") {
		t.Fatalf("remove = %d %s", code, h.Get("Location"))
	}
	if _, err := s.app.AdminService().Connector(context.Background(), orgID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("after the removal: %v", err)
	}
	if _, page, _ := c.get("/console/orgs/" + orgID + "/audit"); !strings.Contains(page, "connector.delete") {
		t.Error("no audit event")
	}
}
