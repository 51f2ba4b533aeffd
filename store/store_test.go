package store_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/scimsync/scimsync/internal/clock"
	"github.com/scimsync/scimsync/store"
	"github.com/scimsync/scimsync/store/storetest"
)

func TestMigrateIsIdempotent(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		n, err := s.Migrate(ctx)
		if err != nil || n != 0 {
			t.Fatalf("second Migrate = %d, %v; want 0, nil", n, err)
		}
		v, err := s.SchemaVersion(ctx)
		if err != nil || v != store.LatestSchemaVersion() {
			t.Fatalf("SchemaVersion = %d, %v; want %d", v, err, store.LatestSchemaVersion())
		}
	})
}

func TestConcurrentMigrate(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			u := storetest.DatabaseURL(t, b)
			ctx := context.Background()
			var wg sync.WaitGroup
			total := make(chan int, 3)
			for range 3 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					s, err := store.Open(ctx, u, store.Options{})
					if err != nil {
						t.Error(err)
						return
					}
					defer s.Close()
					n, err := s.Migrate(ctx)
					if err != nil {
						t.Error(err)
					}
					total <- n
				}()
			}
			wg.Wait()
			close(total)
			sum := 0
			for n := range total {
				sum += n
			}
			if sum != store.LatestSchemaVersion() {
				t.Errorf("migrations applied in total = %d, want each once (%d)", sum, store.LatestSchemaVersion())
			}
		})
	}
}

// The store's clock is the injected one, read in UTC at the microsecond
// precision both dialects keep, and rows carry its time.
func TestClockIsUTCMicroseconds(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			at := time.Date(2030, 1, 2, 3, 4, 5, 123456789, time.FixedZone("east", 9*3600))
			s := storetest.Open(t, b, store.Options{Clock: clock.NewFake(at)})
			want := at.UTC().Truncate(time.Microsecond)
			if got := s.Now(); !got.Equal(want) || got.Location() != time.UTC {
				t.Errorf("Now = %v, want %v", got, want)
			}
			o, err := s.CreateOrg(context.Background(), "Acme")
			if err != nil {
				t.Fatal(err)
			}
			got, err := s.Org(context.Background(), o.ID)
			if err != nil {
				t.Fatal(err)
			}
			if !got.CreatedAt.Equal(want) {
				t.Errorf("created_at = %v, want %v", got.CreatedAt, want)
			}
		})
	}
}

func TestOrgs(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		o, err := s.CreateOrg(ctx, "Acme")
		if err != nil {
			t.Fatal(err)
		}
		got, err := s.Org(ctx, o.ID)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(o, got); diff != "" {
			t.Errorf("read back (-created +read):\n%s", diff)
		}
		on, sched := true, "@every 30m"
		rm := store.JSONMap{"Admins": "admin"}
		upd, err := s.UpdateOrg(ctx, o.ID, store.OrgPatch{SCIMEnabled: &on, ReconcileSchedule: &sched, RoleMapping: &rm})
		if err != nil {
			t.Fatal(err)
		}
		if !upd.SCIMEnabled || upd.ReconcileSchedule != sched || upd.Name != "Acme" || upd.RoleMapping["Admins"] != "admin" {
			t.Errorf("UpdateOrg = %+v", upd)
		}
		got, _ = s.Org(ctx, o.ID)
		if diff := cmp.Diff(upd, got); diff != "" {
			t.Errorf("after update (-returned +read):\n%s", diff)
		}
		if _, err := s.Org(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("unknown org: %v, want ErrNotFound", err)
		}
		if _, err := s.UpdateOrg(ctx, "nope", store.OrgPatch{SCIMEnabled: &on}); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("update unknown org: %v, want ErrNotFound", err)
		}
	})
}

func TestSCIMTokensAreScopedByOrg(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		a, _ := s.CreateOrg(ctx, "A")
		b, _ := s.CreateOrg(ctx, "B")
		exp := s.Now().Add(24 * time.Hour)
		ta, err := s.CreateSCIMToken(ctx, a.ID, "okta", "hash-a", &exp)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.CreateSCIMToken(ctx, b.ID, "", "hash-a", nil); !errors.Is(err, store.ErrConflict) {
			t.Errorf("duplicate hash: %v, want ErrConflict", err)
		}
		got, err := s.SCIMTokenByHash(ctx, "hash-a")
		if err != nil || got.OrgID != a.ID || !got.ExpiresAt.Equal(exp) {
			t.Fatalf("by hash = %+v, %v", got, err)
		}
		if !got.Usable(s.Now()) || got.Usable(exp.Add(time.Second)) {
			t.Error("Usable does not follow expiry")
		}
		if err := s.RevokeSCIMToken(ctx, b.ID, ta.ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("revoke through another org: %v, want ErrNotFound", err)
		}
		if list, _ := s.SCIMTokens(ctx, b.ID); len(list) != 0 {
			t.Errorf("org B sees %d tokens of org A", len(list))
		}
		if err := s.RevokeSCIMToken(ctx, a.ID, ta.ID); err != nil {
			t.Fatal(err)
		}
		got, _ = s.SCIMTokenByHash(ctx, "hash-a")
		if got.Usable(s.Now()) {
			t.Error("revoked token is usable")
		}
		at := s.Now()
		if err := s.TouchSCIMToken(ctx, ta.ID, at); err != nil {
			t.Fatal(err)
		}
		if err := s.TouchSCIMToken(ctx, ta.ID, at.Add(-time.Hour)); err != nil {
			t.Fatal(err)
		}
		list, _ := s.SCIMTokens(ctx, a.ID)
		if len(list) != 1 || list[0].LastUsedAt == nil || !list[0].LastUsedAt.Equal(at) {
			t.Errorf("lastUsedAt = %+v, want %v (an older touch must not move it back)", list, at)
		}
	})
}

func TestSettingIfAbsent(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		if _, err := s.Setting(ctx, "k"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("unset: %v", err)
		}
		v, err := s.SetSettingIfAbsent(ctx, "k", "first")
		if err != nil || v != "first" {
			t.Fatalf("first set = %q, %v", v, err)
		}
		v, err = s.SetSettingIfAbsent(ctx, "k", "second")
		if err != nil || v != "first" {
			t.Fatalf("second set = %q, %v; want the first value kept", v, err)
		}
	})
}

func TestAuditEvents(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		a, _ := s.CreateOrg(ctx, "A")
		b, _ := s.CreateOrg(ctx, "B")
		for i := range 3 {
			if err := s.AddAuditEvent(ctx, store.AuditEvent{OrgID: a.ID, Actor: "admin", Action: "org.update", EntityType: "org", EntityID: a.ID, Outcome: string(rune('a' + i))}); err != nil {
				t.Fatal(err)
			}
		}
		s.AddAuditEvent(ctx, store.AuditEvent{OrgID: b.ID, Actor: "admin", Action: "x", EntityType: "org", EntityID: b.ID})
		page, err := s.AuditEvents(ctx, a.ID, 0, 2)
		if err != nil || len(page) != 2 || page[0].Outcome != "c" || page[1].Outcome != "b" {
			t.Fatalf("first page = %+v, %v", page, err)
		}
		rest, _ := s.AuditEvents(ctx, a.ID, page[1].ID, 10)
		if len(rest) != 1 || rest[0].Outcome != "a" {
			t.Fatalf("second page = %+v", rest)
		}
	})
}

func TestOpenErrors(t *testing.T) {
	ctx := context.Background()
	if _, err := store.Open(ctx, "mysql://x", store.Options{}); err == nil {
		t.Error("mysql accepted")
	}
	_, err := store.Open(ctx, "postgres://u:hunter2@127.0.0.1:1/x?connect_timeout=1", store.Options{})
	if err == nil {
		t.Fatal("unreachable postgres accepted")
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Errorf("error leaks the password: %v", err)
	}
}

// Deliveries of one schedule slot that start at once: one runs, and every
// other is told the slot has run (not that a run is busy).
func TestConcurrentSlotStartsRunOnce(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		for round := range 10 {
			org, err := s.CreateOrg(ctx, "o")
			if err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			var mu sync.Mutex
			got := map[string]int{}
			for range 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					r := store.SyncRun{OrgID: org.ID, Trigger: "schedule", Slot: 1000 + int64(round)}
					err := s.StartSyncRun(ctx, &r, time.Now().Add(-time.Hour))
					outcome := "started"
					switch {
					case errors.Is(err, store.ErrSlotRan):
						outcome = "slot ran"
					case err != nil:
						outcome = err.Error()
					}
					mu.Lock()
					got[outcome]++
					mu.Unlock()
				}()
			}
			wg.Wait()
			if diff := cmp.Diff(map[string]int{"started": 1, "slot ran": 3}, got); diff != "" {
				t.Fatalf("round %d (-want +got):\n%s", round, diff)
			}
		}
	})
}
