package store

import (
	"context"
	"fmt"
	"strconv"
	"time"
)

// The outbox is one queue for the whole process, not tenant data: its
// queries span organizations.

// ClaimOutbox returns up to limit unsent rows, oldest first, locked until
// the transaction ends. On Postgres rows another relay holds are skipped
// (SKIP LOCKED), so relays share the work without waiting or sending a row
// twice; on SQLite the transaction's write lock already excludes other
// relays. Call it inside Tx.
func (s *Store) ClaimOutbox(ctx context.Context, limit int) ([]OutboxRow, error) {
	var rows []OutboxRow
	if err := s.conn(ctx).Raw("SELECT * FROM outbox WHERE sent_at IS NULL ORDER BY id LIMIT ?"+s.d.lock("UPDATE SKIP LOCKED"), limit).
		Scan(&rows).Error; err != nil {
		return nil, fmt.Errorf("claim outbox: %w", err)
	}
	return rows, nil
}

// MarkOutboxSent records that rows reached the job queue.
func (s *Store) MarkOutboxSent(ctx context.Context, ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	// The ids bind as one parameter, so that every batch is one prepared
	// statement rather than one per batch size.
	keys := make([]string, len(ids))
	for i, id := range ids {
		keys[i] = strconv.FormatInt(id, 10)
	}
	// Each row is looked up by its id (joinEach): a plan made while the
	// table was small and without statistics would otherwise scan the
	// whole table, sent rows included, for every batch.
	from, arg := s.d.list(keys)
	if err := s.conn(ctx).Exec("UPDATE outbox SET sent_at = ? WHERE id IN (SELECT o.id FROM ("+from+") k "+
		s.d.joinEach("outbox", "o", "o.id = CAST(k.value AS BIGINT)")+")", s.now(), arg).Error; err != nil {
		return fmt.Errorf("mark outbox sent: %w", err)
	}
	return nil
}

// MarkOutboxFailed counts a failed attempt to relay a row.
func (s *Store) MarkOutboxFailed(ctx context.Context, id int64, reason string) error {
	if len(reason) > 500 {
		reason = reason[:500]
	}
	if err := s.conn(ctx).Exec("UPDATE outbox SET attempts = attempts + 1, last_error = ? WHERE id = ?", reason, id).Error; err != nil {
		return fmt.Errorf("mark outbox failed: %w", err)
	}
	return nil
}

// PurgeOutbox deletes up to limit rows sent before sentBefore and returns
// how many it deleted.
func (s *Store) PurgeOutbox(ctx context.Context, sentBefore time.Time, limit int) (int64, error) {
	res := s.conn(ctx).Exec("DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE sent_at IS NOT NULL AND sent_at < ? ORDER BY sent_at LIMIT ?)", sentBefore, limit)
	if res.Error != nil {
		return 0, fmt.Errorf("purge outbox: %w", res.Error)
	}
	return res.RowsAffected, nil
}

// OutboxBacklog counts unsent rows and returns the creation time of the
// oldest (zero when there are none).
func (s *Store) OutboxBacklog(ctx context.Context) (int64, time.Time, error) {
	db := s.conn(ctx)
	var n int64
	if err := db.Model(&OutboxRow{}).Where("sent_at IS NULL").Count(&n).Error; err != nil {
		return 0, time.Time{}, fmt.Errorf("outbox backlog: %w", err)
	}
	if n == 0 {
		return 0, time.Time{}, nil
	}
	// The first pending row by id rather than MIN(created_at), which SQLite
	// returns as text; ids follow creation.
	var first OutboxRow
	if err := db.Where("sent_at IS NULL").Order("id").Limit(1).Find(&first).Error; err != nil {
		return 0, time.Time{}, fmt.Errorf("outbox backlog: %w", err)
	}
	return n, first.CreatedAt, nil
}
