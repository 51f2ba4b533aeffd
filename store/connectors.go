package store

import (
	"context"
	"fmt"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// PutConnector creates or replaces an organization's connector. A
// replacement bumps its generation, which invalidates its delta cursor:
// new settings or credentials may see another directory.
func (s *Store) PutConnector(ctx context.Context, c *Connector) error {
	now := s.now()
	c.UpdatedAt = now
	if c.CreatedAt.IsZero() {
		c.CreatedAt = now
	}
	if c.Generation == 0 {
		c.Generation = 1
	}
	updates := append(clause.AssignmentColumns([]string{"type", "settings", "credentials", "updated_at"}),
		clause.Assignment{Column: clause.Column{Name: "generation"}, Value: gorm.Expr("connectors.generation + 1")})
	err := s.conn(ctx).Clauses(clause.OnConflict{
		Columns:   []clause.Column{{Name: "org_id"}},
		DoUpdates: updates,
	}).Create(c).Error
	if err != nil {
		return fmt.Errorf("put connector: %w", err)
	}
	return nil
}

// Connector reads an organization's connector; ErrNotFound when it has none.
func (s *Store) Connector(ctx context.Context, orgID string) (Connector, error) {
	var c Connector
	if err := s.conn(ctx).Where("org_id = ?", orgID).Take(&c).Error; err != nil {
		return Connector{}, notFound(err, "connector")
	}
	return c, nil
}

// DeleteConnector removes an organization's connector.
func (s *Store) DeleteConnector(ctx context.Context, orgID string) error {
	res := s.conn(ctx).Where("org_id = ?", orgID).Delete(&Connector{})
	if res.Error != nil {
		return fmt.Errorf("delete connector: %w", res.Error)
	}
	if res.RowsAffected == 0 {
		return fmt.Errorf("connector %w", ErrNotFound)
	}
	return nil
}
