package reconciler_test

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/scimsync/scimsync/connectors/entra"
	"github.com/scimsync/scimsync/connectors/entra/entrafake"
	"github.com/scimsync/scimsync/lifecycle"
	"github.com/scimsync/scimsync/reconciler"
	"github.com/scimsync/scimsync/store"
	"github.com/scimsync/scimsync/store/storetest"
)

// connectEntra gives the organization an Entra connector to a new fake.
func (h *harness) connectEntra() *entrafake.Server {
	h.t.Helper()
	idp := entrafake.New(h.t, entrafake.WithClock(h.clock.Now))
	settings, _ := json.Marshal(map[string]string{"tenantId": idp.TenantID(), "graphUrl": idp.URL(), "loginUrl": idp.URL()})
	creds, _ := json.Marshal(map[string]string{"clientId": idp.ClientID(), "clientSecret": idp.ClientSecret()})
	if _, err := h.svc.PutConnector(h.ctx, h.org.ID, entra.Type, settings, creds); err != nil {
		h.t.Fatal(err)
	}
	return idp
}

// The delta runs of an Entra organization: every kind of change found in
// a few requests and applied as a full run would, a failed delta keeping
// the cursor, the guard holding, a delta of no change planning nothing, and
// an expired token answered with a full pull.
func TestEntraDelta(t *testing.T) {
	each(t, func(t *testing.T, b storetest.Backend) {
		h := newHarness(t, b)
		idp := h.connectEntra()
		var users []entrafake.User
		for i := range 30 {
			users = append(users, idp.AddUser(entrafake.User{UserPrincipalName: fmt.Sprintf("u%03d@example.com", i),
				Mail: fmt.Sprintf("u%03d@example.com", i), GivenName: "Given", Surname: fmt.Sprintf("u%03d", i)}))
		}
		eng := idp.AddGroup("Engineering")
		for _, u := range users[:10] {
			idp.AddMember(eng.ID, u.ID)
		}
		run, _ := h.reconcile(reconciler.Options{})
		h.mustMode(run, store.PullFull)
		h.converge()

		// No change: a delta that plans nothing.
		run, p := h.reconcile(reconciler.Options{})
		h.mustStatus(run, store.RunSucceeded)
		h.mustMode(run, store.PullDelta)
		if len(h.items(run)) != 0 || *p.Applied != (reconciler.Applied{}) {
			t.Fatalf("a delta of no change planned %q, applied %+v", h.items(run), p.Applied)
		}

		idp.DeleteUser(users[0].ID)
		idp.UpdateUser(users[1].ID, func(u *entrafake.User) { u.Disabled = true })
		idp.UpdateUser(users[3].ID, func(u *entrafake.User) { u.Surname = "Renamed" })
		idp.RemoveMember(eng.ID, users[5].ID)
		idp.AddMember(eng.ID, users[20].ID)
		idp.RenameGroup(eng.ID, "Platform")
		idp.AddUser(entrafake.User{UserPrincipalName: "new@example.com", Mail: "new@example.com"})

		// A failed delta keeps the cursor.
		cursor := h.connector().DeltaCursor
		idp.FailNext(entrafake.RouteGroupsDelta, 500, 2)
		run, _ = h.reconcile(reconciler.Options{})
		h.mustStatus(run, store.RunFailed)
		if got := h.connector().DeltaCursor; got != cursor {
			t.Fatalf("cursor after a failed run = %q, want %q", got, cursor)
		}

		run, p = h.reconcile(reconciler.Options{})
		h.mustStatus(run, store.RunSucceeded)
		h.mustMode(run, store.PullDelta)
		if run.CursorBefore != cursor || run.IdPRequests > 5 {
			t.Errorf("delta from %q in %d requests, want from %q in at most 5", run.CursorBefore, run.IdPRequests, cursor)
		}
		if p.Provision != 1 || p.Remove != 1 || p.Deprovision != 1 || p.Update != 1 || p.GroupChanges != 1 {
			t.Errorf("plan = %+v; items %q", p, h.items(run))
		}
		if got := h.itemsOf(run, lifecycle.GroupUpdate.PlanItem()); len(got) != 1 || got[0] != "Platform: rename from Engineering, members +1 -2" {
			t.Errorf("group items = %q", got)
		}
		h.converge()
		h.mustFullPlanNothing()

		// The guard holds a delta.
		for _, u := range users[6:] {
			idp.DeleteUser(u.ID)
		}
		run, p = h.reconcile(reconciler.Options{})
		h.mustStatus(run, store.RunBlocked)
		h.mustMode(run, store.PullDelta)
		if p.Remove != 24 {
			t.Errorf("blocked plan = %+v", p)
		}

		// An expired token: a full pull, which the guard holds as well.
		idp.ExpireDeltaTokens()
		run, _ = h.reconcile(reconciler.Options{AllowMassDeprovision: true})
		h.mustStatus(run, store.RunSucceeded)
		h.mustMode(run, store.PullFull)
		if run.CursorBefore == "" || run.CursorAfter == run.CursorBefore {
			t.Errorf("full pull after an expired token: cursors %q → %q", run.CursorBefore, run.CursorAfter)
		}
		h.converge()
		run, _ = h.reconcile(reconciler.Options{})
		h.mustMode(run, store.PullDelta)
	})
}
