package store

import (
	"context"
	"fmt"
	"time"
)

// WebhookEndpoint is where the change feed is delivered. OrgID nil serves
// every organization; EventTypes empty means every type. Secret is the
// signing secret sealed by the caller; the store never sees it in clear.
type WebhookEndpoint struct {
	ID             string     `gorm:"column:id;primaryKey"`
	OrgID          *string    `gorm:"column:org_id"`
	URL            string     `gorm:"column:url"`
	EventTypes     []string   `gorm:"column:event_types;serializer:json"`
	Description    string     `gorm:"column:description"`
	Enabled        bool       `gorm:"column:enabled"`
	Secret         []byte     `gorm:"column:secret"`
	DisabledReason string     `gorm:"column:disabled_reason"`
	FailingSince   *time.Time `gorm:"column:failing_since"`
	CreatedAt      time.Time  `gorm:"column:created_at"`
	UpdatedAt      time.Time  `gorm:"column:updated_at"`
}

func (WebhookEndpoint) TableName() string { return "webhook_endpoints" }

// CreateWebhookEndpoint stores a new endpoint, giving it an id.
func (s *Store) CreateWebhookEndpoint(ctx context.Context, e *WebhookEndpoint) error {
	now := s.now()
	if e.ID == "" {
		e.ID = NewID()
	}
	e.CreatedAt, e.UpdatedAt = now, now
	if e.EventTypes == nil {
		e.EventTypes = []string{}
	}
	// Select every column: gorm would leave a false Enabled to the default.
	if err := s.conn(ctx).Select("*").Create(e).Error; err != nil {
		return fmt.Errorf("create webhook endpoint: %w", err)
	}
	return nil
}

// WebhookEndpoint reads one endpoint. With orgID non-empty only that
// organization's endpoints are found; with it empty, any endpoint.
func (s *Store) WebhookEndpoint(ctx context.Context, orgID, id string) (WebhookEndpoint, error) {
	q := s.conn(ctx).Where("id = ?", id)
	if orgID != "" {
		q = q.Where("org_id = ?", orgID)
	}
	var e WebhookEndpoint
	if err := q.Take(&e).Error; err != nil {
		return WebhookEndpoint{}, notFound(err, "webhook endpoint")
	}
	return e, nil
}

// WebhookEndpoints lists endpoints, oldest first: with orgID non-empty,
// that organization's; with it empty, every one.
func (s *Store) WebhookEndpoints(ctx context.Context, orgID string) ([]WebhookEndpoint, error) {
	q := s.conn(ctx)
	if orgID != "" {
		q = q.Where("org_id = ?", orgID)
	}
	var out []WebhookEndpoint
	if err := q.Order("created_at, id").Find(&out).Error; err != nil {
		return nil, fmt.Errorf("list webhook endpoints: %w", err)
	}
	return out, nil
}

// UpdateWebhookEndpoint writes every field of e but its id, organization
// and creation time.
func (s *Store) UpdateWebhookEndpoint(ctx context.Context, e *WebhookEndpoint) error {
	e.UpdatedAt = s.now()
	if e.EventTypes == nil {
		e.EventTypes = []string{}
	}
	res := s.conn(ctx).Model(&WebhookEndpoint{}).Where("id = ?", e.ID).
		Select("url", "event_types", "description", "enabled", "secret", "disabled_reason", "failing_since", "updated_at").
		Updates(e)
	if res.Error != nil {
		return fmt.Errorf("update webhook endpoint: %w", res.Error)
	}
	if res.RowsAffected == 0 {
		return fmt.Errorf("webhook endpoint %w", ErrNotFound)
	}
	return nil
}

// DeleteWebhookEndpoint removes an endpoint.
func (s *Store) DeleteWebhookEndpoint(ctx context.Context, id string) error {
	res := s.conn(ctx).Where("id = ?", id).Delete(&WebhookEndpoint{})
	if res.Error != nil {
		return fmt.Errorf("delete webhook endpoint: %w", res.Error)
	}
	if res.RowsAffected == 0 {
		return fmt.Errorf("webhook endpoint %w", ErrNotFound)
	}
	return nil
}

// WebhookDelivery is one attempt to deliver an event to an endpoint.
type WebhookDelivery struct {
	ID         int64     `gorm:"column:id;primaryKey;autoIncrement" json:"id"`
	EndpointID string    `gorm:"column:endpoint_id" json:"endpointId"`
	OrgID      string    `gorm:"column:org_id" json:"orgId"`
	EventID    string    `gorm:"column:event_id" json:"eventId"`
	Sequence   int64     `gorm:"column:sequence" json:"sequence"`
	Attempt    int       `gorm:"column:attempt" json:"attempt"`
	StatusCode int       `gorm:"column:status_code" json:"statusCode"`
	Error      string    `gorm:"column:error" json:"error,omitempty"`
	LatencyMS  int64     `gorm:"column:latency_ms" json:"latencyMs"`
	Response   string    `gorm:"column:response" json:"response"`
	CreatedAt  time.Time `gorm:"column:created_at" json:"createdAt"`
}

func (WebhookDelivery) TableName() string { return "webhook_deliveries" }

// AddWebhookDelivery records an attempt.
func (s *Store) AddWebhookDelivery(ctx context.Context, d *WebhookDelivery) error {
	d.ID = 0
	if d.CreatedAt.IsZero() {
		d.CreatedAt = s.now()
	}
	if err := s.conn(ctx).Create(d).Error; err != nil {
		return fmt.Errorf("add webhook delivery: %w", err)
	}
	return nil
}

// WebhookDeliveries lists an endpoint's attempts, newest first, with ids
// below before (0: from the newest), at most limit.
func (s *Store) WebhookDeliveries(ctx context.Context, endpointID string, before int64, limit int) ([]WebhookDelivery, error) {
	q := s.conn(ctx).Where("endpoint_id = ?", endpointID)
	if before > 0 {
		q = q.Where("id < ?", before)
	}
	var out []WebhookDelivery
	if err := q.Order("id DESC").Limit(limit).Find(&out).Error; err != nil {
		return nil, fmt.Errorf("list webhook deliveries: %w", err)
	}
	return out, nil
}

// WebhookDeliveryByID reads one attempt of an endpoint.
func (s *Store) WebhookDeliveryByID(ctx context.Context, endpointID string, id int64) (WebhookDelivery, error) {
	var d WebhookDelivery
	if err := s.conn(ctx).Where("endpoint_id = ? AND id = ?", endpointID, id).Take(&d).Error; err != nil {
		return WebhookDelivery{}, notFound(err, "webhook delivery")
	}
	return d, nil
}

// WebhookAttempts counts the attempts at one event of an endpoint.
func (s *Store) WebhookAttempts(ctx context.Context, endpointID, eventID string) (int, error) {
	var n int64
	if err := s.conn(ctx).Model(&WebhookDelivery{}).Where("endpoint_id = ? AND event_id = ?", endpointID, eventID).Count(&n).Error; err != nil {
		return 0, fmt.Errorf("count webhook deliveries: %w", err)
	}
	return int(n), nil
}

// WebhookCursor is the last sequence of an organization delivered to an
// endpoint; 0 before the first.
func (s *Store) WebhookCursor(ctx context.Context, endpointID, orgID string) (int64, error) {
	var seq []int64
	if err := s.conn(ctx).Raw("SELECT last_sequence FROM webhook_cursors WHERE endpoint_id = ? AND org_id = ?", endpointID, orgID).
		Scan(&seq).Error; err != nil {
		return 0, fmt.Errorf("webhook cursor: %w", err)
	}
	if len(seq) == 0 {
		return 0, nil
	}
	return seq[0], nil
}

// AdvanceWebhookCursor moves an endpoint's cursor of an organization
// forward to seq (never back) and clears the endpoint's failing_since,
// recording the deliveries ds in the same transaction.
func (s *Store) AdvanceWebhookCursor(ctx context.Context, endpointID, orgID string, seq int64, ds ...WebhookDelivery) error {
	return s.Tx(ctx, func(tx *Store) error {
		if len(ds) > 0 {
			for i := range ds {
				ds[i].ID = 0
				if ds[i].CreatedAt.IsZero() {
					ds[i].CreatedAt = tx.now()
				}
			}
			if err := tx.conn(ctx).CreateInBatches(ds, 200).Error; err != nil {
				return fmt.Errorf("add webhook deliveries: %w", err)
			}
		}
		db := tx.conn(ctx)
		if err := db.Exec(`INSERT INTO webhook_cursors (endpoint_id, org_id, last_sequence) VALUES (?, ?, ?)
ON CONFLICT (endpoint_id, org_id) DO UPDATE SET last_sequence = excluded.last_sequence
WHERE webhook_cursors.last_sequence < excluded.last_sequence`, endpointID, orgID, seq).Error; err != nil {
			return fmt.Errorf("advance webhook cursor: %w", err)
		}
		if err := db.Exec("UPDATE webhook_endpoints SET failing_since = NULL WHERE id = ? AND failing_since IS NOT NULL", endpointID).Error; err != nil {
			return fmt.Errorf("advance webhook cursor: %w", err)
		}
		return nil
	})
}

// MarkWebhookFailing sets an endpoint's failing_since to at, unless it is
// failing already, and returns the time it has been failing since.
func (s *Store) MarkWebhookFailing(ctx context.Context, endpointID string, at time.Time) (time.Time, error) {
	if err := s.conn(ctx).Exec("UPDATE webhook_endpoints SET failing_since = ? WHERE id = ? AND failing_since IS NULL", at, endpointID).Error; err != nil {
		return time.Time{}, fmt.Errorf("mark webhook failing: %w", err)
	}
	e, err := s.WebhookEndpoint(ctx, "", endpointID)
	if err != nil {
		return time.Time{}, err
	}
	if e.FailingSince == nil {
		return at, nil
	}
	return *e.FailingSince, nil
}

// WebhookBacklog is an enabled endpoint and an organization whose events
// it has not all been delivered.
type WebhookBacklog struct {
	EndpointID string `gorm:"column:endpoint_id"`
	OrgID      string `gorm:"column:org_id"`
}

// WebhookBacklogs lists every enabled endpoint × organization whose cursor
// is behind the organization's latest sequence.
func (s *Store) WebhookBacklogs(ctx context.Context) ([]WebhookBacklog, error) {
	var out []WebhookBacklog
	err := s.conn(ctx).Raw(`SELECT e.id AS endpoint_id, c.org_id AS org_id
FROM webhook_endpoints e
JOIN event_counters c ON e.org_id IS NULL OR e.org_id = c.org_id
LEFT JOIN webhook_cursors w ON w.endpoint_id = e.id AND w.org_id = c.org_id
WHERE e.enabled AND c.last_sequence > COALESCE(w.last_sequence, 0)
ORDER BY e.id, c.org_id`).Scan(&out).Error
	if err != nil {
		return nil, fmt.Errorf("webhook backlogs: %w", err)
	}
	return out, nil
}

// StartWebhookCursors sets a new endpoint's cursors at the latest sequence
// of its organization (orgID non-empty) or of every organization, so that
// it receives the events after its creation, not the retained history.
func (s *Store) StartWebhookCursors(ctx context.Context, endpointID, orgID string) error {
	q := `INSERT INTO webhook_cursors (endpoint_id, org_id, last_sequence)
SELECT ?, org_id, last_sequence FROM event_counters`
	args := []any{endpointID}
	if orgID != "" {
		q += " WHERE org_id = ?"
		args = append(args, orgID)
	}
	if err := s.conn(ctx).Exec(q, args...).Error; err != nil {
		return fmt.Errorf("start webhook cursors: %w", err)
	}
	return nil
}
