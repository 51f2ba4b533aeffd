package admin

import (
	"cmp"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/scimsync/scimsync/converge"
	"github.com/scimsync/scimsync/internal/httpjson"
	"github.com/scimsync/scimsync/source"
	"github.com/scimsync/scimsync/store"
)

// API serves /api/v1 behind the admin token.
type API struct {
	Service *Service
	Auth    *Auth
	Log     *slog.Logger
	// RequestTimeout bounds each request, waits for a database connection
	// included (default DefaultRequestTimeout); past it the answer is a
	// 503 with Retry-After.
	RequestTimeout time.Duration
}

// DefaultRequestTimeout is an admin request's deadline: longer than a SCIM
// request's, since saving a connector first tests it against the IdP,
// whose answers may be retried for seconds.
const DefaultRequestTimeout = 30 * time.Second

// route is one operation of the admin API. Handler serves exactly these,
// and openapi.json documents exactly these (TestOpenAPIMatchesRoutes).
type route struct {
	method, path string
	handler      http.HandlerFunc
}

func (a *API) routes() []route {
	return []route{
		{"POST", "/api/v1/orgs", a.createOrg},
		{"GET", "/api/v1/orgs", a.listOrgs},
		{"GET", "/api/v1/orgs/{org}", a.getOrg},
		{"PATCH", "/api/v1/orgs/{org}", a.patchOrg},
		{"POST", "/api/v1/orgs/{org}/scim-tokens", a.createToken},
		{"GET", "/api/v1/orgs/{org}/scim-tokens", a.listTokens},
		{"DELETE", "/api/v1/orgs/{org}/scim-tokens/{id}", a.revokeToken},
		{"GET", "/api/v1/orgs/{org}/audit-events", a.auditEvents},
		{"GET", "/api/v1/orgs/{org}/events", a.events},
		{"GET", "/api/v1/orgs/{org}/members", a.members},
		{"POST", "/api/v1/orgs/{org}/members/{member}/settle-admin", a.settleAdmin},
		{"GET", "/api/v1/orgs/{org}/groups", a.groups},
		{"PUT", "/api/v1/orgs/{org}/connector", a.putConnector},
		{"GET", "/api/v1/orgs/{org}/connector", a.getConnector},
		{"DELETE", "/api/v1/orgs/{org}/connector", a.deleteConnector},
		{"POST", "/api/v1/orgs/{org}/reconcile", a.requestReconcile},
		{"GET", "/api/v1/orgs/{org}/sync-runs", a.listSyncRuns},
		{"GET", "/api/v1/orgs/{org}/sync-runs/{id}", a.getSyncRun},
		{"POST", "/api/v1/webhooks", a.createWebhook},
		{"GET", "/api/v1/webhooks", a.listWebhooks},
		{"GET", "/api/v1/webhooks/{id}", a.getWebhook},
		{"PATCH", "/api/v1/webhooks/{id}", a.patchWebhook},
		{"DELETE", "/api/v1/webhooks/{id}", a.deleteWebhook},
		{"POST", "/api/v1/webhooks/{id}/rotate-secret", a.rotateWebhookSecret},
		{"GET", "/api/v1/webhooks/{id}/deliveries", a.webhookDeliveries},
		{"POST", "/api/v1/webhooks/{id}/deliveries/{delivery}/retry", a.retryWebhookDelivery},
		{"POST", "/api/v1/orgs/{org}/webhooks", a.createWebhook},
		{"GET", "/api/v1/orgs/{org}/webhooks", a.listWebhooks},
		{"GET", "/api/v1/orgs/{org}/webhooks/{id}", a.getWebhook},
		{"PATCH", "/api/v1/orgs/{org}/webhooks/{id}", a.patchWebhook},
		{"DELETE", "/api/v1/orgs/{org}/webhooks/{id}", a.deleteWebhook},
		{"POST", "/api/v1/orgs/{org}/webhooks/{id}/rotate-secret", a.rotateWebhookSecret},
		{"GET", "/api/v1/orgs/{org}/webhooks/{id}/deliveries", a.webhookDeliveries},
		{"POST", "/api/v1/orgs/{org}/webhooks/{id}/deliveries/{delivery}/retry", a.retryWebhookDelivery},
		{"GET", "/api/v1/openapi.json", serveOpenAPI},
	}
}

// mux routes the admin API's operations; anything else under /api/v1/ is a
// JSON 404.
func (a *API) mux() *http.ServeMux {
	mux := http.NewServeMux()
	for _, rt := range a.routes() {
		mux.HandleFunc(rt.method+" "+rt.path, rt.handler)
	}
	mux.HandleFunc("/api/v1/", func(w http.ResponseWriter, r *http.Request) {
		httpjson.Error(w, http.StatusNotFound, "not_found", "no such endpoint: "+r.Method+" "+r.URL.Path)
	})
	return mux
}

// Handler returns the admin API, mounted at /api/v1/ by the caller's mux.
func (a *API) Handler() http.Handler {
	return httpjson.WithDeadline(a.Auth.Require(a.mux(), false), cmp.Or(a.RequestTimeout, DefaultRequestTimeout))
}

// OrgView is an organization as the admin API shows it.
type OrgView struct {
	ID                string `json:"id"`
	Name              string `json:"name"`
	SCIMEnabled       bool   `json:"scimEnabled"`
	SCIMURL           string `json:"scimUrl"`
	ReconcileSchedule string `json:"reconcileSchedule"`
	// FullReconcileSchedule says when a connector with deltas pulls in
	// full all the same ("" never on a schedule).
	FullReconcileSchedule string            `json:"fullReconcileSchedule"`
	RoleMapping           map[string]string `json:"roleMapping"`
	CreatedAt             time.Time         `json:"createdAt"`
	UpdatedAt             time.Time         `json:"updatedAt"`
}

// ViewOrg renders an organization.
func (s *Service) ViewOrg(o store.Org) OrgView {
	rm := map[string]string(o.RoleMapping)
	if rm == nil {
		rm = map[string]string{}
	}
	return OrgView{ID: o.ID, Name: o.Name, SCIMEnabled: o.SCIMEnabled, SCIMURL: s.SCIMURL(), ReconcileSchedule: o.ReconcileSchedule,
		FullReconcileSchedule: o.FullReconcileSchedule, RoleMapping: rm, CreatedAt: o.CreatedAt, UpdatedAt: o.UpdatedAt}
}

func (a *API) createOrg(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Name string `json:"name"`
	}
	if !a.decode(w, r, &body) {
		return
	}
	o, err := a.Service.CreateOrg(r.Context(), body.Name)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	w.Header().Set("Location", "/api/v1/orgs/"+o.ID)
	httpjson.Write(w, http.StatusCreated, "", a.Service.ViewOrg(o))
}

func (a *API) listOrgs(w http.ResponseWriter, r *http.Request) {
	orgs, err := a.Service.Store.Orgs(r.Context())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	out := make([]OrgView, len(orgs))
	for i, o := range orgs {
		out[i] = a.Service.ViewOrg(o)
	}
	httpjson.Write(w, http.StatusOK, "", map[string]any{"orgs": out})
}

func (a *API) getOrg(w http.ResponseWriter, r *http.Request) {
	o, err := a.Service.Store.Org(r.Context(), r.PathValue("org"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	httpjson.Write(w, http.StatusOK, "", a.Service.ViewOrg(o))
}

func (a *API) patchOrg(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Name                  *string            `json:"name"`
		SCIMEnabled           *bool              `json:"scimEnabled"`
		ReconcileSchedule     *string            `json:"reconcileSchedule"`
		FullReconcileSchedule *string            `json:"fullReconcileSchedule"`
		RoleMapping           *map[string]string `json:"roleMapping"`
	}
	if !a.decode(w, r, &body) {
		return
	}
	p := store.OrgPatch{Name: body.Name, SCIMEnabled: body.SCIMEnabled, ReconcileSchedule: body.ReconcileSchedule,
		FullReconcileSchedule: body.FullReconcileSchedule}
	if body.RoleMapping != nil {
		m := store.JSONMap(*body.RoleMapping)
		p.RoleMapping = &m
	}
	o, err := a.Service.UpdateOrg(r.Context(), r.PathValue("org"), p)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	httpjson.Write(w, http.StatusOK, "", a.Service.ViewOrg(o))
}

func (a *API) createToken(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Description string `json:"description"`
		TTLDays     int    `json:"ttlDays"`
	}
	if !a.decode(w, r, &body) {
		return
	}
	t, err := a.Service.CreateSCIMToken(r.Context(), r.PathValue("org"), body.Description, body.TTLDays)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	httpjson.Write(w, http.StatusCreated, "", t)
}

// TokenView is a SCIM token as listed: never its secret.
type TokenView struct {
	ID          string     `json:"id"`
	Description string     `json:"description"`
	Status      string     `json:"status"`
	CreatedAt   time.Time  `json:"createdAt"`
	ExpiresAt   *time.Time `json:"expiresAt"`
	LastUsedAt  *time.Time `json:"lastUsedAt"`
	RevokedAt   *time.Time `json:"revokedAt,omitempty"`
}

func (a *API) listTokens(w http.ResponseWriter, r *http.Request) {
	out, err := a.Service.SCIMTokens(r.Context(), r.PathValue("org"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	httpjson.Write(w, http.StatusOK, "", map[string]any{"tokens": out})
}

func (a *API) revokeToken(w http.ResponseWriter, r *http.Request) {
	if err := a.Service.RevokeSCIMToken(r.Context(), r.PathValue("org"), r.PathValue("id")); err != nil {
		a.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *API) auditEvents(w http.ResponseWriter, r *http.Request) {
	limit, before, ok := beforePageParams(w, r, "an event id")
	if !ok {
		return
	}
	evs, err := a.Service.AuditEvents(r.Context(), r.PathValue("org"), before, limit)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if evs == nil {
		evs = []store.AuditEvent{}
	}
	httpjson.Write(w, http.StatusOK, "", map[string]any{"events": evs})
}

func (a *API) decode(w http.ResponseWriter, r *http.Request, v any) bool {
	if err := httpjson.Decode(w, r, v); err != nil {
		a.fail(w, r, err)
		return false
	}
	return true
}

// fail maps an error to its status. Only here do store and service errors
// become HTTP.
func (a *API) fail(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, httpjson.ErrTooLarge):
		httpjson.Error(w, http.StatusRequestEntityTooLarge, "too_large", err.Error())
	case errors.Is(err, httpjson.ErrSyntax):
		httpjson.Error(w, http.StatusBadRequest, "invalid_json", err.Error())
	case errors.Is(err, source.ErrConnection):
		httpjson.Error(w, http.StatusBadRequest, "connection_failed", err.Error())
	case errors.Is(err, ErrInvalid):
		httpjson.Error(w, http.StatusBadRequest, "invalid_request", err.Error())
	case errors.Is(err, converge.ErrCannotSettle):
		httpjson.Error(w, http.StatusConflict, "conflict", err.Error())
	case errors.Is(err, store.ErrNotFound):
		httpjson.Error(w, http.StatusNotFound, "not_found", err.Error())
	case errors.Is(err, store.ErrConflict):
		httpjson.Error(w, http.StatusConflict, "conflict", "conflict")
	case store.IsUnavailable(err), httpjson.DeadlinePassed(r, err):
		if a.Log != nil {
			a.Log.WarnContext(r.Context(), "admin api: database unavailable", "method", r.Method, "path", r.URL.Path, "err", err)
		}
		w.Header().Set("Retry-After", httpjson.RetryAfterUnavailable)
		httpjson.Error(w, http.StatusServiceUnavailable, "unavailable", httpjson.UnavailableMessage)
	default:
		if a.Log != nil {
			a.Log.ErrorContext(r.Context(), "admin api", "method", r.Method, "path", r.URL.Path, "err", err)
		}
		httpjson.Error(w, http.StatusInternalServerError, "internal", "internal error")
	}
}

func (a *API) putConnector(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Type        string          `json:"type"`
		Settings    json.RawMessage `json:"settings"`
		Credentials json.RawMessage `json:"credentials"`
	}
	if !a.decode(w, r, &body) {
		return
	}
	v, err := a.Service.PutConnector(r.Context(), r.PathValue("org"), body.Type, body.Settings, body.Credentials)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	httpjson.Write(w, http.StatusOK, "", v)
}

func (a *API) getConnector(w http.ResponseWriter, r *http.Request) {
	v, err := a.Service.Connector(r.Context(), r.PathValue("org"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	httpjson.Write(w, http.StatusOK, "", v)
}

func (a *API) deleteConnector(w http.ResponseWriter, r *http.Request) {
	if err := a.Service.DeleteConnector(r.Context(), r.PathValue("org")); err != nil {
		a.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
