package admin

import (
	"net/http"
	"strconv"

	"github.com/scimsync/scimsync/internal/httpjson"
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
	limit, after, ok := pageParams(w, r)
	if !ok {
		return
	}
	ms, err := a.Service.Members(r.Context(), r.PathValue("org"), MemberQuery{Status: r.URL.Query().Get("status"), After: after, Limit: limit})
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
	limit, after, ok := pageParams(w, r)
	if !ok {
		return
	}
	gs, err := a.Service.Groups(r.Context(), r.PathValue("org"), after, limit)
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
