package app

import (
	"fmt"
	"testing"

	"github.com/scimsync/scimsync/broker/brokertest"
	"github.com/scimsync/scimsync/connectors/okta/oktafake"
	"github.com/scimsync/scimsync/store/storetest"
)

// TestReconcileFromOktaOnWorker drives pull mode through the admin API: a
// connector to an Okta fake, a queued reconcile that a worker runs, and the
// members it provisions; then a suspension in the IdP repaired by the next
// run.
func TestReconcileFromOktaOnWorker(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			s := newTestServer(t, b, brokertest.Open(t))
			okta := oktafake.New(t)
			var ids []string
			for i := range 5 {
				u := okta.AddUser(oktafake.User{Email: fmt.Sprintf("user%d@example.com", i), FirstName: "U", LastName: fmt.Sprint(i)})
				ids = append(ids, u.ID)
			}
			startWorker(t, s.app)

			_, org, _ := s.do(t, call{method: "POST", path: "/api/v1/orgs", auth: adminToken, body: `{"name":"Acme"}`})
			orgID := org["id"].(string)
			body := `{"type":"okta","settings":{"orgUrl":"` + okta.URL() + `"},"credentials":{"apiToken":"` + oktafake.DefaultToken + `"}}`
			if code, m, _ := s.do(t, call{method: "PUT", path: "/api/v1/orgs/" + orgID + "/connector", auth: adminToken, body: body}); code != 200 {
				t.Fatalf("put connector = %d %v", code, m)
			}
			reconcile := func() map[string]any {
				t.Helper()
				code, m, _ := s.do(t, call{method: "POST", path: "/api/v1/orgs/" + orgID + "/reconcile", auth: adminToken, body: `{}`})
				if code != 202 || m["runId"] == nil {
					t.Fatalf("reconcile = %d %v", code, m)
				}
				path := "/api/v1/orgs/" + orgID + "/sync-runs/" + m["runId"].(string)
				var run map[string]any
				waitFor(t, "the run to finish", func() bool {
					_, run, _ = s.do(t, call{method: "GET", path: path, auth: adminToken})
					st := run["status"]
					return st != "queued" && st != "running"
				})
				if run["status"] != "succeeded" {
					t.Fatalf("run = %v", run)
				}
				return run
			}
			members := func(status string) int {
				_, m, _ := s.do(t, call{method: "GET", path: "/api/v1/orgs/" + orgID + "/members?status=" + status, auth: adminToken})
				return len(m["members"].([]any))
			}

			run := reconcile()
			if plan := run["plan"].(map[string]any); plan["provision"] != float64(5) {
				t.Errorf("first plan = %v", plan)
			}
			waitFor(t, "5 pending members", func() bool { return members("pending_setup") == 5 })

			okta.SetStatus(ids[0], oktafake.StatusSuspended)
			run = reconcile()
			if plan := run["plan"].(map[string]any); plan["deprovision"] != float64(1) || plan["provision"] != float64(0) {
				t.Errorf("second plan = %v", plan)
			}
			waitFor(t, "1 deprovisioned member", func() bool { return members("deprovisioned") == 1 && members("pending_setup") == 4 })
		})
	}
}
