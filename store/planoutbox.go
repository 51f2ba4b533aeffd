package store

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
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
	payload, now := s.d.textToBytes("k.prefix || c.ids || k.suffix"), s.d.timestampParam
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
	var kindOf, perRow, rows strings.Builder // CASE arms by action; the rows' relation
	var kindArgs, perRowArgs, rowArgs []any
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
		kindOf.WriteString(" WHEN ? THEN " + strconv.Itoa(n))
		perRow.WriteString(" WHEN ? THEN " + strconv.Itoa(k.perRow))
		kindArgs, perRowArgs = append(kindArgs, t.Action), append(perRowArgs, t.Action)
	}
	// t: the run's items with their kind (NULL for an action without a
	// task); n: numbered in plan order within their kind; c: their rows.
	// The kind is a CASE rather than a join, so that the items are read
	// once (SQLite would read them once per action), and c leads the join
	// with the rows' relation (CROSS JOIN fixes SQLite's order).
	args := []any{orgID, s.now()}
	args = append(append(append(args, kindArgs...), perRowArgs...), orgID, runID)
	args = append(args, rowArgs...)
	res := s.conn(ctx).Exec("INSERT INTO outbox (org_id, task_type, task_id, queue, payload, created_at, attempts, last_error)"+
		" SELECT CAST(? AS TEXT), k.task_type, k.task_id, k.queue, "+payload+", "+now+", 0, ''"+
		" FROM (SELECT n.kind, MIN(n.id) AS first, "+s.d.jsonArrayAgg("n.entity_id")+" AS ids"+
		" FROM (SELECT t.id, t.entity_id, t.kind, (ROW_NUMBER() OVER (PARTITION BY t.kind ORDER BY t.id) - 1) / t.per_row AS chunk"+
		" FROM (SELECT i.id, i.entity_id, CASE i.action"+kindOf.String()+" END AS kind, CASE i.action"+perRow.String()+" END AS per_row"+
		" FROM sync_run_items i WHERE i.org_id = ? AND i.run_id = ?) t WHERE t.kind IS NOT NULL) n"+
		" GROUP BY n.kind, n.chunk) c"+
		" CROSS JOIN ("+rows.String()+") k WHERE k.kind = c.kind ORDER BY c.first", args...)
	if res.Error != nil {
		return 0, fmt.Errorf("add sync run items outbox: %w", res.Error)
	}
	return res.RowsAffected, nil
}
