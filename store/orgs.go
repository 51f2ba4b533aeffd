package store

import (
	"context"
	"fmt"
)

// CreateOrg inserts a new organization.
func (s *Store) CreateOrg(ctx context.Context, name string) (Org, error) {
	now := s.now()
	o := Org{ID: NewID(), Name: name, RoleMapping: JSONMap{}, FullReconcileSchedule: DefaultFullReconcileSchedule, CreatedAt: now, UpdatedAt: now}
	if err := s.conn(ctx).Create(&o).Error; err != nil {
		return Org{}, fmt.Errorf("create org: %w", err)
	}
	return o, nil
}

// Org reads one organization.
func (s *Store) Org(ctx context.Context, id string) (Org, error) {
	var o Org
	err := s.conn(ctx).Where("id = ?", id).Take(&o).Error
	if err != nil {
		return Org{}, notFound(err, "organization")
	}
	return o, nil
}

// Orgs lists all organizations, oldest first.
func (s *Store) Orgs(ctx context.Context) ([]Org, error) {
	var out []Org
	if err := s.conn(ctx).Order("created_at, id").Find(&out).Error; err != nil {
		return nil, fmt.Errorf("list orgs: %w", err)
	}
	return out, nil
}

// OrgPatch is a partial update of an organization; nil fields stay.
type OrgPatch struct {
	Name              *string
	SCIMEnabled       *bool
	ReconcileSchedule *string
	// FullReconcileSchedule "" means no full pull on a schedule.
	FullReconcileSchedule *string
	RoleMapping           *JSONMap
}

// DefaultFullReconcileSchedule is a new organization's schedule of full
// pulls (see Org.FullReconcileSchedule).
const DefaultFullReconcileSchedule = "@daily"

// UpdateOrg applies p and returns the organization as it now is.
func (s *Store) UpdateOrg(ctx context.Context, id string, p OrgPatch) (Org, error) {
	var out Org
	err := s.Tx(ctx, func(tx *Store) error {
		o, err := tx.Org(ctx, id)
		if err != nil {
			return err
		}
		if p.Name != nil {
			o.Name = *p.Name
		}
		if p.SCIMEnabled != nil {
			o.SCIMEnabled = *p.SCIMEnabled
		}
		if p.ReconcileSchedule != nil {
			o.ReconcileSchedule = *p.ReconcileSchedule
		}
		if p.FullReconcileSchedule != nil {
			o.FullReconcileSchedule = *p.FullReconcileSchedule
		}
		if p.RoleMapping != nil {
			o.RoleMapping = *p.RoleMapping
		}
		o.UpdatedAt = tx.now()
		if err := tx.conn(ctx).Model(&Org{}).Where("id = ?", id).Updates(map[string]any{
			"name": o.Name, "scim_enabled": o.SCIMEnabled, "reconcile_schedule": o.ReconcileSchedule,
			"full_reconcile_schedule": o.FullReconcileSchedule,
			"role_mapping":            o.RoleMapping, "updated_at": o.UpdatedAt,
		}).Error; err != nil {
			return fmt.Errorf("update org: %w", err)
		}
		out = o
		return nil
	})
	return out, err
}
