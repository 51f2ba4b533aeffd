package store

import (
	"context"
	"fmt"
	"time"
)

// CreateSCIMToken stores a token's hash for an organization.
func (s *Store) CreateSCIMToken(ctx context.Context, orgID, description, tokenHash string, expiresAt *time.Time) (SCIMToken, error) {
	t := SCIMToken{ID: NewID(), OrgID: orgID, Description: description, TokenHash: tokenHash, CreatedAt: s.now(), ExpiresAt: expiresAt}
	if err := s.conn(ctx).Create(&t).Error; err != nil {
		if isUniqueViolation(err) {
			return SCIMToken{}, fmt.Errorf("create scim token: %w", ErrConflict)
		}
		return SCIMToken{}, fmt.Errorf("create scim token: %w", err)
	}
	return t, nil
}

// SCIMTokens lists an organization's tokens, newest first, revoked included.
func (s *Store) SCIMTokens(ctx context.Context, orgID string) ([]SCIMToken, error) {
	var out []SCIMToken
	if err := s.conn(ctx).Where("org_id = ?", orgID).Order("created_at DESC, id DESC").Find(&out).Error; err != nil {
		return nil, fmt.Errorf("list scim tokens: %w", err)
	}
	return out, nil
}

// SCIMTokenByHash finds a token by the hash of its secret. The caller still
// checks Usable and compares in constant time.
func (s *Store) SCIMTokenByHash(ctx context.Context, tokenHash string) (SCIMToken, error) {
	var t SCIMToken
	if err := s.conn(ctx).Where("token_hash = ?", tokenHash).Take(&t).Error; err != nil {
		return SCIMToken{}, notFound(err, "SCIM token")
	}
	return t, nil
}

// RevokeSCIMToken marks an organization's token revoked. Revoking twice is
// not an error; an id of another organization is ErrNotFound.
func (s *Store) RevokeSCIMToken(ctx context.Context, orgID, id string) error {
	res := s.conn(ctx).Model(&SCIMToken{}).Where("org_id = ? AND id = ?", orgID, id).
		Update("revoked_at", s.now())
	if res.Error != nil {
		return fmt.Errorf("revoke scim token: %w", res.Error)
	}
	if res.RowsAffected == 0 {
		return fmt.Errorf("SCIM token %w", ErrNotFound)
	}
	return nil
}

// TouchSCIMTokens records last use for tokens; callers coarsen calls so that
// requests do not each cost a write.
func (s *Store) TouchSCIMToken(ctx context.Context, id string, at time.Time) error {
	if err := s.conn(ctx).Model(&SCIMToken{}).Where("id = ? AND (last_used_at IS NULL OR last_used_at < ?)", id, at).
		Update("last_used_at", at).Error; err != nil {
		return fmt.Errorf("touch scim token: %w", err)
	}
	return nil
}
