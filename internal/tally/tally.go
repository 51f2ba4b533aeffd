// Package tally keeps repeated per-entity log lines out of INFO: each line
// goes to DEBUG, and INFO gets one summary per interval with the count of
// each kind of line. A first pull of 100k users then logs a handful of
// summaries, not 100k invite lines, and DEBUG still has every one.
package tally

import (
	"context"
	"log/slog"
	"sort"
	"sync"
	"time"
)

// DefaultInterval is how often a Tally summarises, at most.
const DefaultInterval = 10 * time.Second

// Tally counts log lines by message and summarises them at INFO.
type Tally struct {
	log   *slog.Logger
	msg   string
	every time.Duration

	mu      sync.Mutex
	counts  map[string]int
	pending *time.Timer // the summary due; nil when nothing is counted
}

// New returns a Tally that logs its summaries to log with message msg, at
// most once per every (DefaultInterval when 0).
func New(log *slog.Logger, msg string, every time.Duration) *Tally {
	if every <= 0 {
		every = DefaultInterval
	}
	return &Tally{log: log, msg: msg, every: every, counts: map[string]int{}}
}

// Log logs msg with attrs at DEBUG and counts it for the next summary,
// which is due at most one interval after the first line it counts.
func (t *Tally) Log(ctx context.Context, msg string, attrs ...any) {
	t.log.DebugContext(ctx, msg, attrs...)
	t.mu.Lock()
	defer t.mu.Unlock()
	t.counts[msg]++
	if t.pending == nil {
		t.pending = time.AfterFunc(t.every, t.Flush)
	}
}

// Flush logs the summary of what was counted since the last one, if
// anything was: one INFO line with each message and its count.
func (t *Tally) Flush() {
	t.mu.Lock()
	counts := t.counts
	t.counts = map[string]int{}
	if t.pending != nil {
		t.pending.Stop()
		t.pending = nil
	}
	t.mu.Unlock()
	if len(counts) == 0 {
		return
	}
	msgs := make([]string, 0, len(counts))
	total := 0
	for m, n := range counts {
		msgs = append(msgs, m)
		total += n
	}
	sort.Strings(msgs)
	attrs := make([]any, 0, len(msgs)+1)
	attrs = append(attrs, slog.Int("total", total))
	for _, m := range msgs {
		attrs = append(attrs, slog.Int(m, counts[m]))
	}
	t.log.Info(t.msg, attrs...)
}
