package reconciler

import (
	"context"
	"fmt"

	"github.com/scimsync/scimsync/connectors"
	"github.com/scimsync/scimsync/store"
)

// pull streams the IdP's users, then its groups, then each group's members
// into the directory tables, marking what it sees (see store.Pull).
//
// Writing overlaps fetching: a listing hands each page to a writer
// goroutine and goes on to fetch the next, so a run takes about as long as
// the IdP takes to list. When the database falls behind, the writer writes
// the pages that queued up together, in fewer, larger transactions. Memory
// is bounded by the queue, whatever the directory's size.
func (e *execution) pull(ctx context.Context, dir connectors.Directory, source string) (PullStats, error) {
	e.pulled = store.Pull{OrgID: e.org.ID, RunID: e.run.ID, Source: source, Snapshot: e.run.Snapshot}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w := &writer{e: e, stats: PullStats{Source: source}, analyzeAt: 8}
	w.start(ctx, cancel)

	skipped := 0
	err := dir.ListUsers(ctx, func(users []connectors.User) error {
		rows := make([]store.PulledUser, 0, len(users))
		for _, u := range users {
			if u.ExternalID == "" {
				skipped++
				continue
			}
			rows = append(rows, store.PulledUser{ExternalID: u.ExternalID, UserName: u.UserName, Email: u.Email,
				GivenName: u.GivenName, FamilyName: u.FamilyName, Active: u.Active, RawStatus: u.RawStatus})
		}
		return w.submit(ctx, &batch{phase: "users", pages: 1, users: rows})
	})
	if err != nil {
		return w.fail(fmt.Errorf("list users: %w", err))
	}
	err = dir.ListGroups(ctx, func(groups []connectors.Group) error {
		rows := make([]store.PulledGroup, 0, len(groups))
		for _, g := range groups {
			if g.ExternalID != "" {
				rows = append(rows, store.PulledGroup{ExternalID: g.ExternalID, Name: g.Name})
			}
		}
		return w.submit(ctx, &batch{phase: "groups", pages: 1, groups: rows})
	})
	if err != nil {
		return w.fail(fmt.Errorf("list groups: %w", err))
	}
	// Members are listed per group the pull wrote.
	if err := w.flush(ctx); err != nil {
		return w.fail(err)
	}
	err = e.r.Store.EachPulledGroup(ctx, e.pulled, func(g store.DirectoryGroup) error {
		err := dir.ListGroupMembers(ctx, g.ExternalID, func(ids []string) error {
			return w.submit(ctx, &batch{phase: "members", pages: 1, groupID: g.ID, members: ids})
		})
		if err != nil {
			return fmt.Errorf("list members of group %q: %w", g.DisplayName, err)
		}
		return nil
	})
	if err != nil {
		return w.fail(err)
	}
	stats, err := w.wait()
	stats.SkippedUsers = skipped
	return stats, err
}

// countPages adds n pages the IdP answered with to the run's count
// (PagesFetched) and the metric, the same for a full pull and a delta.
func (e *execution) countPages(n int) {
	e.pages += n
	for range n {
		e.r.Metrics.page()
	}
}

// refreshStats has the database re-read the statistics of tables (by
// default all a reconciliation works on) after a large change, so that its
// plans stay index lookups.
func (e *execution) refreshStats(ctx context.Context, tables ...string) {
	if err := e.r.Store.RefreshStats(ctx, tables...); err != nil {
		e.log.DebugContext(ctx, "could not refresh table statistics", "err", err)
	}
}

// batch is pages the writer writes in one transaction: of one kind and,
// for members, of one group. A batch with flushed set is no page but a
// marker that the writer closes once everything before it is written.
type batch struct {
	phase   string // "users", "groups" or "members"
	pages   int
	users   []store.PulledUser
	groups  []store.PulledGroup
	groupID string
	members []string
	flushed chan struct{}
}

// maxBatchRows bounds the rows of a merged batch.
const maxBatchRows = 1000

// merge adds b's pages to a and reports whether it could.
func (a *batch) merge(b *batch) bool {
	if a.flushed != nil || b.flushed != nil || a.phase != b.phase || a.groupID != b.groupID ||
		len(a.users)+len(b.users)+len(a.groups)+len(b.groups)+len(a.members)+len(b.members) > maxBatchRows {
		return false
	}
	a.pages += b.pages
	a.users = append(a.users, b.users...)
	a.groups = append(a.groups, b.groups...)
	a.members = append(a.members, b.members...)
	return true
}

// queuedPages is how many pages may wait for the writer.
const queuedPages = 4

// writer writes a pull's pages on its own goroutine, one batch at a time.
type writer struct {
	e         *execution
	queue     chan *batch
	failed    chan struct{} // closed on the first failed write
	done      chan struct{} // closed when the goroutine ends
	err       error         // the first failure; read after failed or done is closed
	stats     PullStats     // owned by the goroutine until done is closed
	analyzeAt int
}

// start runs the writer. A failed write cancels ctx, which stops the
// listing that feeds it.
func (w *writer) start(ctx context.Context, cancel context.CancelFunc) {
	w.queue, w.failed, w.done = make(chan *batch, queuedPages), make(chan struct{}), make(chan struct{})
	go func() {
		defer close(w.done)
		var next *batch
		for {
			b := next
			next = nil
			if b == nil {
				var ok bool
				if b, ok = <-w.queue; !ok {
					return
				}
			}
			// Take what queued up meanwhile into the same transaction.
		gather:
			for {
				select {
				case more, ok := <-w.queue:
					if !ok {
						break gather
					}
					if !b.merge(more) {
						next = more
						break gather
					}
				default:
					break gather
				}
			}
			switch {
			case w.err != nil:
				// Drain: the pull has failed.
			case b.flushed != nil:
				close(b.flushed)
			default:
				if err := w.write(ctx, b); err != nil {
					w.err = err
					close(w.failed)
					cancel()
				}
			}
		}
	}()
}

// write writes one batch with the run's heartbeat, in one transaction, and
// reports progress.
func (w *writer) write(ctx context.Context, b *batch) error {
	e, st := w.e, w.e.r.Store
	err := st.Tx(ctx, func(tx *store.Store) error {
		var err error
		switch b.phase {
		case "users":
			err = tx.WritePulledUsers(ctx, e.pulled, b.users)
		case "groups":
			err = tx.WritePulledGroups(ctx, e.pulled, b.groups)
		case "members":
			err = tx.WritePulledGroupMembers(ctx, e.pulled, b.groupID, b.members)
		}
		if err != nil {
			return err
		}
		return tx.SyncRunProgress(ctx, e.org.ID, e.run.ID, e.pages+b.pages)
	})
	if err != nil {
		return fmt.Errorf("write %s pages %d-%d: %w", b.phase, e.pages+1, e.pages+b.pages, err)
	}
	e.countPages(b.pages)
	s := &w.stats
	s.Pages, s.Users, s.Groups, s.GroupMembers = e.pages, s.Users+len(b.users), s.Groups+len(b.groups), s.GroupMembers+len(b.members)
	if e.pages >= w.analyzeAt {
		w.analyzeAt *= 8 // at about 8, 64, 512, … pages: the statistics follow the growth
		e.refreshStats(ctx, "directory_users", "directory_groups", "directory_group_members", "pull_seen")
	}
	if e.progress != nil {
		e.progress(Progress{Phase: b.phase, Pages: e.pages, Users: s.Users, Groups: s.Groups, Members: s.GroupMembers})
	}
	return nil
}

// submit queues a batch, waiting while the queue is full.
func (w *writer) submit(ctx context.Context, b *batch) error {
	select {
	case w.queue <- b:
		return nil
	case <-w.failed:
		return w.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// flush waits until every queued page is written.
func (w *writer) flush(ctx context.Context) error {
	flushed := make(chan struct{})
	if err := w.submit(ctx, &batch{flushed: flushed}); err != nil {
		return err
	}
	select {
	case <-flushed:
		return nil
	case <-w.failed:
		return w.err
	}
}

// wait stops the writer once its queue is written and returns what it
// wrote and its first failure.
func (w *writer) wait() (PullStats, error) {
	close(w.queue)
	<-w.done
	return w.stats, w.err
}

// fail stops the writer after a failed listing and returns the error that
// explains the failure best: a failed write cancels the listing, so the
// write's error is the cause.
func (w *writer) fail(listErr error) (PullStats, error) {
	stats, err := w.wait()
	if err == nil {
		err = listErr
	}
	return stats, err
}
