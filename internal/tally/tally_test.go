package tally_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/scimsync/scimsync/internal/syncbuf"
	"github.com/scimsync/scimsync/internal/tally"
)

func lines(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatal(err)
		}
		delete(m, "time")
		out = append(out, m)
	}
	buf.Reset()
	return out
}

func TestSummarisesAtInfoAndKeepsEachAtDebug(t *testing.T) {
	ctx := context.Background()
	for _, level := range []slog.Level{slog.LevelInfo, slog.LevelDebug} {
		t.Run(level.String(), func(t *testing.T) {
			var buf bytes.Buffer
			log := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: level}))
			// An interval no test waits for: Flush is called by hand.
			tl := tally.New(log, "invites", time.Hour)
			for i := range 3 {
				tl.Log(ctx, "recorded", "invite", i)
			}
			tl.Log(ctx, "duplicate", "invite", 9)
			var want []map[string]any
			if level == slog.LevelDebug {
				for i := range 3 {
					want = append(want, map[string]any{"level": "DEBUG", "msg": "recorded", "invite": float64(i)})
				}
				want = append(want, map[string]any{"level": "DEBUG", "msg": "duplicate", "invite": float64(9)})
			}
			if diff := cmp.Diff(want, lines(t, &buf)); diff != "" {
				t.Errorf("before the summary (-want +got):\n%s", diff)
			}
			tl.Flush()
			want = []map[string]any{{"level": "INFO", "msg": "invites", "total": float64(4), "recorded": float64(3), "duplicate": float64(1)}}
			if diff := cmp.Diff(want, lines(t, &buf)); diff != "" {
				t.Errorf("summary (-want +got):\n%s", diff)
			}
			// Counts start over; nothing counted, nothing logged.
			tl.Flush()
			if got := lines(t, &buf); len(got) != 0 {
				t.Errorf("an empty summary logged %v", got)
			}
		})
	}
}

func TestSummaryComesByItself(t *testing.T) {
	var buf syncbuf.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	tl := tally.New(log, "invites", time.Millisecond)
	tl.Log(context.Background(), "recorded")
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(buf.String(), `"recorded":1`) {
		if time.Now().After(deadline) {
			t.Fatalf("no summary logged; log: %s", buf.String())
		}
		time.Sleep(time.Millisecond)
	}
}
