package admin

import (
	"net/http"
	"strconv"

	"github.com/scimsync/scimsync/internal/httpjson"
	"github.com/scimsync/scimsync/lifecycle"
	"github.com/scimsync/scimsync/store"
)

// pageParams reads ?limit= (1–1000, default 100) and ?after= (the last id
// of the previous page).
func pageParams(w http.ResponseWriter, r *http.Request) (limit int, after string, ok bool) {
	limit, ok = limitParam(w, r)
	return limit, r.URL.Query().Get("after"), ok
}

// beforePageParams reads the limit and the numeric before cursor of a
// list read newest first; what names the cursor's kind in the 400.
func beforePageParams(w http.ResponseWriter, r *http.Request, what string) (limit int, before int64, ok bool) {
	if limit, ok = limitParam(w, r); !ok {
		return 0, 0, false
	}
	if v := r.URL.Query().Get("before"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 {
			httpjson.Error(w, http.StatusBadRequest, "invalid_request", "before must be "+what)
			return 0, 0, false
		}
		before = n
	}
	return limit, before, true
}

// limitParam reads limit: 1 to 1000, 100 when absent.
func limitParam(w http.ResponseWriter, r *http.Request) (int, bool) {
	limit := 100
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			httpjson.Error(w, http.StatusBadRequest, "invalid_request", "limit must be 1 to 1000")
			return 0, false
		}
		limit = n
	}
	return limit, true
}

// members lists the local state: each member with its status and source.
func (a *API) members(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	orgID := r.PathValue("org")
	if _, err := a.Service.Store.Org(ctx, orgID); err != nil {
		a.fail(w, r, err)
		return
	}
	limit, after, ok := pageParams(w, r)
	if !ok {
		return
	}
	status := r.URL.Query().Get("status")
	switch status {
	case "", lifecycle.StatusPendingSetup, lifecycle.StatusActive, lifecycle.StatusDeprovisioned:
	default:
		httpjson.Error(w, http.StatusBadRequest, "invalid_request", "status must be pending_setup, active or deprovisioned")
		return
	}
	ms, err := a.Service.Store.Members(ctx, orgID, status, after, limit)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if ms == nil {
		ms = []store.Membership{}
	}
	body := map[string]any{"members": ms}
	if len(ms) == limit {
		body["next"] = ms[len(ms)-1].ID
	}
	httpjson.Write(w, http.StatusOK, "", body)
}

func (a *API) groups(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	orgID := r.PathValue("org")
	if _, err := a.Service.Store.Org(ctx, orgID); err != nil {
		a.fail(w, r, err)
		return
	}
	limit, after, ok := pageParams(w, r)
	if !ok {
		return
	}
	gs, err := a.Service.Store.LocalGroups(ctx, orgID, after, limit)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	body := map[string]any{"groups": gs}
	if len(gs) == limit {
		body["next"] = gs[len(gs)-1].ID
	}
	httpjson.Write(w, http.StatusOK, "", body)
}
