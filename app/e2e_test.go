package app

import (
	"context"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/scimsync/scimsync/broker/brokertest"
	"github.com/scimsync/scimsync/config"
	"github.com/scimsync/scimsync/jobs"
	"github.com/scimsync/scimsync/jobs/mail/mailtest"
	"github.com/scimsync/scimsync/lifecycle"
	"github.com/scimsync/scimsync/store"
	"github.com/scimsync/scimsync/store/storetest"
)

// startWorker runs, until the test ends, what the worker role runs: the
// task handlers on asynq and the outbox relay.
func startWorker(t *testing.T, a *App) context.Context {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	worker := asynq.NewServer(a.Broker.Opt, jobs.ServerConfig(a.Log, 4, 5*time.Second))
	mux := asynq.NewServeMux()
	if err := a.registerJobs(mux); err != nil {
		t.Fatal(err)
	}
	if err := worker.Start(mux); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(worker.Shutdown)
	a.startRelay(ctx, &wg)
	return ctx
}

// waitFor polls ok until it holds, failing the test after 30 s.
func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !ok(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// TestProvisioningLifecycle drives the whole product through its HTTP
// surfaces: a SCIM push, the outbox relay, asynq jobs on Redis, invite mail
// over real SMTP, and the person accepting it.
func TestProvisioningLifecycle(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			smtp := mailtest.Start(t, mailtest.Options{})
			s := newTestServerWith(t, b, brokertest.Open(t), func(c *config.Config) { c.SMTPURL = smtp.URL() })
			a := s.app
			ctx := startWorker(t, a)

			_, org, _ := s.do(t, call{method: "POST", path: "/api/v1/orgs", auth: adminToken, body: `{"name":"Acme"}`})
			orgID := org["id"].(string)
			s.do(t, call{method: "PATCH", path: "/api/v1/orgs/" + orgID, auth: adminToken, body: `{"scimEnabled":true}`})
			_, tok, _ := s.do(t, call{method: "POST", path: "/api/v1/orgs/" + orgID + "/scim-tokens", auth: adminToken, body: `{}`})
			scim := tok["token"].(string)

			code, user, _ := s.do(t, call{method: "POST", path: "/scim/v2/Users", auth: scim, body: `{
				"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"ann@example.com",
				"name":{"givenName":"Ann","familyName":"Lee"},"emails":[{"value":"ann@example.com","type":"work","primary":true}],
				"active":true,"password":"placeholder"}`})
			if code != 201 {
				t.Fatalf("SCIM create = %d %v", code, user)
			}
			userPath := "/scim/v2/Users/" + user["id"].(string)
			member := func() store.Membership {
				m, err := a.Store.MembershipByDirectoryUser(ctx, orgID, user["id"].(string))
				if err != nil {
					return store.Membership{}
				}
				return m
			}
			tokenRE := regexp.MustCompile(`/invite/accept\?token=(ssi_[A-Za-z0-9_-]{43})`)
			mailToken := func(n int) string {
				t.Helper()
				waitFor(t, "invite e-mail", func() bool { return len(smtp.Messages()) >= n })
				msgs := smtp.Messages()
				if len(msgs) != n {
					t.Fatalf("%d e-mails, want %d", len(msgs), n)
				}
				m := msgs[n-1]
				if len(m.To) != 1 || m.To[0] != "ann@example.com" {
					t.Errorf("e-mail to %v", m.To)
				}
				text, _ := m.TextBody()
				match := tokenRE.FindStringSubmatch(text)
				if match == nil || !strings.Contains(text, a.Cfg.PublicURL+"/invite/accept?token=") {
					t.Fatalf("e-mail has no invite link:\n%s", text)
				}
				return match[1]
			}
			accept := func(token string) int {
				code, _, _ := s.do(t, call{method: "POST", path: "/api/v1/invites/accept", body: `{"token":"` + token + `"}`})
				return code
			}

			waitFor(t, "pending_setup", func() bool { return member().Status == lifecycle.StatusPendingSetup })
			first := mailToken(1)
			if got := accept(first); got != 200 {
				t.Fatalf("accept = %d", got)
			}
			if m := member(); m.Status != lifecycle.StatusActive || m.Email != "ann@example.com" || m.FirstName != "Ann" {
				t.Fatalf("after accept: %+v", m)
			}
			if got := accept(first); got != 404 {
				t.Errorf("second accept = %d, want 404", got)
			}

			// The local state as operators see it.
			_, view, _ := s.do(t, call{method: "GET", path: "/api/v1/orgs/" + orgID + "/members", auth: adminToken})
			ms := view["members"].([]any)
			if len(ms) != 1 || ms[0].(map[string]any)["status"] != "active" || ms[0].(map[string]any)["email"] != "ann@example.com" || ms[0].(map[string]any)["source"] != "scim" {
				t.Errorf("members = %v", view)
			}
			if _, view, _ := s.do(t, call{method: "GET", path: "/api/v1/orgs/" + orgID + "/members?status=pending_setup", auth: adminToken}); len(view["members"].([]any)) != 0 {
				t.Errorf("pending members = %v", view)
			}
			if code, _, _ := s.do(t, call{method: "GET", path: "/api/v1/orgs/" + orgID + "/members?status=gone", auth: adminToken}); code != 400 {
				t.Errorf("bad status filter = %d, want 400", code)
			}
			_, other, _ := s.do(t, call{method: "POST", path: "/api/v1/orgs", auth: adminToken, body: `{"name":"Other"}`})
			if _, view, _ := s.do(t, call{method: "GET", path: "/api/v1/orgs/" + other["id"].(string) + "/members", auth: adminToken}); len(view["members"].([]any)) != 0 {
				t.Errorf("another org sees members: %v", view)
			}
			if code, _, _ := s.do(t, call{method: "POST", path: "/scim/v2/Groups", auth: scim, body: `{"displayName":"Engineering","members":[{"value":"` + user["id"].(string) + `"}]}`}); code != 201 {
				t.Fatalf("SCIM group create = %d", code)
			}
			groupView := func() map[string]any {
				_, v, _ := s.do(t, call{method: "GET", path: "/api/v1/orgs/" + orgID + "/groups", auth: adminToken})
				gs := v["groups"].([]any)
				if len(gs) != 1 {
					return nil
				}
				return gs[0].(map[string]any)
			}
			waitFor(t, "local group", func() bool { g := groupView(); return g != nil && g["memberCount"] == float64(1) })
			if g := groupView(); g["name"] != "Engineering" || g["members"].([]any)[0].(map[string]any)["email"] != "ann@example.com" {
				t.Errorf("group = %v", g)
			}

			if code, _, _ := s.do(t, call{method: "PATCH", path: userPath, auth: scim, body: `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","value":{"active":false}}]}`}); code != 200 {
				t.Fatalf("deactivate = %d", code)
			}
			waitFor(t, "deprovisioned", func() bool { return member().Status == lifecycle.StatusDeprovisioned })

			if code, _, _ := s.do(t, call{method: "PATCH", path: userPath, auth: scim, body: `{"Operations":[{"op":"Replace","path":"active","value":"True"}]}`}); code != 200 {
				t.Fatalf("reactivate = %d", code)
			}
			waitFor(t, "pending_setup again", func() bool { return member().Status == lifecycle.StatusPendingSetup })
			second := mailToken(2)
			if second == first {
				t.Fatal("re-activation reused the old token")
			}
			if got := accept(first); got != 404 {
				t.Errorf("old token after re-activation = %d, want 404", got)
			}
			if got := accept(second); got != 200 || member().Status != lifecycle.StatusActive {
				t.Fatalf("accept new invite = %d, status %s", got, member().Status)
			}

			if code, _, _ := s.do(t, call{method: "DELETE", path: userPath, auth: scim}); code != 204 {
				t.Fatalf("delete = %d", code)
			}
			waitFor(t, "membership removed", func() bool { return member().ID == "" })
			if n := len(smtp.Messages()); n != 2 {
				t.Errorf("%d e-mails in all, want exactly 2", n)
			}
		})
	}
}
