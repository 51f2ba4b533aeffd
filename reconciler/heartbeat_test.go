package reconciler_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/scimsync/scimsync/connectors"
	"github.com/scimsync/scimsync/reconciler"
	"github.com/scimsync/scimsync/store"
	"github.com/scimsync/scimsync/store/storetest"
)

// slowDirectory is an IdP whose user listing answers only when released,
// as a slow page does.
type slowDirectory struct {
	entered, release chan struct{}
}

func (d *slowDirectory) Directory(context.Context, string) (connectors.Directory, string, error) {
	return d, "okta", nil
}

func (d *slowDirectory) ListUsers(ctx context.Context, _ func([]connectors.User) error) error {
	close(d.entered)
	select {
	case <-d.release:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (d *slowDirectory) ListGroups(context.Context, func([]connectors.Group) error) error { return nil }
func (d *slowDirectory) ListGroupMembers(context.Context, string, func([]string) error) error {
	return nil
}
func (d *slowDirectory) TestConnection(context.Context) error { return nil }

// A run whose process is alive keeps its organization however long one
// step takes; only a silent run (TestOneRunAtATime) is taken for abandoned.
func TestLiveRunIsNotTakenForAbandoned(t *testing.T) {
	each(t, func(t *testing.T, b storetest.Backend) {
		h := newHarness(t, b)
		dir := &slowDirectory{entered: make(chan struct{}), release: make(chan struct{})}
		h.r.Directories = dir
		h.r.Policy.StaleAfter = time.Minute
		// Far longer than the real wait below: only the fake clock can
		// make it tick in time.
		h.r.Policy.HeartbeatEvery = 20 * time.Second

		type result struct {
			run store.SyncRun
			err error
		}
		done := make(chan result, 1)
		go func() {
			run, err := h.r.Reconcile(h.ctx, h.org.ID, reconciler.Options{Trigger: reconciler.TriggerCLI})
			done <- result{run, err}
		}()
		<-dir.entered
		h.clock.Advance(3 * time.Minute) // far past StaleAfter; the heartbeat ticks on the way
		alive := h.clock.Now()
		// What is waited for now is the heartbeat's write, not time.
		deadline := time.Now().Add(5 * time.Second)
		for {
			runs, err := h.st.SyncRuns(h.ctx, h.org.ID, "", 1)
			if err != nil {
				t.Fatal(err)
			}
			if len(runs) == 1 && runs[0].HeartbeatAt != nil && !runs[0].HeartbeatAt.Before(alive) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the running run never marked itself alive after the clock moved: %+v", runs)
			}
			time.Sleep(5 * time.Millisecond)
		}

		if _, err := h.r.Reconcile(h.ctx, h.org.ID, reconciler.Options{}); !errors.Is(err, store.ErrRunBusy) {
			t.Fatalf("second run while the first is alive: err = %v, want ErrRunBusy", err)
		}
		close(dir.release)
		first := <-done
		if first.err != nil {
			t.Fatal(first.err)
		}
		h.mustStatus(first.run, store.RunSucceeded)
	})
}
