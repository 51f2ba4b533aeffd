package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"

	"github.com/scimsync/scimsync/internal/httpjson"
	"github.com/scimsync/scimsync/jobs/task"
	"github.com/scimsync/scimsync/reconciler"
	"github.com/scimsync/scimsync/store"
)

// ReconcileRequest is how an operator asks a run to go.
type ReconcileRequest struct {
	DryRun               bool `json:"dryRun"`
	AllowMassDeprovision bool `json:"allowMassDeprovision"`
	// Full asks for a full pull where a delta would do.
	Full bool `json:"full"`
	// ConfirmedRemovals and ConfirmedGroupDeletions, with
	// AllowMassDeprovision, say what the operator reviewed: a plan that
	// has since grown beyond either is blocked again rather than applied.
	ConfirmedRemovals       *int `json:"confirmedRemovals"`
	ConfirmedGroupDeletions *int `json:"confirmedGroupDeletions"`
	// ConfirmedLosses is the reviewed plan's guard.losses: a plan that
	// takes away other members or groups is blocked again.
	ConfirmedLosses string `json:"confirmedLosses"`
}

// RequestReconcile queues a reconciliation of an organization for a worker
// and returns the queued run. The run and its task are committed together
// (through the outbox), so an accepted request is never lost.
func (s *Service) RequestReconcile(ctx context.Context, orgID string, req ReconcileRequest) (store.SyncRun, error) {
	for _, n := range []*int{req.ConfirmedRemovals, req.ConfirmedGroupDeletions} {
		if n != nil && (*n < 0 || !req.AllowMassDeprovision) {
			return store.SyncRun{}, fmt.Errorf("%w: confirmedRemovals and confirmedGroupDeletions are counts (0 or more) that go with allowMassDeprovision", ErrInvalid)
		}
	}
	if req.ConfirmedLosses != "" && (!req.AllowMassDeprovision || !reconciler.IsLossesDigest(req.ConfirmedLosses)) {
		return store.SyncRun{}, fmt.Errorf("%w: confirmedLosses is a blocked plan's guard.losses (64 hex digits) and goes with allowMassDeprovision", ErrInvalid)
	}
	run := store.SyncRun{OrgID: orgID, Trigger: reconciler.TriggerAPI, DryRun: req.DryRun, AllowMassDeprovision: req.AllowMassDeprovision,
		FullRequested: req.Full, ConfirmedRemovals: req.ConfirmedRemovals, ConfirmedGroupDeletions: req.ConfirmedGroupDeletions,
		ConfirmedLosses: req.ConfirmedLosses}
	err := s.Store.Tx(ctx, func(tx *store.Store) error {
		if _, err := tx.Org(ctx, orgID); err != nil {
			return err
		}
		if err := tx.CreateSyncRun(ctx, &run); err != nil {
			return err
		}
		if err := tx.AddOutbox(ctx, task.ReconcileRow(orgID, run.ID)); err != nil {
			return err
		}
		return tx.AddAuditEvent(ctx, store.AuditEvent{OrgID: orgID, Actor: actorAdmin, Action: "reconcile.request", EntityType: "sync_run", EntityID: run.ID,
			Detail: fmt.Sprintf("dryRun=%t allowMassDeprovision=%t full=%t%s", req.DryRun, req.AllowMassDeprovision, req.Full, confirmedDetail(req))})
	})
	return run, err
}

func confirmedDetail(req ReconcileRequest) string {
	var out string
	if req.ConfirmedLosses != "" {
		out += " confirmedLosses=" + req.ConfirmedLosses[:12]
	}
	if n := req.ConfirmedRemovals; n != nil {
		out += fmt.Sprintf(" confirmedRemovals=%d", *n)
	}
	if n := req.ConfirmedGroupDeletions; n != nil {
		out += fmt.Sprintf(" confirmedGroupDeletions=%d", *n)
	}
	return out
}

// ViewSyncRun renders a run.
func ViewSyncRun(r store.SyncRun) store.SyncRunView { return r.View() }

// SyncRunItemView is one planned change.
type SyncRunItemView struct {
	Action     string `json:"action"`
	EntityType string `json:"entityType"`
	EntityID   string `json:"entityId"`
	Detail     string `json:"detail"`
}

func (a *API) requestReconcile(w http.ResponseWriter, r *http.Request) {
	var body ReconcileRequest
	if r.ContentLength != 0 && !a.decode(w, r, &body) {
		return
	}
	orgID := r.PathValue("org")
	run, err := a.Service.RequestReconcile(r.Context(), orgID, body)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	w.Header().Set("Location", "/api/v1/orgs/"+orgID+"/sync-runs/"+run.ID)
	httpjson.Write(w, http.StatusAccepted, "", map[string]string{"runId": run.ID})
}

func (a *API) listSyncRuns(w http.ResponseWriter, r *http.Request) {
	limit := 20
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100 {
			httpjson.Error(w, http.StatusBadRequest, "invalid_request", "limit must be 1 to 100")
			return
		}
		limit = n
	}
	runs, err := a.Service.SyncRuns(r.Context(), r.PathValue("org"), r.URL.Query().Get("before"), limit)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	out := make([]store.SyncRunView, len(runs))
	for i, run := range runs {
		out[i] = ViewSyncRun(run)
	}
	httpjson.Write(w, http.StatusOK, "", map[string]any{"runs": out})
}

// getSyncRun shows one run; with ?items=true it streams the planned changes
// too, so a plan of any size is served in flat memory.
func (a *API) getSyncRun(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	orgID := r.PathValue("org")
	run, err := a.Service.Store.SyncRun(ctx, orgID, r.PathValue("id"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	withItems, _ := strconv.ParseBool(r.URL.Query().Get("items"))
	if !withItems {
		httpjson.Write(w, http.StatusOK, "", ViewSyncRun(run))
		return
	}
	head, err := json.Marshal(ViewSyncRun(run))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	// The run's object, reopened to append its items.
	w.Write(bytes.TrimSuffix(head, []byte("}")))
	w.Write([]byte(`,"items":[`))
	first := true
	err = a.Service.Store.EachSyncRunItem(ctx, orgID, run.ID, func(items []store.SyncRunItem) error {
		var buf bytes.Buffer
		for _, it := range items {
			if !first {
				buf.WriteByte(',')
			}
			first = false
			b, err := json.Marshal(SyncRunItemView{Action: it.Action, EntityType: it.EntityType, EntityID: it.EntityID, Detail: it.Detail})
			if err != nil {
				return err
			}
			buf.Write(b)
		}
		_, err := w.Write(buf.Bytes())
		return err
	})
	if err != nil {
		// The status is sent; a body cut short is how the client learns.
		if a.Log != nil {
			a.Log.ErrorContext(ctx, "admin api: streaming sync run items", "run", run.ID, "err", err)
		}
		return
	}
	w.Write([]byte("]}\n"))
}
