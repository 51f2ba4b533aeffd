package app

import (
	"fmt"
	"slices"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/scimsync/scimsync/broker/brokertest"
	"github.com/scimsync/scimsync/connectors/okta/oktafake"
	"github.com/scimsync/scimsync/internal/metricstest"
	"github.com/scimsync/scimsync/store/storetest"
)

// TestReconcileFromOktaOnWorker drives pull mode through the admin API: a
// connector to an Okta fake, a queued reconcile that a worker runs, and the
// members it provisions; then a suspension, a deactivation and a deletion
// in the IdP, repaired by the next run: the first two deprovision, keeping
// group links, the last removes; then a re-activation that restores the
// member with a new invite.
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
			eng := okta.AddGroup("Engineering")
			okta.AddMember(eng.ID, ids[1])
			okta.AddMember(eng.ID, ids[2])
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
			memberList := func(status string) []any {
				_, m, _ := s.do(t, call{method: "GET", path: "/api/v1/orgs/" + orgID + "/members?status=" + status, auth: adminToken})
				return m["members"].([]any)
			}
			members := func(status string) int { return len(memberList(status)) }
			member := func(email string) map[string]any {
				for _, m := range memberList("") {
					if m := m.(map[string]any); m["email"] == email {
						return m
					}
				}
				return nil
			}
			groupMembers := func() []string {
				_, v, _ := s.do(t, call{method: "GET", path: "/api/v1/orgs/" + orgID + "/groups", auth: adminToken})
				var out []string
				for _, g := range v["groups"].([]any) {
					for _, m := range g.(map[string]any)["members"].([]any) {
						out = append(out, m.(map[string]any)["email"].(string))
					}
				}
				return out
			}

			run := reconcile()
			if plan := run["plan"].(map[string]any); plan["provision"] != float64(5) {
				t.Errorf("first plan = %v", plan)
			}
			waitFor(t, "5 pending members", func() bool { return members("pending_setup") == 5 })

			waitFor(t, "group links", func() bool { return len(groupMembers()) == 2 })
			user1 := member("user1@example.com")

			okta.SetStatus(ids[0], oktafake.StatusSuspended)
			okta.SetStatus(ids[1], oktafake.StatusDeprovisioned)
			okta.DeleteUser(ids[2])
			run = reconcile()
			if plan := run["plan"].(map[string]any); plan["deprovision"] != float64(2) || plan["remove"] != float64(1) || plan["provision"] != float64(0) {
				t.Errorf("second plan = %v", plan)
			}
			waitFor(t, "2 deprovisioned members, 1 removed", func() bool {
				return members("deprovisioned") == 2 && members("pending_setup") == 2 && members("") == 4
			})
			if m := member("user1@example.com"); m["id"] != user1["id"] || m["status"] != "deprovisioned" {
				t.Errorf("deactivated member = %v", m)
			}
			waitFor(t, "the group without the deleted user", func() bool { return slices.Equal(groupMembers(), []string{"user1@example.com"}) })

			okta.SetStatus(ids[1], oktafake.StatusActive)
			run = reconcile()
			if plan := run["plan"].(map[string]any); plan["provision"] != float64(1) || plan["deprovision"] != float64(0) {
				t.Errorf("third plan = %v", plan)
			}
			waitFor(t, "the re-activated member", func() bool { return member("user1@example.com")["status"] == "pending_setup" })
			if m := member("user1@example.com"); m["id"] != user1["id"] || m["inviteSends"] != float64(2) {
				t.Errorf("re-activated member = %v, want the same member with a second invite", m)
			}
			if got := groupMembers(); !slices.Equal(got, []string{"user1@example.com"}) {
				t.Errorf("group members = %q", got)
			}
			// The worker counts reconcile tasks with the other jobs.
			waitFor(t, "3 reconcile tasks counted", func() bool { return jobRuns(t, s.app.Registry, "reconcile:org", "ran") == 3 })
		})
	}
}

// jobRuns reads scimsync_jobs_total for a task type and outcome.
func jobRuns(t *testing.T, reg prometheus.Gatherer, taskType, outcome string) float64 {
	t.Helper()
	return metricstest.Value(t, reg, "scimsync_jobs_total", map[string]string{"type": taskType, "outcome": outcome})
}
