package console

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/scimsync/scimsync/admin"
	"github.com/scimsync/scimsync/store"
)

// notices are the messages a redirect may ask the next page to show.
var notices = map[string]string{
	"org":               "Organization created. Next: turn SCIM on and create a token, or choose the IdP to pull from.",
	"scim-on":           "SCIM is on.",
	"scim-off":          "SCIM is off: the IdP's requests are refused until you turn it on again.",
	"revoked":           "Token revoked: the IdP can no longer use it.",
	"settings":          "Schedule and role mapping saved.",
	"connector":         "Connector saved. It was tested against the IdP first.",
	"connector-deleted": "Connector removed: no more scheduled pulls.",
	"webhook":           "Webhook saved.",
	"webhook-deleted":   "Webhook deleted: nothing more is sent to it.",
	"retry-ok":          "Delivery sent again, and the endpoint accepted it.",
	"retry-failed":      "Delivery sent again; the endpoint did not accept it (see the newest attempt).",
	"purged":            "Older events were purged (past the retention): the list starts at the oldest event kept.",
	"settled":           "Settled. The kept admin's change is applied, or waits for the next sync run.",
}

// cursorParam reads the query parameter name, a page cursor of at least
// min (0 when absent); what names it in the error.
func cursorParam(r *http.Request, name string, min int64, what string) (int64, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < min {
		return 0, fmt.Errorf("%w: %s must be %s", admin.ErrInvalid, name, what)
	}
	return n, nil
}

func redirect(w http.ResponseWriter, r *http.Request, path, done string) {
	if done != "" {
		path += "?done=" + url.QueryEscape(done)
	}
	http.Redirect(w, r, path, http.StatusSeeOther)
}

func orgPath(orgID string) string { return Prefix + "orgs/" + url.PathEscape(orgID) }

// orgRow is one organization in the list.
type orgRow struct {
	Org       store.Org
	Connector string
	LastRun   *store.SyncRun
}

func (c *Console) orgsPage(w http.ResponseWriter, r *http.Request, s session) {
	c.showOrgs(w, r, s, http.StatusOK, "", "")
}

func (c *Console) showOrgs(w http.ResponseWriter, r *http.Request, s session, status int, name, nameError string) {
	ctx := r.Context()
	orgs, err := c.Service.Orgs(ctx)
	if err != nil {
		c.failed(w, r, err)
		return
	}
	rows := make([]orgRow, len(orgs))
	for i, o := range orgs {
		rows[i].Org = o
		if cv, err := c.Service.Connector(ctx, o.ID); err == nil {
			rows[i].Connector = cv.Type
		} else if !errors.Is(err, store.ErrNotFound) {
			c.failed(w, r, err)
			return
		}
		runs, err := c.Service.SyncRuns(ctx, o.ID, "", 1)
		if err != nil {
			c.failed(w, r, err)
			return
		}
		if len(runs) > 0 {
			rows[i].LastRun = &runs[0]
		}
	}
	c.render(w, r, status, "orgs", view{Title: "Organizations", CSRF: s.CSRF, Notice: notices[r.URL.Query().Get("done")],
		Data: map[string]any{"Rows": rows, "Name": name, "NameError": nameError}})
}

func (c *Console) createOrg(w http.ResponseWriter, r *http.Request, s session) {
	name := r.PostFormValue("name")
	o, err := c.Service.CreateOrg(r.Context(), name)
	if errors.Is(err, admin.ErrInvalid) {
		c.showOrgs(w, r, s, http.StatusBadRequest, name, problem(err))
		return
	}
	if err != nil {
		c.failed(w, r, err)
		return
	}
	redirect(w, r, orgPath(o.ID), "org")
}

// problem is an ErrInvalid's message without its generic prefix.
func problem(err error) string {
	return strings.TrimPrefix(err.Error(), admin.ErrInvalid.Error()+": ")
}

// orgForm carries what the organization page shows besides the stored
// state: a token just created, and errors of its forms.
type orgForm struct {
	NewToken      *flashed
	TokenError    string
	Schedule      string
	Mapping       string
	ScheduleError string
	MappingError  string
}

func (c *Console) orgPage(w http.ResponseWriter, r *http.Request, s session) {
	tok, err := c.takeSecret(r, s)
	if err != nil {
		c.failed(w, r, err)
		return
	}
	if tok == nil {
		c.showOrg(w, r, s, http.StatusOK, nil)
		return
	}
	c.showOrgWith(w, r, s, http.StatusOK, func(f *orgForm) { f.NewToken = tok })
}

func (c *Console) showOrg(w http.ResponseWriter, r *http.Request, s session, status int, form *orgForm) {
	ctx := r.Context()
	org, err := c.Service.Org(ctx, r.PathValue("org"))
	if err != nil {
		c.failed(w, r, err)
		return
	}
	toks, err := c.Service.SCIMTokens(ctx, org.ID)
	if err != nil {
		c.failed(w, r, err)
		return
	}
	var conn *admin.ConnectorView
	if cv, err := c.Service.Connector(ctx, org.ID); err == nil {
		conn = &cv
	} else if !errors.Is(err, store.ErrNotFound) {
		c.failed(w, r, err)
		return
	}
	runs, err := c.Service.SyncRuns(ctx, org.ID, "", 1)
	if err != nil {
		c.failed(w, r, err)
		return
	}
	if form == nil {
		form = &orgForm{Schedule: org.ReconcileSchedule, Mapping: formatMapping(org.RoleMapping)}
	}
	d := map[string]any{"Tokens": toks, "Connector": conn, "SCIMURL": c.Service.SCIMURL(), "Form": form, "Runs": runs}
	c.render(w, r, status, "org", view{Title: org.Name, CSRF: s.CSRF, Org: &org, Tab: "overview", Notice: notices[r.URL.Query().Get("done")], Data: d})
}

func formatMapping(m store.JSONMap) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s = %s\n", k, m[k])
	}
	return b.String()
}

// parseMapping reads "IdP group = role" lines.
func parseMapping(text string) (store.JSONMap, error) {
	m := store.JSONMap{}
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		group, role, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("line %d: write it as: IdP group name = admin (or member)", i+1)
		}
		m[strings.TrimSpace(group)] = strings.TrimSpace(role)
	}
	return m, nil
}

func (c *Console) setSCIM(w http.ResponseWriter, r *http.Request, s session) {
	on := r.PostFormValue("enabled") == "true"
	if _, err := c.Service.SetSCIMEnabled(r.Context(), r.PathValue("org"), on); err != nil {
		c.failed(w, r, err)
		return
	}
	done := "scim-off"
	if on {
		done = "scim-on"
	}
	redirect(w, r, orgPath(r.PathValue("org")), done)
}

func (c *Console) createToken(w http.ResponseWriter, r *http.Request, s session) {
	ttl := 0
	if v := strings.TrimSpace(r.PostFormValue("ttl_days")); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			c.showOrg(w, r, s, http.StatusBadRequest, &orgForm{TokenError: "Days must be a whole number (0: never expires)."})
			return
		}
		ttl = n
	}
	t, err := c.Service.CreateSCIMToken(r.Context(), r.PathValue("org"), strings.TrimSpace(r.PostFormValue("description")), ttl)
	if errors.Is(err, admin.ErrInvalid) {
		c.showOrgWith(w, r, s, http.StatusBadRequest, func(f *orgForm) { f.TokenError = problem(err) })
		return
	}
	if err != nil {
		c.failed(w, r, err)
		return
	}
	c.redirectWithSecret(w, r, s, orgPath(r.PathValue("org")), flashed{Secret: t.Token})
}

// showOrgWith shows the organization page with its stored settings and a
// change to the form.
func (c *Console) showOrgWith(w http.ResponseWriter, r *http.Request, s session, status int, change func(*orgForm)) {
	org, err := c.Service.Org(r.Context(), r.PathValue("org"))
	if err != nil {
		c.failed(w, r, err)
		return
	}
	f := &orgForm{Schedule: org.ReconcileSchedule, Mapping: formatMapping(org.RoleMapping)}
	change(f)
	c.showOrg(w, r, s, status, f)
}

func (c *Console) tokenOf(r *http.Request) (admin.TokenView, error) {
	toks, err := c.Service.SCIMTokens(r.Context(), r.PathValue("org"))
	if err != nil {
		return admin.TokenView{}, err
	}
	for _, t := range toks {
		if t.ID == r.PathValue("id") {
			return t, nil
		}
	}
	return admin.TokenView{}, store.ErrNotFound
}

func (c *Console) revokeTokenPage(w http.ResponseWriter, r *http.Request, s session) {
	org, err := c.Service.Org(r.Context(), r.PathValue("org"))
	if err != nil {
		c.failed(w, r, err)
		return
	}
	t, err := c.tokenOf(r)
	if err != nil {
		c.failed(w, r, err)
		return
	}
	lastUsed := "never"
	if t.LastUsedAt != nil {
		lastUsed = when(t.LastUsedAt)
	}
	c.ask(w, r, s, &org, "overview", question{
		Heading: fmt.Sprintf("Revoke token “%s”?", cmp.Or(t.Description, "without description")),
		Body:    "The IdP using this token will be refused at once. This cannot be undone; you can create a new token afterwards.",
		Detail:  "Created " + when(t.CreatedAt) + " · last used " + lastUsed,
		Action:  orgPath(org.ID) + "/tokens/" + url.PathEscape(t.ID) + "/revoke",
		Button:  "Revoke token", ButtonID: "confirm-revoke", Cancel: orgPath(org.ID),
	})
}

func (c *Console) revokeToken(w http.ResponseWriter, r *http.Request, s session) {
	if err := c.Service.RevokeSCIMToken(r.Context(), r.PathValue("org"), r.PathValue("id")); err != nil {
		c.failed(w, r, err)
		return
	}
	redirect(w, r, orgPath(r.PathValue("org")), "revoked")
}

func (c *Console) saveSettings(w http.ResponseWriter, r *http.Request, s session) {
	schedule := strings.TrimSpace(r.PostFormValue("schedule"))
	mappingText := r.PostFormValue("mapping")
	form := &orgForm{Schedule: schedule, Mapping: mappingText}
	mapping, err := parseMapping(mappingText)
	if err != nil {
		form.MappingError = err.Error()
		c.showOrg(w, r, s, http.StatusBadRequest, form)
		return
	}
	_, err = c.Service.UpdateOrg(r.Context(), r.PathValue("org"), store.OrgPatch{ReconcileSchedule: &schedule, RoleMapping: &mapping})
	if errors.Is(err, admin.ErrInvalid) {
		if strings.Contains(err.Error(), "reconcileSchedule") {
			form.ScheduleError = problem(err)
		} else {
			form.MappingError = problem(err)
		}
		c.showOrg(w, r, s, http.StatusBadRequest, form)
		return
	}
	if err != nil {
		c.failed(w, r, err)
		return
	}
	redirect(w, r, orgPath(r.PathValue("org")), "settings")
}

const pageSize = 50

func (c *Console) membersPage(w http.ResponseWriter, r *http.Request, s session) {
	ctx := r.Context()
	org, err := c.Service.Org(ctx, r.PathValue("org"))
	if err != nil {
		c.failed(w, r, err)
		return
	}
	q := admin.MemberQuery{Status: r.URL.Query().Get("status"), Email: strings.TrimSpace(r.URL.Query().Get("q")), After: r.URL.Query().Get("after"), Limit: pageSize}
	ms, err := c.Service.Members(ctx, org.ID, q)
	if err != nil {
		c.failed(w, r, err)
		return
	}
	next := ""
	if len(ms) == pageSize {
		v := url.Values{"status": {q.Status}, "q": {q.Email}, "after": {ms[len(ms)-1].ID}}
		next = "?" + v.Encode()
	}
	c.render(w, r, http.StatusOK, "members", view{Title: "Members · " + org.Name, CSRF: s.CSRF, Org: &org, Tab: "members",
		Data: map[string]any{"Members": ms, "Query": q, "Next": next, "Paged": q.After != "",
			"Statuses": []string{"pending_setup", "active", "deprovisioned"}}})
}

func (c *Console) groupsPage(w http.ResponseWriter, r *http.Request, s session) {
	ctx := r.Context()
	org, err := c.Service.Org(ctx, r.PathValue("org"))
	if err != nil {
		c.failed(w, r, err)
		return
	}
	after := r.URL.Query().Get("after")
	gs, err := c.Service.Groups(ctx, org.ID, after, pageSize)
	if err != nil {
		c.failed(w, r, err)
		return
	}
	next := ""
	if len(gs) == pageSize {
		next = "?after=" + url.QueryEscape(gs[len(gs)-1].ID)
	}
	c.render(w, r, http.StatusOK, "groups", view{Title: "Groups · " + org.Name, CSRF: s.CSRF, Org: &org, Tab: "groups",
		Data: map[string]any{"Groups": gs, "Next": next, "Paged": after != ""}})
}

func (c *Console) auditPage(w http.ResponseWriter, r *http.Request, s session) {
	ctx := r.Context()
	org, err := c.Service.Org(ctx, r.PathValue("org"))
	if err != nil {
		c.failed(w, r, err)
		return
	}
	before, err := cursorParam(r, "before", 1, "an event id")
	if err != nil {
		c.failed(w, r, err)
		return
	}
	evs, err := c.Service.AuditEvents(ctx, org.ID, before, pageSize)
	if err != nil {
		c.failed(w, r, err)
		return
	}
	next := ""
	if len(evs) == pageSize {
		next = "?before=" + strconv.FormatInt(evs[len(evs)-1].ID, 10)
	}
	c.render(w, r, http.StatusOK, "audit", view{Title: "Audit log · " + org.Name, CSRF: s.CSRF, Org: &org, Tab: "audit",
		Data: map[string]any{"Events": evs, "Next": next, "Paged": before != 0}})
}

// plan is the part of a run's recorded plan the console shows.
type plan struct {
	Provision    int          `json:"provision"`
	Update       int          `json:"update"`
	Deprovision  int          `json:"deprovision"`
	Remove       int          `json:"remove"`
	ResendInvite int          `json:"resendInvite"`
	GroupChanges int          `json:"groupChanges"`
	Members      int          `json:"members"`
	Guard        guardVerdict `json:"guard"`
}

// guardVerdict is a plan's deprovision guard as the console shows it.
type guardVerdict struct {
	Share          float64  `json:"share"`
	Limit          *float64 `json:"limit"`
	Removals       int      `json:"removals"`
	GroupDeletions int      `json:"groupDeletions"`
	Tripped        bool     `json:"tripped"`
	Confirmed      bool     `json:"confirmed"`
	Reason         string   `json:"reason"`
	Losses         string   `json:"losses"`
}

// Allows is the share of members the guard lets a run take. A plan
// recorded before the limit had its own field kept it in share.
func (g guardVerdict) Allows() float64 {
	if g.Limit == nil {
		return g.Share
	}
	return *g.Limit
}

// runRow is a run as the console lists it.
type runRow struct {
	store.SyncRun
	Plan     plan
	Duration string
}

func viewRun(r store.SyncRun) runRow {
	row := runRow{SyncRun: r}
	json.Unmarshal([]byte(r.Plan), &row.Plan) // an empty plan (queued) shows zeros
	if r.StartedAt != nil && r.FinishedAt != nil {
		row.Duration = r.FinishedAt.Sub(*r.StartedAt).Round(10 * time.Millisecond).String()
	}
	return row
}

func (c *Console) runsPage(w http.ResponseWriter, r *http.Request, s session) {
	ctx := r.Context()
	org, err := c.Service.Org(ctx, r.PathValue("org"))
	if err != nil {
		c.failed(w, r, err)
		return
	}
	before := r.URL.Query().Get("before")
	runs, err := c.Service.SyncRuns(ctx, org.ID, before, pageSize)
	if err != nil {
		c.failed(w, r, err)
		return
	}
	rows := make([]runRow, len(runs))
	for i, run := range runs {
		rows[i] = viewRun(run)
	}
	next := ""
	if len(runs) == pageSize {
		next = "?before=" + url.QueryEscape(runs[len(runs)-1].ID)
	}
	_, connErr := c.Service.Connector(ctx, org.ID)
	c.render(w, r, http.StatusOK, "runs", view{Title: "Sync runs · " + org.Name, CSRF: s.CSRF, Org: &org, Tab: "runs",
		Data: map[string]any{"Runs": rows, "Next": next, "Paged": before != "", "HasConnector": connErr == nil}})
}

func (c *Console) startRun(w http.ResponseWriter, r *http.Request, s session) {
	dry := r.PostFormValue("mode") == "dry"
	run, err := c.Service.RequestReconcile(r.Context(), r.PathValue("org"), admin.ReconcileRequest{DryRun: dry})
	if err != nil {
		c.failed(w, r, err)
		return
	}
	redirect(w, r, orgPath(r.PathValue("org"))+"/runs/"+url.PathEscape(run.ID), "")
}

// itemLimit is how many plan items one page shows.
const itemLimit = 500

func (c *Console) runPage(w http.ResponseWriter, r *http.Request, s session) {
	ctx := r.Context()
	org, err := c.Service.Org(ctx, r.PathValue("org"))
	if err != nil {
		c.failed(w, r, err)
		return
	}
	run, err := c.Service.SyncRun(ctx, org.ID, r.PathValue("run"))
	if err != nil {
		c.failed(w, r, err)
		return
	}
	counts, err := c.Service.SyncRunItemCounts(ctx, org.ID, run.ID)
	if err != nil {
		c.failed(w, r, err)
		return
	}
	actions := make([]string, 0, len(counts))
	for a := range counts {
		actions = append(actions, a)
	}
	sort.Strings(actions)
	action := r.URL.Query().Get("action")
	after, err := cursorParam(r, "after", 0, "a plan item's position")
	if err != nil {
		c.failed(w, r, err)
		return
	}
	items, nextAfter, err := c.Service.SyncRunItems(ctx, org.ID, run.ID, action, after, itemLimit)
	if err != nil {
		c.failed(w, r, err)
		return
	}
	next := ""
	if nextAfter != 0 {
		next = "?" + url.Values{"action": {action}, "after": {strconv.FormatInt(nextAfter, 10)}}.Encode()
	}
	v := view{Title: "Run " + run.ID, CSRF: s.CSRF, Org: &org, Tab: "runs",
		Data: map[string]any{"Run": viewRun(run), "Counts": counts, "Actions": actions, "Action": action, "Items": items,
			"Next": next, "Paged": after != 0, "Limit": itemLimit}}
	if run.Status == store.RunQueued || run.Status == store.RunRunning {
		v.Refresh = 2
	}
	c.render(w, r, http.StatusOK, "run", v)
}

func (c *Console) blockedRun(w http.ResponseWriter, r *http.Request) (store.Org, runRow, bool) {
	ctx := r.Context()
	org, err := c.Service.Org(ctx, r.PathValue("org"))
	if err != nil {
		c.failed(w, r, err)
		return store.Org{}, runRow{}, false
	}
	run, err := c.Service.SyncRun(ctx, org.ID, r.PathValue("run"))
	if err != nil {
		c.failed(w, r, err)
		return store.Org{}, runRow{}, false
	}
	if run.Status != store.RunBlocked {
		c.failed(w, r, fmt.Errorf("%w: only a blocked run can be confirmed; this one is %s", admin.ErrInvalid, run.Status))
		return store.Org{}, runRow{}, false
	}
	return org, viewRun(run), true
}

func (c *Console) confirmPage(w http.ResponseWriter, r *http.Request, s session) {
	org, run, ok := c.blockedRun(w, r)
	if !ok {
		return
	}
	c.render(w, r, http.StatusOK, "confirm", view{Title: "Review and confirm", CSRF: s.CSRF, Org: &org, Tab: "runs", Data: map[string]any{"Run": run}})
}

// confirmRun starts a run allowed past the guard, once the operator has
// typed how many members will lose access.
func (c *Console) confirmRun(w http.ResponseWriter, r *http.Request, s session) {
	org, run, ok := c.blockedRun(w, r)
	if !ok {
		return
	}
	if strings.TrimSpace(r.PostFormValue("count")) != strconv.Itoa(run.Plan.Guard.Removals) {
		c.render(w, r, http.StatusBadRequest, "confirm", view{Title: "Review and confirm", CSRF: s.CSRF, Org: &org, Tab: "runs",
			Error: fmt.Sprintf("Type %d, the number of members who will lose access, to confirm.", run.Plan.Guard.Removals), Data: map[string]any{"Run": run}})
		return
	}
	// The confirmation covers the plan reviewed: a run that finds more, or
	// other members and groups, to take away is blocked again.
	removals, deletions := run.Plan.Guard.Removals, run.Plan.Guard.GroupDeletions
	next, err := c.Service.RequestReconcile(r.Context(), org.ID, admin.ReconcileRequest{AllowMassDeprovision: true,
		ConfirmedRemovals: &removals, ConfirmedGroupDeletions: &deletions, ConfirmedLosses: run.Plan.Guard.Losses})
	if err != nil {
		c.failed(w, r, err)
		return
	}
	redirect(w, r, orgPath(org.ID)+"/runs/"+url.PathEscape(next.ID), "")
}
