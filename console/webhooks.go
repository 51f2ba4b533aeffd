package console

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/scimsync/scimsync/admin"
	"github.com/scimsync/scimsync/converge"
	"github.com/scimsync/scimsync/lifecycle"
	"github.com/scimsync/scimsync/store"
)

// Webhook endpoints belong to one organization or, created on the
// top-level page, to all of them. An endpoint's own page serves both, so
// its address carries no organization.

func webhookPath(id string) string { return Prefix + "webhooks/" + url.PathEscape(id) }

// webhooksPath lists the endpoints of an organization, or with orgID ""
// those for all of them.
func webhooksPath(orgID string) string {
	if orgID == "" {
		return Prefix + "webhooks"
	}
	return orgPath(orgID) + "/webhooks"
}

// webhookForm is the create and edit form: what was typed, and its error.
type webhookForm struct {
	URL, Description string
	Types            map[string]bool
	Enabled          bool
	Error            string
}

func formOf(v admin.WebhookView) webhookForm {
	f := webhookForm{URL: v.URL, Description: v.Description, Enabled: v.Enabled, Types: map[string]bool{}}
	for _, t := range v.EventTypes {
		f.Types[t] = true
	}
	return f
}

// readWebhookForm reads the form's fields; no type ticked means every
// type, as the API's empty eventTypes does.
func readWebhookForm(r *http.Request) (webhookForm, admin.WebhookInput) {
	f := webhookForm{URL: strings.TrimSpace(r.PostFormValue("url")), Description: strings.TrimSpace(r.PostFormValue("description")),
		Enabled: r.PostFormValue("enabled") == "true", Types: map[string]bool{}}
	types := []string{}
	for _, t := range r.PostForm["types"] {
		f.Types[t] = true
		types = append(types, t)
	}
	return f, admin.WebhookInput{URL: &f.URL, Description: &f.Description, EventTypes: &types}
}

// webhooksPage lists the endpoints of the organization in the address, or
// all of them on the top-level page.
func (c *Console) webhooksPage(w http.ResponseWriter, r *http.Request, s session) {
	created, err := c.takeSecret(r, s)
	if err != nil {
		c.failed(w, r, err)
		return
	}
	c.showWebhooks(w, r, s, http.StatusOK, webhookForm{Enabled: true}, created)
}

// showWebhooks shows the list, the create form and, after a creation, the
// new endpoint's secret.
func (c *Console) showWebhooks(w http.ResponseWriter, r *http.Request, s session, status int, form webhookForm, created *flashed) {
	ctx := r.Context()
	orgID := r.PathValue("org")
	v := view{Title: "Webhooks", CSRF: s.CSRF, Notice: notices[r.URL.Query().Get("done")]}
	if orgID != "" {
		org, err := c.Service.Org(ctx, orgID)
		if err != nil {
			c.failed(w, r, err)
			return
		}
		v.Title, v.Org, v.Tab = "Webhooks · "+org.Name, &org, "webhooks"
	}
	hooks, err := c.Service.ListWebhooks(ctx, orgID)
	if err != nil {
		c.failed(w, r, err)
		return
	}
	action := webhooksPath(orgID)
	v.Data = map[string]any{"Webhooks": hooks, "Form": form, "Types": lifecycle.EventTypes, "Action": action, "Created": created, "All": orgID == ""}
	c.render(w, r, status, "webhooks", v)
}

func (c *Console) createWebhook(w http.ResponseWriter, r *http.Request, s session) {
	form, in := readWebhookForm(r)
	in.Enabled = &form.Enabled
	created, err := c.Service.CreateWebhook(r.Context(), r.PathValue("org"), in)
	if errors.Is(err, admin.ErrInvalid) {
		form.Error = problem(err)
		c.showWebhooks(w, r, s, http.StatusBadRequest, form, nil)
		return
	}
	if err != nil {
		c.failed(w, r, err)
		return
	}
	c.redirectWithSecret(w, r, s, webhooksPath(r.PathValue("org")), flashed{Secret: created.Secret, For: created.URL})
}

func (c *Console) webhookPage(w http.ResponseWriter, r *http.Request, s session) {
	v, err := c.Service.Webhook(r.Context(), "", r.PathValue("id"))
	if err != nil {
		c.failed(w, r, err)
		return
	}
	rotated, err := c.takeSecret(r, s)
	if err != nil {
		c.failed(w, r, err)
		return
	}
	newSecret := ""
	if rotated != nil {
		newSecret = rotated.Secret
	}
	c.showWebhook(w, r, s, http.StatusOK, v, formOf(v), newSecret)
}

// showWebhook shows an endpoint with its edit form, its recent deliveries
// and, after a rotation, its new secret.
func (c *Console) showWebhook(w http.ResponseWriter, r *http.Request, s session, status int, hook admin.WebhookView, form webhookForm, newSecret string) {
	ctx := r.Context()
	before, err := cursorParam(r, "before", 1, "a delivery id")
	if err != nil {
		c.failed(w, r, err)
		return
	}
	dels, err := c.Service.WebhookDeliveries(ctx, "", hook.ID, before, pageSize)
	if err != nil {
		c.failed(w, r, err)
		return
	}
	next := ""
	if len(dels) == pageSize {
		next = "?before=" + strconv.FormatInt(dels[len(dels)-1].ID, 10)
	}
	org, err := c.webhookOrg(r, hook)
	if err != nil {
		c.failed(w, r, err)
		return
	}
	v := view{Title: "Webhook " + hook.URL, CSRF: s.CSRF, Org: org, Tab: "webhooks", Notice: notices[r.URL.Query().Get("done")]}
	v.Data = map[string]any{"Hook": hook, "Form": form, "Types": lifecycle.EventTypes, "Deliveries": dels,
		"Next": next, "Paged": before != 0, "Secret": newSecret}
	c.render(w, r, status, "webhook", v)
}

// webhookOrg is the organization an endpoint belongs to, nil for one of
// every organization: its page shows under that organization's tabs.
func (c *Console) webhookOrg(r *http.Request, hook admin.WebhookView) (*store.Org, error) {
	if hook.OrgID == nil {
		return nil, nil
	}
	org, err := c.Service.Org(r.Context(), *hook.OrgID)
	if err != nil {
		return nil, err
	}
	return &org, nil
}

func (c *Console) updateWebhook(w http.ResponseWriter, r *http.Request, s session) {
	ctx := r.Context()
	form, in := readWebhookForm(r)
	in.Enabled = &form.Enabled
	hook, err := c.Service.UpdateWebhook(ctx, "", r.PathValue("id"), in)
	if errors.Is(err, admin.ErrInvalid) {
		old, err2 := c.Service.Webhook(ctx, "", r.PathValue("id"))
		if err2 != nil {
			c.failed(w, r, err2)
			return
		}
		form.Error = problem(err)
		c.showWebhook(w, r, s, http.StatusBadRequest, old, form, "")
		return
	}
	if err != nil {
		c.failed(w, r, err)
		return
	}
	redirect(w, r, webhookPath(hook.ID), "webhook")
}

func (c *Console) rotateWebhook(w http.ResponseWriter, r *http.Request, s session) {
	hook, err := c.Service.RotateWebhookSecret(r.Context(), "", r.PathValue("id"))
	if err != nil {
		c.failed(w, r, err)
		return
	}
	c.redirectWithSecret(w, r, s, webhookPath(hook.ID), flashed{Secret: hook.Secret})
}

func (c *Console) deleteWebhookPage(w http.ResponseWriter, r *http.Request, s session) {
	hook, err := c.Service.Webhook(r.Context(), "", r.PathValue("id"))
	if err != nil {
		c.failed(w, r, err)
		return
	}
	org, err := c.webhookOrg(r, hook)
	if err != nil {
		c.failed(w, r, err)
		return
	}
	c.ask(w, r, s, org, "webhooks", question{
		Heading: "Delete the webhook to " + hook.URL + "?",
		Body:    "Nothing more is sent to it, and its delivery history goes with it. This cannot be undone; you can add the URL again later, with a new secret.",
		Action:  webhookPath(hook.ID) + "/delete", Button: "Delete webhook", ButtonID: "confirm-delete", Cancel: webhookPath(hook.ID),
	})
}

func (c *Console) deleteWebhook(w http.ResponseWriter, r *http.Request, s session) {
	ctx := r.Context()
	hook, err := c.Service.Webhook(ctx, "", r.PathValue("id"))
	if err == nil {
		err = c.Service.DeleteWebhook(ctx, "", hook.ID)
	}
	if err != nil {
		c.failed(w, r, err)
		return
	}
	orgID := ""
	if hook.OrgID != nil {
		orgID = *hook.OrgID
	}
	redirect(w, r, webhooksPath(orgID), "webhook-deleted")
}

func (c *Console) retryDelivery(w http.ResponseWriter, r *http.Request, s session) {
	id, err := strconv.ParseInt(r.PathValue("delivery"), 10, 64)
	if err != nil {
		c.failed(w, r, store.ErrNotFound)
		return
	}
	d, err := c.Service.RetryWebhookDelivery(r.Context(), "", r.PathValue("id"), id)
	if err != nil {
		c.failed(w, r, err)
		return
	}
	done := "retry-failed"
	if d.StatusCode >= 200 && d.StatusCode < 300 {
		done = "retry-ok"
	}
	redirect(w, r, webhookPath(r.PathValue("id")), done)
}

// eventsPage shows an organization's change feed, oldest first from a
// sequence, as the application reads it.
func (c *Console) eventsPage(w http.ResponseWriter, r *http.Request, s session) {
	ctx := r.Context()
	org, err := c.Service.Org(ctx, r.PathValue("org"))
	if err != nil {
		c.failed(w, r, err)
		return
	}
	q := r.URL.Query()
	after, err := cursorParam(r, "after", 0, "an event sequence (0 or more)")
	if err != nil {
		c.failed(w, r, err)
		return
	}
	var types []string
	if t := q.Get("type"); t != "" {
		types = []string{t}
	}
	page, err := c.Service.Events(ctx, org.ID, after, pageSize, types)
	var gone *admin.EventsGoneError
	if errors.As(err, &gone) {
		// Start again at the oldest event kept, and say why.
		v := url.Values{"after": {strconv.FormatInt(gone.PurgedThrough, 10)}, "type": {q.Get("type")}, "done": {"purged"}}
		http.Redirect(w, r, orgPath(org.ID)+"/events?"+v.Encode(), http.StatusSeeOther)
		return
	}
	if err != nil {
		c.failed(w, r, err)
		return
	}
	next := ""
	if len(page.Events) == pageSize {
		next = "?" + url.Values{"after": {strconv.FormatInt(page.NextAfter, 10)}, "type": {q.Get("type")}}.Encode()
	}
	c.render(w, r, http.StatusOK, "events", view{Title: "Events · " + org.Name, CSRF: s.CSRF, Org: &org, Tab: "events", Notice: notices[q.Get("done")],
		Data: map[string]any{"Events": page.Events, "Next": next, "Paged": after != 0, "Type": q.Get("type"), "Types": lifecycle.EventTypes}})
}

// settlePage offers the two ways to settle a last admin that converge or
// the reconciler keeps back: name another member to be admin, or confirm
// that the organization may be left without one.
func (c *Console) settlePage(w http.ResponseWriter, r *http.Request, s session) {
	c.showSettle(w, r, s, http.StatusOK, "", "")
}

func (c *Console) showSettle(w http.ResponseWriter, r *http.Request, s session, status int, newAdmin, problem string) {
	ctx := r.Context()
	org, err := c.Service.Org(ctx, r.PathValue("org"))
	if err != nil {
		c.failed(w, r, err)
		return
	}
	m, err := c.Service.Member(ctx, org.ID, r.PathValue("member"))
	if err != nil {
		c.failed(w, r, err)
		return
	}
	c.render(w, r, status, "settle", view{Title: "Settle the last admin", CSRF: s.CSRF, Org: &org, Tab: "members", Error: problem,
		Data: map[string]any{"Member": m, "NewAdmin": newAdmin}})
}

func (c *Console) settle(w http.ResponseWriter, r *http.Request, s session) {
	ctx := r.Context()
	orgID, memberID := r.PathValue("org"), r.PathValue("member")
	m, err := c.Service.Member(ctx, orgID, memberID)
	if err != nil {
		c.failed(w, r, err)
		return
	}
	var newAdminID string
	email := strings.TrimSpace(r.PostFormValue("new_admin"))
	confirm := r.PostFormValue("how") == "remove"
	switch {
	case confirm:
		// Typing the e-mail is the confirmation, as typing the count is for
		// a mass deprovision.
		if !strings.EqualFold(strings.TrimSpace(r.PostFormValue("confirm_email")), m.Email) {
			c.showSettle(w, r, s, http.StatusBadRequest, "", fmt.Sprintf("Type %s to confirm that the organization may be left without an admin.", m.Email))
			return
		}
	default:
		heir, err := c.Service.MemberByEmail(ctx, orgID, email)
		if errors.Is(err, store.ErrNotFound) {
			c.showSettle(w, r, s, http.StatusBadRequest, email, "No member of this organization has that e-mail.")
			return
		}
		if err != nil {
			c.failed(w, r, err)
			return
		}
		newAdminID = heir.ID
	}
	_, err = c.Service.SettleAdmin(ctx, orgID, memberID, newAdminID, confirm)
	switch {
	case errors.Is(err, admin.ErrInvalid), errors.Is(err, converge.ErrCannotSettle):
		// Why it cannot be settled so (not the last admin, not kept back,
		// the named member cannot be admin) is the operator's to read.
		c.showSettle(w, r, s, http.StatusConflict, email, err.Error())
		return
	case errors.Is(err, store.ErrConflict):
		c.showSettle(w, r, s, http.StatusConflict, email, "The members changed while you were reading. Check them and try again.")
		return
	}
	if err != nil {
		c.failed(w, r, err)
		return
	}
	redirect(w, r, orgPath(orgID)+"/members", "settled")
}
