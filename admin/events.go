package admin

import (
	"context"
	"errors"
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

// EventsGoneError is the answer to a cursor whose next events were
// purged (older than the retention): the reader resyncs from the local
// state, then continues after Latest.
type EventsGoneError struct {
	After, PurgedThrough, Latest int64
}

func (e *EventsGoneError) Error() string {
	return fmt.Sprintf("events after sequence %d up to %d were purged (older than the retention)", e.After, e.PurgedThrough)
}

// EventsPage is one page of an organization's change feed.
type EventsPage struct {
	Events []store.EventView `json:"events"`
	// NextAfter is where the next page starts: the last event's sequence
	// on a full page, else the latest sequence read before the page
	// (every event up to it had committed, so nothing is skipped when a
	// types filter left the page short or empty).
	NextAfter int64 `json:"nextAfter"`
}

// Events pages through an organization's change feed in sequence order,
// after the sequence after, keeping the types given (all when none). An
// unknown type is ErrInvalid; a cursor whose next events were purged is an
// *EventsGoneError.
func (s *Service) Events(ctx context.Context, orgID string, after int64, limit int, types []string) (EventsPage, error) {
	if _, err := s.Store.Org(ctx, orgID); err != nil {
		return EventsPage{}, err
	}
	if after < 0 {
		return EventsPage{}, fmt.Errorf("%w: after must be an event sequence (0 or more)", ErrInvalid)
	}
	for _, t := range types {
		if !lifecycle.IsEventType(t) {
			return EventsPage{}, fmt.Errorf("%w: unknown event type %q; types are %s", ErrInvalid, t, strings.Join(lifecycle.EventTypes, ", "))
		}
	}
	cur, err := s.Store.EventCursor(ctx, orgID)
	if err != nil {
		return EventsPage{}, err
	}
	if after < cur.PurgedThrough {
		return EventsPage{}, &EventsGoneError{After: after, PurgedThrough: cur.PurgedThrough, Latest: cur.Latest}
	}
	evs, err := s.Store.Events(ctx, orgID, after, cur.Latest, limit, types)
	if err != nil {
		return EventsPage{}, err
	}
	page := EventsPage{Events: make([]store.EventView, len(evs)), NextAfter: max(after, cur.Latest)}
	for i, e := range evs {
		page.Events[i] = e.View()
	}
	if len(evs) == limit {
		page.NextAfter = evs[len(evs)-1].Sequence
	}
	return page, nil
}

func (a *API) events(w http.ResponseWriter, r *http.Request) {
	orgID := r.PathValue("org")
	limit, _, ok := pageParams(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	var after int64
	if v := q.Get("after"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			httpjson.Error(w, http.StatusBadRequest, "invalid_request", "after must be an event sequence (0 or more)")
			return
		}
		after = n
	}
	var types []string
	if v := q.Get("types"); v != "" {
		for _, t := range strings.Split(v, ",") {
			types = append(types, strings.TrimSpace(t))
		}
	}
	page, err := a.Service.Events(r.Context(), orgID, after, limit, types)
	var gone *EventsGoneError
	if errors.As(err, &gone) {
		var body eventsGone
		body.Error.Code = "cursor_expired"
		body.Error.Message = fmt.Sprintf("%s: resync from GET /api/v1/orgs/%s/members (and /groups), then continue with after=%d", gone, orgID, gone.Latest)
		body.Error.LatestSequence = gone.Latest
		httpjson.Write(w, http.StatusGone, "", body)
		return
	}
	if err != nil {
		a.fail(w, r, err)
		return
	}
	httpjson.Write(w, http.StatusOK, "", page)
}
