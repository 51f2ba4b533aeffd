package admin

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/scimsync/scimsync/internal/httpjson"
	"github.com/scimsync/scimsync/internal/secret"
	"github.com/scimsync/scimsync/internal/weburl"
	"github.com/scimsync/scimsync/lifecycle"
	"github.com/scimsync/scimsync/store"
)

// Webhooks configures the webhook endpoints of Service.
type Webhooks struct {
	// Box seals signing secrets at rest; without it creating fails.
	Box *secret.Box
	// AllowPrivate accepts a URL whose host resolves to a private,
	// link-local or unspecified address (loopback is always accepted).
	AllowPrivate bool
	// LookupIP resolves a host (default net.DefaultResolver.LookupNetIP).
	LookupIP func(ctx context.Context, host string) ([]netip.Addr, error)
	// Resender sends a recorded delivery's event again; without it a
	// retry fails.
	Resender Resender
}

// Resender re-sends one delivery's event; *webhook.Deliverer is one.
type Resender interface {
	Resend(ctx context.Context, e store.WebhookEndpoint, d store.WebhookDelivery) (store.WebhookDelivery, error)
}

// WebhookSecretPrefix starts a signing secret (the Standard Webhooks form).
const WebhookSecretPrefix = "whsec_"

// NewWebhookSecret returns whsec_ and base64 of 24 random bytes.
func NewWebhookSecret() string {
	var b [24]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("webhook secret: reading random bytes: %v", err))
	}
	return WebhookSecretPrefix + base64.StdEncoding.EncodeToString(b[:])
}

// OpenWebhookSecret unseals an endpoint's signing secret.
func OpenWebhookSecret(box *secret.Box, e store.WebhookEndpoint) (string, error) {
	b, err := box.Open(e.Secret, []byte(e.ID))
	if err != nil {
		return "", fmt.Errorf("webhook %s: %w", e.ID, err)
	}
	return string(b), nil
}

// WebhookView is an endpoint as the admin API shows it: never its secret.
type WebhookView struct {
	ID             string     `json:"id"`
	OrgID          *string    `json:"orgId"`
	URL            string     `json:"url"`
	EventTypes     []string   `json:"eventTypes"`
	Description    string     `json:"description"`
	Enabled        bool       `json:"enabled"`
	DisabledReason string     `json:"disabledReason,omitempty"`
	FailingSince   *time.Time `json:"failingSince"`
	CreatedAt      time.Time  `json:"createdAt"`
	UpdatedAt      time.Time  `json:"updatedAt"`
}

// WebhookWithSecret is an endpoint with its signing secret: the answer of
// creation and of rotation, the only times the secret is shown.
type WebhookWithSecret struct {
	WebhookView
	Secret string `json:"secret"`
}

func viewWebhook(e store.WebhookEndpoint) WebhookView {
	types := e.EventTypes
	if types == nil {
		types = []string{}
	}
	return WebhookView{ID: e.ID, OrgID: e.OrgID, URL: e.URL, EventTypes: types, Description: e.Description, Enabled: e.Enabled,
		DisabledReason: e.DisabledReason, FailingSince: e.FailingSince, CreatedAt: e.CreatedAt, UpdatedAt: e.UpdatedAt}
}

// WebhookInput is what an operator submits; nil fields are left as they are
// (on creation: url is required, enabled defaults to true).
type WebhookInput struct {
	URL         *string   `json:"url"`
	EventTypes  *[]string `json:"eventTypes"`
	Description *string   `json:"description"`
	Enabled     *bool     `json:"enabled"`
}

// checkWebhookURL applies the outbound URL rule and refuses a host that
// resolves to a private address unless allowed.
func (s *Service) checkWebhookURL(ctx context.Context, raw string) (string, error) {
	raw = strings.TrimSpace(raw)
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.Opaque != "" {
		return "", fmt.Errorf("%w: url must be an absolute URL such as https://example.com/hook", ErrInvalid)
	}
	if err := weburl.CheckScheme(u); err != nil {
		return "", fmt.Errorf("%w: url %v", ErrInvalid, err)
	}
	if u.User != nil || u.Fragment != "" {
		return "", fmt.Errorf("%w: url must not contain user info or a fragment", ErrInvalid)
	}
	if len(raw) > 2000 {
		return "", fmt.Errorf("%w: url is longer than 2000 characters", ErrInvalid)
	}
	host := u.Hostname()
	if weburl.IsLoopback(host) || s.Webhooks.AllowPrivate {
		return u.String(), nil
	}
	addrs := []netip.Addr{}
	if a, err := netip.ParseAddr(host); err == nil {
		addrs = append(addrs, a)
	} else {
		lookup := s.Webhooks.LookupIP
		if lookup == nil {
			lookup = func(ctx context.Context, host string) ([]netip.Addr, error) {
				return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
			}
		}
		if addrs, err = lookup(ctx, host); err != nil {
			return "", fmt.Errorf("%w: url host %q does not resolve", ErrInvalid, host)
		}
	}
	for _, a := range addrs {
		if a.Unmap().IsLoopback() {
			continue
		}
		if weburl.IsPrivate(a) {
			return "", fmt.Errorf("%w: url host %q %v (set SCIMSYNC_WEBHOOK_ALLOW_PRIVATE=true to allow)", ErrInvalid, host, weburl.ErrPrivate)
		}
	}
	return u.String(), nil
}

func checkEventTypes(types []string) error {
	for _, t := range types {
		if !lifecycle.IsEventType(t) {
			return fmt.Errorf("%w: unknown event type %q; types are %s", ErrInvalid, t, strings.Join(lifecycle.EventTypes, ", "))
		}
	}
	return nil
}

func webhookAudit(e store.WebhookEndpoint, action, detail string) store.AuditEvent {
	org := ""
	if e.OrgID != nil {
		org = *e.OrgID
	}
	return store.AuditEvent{OrgID: org, Actor: actorAdmin, Action: action, EntityType: "webhook", EntityID: e.ID, Detail: detail}
}

func (s *Service) sealWebhookSecret(e *store.WebhookEndpoint) (string, error) {
	if s.Webhooks.Box == nil {
		return "", errors.New("webhook: no secret box")
	}
	sec := NewWebhookSecret()
	e.Secret = s.Webhooks.Box.Seal([]byte(sec), []byte(e.ID))
	return sec, nil
}

// CreateWebhook adds an endpoint: of orgID, or, with orgID empty, of every
// organization. Its secret is in the answer only.
func (s *Service) CreateWebhook(ctx context.Context, orgID string, in WebhookInput) (WebhookWithSecret, error) {
	e := store.WebhookEndpoint{ID: store.NewID(), Enabled: true}
	if orgID != "" {
		if _, err := s.Store.Org(ctx, orgID); err != nil {
			return WebhookWithSecret{}, err
		}
		e.OrgID = &orgID
	}
	if in.URL == nil {
		return WebhookWithSecret{}, fmt.Errorf("%w: url is required", ErrInvalid)
	}
	if err := s.applyWebhookInput(ctx, &e, in); err != nil {
		return WebhookWithSecret{}, err
	}
	sec, err := s.sealWebhookSecret(&e)
	if err != nil {
		return WebhookWithSecret{}, err
	}
	err = s.Store.Tx(ctx, func(tx *store.Store) error {
		if err := tx.CreateWebhookEndpoint(ctx, &e); err != nil {
			return err
		}
		if err := tx.StartWebhookCursors(ctx, e.ID, orgID); err != nil {
			return err
		}
		return tx.AddAuditEvent(ctx, webhookAudit(e, "webhook.create", "url="+e.URL))
	})
	if err != nil {
		return WebhookWithSecret{}, err
	}
	return WebhookWithSecret{WebhookView: viewWebhook(e), Secret: sec}, nil
}

func (s *Service) applyWebhookInput(ctx context.Context, e *store.WebhookEndpoint, in WebhookInput) error {
	if in.URL != nil {
		u, err := s.checkWebhookURL(ctx, *in.URL)
		if err != nil {
			return err
		}
		e.URL = u
	}
	if in.EventTypes != nil {
		if err := checkEventTypes(*in.EventTypes); err != nil {
			return err
		}
		e.EventTypes = *in.EventTypes
	}
	if in.Description != nil {
		if len(*in.Description) > 500 {
			return fmt.Errorf("%w: description is longer than 500 characters", ErrInvalid)
		}
		e.Description = *in.Description
	}
	if in.Enabled != nil {
		e.Enabled = *in.Enabled
		if e.Enabled {
			// Switched back on: its failures start afresh.
			e.DisabledReason, e.FailingSince = "", nil
		}
	}
	return nil
}

// Webhook reads an endpoint; with orgID set, only one of that organization.
func (s *Service) Webhook(ctx context.Context, orgID, id string) (WebhookView, error) {
	e, err := s.webhook(ctx, orgID, id)
	if err != nil {
		return WebhookView{}, err
	}
	return viewWebhook(e), nil
}

func (s *Service) webhook(ctx context.Context, orgID, id string) (store.WebhookEndpoint, error) {
	if orgID != "" {
		if _, err := s.Store.Org(ctx, orgID); err != nil {
			return store.WebhookEndpoint{}, err
		}
	}
	return s.Store.WebhookEndpoint(ctx, orgID, id)
}

// Webhooks lists endpoints: an organization's, or, with orgID empty, all.
func (s *Service) ListWebhooks(ctx context.Context, orgID string) ([]WebhookView, error) {
	if orgID != "" {
		if _, err := s.Store.Org(ctx, orgID); err != nil {
			return nil, err
		}
	}
	es, err := s.Store.WebhookEndpoints(ctx, orgID)
	if err != nil {
		return nil, err
	}
	out := make([]WebhookView, len(es))
	for i, e := range es {
		out[i] = viewWebhook(e)
	}
	return out, nil
}

// UpdateWebhook changes an endpoint.
func (s *Service) UpdateWebhook(ctx context.Context, orgID, id string, in WebhookInput) (WebhookView, error) {
	e, err := s.webhook(ctx, orgID, id)
	if err != nil {
		return WebhookView{}, err
	}
	if err := s.applyWebhookInput(ctx, &e, in); err != nil {
		return WebhookView{}, err
	}
	var parts []string
	if in.URL != nil {
		parts = append(parts, "url="+e.URL)
	}
	if in.EventTypes != nil {
		parts = append(parts, "eventTypes="+strings.Join(e.EventTypes, ","))
	}
	if in.Description != nil {
		parts = append(parts, "description")
	}
	if in.Enabled != nil {
		parts = append(parts, fmt.Sprintf("enabled=%t", e.Enabled))
	}
	err = s.Store.Tx(ctx, func(tx *store.Store) error {
		if err := tx.UpdateWebhookEndpoint(ctx, &e); err != nil {
			return err
		}
		return tx.AddAuditEvent(ctx, webhookAudit(e, "webhook.update", strings.Join(parts, " ")))
	})
	if err != nil {
		return WebhookView{}, err
	}
	return viewWebhook(e), nil
}

// DeleteWebhook removes an endpoint.
func (s *Service) DeleteWebhook(ctx context.Context, orgID, id string) error {
	e, err := s.webhook(ctx, orgID, id)
	if err != nil {
		return err
	}
	return s.Store.Tx(ctx, func(tx *store.Store) error {
		if err := tx.DeleteWebhookEndpoint(ctx, e.ID); err != nil {
			return err
		}
		return tx.AddAuditEvent(ctx, webhookAudit(e, "webhook.delete", ""))
	})
}

// RotateWebhookSecret replaces an endpoint's signing secret; the new one
// is in the answer only.
func (s *Service) RotateWebhookSecret(ctx context.Context, orgID, id string) (WebhookWithSecret, error) {
	e, err := s.webhook(ctx, orgID, id)
	if err != nil {
		return WebhookWithSecret{}, err
	}
	sec, err := s.sealWebhookSecret(&e)
	if err != nil {
		return WebhookWithSecret{}, err
	}
	err = s.Store.Tx(ctx, func(tx *store.Store) error {
		if err := tx.UpdateWebhookEndpoint(ctx, &e); err != nil {
			return err
		}
		return tx.AddAuditEvent(ctx, webhookAudit(e, "webhook.rotate_secret", ""))
	})
	if err != nil {
		return WebhookWithSecret{}, err
	}
	return WebhookWithSecret{WebhookView: viewWebhook(e), Secret: sec}, nil
}

func (a *API) createWebhook(w http.ResponseWriter, r *http.Request) {
	var body WebhookInput
	if !a.decode(w, r, &body) {
		return
	}
	v, err := a.Service.CreateWebhook(r.Context(), r.PathValue("org"), body)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	httpjson.Write(w, http.StatusCreated, "", v)
}

func (a *API) listWebhooks(w http.ResponseWriter, r *http.Request) {
	vs, err := a.Service.ListWebhooks(r.Context(), r.PathValue("org"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	httpjson.Write(w, http.StatusOK, "", map[string]any{"webhooks": vs})
}

func (a *API) getWebhook(w http.ResponseWriter, r *http.Request) {
	v, err := a.Service.Webhook(r.Context(), r.PathValue("org"), r.PathValue("id"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	httpjson.Write(w, http.StatusOK, "", v)
}

func (a *API) patchWebhook(w http.ResponseWriter, r *http.Request) {
	var body WebhookInput
	if !a.decode(w, r, &body) {
		return
	}
	v, err := a.Service.UpdateWebhook(r.Context(), r.PathValue("org"), r.PathValue("id"), body)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	httpjson.Write(w, http.StatusOK, "", v)
}

func (a *API) deleteWebhook(w http.ResponseWriter, r *http.Request) {
	if err := a.Service.DeleteWebhook(r.Context(), r.PathValue("org"), r.PathValue("id")); err != nil {
		a.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *API) rotateWebhookSecret(w http.ResponseWriter, r *http.Request) {
	v, err := a.Service.RotateWebhookSecret(r.Context(), r.PathValue("org"), r.PathValue("id"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	httpjson.Write(w, http.StatusOK, "", v)
}

// WebhookDeliveries lists an endpoint's attempts, newest first.
func (s *Service) WebhookDeliveries(ctx context.Context, orgID, id string, before int64, limit int) ([]store.WebhookDelivery, error) {
	e, err := s.webhook(ctx, orgID, id)
	if err != nil {
		return nil, err
	}
	ds, err := s.Store.WebhookDeliveries(ctx, e.ID, before, limit)
	if ds == nil {
		ds = []store.WebhookDelivery{}
	}
	return ds, err
}

// RetryWebhookDelivery sends a delivery's event once more, outside the
// ordered stream, and returns the attempt.
func (s *Service) RetryWebhookDelivery(ctx context.Context, orgID, id string, deliveryID int64) (store.WebhookDelivery, error) {
	e, err := s.webhook(ctx, orgID, id)
	if err != nil {
		return store.WebhookDelivery{}, err
	}
	d, err := s.Store.WebhookDeliveryByID(ctx, e.ID, deliveryID)
	if err != nil {
		return store.WebhookDelivery{}, err
	}
	if s.Webhooks.Resender == nil {
		return store.WebhookDelivery{}, errors.New("retry webhook delivery: no resender")
	}
	return s.Webhooks.Resender.Resend(ctx, e, d)
}

func (a *API) webhookDeliveries(w http.ResponseWriter, r *http.Request) {
	limit, before, ok := beforePageParams(w, r, "a delivery id")
	if !ok {
		return
	}
	ds, err := a.Service.WebhookDeliveries(r.Context(), r.PathValue("org"), r.PathValue("id"), before, limit)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	httpjson.Write(w, http.StatusOK, "", map[string]any{"deliveries": ds})
}

func (a *API) retryWebhookDelivery(w http.ResponseWriter, r *http.Request) {
	did, err := strconv.ParseInt(r.PathValue("delivery"), 10, 64)
	if err != nil {
		a.fail(w, r, fmt.Errorf("webhook delivery %w", store.ErrNotFound))
		return
	}
	d, err := a.Service.RetryWebhookDelivery(r.Context(), r.PathValue("org"), r.PathValue("id"), did)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	httpjson.Write(w, http.StatusOK, "", d)
}
