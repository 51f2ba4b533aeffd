package store

import (
	"bytes"
	"context"
	"fmt"
	"strings"
)

// ItemEntityMarker stands for a plan item's entity id in the payload of an
// ItemTask's row: a JSON string whose value it is, such as the
// DirectoryUserID of a converge task built for ItemEntityMarker.
const ItemEntityMarker = "{{entity-id}}"

// ItemTask is the outbox row that each plan item of an action becomes: Row,
// with the item's entity id in place of ItemEntityMarker in its payload.
type ItemTask struct {
	Action string
	Row    OutboxRow
}

// AddSyncRunItemsOutbox writes, in one statement, an outbox row for each of
// the run's items whose action has a task, in the order the items were
// planned, and returns how many it wrote. The rows are built in the
// database, so a plan of any size costs one round trip and no memory here.
// Call it inside Tx, with the change the rows carry out.
func (s *Store) AddSyncRunItemsOutbox(ctx context.Context, orgID, runID string, tasks []ItemTask) (int64, error) {
	if len(tasks) == 0 {
		return 0, nil
	}
	// The entity id goes into the payload JSON-quoted by the database.
	quote, payload, now := "json_quote(i.entity_id)", "CAST(t.prefix || %s || t.suffix AS BLOB)", "?"
	if s.postgres {
		quote, payload, now = "CAST(to_json(i.entity_id) AS TEXT)", "convert_to(t.prefix || %s || t.suffix, 'UTF8')", "CAST(? AS TIMESTAMPTZ)"
	}
	if err := s.noJIT(ctx); err != nil {
		return 0, fmt.Errorf("add sync run items outbox: %w", err)
	}
	marker := []byte(`"` + ItemEntityMarker + `"`)
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
			" CAST(? AS TEXT) AS queue, CAST(? AS TEXT) AS prefix, CAST(? AS TEXT) AS suffix")
		args = append(args, t.Action, t.Row.TaskType, t.Row.TaskID, queue, string(prefix), string(suffix))
	}
	args = append(args, orgID, runID)
	res := s.conn(ctx).Exec("INSERT INTO outbox (org_id, task_type, task_id, queue, payload, created_at, attempts, last_error)"+
		" SELECT i.org_id, t.task_type, t.task_id, t.queue, "+fmt.Sprintf(payload, quote)+", "+now+", 0, ''"+
		" FROM sync_run_items i JOIN ("+b.String()+") t ON t.action = i.action"+
		" WHERE i.org_id = ? AND i.run_id = ? ORDER BY i.id", args...)
	if res.Error != nil {
		return 0, fmt.Errorf("add sync run items outbox: %w", res.Error)
	}
	return res.RowsAffected, nil
}
