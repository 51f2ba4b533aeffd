package admin_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/scimsync/scimsync/admin"
	"github.com/scimsync/scimsync/jobs/task"
	"github.com/scimsync/scimsync/reconciler"
	"github.com/scimsync/scimsync/source"
	"github.com/scimsync/scimsync/store"
	"github.com/scimsync/scimsync/store/storetest"
)

const token = "test-admin-token-0123456789"

func TestSyncRunsAPI(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		svc := &admin.Service{Store: st}
		srv := httptest.NewServer((&admin.API{Service: svc, Auth: admin.NewAuth(token)}).Handler())
		t.Cleanup(srv.Close)
		call := func(method, path, body string) (int, map[string]any, http.Header) {
			t.Helper()
			req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+token)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			raw, _ := io.ReadAll(resp.Body)
			var m map[string]any
			if err := json.Unmarshal(raw, &m); err != nil {
				t.Fatalf("%s %s: body %q: %v", method, path, raw, err)
			}
			return resp.StatusCode, m, resp.Header
		}

		acme, _ := st.CreateOrg(ctx, "Acme")
		other, _ := st.CreateOrg(ctx, "Other")
		for _, name := range []string{"ann", "bob"} {
			u := store.DirectoryUser{OrgID: acme.ID, Source: store.SourceSCIM, UserName: name, Email: name + "@example.com", Active: true}
			if err := st.CreateDirectoryUser(ctx, &u); err != nil {
				t.Fatal(err)
			}
		}

		code, body, hdr := call("POST", "/api/v1/orgs/"+acme.ID+"/reconcile", `{"dryRun":true}`)
		runID, _ := body["runId"].(string)
		if code != http.StatusAccepted || runID == "" || hdr.Get("Location") != "/api/v1/orgs/"+acme.ID+"/sync-runs/"+runID {
			t.Fatalf("POST reconcile = %d %v %v", code, body, hdr)
		}
		// The run's task waits in the outbox, committed with the run.
		rows := storetest.PendingOutbox(t, st)
		if len(rows) != 1 || rows[0].TaskType != task.TypeReconcile {
			t.Fatalf("outbox = %+v", rows)
		}

		code, body, _ = call("GET", "/api/v1/orgs/"+acme.ID+"/sync-runs", "")
		runs, _ := body["runs"].([]any)
		if code != 200 || len(runs) != 1 {
			t.Fatalf("GET sync-runs = %d %v", code, body)
		}
		first := runs[0].(map[string]any)
		if first["id"] != runID || first["status"] != store.RunQueued || first["dryRun"] != true || first["trigger"] != reconciler.TriggerAPI {
			t.Errorf("listed run = %v", first)
		}
		for _, path := range []string{
			"/api/v1/orgs/" + other.ID + "/sync-runs/" + runID, // another org's run
			"/api/v1/orgs/" + acme.ID + "/sync-runs/nope",
			"/api/v1/orgs/nope/sync-runs",
		} {
			if code, _, _ := call("GET", path, ""); code != http.StatusNotFound {
				t.Errorf("GET %s = %d, want 404", path, code)
			}
		}
		if code, _, _ := call("POST", "/api/v1/orgs/nope/reconcile", "{}"); code != http.StatusNotFound {
			t.Errorf("POST reconcile for an unknown org = %d", code)
		}

		// A worker carries the run out.
		r := &reconciler.Reconciler{Store: st, Directories: &source.Opener{Store: st}}
		var p task.Reconcile
		if err := json.Unmarshal(rows[0].Payload, &p); err != nil {
			t.Fatal(err)
		}
		if _, err := r.RunTask(ctx, p); err != nil {
			t.Fatal(err)
		}
		code, body, _ = call("GET", "/api/v1/orgs/"+acme.ID+"/sync-runs/"+runID+"?items=true", "")
		if code != 200 || body["status"] != store.RunSucceeded || body["finishedAt"] == nil {
			t.Fatalf("GET run = %d %v", code, body)
		}
		plan, _ := body["plan"].(map[string]any)
		for k, want := range map[string]float64{"provision": 2, "update": 0, "deprovision": 0, "resendInvite": 0, "groupChanges": 0} {
			if plan[k] != want {
				t.Errorf("plan[%s] = %v, want %v", k, plan[k], want)
			}
		}
		items, _ := body["items"].([]any)
		if len(items) != 2 || items[0].(map[string]any)["action"] != "provision" {
			t.Errorf("items = %v", items)
		}
		if code, body, _ = call("GET", "/api/v1/orgs/"+acme.ID+"/sync-runs/"+runID, ""); body["items"] != nil {
			t.Errorf("items without ?items=true: %v", body["items"])
		}

		// An empty body asks for a real run; allowMassDeprovision is kept.
		if code, _, _ := call("POST", "/api/v1/orgs/"+acme.ID+"/reconcile", ""); code != http.StatusAccepted {
			t.Errorf("POST reconcile without a body = %d", code)
		}
		_, body, _ = call("POST", "/api/v1/orgs/"+acme.ID+"/reconcile", `{"allowMassDeprovision":true}`)
		run, err := st.SyncRun(ctx, acme.ID, body["runId"].(string))
		if err != nil || run.DryRun || !run.AllowMassDeprovision || run.Status != store.RunQueued {
			t.Errorf("run = %+v, %v", run, err)
		}
	})
}
