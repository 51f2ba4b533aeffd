package store

import (
	"context"
	"fmt"
)

// AddAuditEvent appends to an organization's audit trail.
func (s *Store) AddAuditEvent(ctx context.Context, e AuditEvent) error {
	e.ID = 0
	if e.CreatedAt.IsZero() {
		e.CreatedAt = s.now()
	}
	if err := s.conn(ctx).Create(&e).Error; err != nil {
		return fmt.Errorf("add audit event: %w", err)
	}
	return nil
}

// AuditEvents lists an organization's audit events, newest first, with ids
// below before (0: from the newest), at most limit.
func (s *Store) AuditEvents(ctx context.Context, orgID string, before int64, limit int) ([]AuditEvent, error) {
	q := s.conn(ctx).Where("org_id = ?", orgID)
	if before > 0 {
		q = q.Where("id < ?", before)
	}
	var out []AuditEvent
	if err := q.Order("id DESC").Limit(limit).Find(&out).Error; err != nil {
		return nil, fmt.Errorf("list audit events: %w", err)
	}
	return out, nil
}
