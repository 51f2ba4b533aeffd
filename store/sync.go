package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/scimsync/scimsync/lifecycle"
)

// Sync run statuses.
const (
	RunQueued    = "queued"
	RunRunning   = "running"
	RunSucceeded = "succeeded"
	RunFailed    = "failed"
	RunBlocked   = "blocked"
)

// Errors of the sync run lifecycle.
var (
	// ErrRunBusy: another run of the organization is running.
	ErrRunBusy = errors.New("another sync run of the organization is running")
	// ErrRunNotRunning: the run is no longer running (it finished, or was
	// declared abandoned after going silent), so it may not change anything.
	ErrRunNotRunning = errors.New("sync run is no longer running")
	// ErrRunNotQueued: the run was started already.
	ErrRunNotQueued = errors.New("sync run is not queued")
	// ErrSlotRan: the organization has a run for the schedule slot already.
	ErrSlotRan = errors.New("the schedule slot has a sync run already")
)

// CreateSyncRun inserts r as queued, filling ID, status, plan and creation
// time.
func (s *Store) CreateSyncRun(ctx context.Context, r *SyncRun) error {
	if r.ID == "" {
		r.ID = NewID()
	}
	r.Status, r.CreatedAt = RunQueued, s.now()
	if r.Plan == "" {
		r.Plan = "{}"
	}
	if err := s.conn(ctx).Create(r).Error; err != nil {
		return fmt.Errorf("create sync run: %w", err)
	}
	return nil
}

// StartSyncRun makes r running and gives it the next snapshot generation of
// its organization: the queued run r.ID (ErrRunNotQueued when it is not
// queued), or, when r.ID is empty, a new run inserted as running. A running
// run silent since staleBefore is first declared failed (abandoned).
// ErrRunBusy when another run of the organization is running, ErrSlotRan
// when a new run's Slot has a run already; then nothing is written.
func (s *Store) StartSyncRun(ctx context.Context, run *SyncRun, staleBefore time.Time) error {
	r := *run
	err := s.Tx(ctx, func(tx *Store) error {
		db := tx.conn(ctx)
		now := tx.now()
		var abandoned []string
		if err := db.Model(&SyncRun{}).
			Where("org_id = ? AND status = ? AND (heartbeat_at IS NULL OR heartbeat_at < ?)", r.OrgID, RunRunning, staleBefore).
			Pluck("id", &abandoned).Error; err != nil {
			return fmt.Errorf("expire abandoned runs: %w", err)
		}
		if len(abandoned) > 0 {
			if err := db.Model(&SyncRun{}).Where("org_id = ? AND id IN ? AND status = ?", r.OrgID, abandoned, RunRunning).
				Updates(map[string]any{"status": RunFailed, "finished_at": now,
					"error": "abandoned: the process running it stopped showing progress; nothing it planned was applied"}).Error; err != nil {
				return fmt.Errorf("expire abandoned runs: %w", err)
			}
			if err := tx.appendRunEvents(ctx, r.OrgID, abandoned...); err != nil {
				return err
			}
		}
		gen, err := tx.nextSnapshot(ctx, r.OrgID)
		if err != nil {
			return err
		}
		var res *gorm.DB
		if r.ID == "" && r.Slot > 0 {
			if err := tx.slotRan(ctx, r.OrgID, r.Slot); err != nil {
				return err
			}
		}
		if r.ID == "" {
			r.ID, r.Status, r.CreatedAt, r.StartedAt, r.HeartbeatAt, r.Snapshot = NewID(), RunRunning, now, &now, &now, gen
			if r.Plan == "" {
				r.Plan = "{}"
			}
			res = db.Create(&r)
		} else {
			q, err := tx.SyncRun(ctx, r.OrgID, r.ID)
			if err != nil {
				return err
			}
			if q.Status != RunQueued {
				return fmt.Errorf("start sync run %s (%s): %w", q.ID, q.Status, ErrRunNotQueued)
			}
			r = q
			r.Status, r.StartedAt, r.HeartbeatAt, r.Snapshot = RunRunning, &now, &now, gen
			res = db.Model(&SyncRun{}).Where("org_id = ? AND id = ? AND status = ?", r.OrgID, r.ID, RunQueued).
				Updates(map[string]any{"status": RunRunning, "started_at": now, "heartbeat_at": now, "snapshot": gen})
		}
		if res.Error != nil {
			if isUniqueViolation(res.Error) {
				return ErrRunBusy // or the slot's run, started meanwhile: told apart below
			}
			return fmt.Errorf("start sync run: %w", res.Error)
		}
		return nil
	})
	if errors.Is(err, ErrRunBusy) && run.ID == "" && run.Slot > 0 {
		if serr := s.slotRan(ctx, r.OrgID, r.Slot); serr != nil {
			err = serr
		}
	}
	if err != nil {
		return err
	}
	*run = r
	return nil
}

// slotRan is ErrSlotRan when the organization has a run for the slot.
func (s *Store) slotRan(ctx context.Context, orgID string, slot int64) error {
	var n int64
	if err := s.conn(ctx).Model(&SyncRun{}).Where("org_id = ? AND slot = ?", orgID, slot).Count(&n).Error; err != nil {
		return fmt.Errorf("check schedule slot: %w", err)
	}
	if n > 0 {
		return fmt.Errorf("slot %d: %w", slot, ErrSlotRan)
	}
	return nil
}

// nextSnapshot numbers the organization's runs: the directory rows a pull
// writes carry its number, to tell which run last changed them.
func (s *Store) nextSnapshot(ctx context.Context, orgID string) (int64, error) {
	var v *int64
	if err := s.conn(ctx).Raw("SELECT MAX(snapshot) FROM sync_runs WHERE org_id = ?", orgID).Scan(&v).Error; err != nil {
		return 0, fmt.Errorf("next snapshot: %w", err)
	}
	if v == nil {
		return 1, nil
	}
	return *v + 1, nil
}

// SyncRunProgress records a running run's pages fetched and that it is
// alive. ErrRunNotRunning when it no longer runs.
func (s *Store) SyncRunProgress(ctx context.Context, orgID, runID string, pages int) error {
	res := s.conn(ctx).Model(&SyncRun{}).Where("org_id = ? AND id = ? AND status = ?", orgID, runID, RunRunning).
		Updates(map[string]any{"pages_fetched": pages, "heartbeat_at": s.now()})
	if res.Error != nil {
		return fmt.Errorf("record sync run progress: %w", res.Error)
	}
	if res.RowsAffected == 0 {
		return fmt.Errorf("record sync run progress: %w", ErrRunNotRunning)
	}
	return nil
}

// TouchSyncRun records that a running run is alive. ErrRunNotRunning when
// it no longer runs.
func (s *Store) TouchSyncRun(ctx context.Context, orgID, runID string) error {
	res := s.conn(ctx).Model(&SyncRun{}).Where("org_id = ? AND id = ? AND status = ?", orgID, runID, RunRunning).
		Update("heartbeat_at", s.now())
	if res.Error != nil {
		return fmt.Errorf("mark sync run alive: %w", res.Error)
	}
	if res.RowsAffected == 0 {
		return fmt.Errorf("mark sync run alive: %w", ErrRunNotRunning)
	}
	return nil
}

// HoldSyncRun checks, inside a transaction, that the run is still running,
// and on Postgres locks its row until the transaction ends, so the run
// cannot be declared abandoned while the transaction applies its plan.
func (s *Store) HoldSyncRun(ctx context.Context, orgID, runID string) error {
	res := s.conn(ctx).Model(&SyncRun{}).Where("org_id = ? AND id = ? AND status = ?", orgID, runID, RunRunning).
		Update("heartbeat_at", s.now())
	if res.Error != nil {
		return fmt.Errorf("hold sync run: %w", res.Error)
	}
	if res.RowsAffected == 0 {
		return fmt.Errorf("hold sync run: %w", ErrRunNotRunning)
	}
	return nil
}

// FinishSyncRun records a running run's outcome, with its event, in one
// transaction. ErrRunNotRunning when it was no longer running.
func (s *Store) FinishSyncRun(ctx context.Context, orgID, runID, status, plan, errText string, pages int) error {
	return s.FinishSyncRunPull(ctx, orgID, runID, status, plan, errText, pages, RunPull{})
}

// RunPull is how a run pulled, recorded when it finishes.
type RunPull struct {
	Mode                      string // PullFull, PullDelta or "" (no pull)
	CursorBefore, CursorAfter string
	Requests                  int64
	// Advance saves CursorAfter as the connector's delta cursor, if the
	// run succeeded and the connector is still at Generation.
	Advance    bool
	Generation int64
}

// FinishSyncRunPull is FinishSyncRun for a run that pulled: in the same
// transaction that records a succeeded run it advances the connector's
// delta cursor (and, after a full pull, its last full pull time), so a
// run that failed or was blocked leaves the cursor where it was.
func (s *Store) FinishSyncRunPull(ctx context.Context, orgID, runID, status, plan, errText string, pages int, p RunPull) error {
	if len(errText) > 2000 {
		errText = errText[:2000]
	}
	return s.Tx(ctx, func(tx *Store) error {
		now := tx.now()
		res := tx.conn(ctx).Model(&SyncRun{}).Where("org_id = ? AND id = ? AND status = ?", orgID, runID, RunRunning).
			Updates(map[string]any{"status": status, "plan": plan, "error": errText, "pages_fetched": pages, "finished_at": now,
				"pull_mode": p.Mode, "cursor_before": p.CursorBefore, "cursor_after": p.CursorAfter, "idp_requests": p.Requests})
		if res.Error != nil {
			return fmt.Errorf("finish sync run: %w", res.Error)
		}
		if res.RowsAffected == 0 {
			return fmt.Errorf("finish sync run: %w", ErrRunNotRunning)
		}
		if status == RunSucceeded && p.Advance && p.CursorAfter != "" {
			set := map[string]any{"delta_cursor": p.CursorAfter, "cursor_generation": p.Generation}
			if p.Mode == PullFull {
				set["last_full_at"] = now
			}
			if err := tx.conn(ctx).Model(&Connector{}).Where("org_id = ? AND generation = ?", orgID, p.Generation).Updates(set).Error; err != nil {
				return fmt.Errorf("finish sync run: advance the delta cursor: %w", err)
			}
		}
		return tx.appendRunEvents(ctx, orgID, runID)
	})
}

// appendRunEvents appends the event of each finished run: sync_run.blocked
// or sync_run.finished, with the run as GET /sync-runs/{id} shows it.
func (s *Store) appendRunEvents(ctx context.Context, orgID string, runIDs ...string) error {
	changes := make([]Change, len(runIDs))
	for i, id := range runIDs {
		run, err := s.SyncRun(ctx, orgID, id)
		if err != nil {
			return err
		}
		typ := lifecycle.EventSyncRunFinished
		if run.Status == RunBlocked {
			typ = lifecycle.EventSyncRunBlocked
		}
		changes[i] = Change{Type: typ, EntityType: EntitySyncRun, EntityID: id, Data: run.View()}
	}
	return s.AppendEvents(ctx, orgID, changes)
}

// SyncRun reads one of an organization's runs.
func (s *Store) SyncRun(ctx context.Context, orgID, id string) (SyncRun, error) {
	var r SyncRun
	if err := s.conn(ctx).Where("org_id = ? AND id = ?", orgID, id).Take(&r).Error; err != nil {
		return SyncRun{}, notFound(err, "sync run")
	}
	return r, nil
}

// SyncRuns lists an organization's runs, newest first, older than the run
// before ("" for the newest), at most limit. Run ids grow with time.
func (s *Store) SyncRuns(ctx context.Context, orgID, before string, limit int) ([]SyncRun, error) {
	q := s.conn(ctx).Where("org_id = ?", orgID)
	if before != "" {
		q = q.Where("id < ?", before)
	}
	var out []SyncRun
	if err := q.Order("id DESC").Limit(limit).Find(&out).Error; err != nil {
		return nil, fmt.Errorf("list sync runs: %w", err)
	}
	return out, nil
}

// itemBatch is how many plan items one read returns.
const itemBatch = 1000

// AddSyncRunItems appends planned changes to a run.
func (s *Store) AddSyncRunItems(ctx context.Context, items []SyncRunItem) error {
	for i := range items {
		items[i].ID = 0
	}
	if len(items) == 0 {
		return nil
	}
	if err := s.conn(ctx).CreateInBatches(items, s.BatchRows(6)).Error; err != nil {
		return fmt.Errorf("add sync run items: %w", err)
	}
	return nil
}

// DeleteSyncRunItems drops a run's items about one entity with one of the
// actions.
func (s *Store) DeleteSyncRunItems(ctx context.Context, orgID, runID, entityID string, actions ...string) error {
	if err := s.conn(ctx).Where("org_id = ? AND run_id = ? AND entity_id = ? AND action IN ?", orgID, runID, entityID, actions).
		Delete(&SyncRunItem{}).Error; err != nil {
		return fmt.Errorf("delete sync run items: %w", err)
	}
	return nil
}

// CountSyncRunItems counts a run's items by action.
func (s *Store) CountSyncRunItems(ctx context.Context, orgID, runID string) (map[string]int, error) {
	var rows []struct {
		Action string
		N      int
	}
	if err := s.conn(ctx).Raw("SELECT action, COUNT(*) AS n FROM sync_run_items WHERE org_id = ? AND run_id = ? GROUP BY action", orgID, runID).
		Scan(&rows).Error; err != nil {
		return nil, fmt.Errorf("count sync run items: %w", err)
	}
	out := make(map[string]int, len(rows))
	for _, r := range rows {
		out[r.Action] = r.N
	}
	return out, nil
}

// EachSyncRunItem calls fn with a run's items in the order they were
// planned, a batch at a time, so memory stays flat however large the plan.
// actions, when given, limits the items to those actions.
func (s *Store) EachSyncRunItem(ctx context.Context, orgID, runID string, fn func([]SyncRunItem) error, actions ...string) error {
	var after int64
	for {
		batch, err := s.SyncRunItemsAfter(ctx, orgID, runID, after, itemBatch, actions...)
		if err != nil || len(batch) == 0 {
			return err
		}
		if err := fn(batch); err != nil {
			return err
		}
		if len(batch) < itemBatch {
			return nil
		}
		after = batch[len(batch)-1].ID
	}
}

// SyncRunItemsAfter returns up to limit of a run's items with ids above
// after, in id order, of the given actions when any are given.
func (s *Store) SyncRunItemsAfter(ctx context.Context, orgID, runID string, after int64, limit int, actions ...string) ([]SyncRunItem, error) {
	q := s.conn(ctx).Where("org_id = ? AND run_id = ? AND id > ?", orgID, runID, after)
	if len(actions) > 0 {
		q = q.Where("action IN ?", actions)
	}
	var items []SyncRunItem
	if err := q.Order("id").Limit(limit).Find(&items).Error; err != nil {
		return nil, fmt.Errorf("list sync run items: %w", err)
	}
	return items, nil
}

// KeptByLatestRun returns the directory user whose change the
// organization's latest planned run (succeeded or blocked, dry runs
// included) kept back as its last admin's, or "" for none.
func (s *Store) KeptByLatestRun(ctx context.Context, orgID string) (string, error) {
	var ids []string
	if err := s.conn(ctx).Raw(`SELECT i.entity_id FROM sync_run_items i
WHERE i.org_id = ? AND i.action = ? AND i.run_id = (SELECT r.id FROM sync_runs r
  WHERE r.org_id = ? AND r.status IN (?, ?) ORDER BY r.finished_at DESC, r.id DESC LIMIT 1)`,
		orgID, lifecycle.Keep.PlanItem(), orgID, RunSucceeded, RunBlocked).Scan(&ids).Error; err != nil {
		return "", fmt.Errorf("kept by latest run: %w", err)
	}
	if len(ids) == 0 {
		return "", nil
	}
	return ids[0], nil
}

// CountMembers counts an organization's memberships that the directory
// manages (those linked to a directory user), whatever their status.
func (s *Store) CountMembers(ctx context.Context, orgID string) (int, error) {
	var n int64
	if err := s.conn(ctx).Model(&Membership{}).Where("org_id = ? AND directory_user_id <> ''", orgID).Count(&n).Error; err != nil {
		return 0, fmt.Errorf("count members: %w", err)
	}
	return int(n), nil
}

// CountLocalGroups counts an organization's local groups that mirror a
// directory group.
func (s *Store) CountLocalGroups(ctx context.Context, orgID string) (int, error) {
	var n int64
	if err := s.conn(ctx).Model(&Group{}).Where("org_id = ? AND directory_group_id <> ''", orgID).Count(&n).Error; err != nil {
		return 0, fmt.Errorf("count local groups: %w", err)
	}
	return int(n), nil
}
