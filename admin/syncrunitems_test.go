package admin_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/scimsync/scimsync/admin"
	"github.com/scimsync/scimsync/store"
	"github.com/scimsync/scimsync/store/storetest"
)

// TestSyncRunItemsPages reads a run's plan in pages, whole and by action,
// and only the organization's own run.
func TestSyncRunItemsPages(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		svc := &admin.Service{Store: st}
		acme, _ := st.CreateOrg(ctx, "Acme")
		other, _ := st.CreateOrg(ctx, "Other")
		run := store.SyncRun{OrgID: acme.ID, Trigger: "manual"}
		if err := st.CreateSyncRun(ctx, &run); err != nil {
			t.Fatal(err)
		}
		var items []store.SyncRunItem
		for i := range 5 {
			action := "provision"
			if i%2 == 1 {
				action = "deprovision"
			}
			items = append(items, store.SyncRunItem{RunID: run.ID, OrgID: acme.ID, Action: action, EntityType: "directory_user", EntityID: fmt.Sprint("u", i)})
		}
		if err := st.AddSyncRunItems(ctx, items); err != nil {
			t.Fatal(err)
		}
		// pages reads every page of limit items and the ids on each.
		pages := func(orgID, action string, limit int) [][]string {
			var out [][]string
			var after int64
			for range 10 {
				got, next, err := svc.SyncRunItems(ctx, orgID, run.ID, action, after, limit)
				if err != nil {
					t.Fatal(err)
				}
				var ids []string
				for _, it := range got {
					ids = append(ids, it.EntityID)
				}
				out = append(out, ids)
				if next == 0 {
					return out
				}
				after = next
			}
			t.Fatal("the pages do not end")
			return nil
		}
		tests := []struct {
			name, org, action string
			limit             int
			want              [][]string
		}{
			{"all in pages of 2", acme.ID, "", 2, [][]string{{"u0", "u1"}, {"u2", "u3"}, {"u4"}}},
			{"an exact last page has no next", acme.ID, "", 5, [][]string{{"u0", "u1", "u2", "u3", "u4"}}},
			{"one action", acme.ID, "deprovision", 1, [][]string{{"u1"}, {"u3"}}},
			{"another organization's run", other.ID, "", 2, [][]string{nil}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				if diff := cmp.Diff(tt.want, pages(tt.org, tt.action, tt.limit)); diff != "" {
					t.Errorf("pages (-want +got):\n%s", diff)
				}
			})
		}
	})
}

// TestReconcileRequestBounds refuses confirmation bounds that make no
// sense and records the ones given on the queued run.
func TestReconcileRequestBounds(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		svc := &admin.Service{Store: st}
		org, _ := st.CreateOrg(ctx, "Acme")
		n, neg := 3, -1
		tests := []struct {
			name    string
			req     admin.ReconcileRequest
			wantErr bool
		}{
			{"a bound without the confirmation", admin.ReconcileRequest{ConfirmedRemovals: &n}, true},
			{"a negative bound", admin.ReconcileRequest{AllowMassDeprovision: true, ConfirmedGroupDeletions: &neg}, true},
			{"bounds with the confirmation", admin.ReconcileRequest{AllowMassDeprovision: true, ConfirmedRemovals: &n, ConfirmedGroupDeletions: &n}, false},
			{"a confirmation without bounds", admin.ReconcileRequest{AllowMassDeprovision: true}, false},
			{"losses without the confirmation", admin.ReconcileRequest{ConfirmedLosses: strings.Repeat("a", 64)}, true},
			{"losses that are no digest", admin.ReconcileRequest{AllowMassDeprovision: true, ConfirmedLosses: "ABC"}, true},
			{"losses with the confirmation", admin.ReconcileRequest{AllowMassDeprovision: true, ConfirmedLosses: strings.Repeat("0f", 32)}, false},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				before, _ := st.SyncRuns(ctx, org.ID, "", 100)
				run, err := svc.RequestReconcile(ctx, org.ID, tt.req)
				if tt.wantErr {
					if !errors.Is(err, admin.ErrInvalid) {
						t.Fatalf("err = %v, want ErrInvalid", err)
					}
					if after, _ := st.SyncRuns(ctx, org.ID, "", 100); len(after) != len(before) || len(storetest.PendingOutbox(t, st)) != len(before) {
						t.Errorf("a refused request wrote a run or a task: %d runs before, %d after", len(before), len(after))
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				got, _ := st.SyncRun(ctx, org.ID, run.ID)
				if diff := cmp.Diff([]*int{tt.req.ConfirmedRemovals, tt.req.ConfirmedGroupDeletions}, []*int{got.ConfirmedRemovals, got.ConfirmedGroupDeletions}); diff != "" {
					t.Errorf("stored bounds (-want +got):\n%s", diff)
				}
				if got.ConfirmedLosses != tt.req.ConfirmedLosses {
					t.Errorf("stored losses %q, want %q", got.ConfirmedLosses, tt.req.ConfirmedLosses)
				}
			})
		}
	})
}
