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
	payload, now := "CAST(k.prefix || c.ids || k.suffix AS BLOB)", "?"
	if s.postgres {
		payload, now = "convert_to(k.prefix || c.ids || k.suffix, 'UTF8')", "CAST(? AS TIMESTAMPTZ)"
	}
	if err := s.noJIT(ctx); err != nil {
		return 0, fmt.Errorf("add sync run items outbox: %w", err)
	}
	// Tasks with the same row are one kind, numbered here, so that the
	// database sorts and groups items by a number rather than by the rows'
	// text.
	type kind struct {
		typ, id, queue, prefix, suffix string
		perRow                         int
	}
	kinds := map[kind]int{}
	var actions, rows strings.Builder
	var actionArgs, rowArgs []any
	marker := []byte(`["` + ItemEntityMarker + `"]`)
	for _, t := range tasks {
		prefix, suffix, ok := bytes.Cut(t.Row.Payload, marker)
		if !ok || bytes.Contains(suffix, marker) {
			return 0, fmt.Errorf("add sync run items outbox: the %s task's payload must hold the entity marker once", t.Action)
		}
		k := kind{t.Row.TaskType, t.Row.TaskID, t.Row.Queue, string(prefix), string(suffix), max(1, t.PerRow)}
		if k.queue == "" {
			k.queue = "default"
		}
		n, seen := kinds[k]
		if !seen {
			n = len(kinds)
			kinds[k] = n
			if n > 0 {
				rows.WriteString(" UNION ALL ")
			}
			rows.WriteString("SELECT CAST(? AS INTEGER) AS kind, CAST(? AS TEXT) AS task_type, CAST(? AS TEXT) AS task_id," +
				" CAST(? AS TEXT) AS queue, CAST(? AS TEXT) AS prefix, CAST(? AS TEXT) AS suffix")
			rowArgs = append(rowArgs, n, k.typ, k.id, k.queue, k.prefix, k.suffix)
		}
		if actions.Len() > 0 {
			actions.WriteString(" UNION ALL ")
		}
		actions.WriteString("SELECT CAST(? AS TEXT) AS action, CAST(? AS INTEGER) AS kind, CAST(? AS INTEGER) AS per_row")
		actionArgs = append(actionArgs, t.Action, n, k.perRow)
	}
	// n: the items of each kind numbered in plan order; c: their rows.
	args := append(append(append([]any{orgID, s.now()}, actionArgs...), orgID, runID), rowArgs...)
	res := s.conn(ctx).Exec("INSERT INTO outbox (org_id, task_type, task_id, queue, payload, created_at, attempts, last_error)"+
		" SELECT CAST(? AS TEXT), k.task_type, k.task_id, k.queue, "+payload+", "+now+", 0, ''"+
		" FROM (SELECT n.kind, MIN(n.id) AS first, "+s.jsonArrayAgg("n.entity_id")+" AS ids"+
		" FROM (SELECT i.id, i.entity_id, t.kind, (ROW_NUMBER() OVER (PARTITION BY t.kind ORDER BY i.id) - 1) / t.per_row AS chunk"+
		" FROM sync_run_items i JOIN ("+actions.String()+") t ON t.action = i.action"+
		" WHERE i.org_id = ? AND i.run_id = ?) n GROUP BY n.kind, n.chunk) c"+
		" JOIN ("+rows.String()+") k ON k.kind = c.kind ORDER BY c.first", args...)
	if res.Error != nil {
		return 0, fmt.Errorf("add sync run items outbox: %w", res.Error)
	}
	return res.RowsAffected, nil
}

// jsonArrayAgg is the aggregate of values of a text column into a JSON
// array, as text.
func (s *Store) jsonArrayAgg(column string) string {
	if s.postgres {
		return "CAST(json_agg(" + column + ") AS TEXT)"
	}
	return "json_group_array(" + column + ")"
}
