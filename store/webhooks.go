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
