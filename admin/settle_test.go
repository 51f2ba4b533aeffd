package admin_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/scimsync/scimsync/admin"
	"github.com/scimsync/scimsync/converge"
	"github.com/scimsync/scimsync/jobs/invite"
	"github.com/scimsync/scimsync/lifecycle"
	"github.com/scimsync/scimsync/store"
	"github.com/scimsync/scimsync/store/storetest"
)

// settleOrg is an organization whose members are the directory users of
// names, converged; then admins are made admins, and the directory users of
// inactive are deactivated and those of gone deleted (pushed, not yet
// converged).
type settleOrg struct {
	store.Org
	dir     map[string]string // name → directory user
	members map[string]string // name → member
}

func newSettleOrg(t *testing.T, st *store.Store, c *converge.Converger, admins, inactive, gone []string, names ...string) settleOrg {
	t.Helper()
	ctx := context.Background()
	o, err := st.CreateOrg(ctx, "Org")
	if err != nil {
		t.Fatal(err)
	}
	so := settleOrg{Org: o, dir: map[string]string{}, members: map[string]string{}}
	for _, name := range names {
		d := store.DirectoryUser{OrgID: o.ID, Source: store.SourceSCIM, UserName: name, Email: name + "@example.com", Active: true}
		if err := st.CreateDirectoryUser(ctx, &d); err != nil {
			t.Fatal(err)
		}
		if _, err := c.ApplyUser(ctx, o.ID, d.ID); err != nil {
			t.Fatal(err)
		}
		m, err := st.MembershipByDirectoryUser(ctx, o.ID, d.ID)
		if err != nil {
			t.Fatal(err)
		}
		so.dir[name], so.members[name] = d.ID, m.ID
	}
	for _, name := range admins {
		m, _ := st.Membership(ctx, o.ID, so.members[name])
		m.Role = lifecycle.RoleAdmin
		if err := st.UpdateMembership(ctx, &m); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range inactive {
		d, _ := st.DirectoryUser(ctx, o.ID, so.dir[name])
		d.Active = false
		if err := st.UpdateDirectoryUser(ctx, &d, d.Version); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range gone {
		if err := st.DeleteDirectoryUser(ctx, o.ID, so.dir[name]); err != nil {
			t.Fatal(err)
		}
	}
	return so
}

// memberState is what a settlement may change, for checking that a
// refused one changed nothing.
func memberState(t *testing.T, st *store.Store, orgIDs ...string) []string {
	t.Helper()
	var out []string
	for _, id := range orgIDs {
		ms, err := st.Members(context.Background(), id, "", "", 1000)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range ms {
			out = append(out, m.Email+" "+m.Role+" "+m.Status)
		}
		evs, _ := st.AuditEvents(context.Background(), id, 0, 1000)
		out = append(out, "events "+strconv.Itoa(len(evs)))
	}
	return out
}

func TestSettleAdminAPI(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		inv := &invite.Service{Store: st, Config: invite.Config{PublicURL: "https://app.test", TTL: 7 * 24 * time.Hour, ResendAfter: 24 * time.Hour, MaxSends: 5}}
		c := &converge.Converger{Store: st, Invites: inv}
		srv := httptest.NewServer((&admin.API{Service: &admin.Service{Store: st, Converger: c}, Auth: admin.NewAuth(token)}).Handler())
		t.Cleanup(srv.Close)
		call := func(path, body string) (int, map[string]any) {
			t.Helper()
			req, _ := http.NewRequest("POST", srv.URL+"/api/v1/orgs/"+path+"/settle-admin", strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+token)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			raw, _ := io.ReadAll(resp.Body)
			var m map[string]any
			if err := json.Unmarshal(raw, &m); err != nil {
				t.Fatalf("%s: body %q: %v", path, raw, err)
			}
			return resp.StatusCode, m
		}

		// acme: ann, the only admin, is gone from the directory and kept
		// back; cid is deprovisioned; dee is inactive in the directory,
		// not yet converged.
		acme := newSettleOrg(t, st, c, []string{"ann"}, []string{"cid", "dee"}, []string{"ann"}, "ann", "bob", "cid", "dee")
		if _, err := c.ApplyUser(ctx, acme.ID, acme.dir["cid"]); err != nil {
			t.Fatal(err)
		}
		if p, err := c.ApplyUser(ctx, acme.ID, acme.dir["ann"]); err != nil || p.Action != lifecycle.Keep {
			t.Fatalf("ann's converge = %+v, %v; want kept", p, err)
		}
		// beta: two admins, one of them gone (not yet converged).
		beta := newSettleOrg(t, st, c, []string{"eve", "fay"}, nil, []string{"eve"}, "eve", "fay")
		// gamma: an only admin whom the directory keeps.
		gamma := newSettleOrg(t, st, c, []string{"gus"}, nil, nil, "gus", "hal")

		member := func(o settleOrg, name string) string { return o.ID + "/members/" + o.members[name] }
		for _, tc := range []struct {
			name, path, body string
			code             int
			message          string
		}{
			{"unknown organization", "nope/members/" + acme.members["ann"], `{"confirmRemoval":true}`, 404, "organization not found"},
			{"unknown member", acme.ID + "/members/nope", `{"confirmRemoval":true}`, 404, "membership not found"},
			{"another organization's member", acme.ID + "/members/" + gamma.members["gus"], `{"confirmRemoval":true}`, 404, "membership not found"},
			{"another organization's new admin", member(acme, "ann"), `{"newAdminMemberId":"` + gamma.members["hal"] + `"}`, 404, "new admin: membership not found"},
			{"neither", member(acme, "ann"), `{}`, 400, "either newAdminMemberId or confirmRemoval"},
			{"both", member(acme, "ann"), `{"newAdminMemberId":"` + acme.members["bob"] + `","confirmRemoval":true}`, 400, "either"},
			{"itself", member(acme, "ann"), `{"newAdminMemberId":"` + acme.members["ann"] + `"}`, 400, "another member"},
			{"malformed", member(acme, "ann"), `{"confirmRemoval":`, 400, ""},
			{"not an admin", member(acme, "bob"), `{"confirmRemoval":true}`, 409, "is not an admin"},
			{"not the last admin", member(beta, "eve"), `{"confirmRemoval":true}`, 409, "not the organization's last admin"},
			{"not kept back", member(gamma, "gus"), `{"newAdminMemberId":"` + gamma.members["hal"] + `"}`, 409, "nothing is kept back"},
			{"deprovisioned new admin", member(acme, "ann"), `{"newAdminMemberId":"` + acme.members["cid"] + `"}`, 409, "is deprovisioned"},
			{"new admin the directory would take", member(acme, "ann"), `{"newAdminMemberId":"` + acme.members["dee"] + `"}`, 409, "its directory user is inactive"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				before := memberState(t, st, acme.ID, beta.ID, gamma.ID)
				code, body := call(tc.path, tc.body)
				e, _ := body["error"].(map[string]any)
				msg, _ := e["message"].(string)
				if code != tc.code || !strings.Contains(msg, tc.message) {
					t.Errorf("= %d %v; want %d saying %q", code, body, tc.code, tc.message)
				}
				if diff := cmp.Diff(before, memberState(t, st, acme.ID, beta.ID, gamma.ID)); diff != "" {
					t.Errorf("a refused settlement changed (-before +after):\n%s", diff)
				}
			})
		}

		code, body := call(member(acme, "ann"), `{"newAdminMemberId":"`+acme.members["bob"]+`"}`)
		heir, _ := body["newAdmin"].(map[string]any)
		if code != 200 || body["member"] != nil || body["applied"] != "member.remove" || body["awaitsReconciliation"] != false ||
			heir["id"] != acme.members["bob"] || heir["role"] != lifecycle.RoleAdmin {
			t.Fatalf("settle = %d %v", code, body)
		}
		if code, _ := call(member(acme, "ann"), `{"confirmRemoval":true}`); code != 404 {
			t.Errorf("settling a removed member again = %d, want 404", code)
		}
		evs, _ := st.AuditEvents(ctx, acme.ID, 0, 3)
		var got []string
		for _, e := range evs {
			got = append(got, e.Actor+" "+e.Action)
		}
		want := []string{"admin member.remove", "admin member.settle", "admin member.promote"}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("audit events, newest first (-want +got):\n%s", diff)
		}
	})
}
