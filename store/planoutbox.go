package store

import (
	"bytes"
	"context"
	"fmt"
	"strings"
)

// ItemEntityMarker stands for a plan item's entity id in the payload of an
// ItemTask's row, as the one element of a JSON array: the payload holds
// ["{{entity-id}}"], such as the ids of a batch converge task built for
// []string{ItemEntityMarker}, and each row written holds the ids of its
// items in that array's place.
const ItemEntityMarker = "{{entity-id}}"

// ItemTask is the outbox rows that the plan items of an action become: Row,
// with the ids of up to PerRow items in place of ItemEntityMarker.
type ItemTask struct {
	Action string
	Row    OutboxRow
	PerRow int
}

// AddSyncRunItemsOutbox writes, in one statement, the outbox rows for the
// run's items whose action has a task, and returns how many it wrote. Items
// of tasks with the same row go together, up to PerRow to a row, in the
// order they were planned. The rows are built in the database, so a plan
// of any size costs one round trip and no memory here. Call it inside Tx,
// with the change the rows carry out.
func (s *Store) AddSyncRunItemsOutbox(ctx context.Context, orgID, runID string, tasks []ItemTask) (int64, error) {
	if len(tasks) == 0 {
		return 0, nil
	}
	ids, payload, now := "json_group_array(n.entity_id)", "CAST(c.prefix || c.ids || c.suffix AS BLOB)", "?"
	if s.postgres {
		ids, payload, now = "CAST(json_agg(n.entity_id ORDER BY n.id) AS TEXT)", "convert_to(c.prefix || c.ids || c.suffix, 'UTF8')", "CAST(? AS TIMESTAMPTZ)"
	}
	if err := s.noJIT(ctx); err != nil {
		return 0, fmt.Errorf("add sync run items outbox: %w", err)
	}
	marker := []byte(`["` + ItemEntityMarker + `"]`)
	var b strings.Builder
	args := []any{s.now()} // the placeholders in the order they appear
	for i, t := range tasks {
		prefix, suffix, ok := bytes.Cut(t.Row.Payload, marker)
		if !ok || bytes.Contains(suffix, marker) {
			return 0, fmt.Errorf("add sync run items outbox: the %s task's payload must hold the entity marker once", t.Action)
		}
		queue := t.Row.Queue
		if queue == "" {
			queue = "default"
		}
		if i > 0 {
			b.WriteString(" UNION ALL ")
		}
		b.WriteString("SELECT CAST(? AS TEXT) AS action, CAST(? AS TEXT) AS task_type, CAST(? AS TEXT) AS task_id," +
			" CAST(? AS TEXT) AS queue, CAST(? AS TEXT) AS prefix, CAST(? AS TEXT) AS suffix, CAST(? AS INTEGER) AS per_row")
		args = append(args, t.Action, t.Row.TaskType, t.Row.TaskID, queue, string(prefix), string(suffix), max(1, t.PerRow))
	}
	args = append(args, orgID, runID)
	// n numbers each task's items in plan order; c is its rows.
	res := s.conn(ctx).Exec("INSERT INTO outbox (org_id, task_type, task_id, queue, payload, created_at, attempts, last_error)"+
		" SELECT c.org_id, c.task_type, c.task_id, c.queue, "+payload+", "+now+", 0, ''"+
		" FROM (SELECT n.org_id, n.task_type, n.task_id, n.queue, n.prefix, n.suffix, MIN(n.id) AS first, "+ids+" AS ids"+
		" FROM (SELECT i.id, i.org_id, i.entity_id, t.task_type, t.task_id, t.queue, t.prefix, t.suffix,"+
		" (ROW_NUMBER() OVER (PARTITION BY t.task_type, t.task_id, t.queue, t.prefix, t.suffix ORDER BY i.id) - 1) / t.per_row AS chunk"+
		" FROM sync_run_items i JOIN ("+b.String()+") t ON t.action = i.action"+
		" WHERE i.org_id = ? AND i.run_id = ? ORDER BY i.id) n"+
		" GROUP BY n.org_id, n.task_type, n.task_id, n.queue, n.prefix, n.suffix, n.chunk) c ORDER BY c.first", args...)
	if res.Error != nil {
		return 0, fmt.Errorf("add sync run items outbox: %w", res.Error)
	}
	return res.RowsAffected, nil
}
