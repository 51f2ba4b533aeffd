package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/scimsync/scimsync/internal/clock"
	"github.com/scimsync/scimsync/lifecycle"
	"github.com/scimsync/scimsync/store"
	"github.com/scimsync/scimsync/store/storetest"
)

func allEvents(t *testing.T, s *store.Store, orgID string) []store.Event {
	t.Helper()
	ctx := context.Background()
	cur, err := s.EventCursor(ctx, orgID)
	if err != nil {
		t.Fatal(err)
	}
	evs, err := s.Events(ctx, orgID, 0, cur.Latest, 1000, nil)
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

// A run's end is an event with the run as GET /sync-runs/{id} shows it,
// written with the run's status: finished (succeeded or failed, an
// abandoned run included) or blocked.
func TestSyncRunEvents(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			clk := clock.NewFake(time.Date(2030, 1, 1, 9, 0, 0, 0, time.UTC))
			s := storetest.Open(t, b, store.Options{Clock: clk})
			org, err := s.CreateOrg(ctx, "Acme")
			if err != nil {
				t.Fatal(err)
			}
			start := func() store.SyncRun {
				t.Helper()
				run := store.SyncRun{OrgID: org.ID, Trigger: "api"}
				if err := s.StartSyncRun(ctx, &run, clk.Now().Add(-time.Minute)); err != nil {
					t.Fatal(err)
				}
				return run
			}
			blocked := start()
			if err := s.FinishSyncRun(ctx, org.ID, blocked.ID, store.RunBlocked, `{"deprovision":9}`, "guard", 1); err != nil {
				t.Fatal(err)
			}
			abandoned := start()
			clk.Advance(time.Hour)
			next := start() // finds the silent run and fails it
			if err := s.FinishSyncRun(ctx, org.ID, next.ID, store.RunSucceeded, "{}", "", 1); err != nil {
				t.Fatal(err)
			}
			// A run no longer running is refused, with no event.
			if err := s.FinishSyncRun(ctx, org.ID, next.ID, store.RunFailed, "{}", "late", 1); !errors.Is(err, store.ErrRunNotRunning) {
				t.Fatalf("finishing twice: %v", err)
			}

			evs := allEvents(t, s, org.ID)
			want := []struct{ typ, id, status string }{
				{lifecycle.EventSyncRunBlocked, blocked.ID, store.RunBlocked},
				{lifecycle.EventSyncRunFinished, abandoned.ID, store.RunFailed},
				{lifecycle.EventSyncRunFinished, next.ID, store.RunSucceeded},
			}
			if len(evs) != len(want) {
				t.Fatalf("%d events, want %d: %+v", len(evs), len(want), evs)
			}
			for i, w := range want {
				e := evs[i]
				var v store.SyncRunView
				if err := json.Unmarshal([]byte(e.Data), &v); err != nil {
					t.Fatal(err)
				}
				if e.Type != w.typ || e.EntityID != w.id || e.Sequence != int64(i+1) || v.ID != w.id || v.Status != w.status || v.FinishedAt == nil {
					t.Errorf("event %d = %s %s #%d %+v; want %s of %s, %s", i, e.Type, e.EntityID, e.Sequence, v, w.typ, w.id, w.status)
				}
			}
			run, err := s.SyncRun(ctx, org.ID, blocked.ID)
			if err != nil {
				t.Fatal(err)
			}
			shown, _ := json.Marshal(run.View())
			if string(shown) != evs[0].Data {
				t.Errorf("blocked event data %s, GET /sync-runs/{id} shows %s", evs[0].Data, shown)
			}
		})
	}
}

// Events are numbered per organization from 1, and a transaction that
// rolls back takes its numbers with it: no gap, no reuse.
func TestEventSequencesHaveNoGaps(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		acme, _ := s.CreateOrg(ctx, "Acme")
		other, _ := s.CreateOrg(ctx, "Other")
		appendN := func(orgID string, n int, fail error) error {
			return s.Tx(ctx, func(tx *store.Store) error {
				cs := make([]store.Change, n)
				for i := range cs {
					cs[i] = store.Change{Type: lifecycle.EventSyncRunFinished, EntityType: store.EntitySyncRun, EntityID: "r", Data: i}
				}
				if err := tx.AppendEvents(ctx, orgID, cs); err != nil {
					return err
				}
				return fail
			})
		}
		boom := errors.New("boom")
		for _, step := range []struct {
			org  string
			n    int
			fail error
		}{{acme.ID, 3, nil}, {other.ID, 2, nil}, {acme.ID, 4, boom}, {acme.ID, 1, nil}, {other.ID, 1, nil}} {
			if err := appendN(step.org, step.n, step.fail); !errors.Is(err, step.fail) {
				t.Fatal(err)
			}
		}
		for org, want := range map[string]int64{acme.ID: 4, other.ID: 3} {
			evs := allEvents(t, s, org)
			for i, e := range evs {
				if e.Sequence != int64(i+1) || e.OrgID != org {
					t.Errorf("event %d of %s has sequence %d", i, org, e.Sequence)
				}
			}
			if int64(len(evs)) != want {
				t.Errorf("%s has %d events, want %d", org, len(evs), want)
			}
		}
	})
}
