package admin

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/scimsync/scimsync/internal/httpjson"
	"github.com/scimsync/scimsync/lifecycle"
	"github.com/scimsync/scimsync/store"
)

// eventsGone is the answer to a cursor whose next events were purged.
type eventsGone struct {
	Error struct {
		httpjson.ProblemDetail
		// LatestSequence is where to continue once resynced.
		LatestSequence int64 `json:"latestSequence"`
	} `json:"error"`
}

// events pages through an organization's change feed in sequence order.
// nextAfter is always given: the last event's sequence on a full page,
// else the latest sequence read before the page (every event up to it had
// committed, so nothing is skipped when a types filter left the page
// short or empty).
func (a *API) events(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	orgID := r.PathValue("org")
	if _, err := a.Service.Store.Org(ctx, orgID); err != nil {
		a.fail(w, r, err)
		return
	}
	limit, _, ok := pageParams(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	var after int64
	if v := q.Get("after"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			httpjson.Error(w, http.StatusBadRequest, "invalid_request", "after must be an event sequence (0 or more)")
			return
		}
		after = n
	}
	var types []string
	if v := q.Get("types"); v != "" {
		for _, t := range strings.Split(v, ",") {
			t = strings.TrimSpace(t)
			if !lifecycle.IsEventType(t) {
				httpjson.Error(w, http.StatusBadRequest, "invalid_request",
					fmt.Sprintf("unknown event type %q; types are %s", t, strings.Join(lifecycle.EventTypes, ", ")))
				return
			}
			types = append(types, t)
		}
	}
	cur, err := a.Service.Store.EventCursor(ctx, orgID)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if after < cur.PurgedThrough {
		var body eventsGone
		body.Error.Code = "cursor_expired"
		body.Error.Message = fmt.Sprintf("events after sequence %d up to %d were purged (older than the retention): "+
			"resync from GET /api/v1/orgs/%s/members (and /groups), then continue with after=%d", after, cur.PurgedThrough, orgID, cur.Latest)
		body.Error.LatestSequence = cur.Latest
		httpjson.Write(w, http.StatusGone, "", body)
		return
	}
	evs, err := a.Service.Store.Events(ctx, orgID, after, cur.Latest, limit, types)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	out := make([]store.EventView, len(evs))
	for i, e := range evs {
		out[i] = e.View()
	}
	next := max(after, cur.Latest)
	if len(evs) == limit {
		next = evs[len(evs)-1].Sequence
	}
	httpjson.Write(w, http.StatusOK, "", map[string]any{"events": out, "nextAfter": next})
}
