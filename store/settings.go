package store

import (
	"context"
	"fmt"

	"gorm.io/gorm/clause"
)

// Setting keys.
const SettingAdminTokenHash = "admin_token_hash"

// Setting reads a process-wide setting; ErrNotFound when unset.
func (s *Store) Setting(ctx context.Context, key string) (string, error) {
	var st setting
	if err := s.conn(ctx).Where("key = ?", key).Take(&st).Error; err != nil {
		return "", notFound(err, "setting")
	}
	return st.Value, nil
}

// SetSettingIfAbsent stores value under key unless the key is already set,
// and returns the value that is stored now. Two processes racing on first
// start therefore agree on one value.
func (s *Store) SetSettingIfAbsent(ctx context.Context, key, value string) (stored string, err error) {
	err = s.conn(ctx).Clauses(clause.OnConflict{DoNothing: true}).
		Create(&setting{Key: key, Value: value, UpdatedAt: s.now()}).Error
	if err != nil {
		return "", fmt.Errorf("set setting: %w", err)
	}
	return s.Setting(ctx, key)
}
