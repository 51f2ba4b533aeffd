// Package webhook delivers the change feed to webhook endpoints, signed
// per Standard Webhooks. Deliver sends an endpoint one organization's
// events after its cursor, one at a time in sequence order, advancing the
// cursor after each 2xx and stopping at the first failure: an endpoint
// never sees an event before an earlier one of the same organization, and
// sees an event again only as a re-send with the same webhook-id (at least
// once). The caller retries a failed Deliver (asynq's backoff); an
// endpoint failing without a break for DisableAfter is switched off.
package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/scimsync/scimsync/internal/clock"
	"github.com/scimsync/scimsync/internal/secret"
	"github.com/scimsync/scimsync/internal/weburl"
	"github.com/scimsync/scimsync/store"
)

// Limits of one attempt.
const (
	AttemptTimeout = 10 * time.Second
	MaxResponse    = 64 << 10 // bytes of an answer read
	MaxExcerpt     = 1 << 10  // bytes of an answer recorded
	DisableAfter   = 24 * time.Hour
	batch          = 100 // events read at a time
	commitEvery    = 100 // accepted attempts per commit, at most
	commitAfter    = time.Second
)

// Deliverer sends events to endpoints.
type Deliverer struct {
	Store *store.Store
	// Box opens the endpoints' signing secrets.
	Box *secret.Box
	// AllowPrivate lets a connection reach a private address.
	AllowPrivate bool
	Clock        clock.Clock
	Log          *slog.Logger
	// Client, when set, replaces the client NewClient makes (tests).
	Client *http.Client
}

// NewClient is the delivery client: AttemptTimeout per attempt, no
// redirects followed, and, unless allowPrivate, no connection to a private
// address, checked on the address dialled (so DNS cannot rebind past it).
func NewClient(allowPrivate bool) *http.Client {
	d := &net.Dialer{Timeout: AttemptTimeout}
	if !allowPrivate {
		d.Control = weburl.DialControl
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = d.DialContext
	tr.Proxy = nil
	return &http.Client{
		Timeout:   AttemptTimeout,
		Transport: tr,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

func (d *Deliverer) client() *http.Client {
	if d.Client == nil {
		d.Client = NewClient(d.AllowPrivate)
	}
	return d.Client
}

func (d *Deliverer) log() *slog.Logger {
	if d.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return d.Log
}

// ErrDelivery is an attempt the endpoint did not accept.
var ErrDelivery = errors.New("webhook delivery failed")

// Deliver sends an endpoint the events of orgID after its cursor that it
// takes, in sequence order, up to the latest when it started. It returns
// nil once all are delivered (or the endpoint is gone or off) and an error
// matching ErrDelivery at the first one refused.
func (d *Deliverer) Deliver(ctx context.Context, endpointID, orgID string) error {
	e, err := d.Store.WebhookEndpoint(ctx, "", endpointID)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if !e.Enabled || (e.OrgID != nil && *e.OrgID != orgID) {
		return nil
	}
	wh, err := d.signer(e)
	if err != nil {
		return err
	}
	cur, err := d.Store.EventCursor(ctx, orgID)
	if err != nil {
		return err
	}
	after, err := d.Store.WebhookCursor(ctx, endpointID, orgID)
	if err != nil {
		return err
	}
	// Accepted attempts commit with the cursor in groups (commitEvery, or
	// commitAfter apart), not one transaction each, which would hold
	// delivery to the database's commit rate. A crash before a commit
	// re-sends that group with the same webhook-ids: at least once.
	clk := clock.OrReal(d.Clock)
	var accepted []store.WebhookDelivery
	committed, lastCommit := after, clk.Now()
	commit := func() error {
		if after == committed {
			return nil
		}
		// Delivered is delivered: record it even when ctx is done.
		if err := d.Store.AdvanceWebhookCursor(context.WithoutCancel(ctx), endpointID, orgID, after, accepted...); err != nil {
			return err
		}
		accepted, committed, lastCommit = accepted[:0], after, clk.Now()
		return nil
	}
	for after < cur.Latest {
		evs, err := d.Store.Events(ctx, orgID, after, cur.Latest, batch, e.EventTypes)
		if err != nil {
			return errors.Join(err, commit())
		}
		for _, ev := range evs {
			// Only the event a failing endpoint stopped at has had
			// attempts: a success clears failing_since.
			attempt := 1
			if e.FailingSince != nil {
				n, err := d.Store.WebhookAttempts(ctx, e.ID, ev.ID)
				if err != nil {
					return err
				}
				attempt = n + 1
			}
			rec, sendErr := d.attempt(ctx, e, wh, ev, attempt)
			if sendErr != nil {
				// The accepted ones first: the failure is after them,
				// and their commit clears failing_since.
				if err := commit(); err != nil {
					return errors.Join(sendErr, err)
				}
				if rec.EventID == "" {
					return sendErr // not sent: no failure of the endpoint's
				}
				if ctx.Err() != nil {
					// Stopped (shutdown, task timeout): the endpoint did
					// not refuse; the event is sent again next time.
					return fmt.Errorf("deliver to webhook %s: %w", e.ID, ctx.Err())
				}
				if err := d.Store.AddWebhookDelivery(context.WithoutCancel(ctx), &rec); err != nil {
					return errors.Join(sendErr, err)
				}
				return d.failed(ctx, e, sendErr)
			}
			accepted = append(accepted, rec)
			e.FailingSince = nil
			after = ev.Sequence
			if len(accepted) >= commitEvery || clk.Now().Sub(lastCommit) >= commitAfter {
				if err := commit(); err != nil {
					return err
				}
			}
		}
		if len(evs) < batch {
			// The rest up to Latest are of other types: skip them.
			after = cur.Latest
		}
	}
	return commit()
}

// Resend sends one recorded delivery's event again, outside the ordered
// stream, and returns the attempt as recorded.
func (d *Deliverer) Resend(ctx context.Context, e store.WebhookEndpoint, del store.WebhookDelivery) (store.WebhookDelivery, error) {
	evs, err := d.Store.Events(ctx, del.OrgID, del.Sequence-1, del.Sequence, 1, nil)
	if err != nil {
		return store.WebhookDelivery{}, err
	}
	if len(evs) == 0 {
		return store.WebhookDelivery{}, fmt.Errorf("event %d of %s (purged?) %w", del.Sequence, del.OrgID, store.ErrNotFound)
	}
	wh, err := d.signer(e)
	if err != nil {
		return store.WebhookDelivery{}, err
	}
	n, err := d.Store.WebhookAttempts(ctx, e.ID, evs[0].ID)
	if err != nil {
		return store.WebhookDelivery{}, err
	}
	rec, err := d.attempt(ctx, e, wh, evs[0], n+1)
	if rec.EventID == "" {
		return rec, err // not sent
	}
	return rec, d.Store.AddWebhookDelivery(ctx, &rec)
}

func (d *Deliverer) signer(e store.WebhookEndpoint) (*standardwebhooks.Webhook, error) {
	sec, err := d.Box.Open(e.Secret, []byte(e.ID))
	if err != nil {
		return nil, fmt.Errorf("webhook %s: %w", e.ID, err)
	}
	return standardwebhooks.NewWebhook(string(sec))
}

// attempt posts one event and returns the attempt to record; its EventID
// is empty when nothing was sent.
func (d *Deliverer) attempt(ctx context.Context, e store.WebhookEndpoint, wh *standardwebhooks.Webhook, ev store.Event, attempt int) (store.WebhookDelivery, error) {
	clk := clock.OrReal(d.Clock)
	body, err := json.Marshal(ev.View())
	if err != nil {
		return store.WebhookDelivery{}, fmt.Errorf("render event %s: %w", ev.ID, err)
	}
	rec := store.WebhookDelivery{EndpointID: e.ID, OrgID: ev.OrgID, EventID: ev.ID, Sequence: ev.Sequence, Attempt: attempt}
	ts := clk.Now()
	sig, err := wh.Sign(ev.ID, ts, body)
	if err != nil {
		return store.WebhookDelivery{}, fmt.Errorf("sign event %s: %w", ev.ID, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.URL, bytes.NewReader(body))
	if err != nil {
		return store.WebhookDelivery{}, fmt.Errorf("webhook %s: %w", e.ID, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "scimsync-webhooks")
	req.Header.Set("webhook-id", ev.ID)
	req.Header.Set("webhook-timestamp", fmt.Sprint(ts.Unix()))
	req.Header.Set("webhook-signature", sig)
	start := time.Now()
	resp, err := d.client().Do(req)
	var sendErr error
	if err != nil {
		rec.Error = err.Error()
		sendErr = fmt.Errorf("%w: %v", ErrDelivery, err)
	} else {
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, MaxResponse))
		resp.Body.Close()
		rec.StatusCode = resp.StatusCode
		rec.Response = excerpt(raw)
		if resp.StatusCode < 200 || resp.StatusCode > 299 {
			sendErr = fmt.Errorf("%w: status %d", ErrDelivery, resp.StatusCode)
		}
	}
	rec.LatencyMS = time.Since(start).Milliseconds()
	rec.CreatedAt = clk.Now().UTC()
	return rec, sendErr
}

// excerpt is up to MaxExcerpt bytes of an answer, cut on a rune boundary.
func excerpt(b []byte) string {
	if len(b) <= MaxExcerpt {
		return strings.ToValidUTF8(string(b), "")
	}
	return strings.ToValidUTF8(string(b[:MaxExcerpt]), "")
}

// failed notes an endpoint's failure and switches it off once it has
// failed without a break for DisableAfter.
func (d *Deliverer) failed(ctx context.Context, e store.WebhookEndpoint, sendErr error) error {
	now := clock.OrReal(d.Clock).Now().UTC()
	since, err := d.Store.MarkWebhookFailing(ctx, e.ID, now)
	if err != nil {
		return errors.Join(sendErr, err)
	}
	if now.Sub(since) < DisableAfter {
		return sendErr
	}
	reason := fmt.Sprintf("failing since %s: %v", since.Format(time.RFC3339), sendErr)
	org := deref(e.OrgID)
	err = d.Store.Tx(ctx, func(tx *store.Store) error {
		cur, err := tx.WebhookEndpoint(ctx, "", e.ID)
		if err != nil {
			return err
		}
		cur.Enabled, cur.DisabledReason = false, reason
		if err := tx.UpdateWebhookEndpoint(ctx, &cur); err != nil {
			return err
		}
		return tx.AddAuditEvent(ctx, store.AuditEvent{OrgID: org, Actor: "system", Action: "webhook.disable", EntityType: "webhook", EntityID: e.ID, Detail: reason})
	})
	if err != nil {
		return errors.Join(sendErr, err)
	}
	d.log().WarnContext(ctx, "webhook.disabled", "webhook_id", e.ID, "url", e.URL, "failing_since", since, "err", sendErr)
	return nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
