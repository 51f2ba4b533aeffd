package store

import (
	"context"
	"fmt"

	"gorm.io/gorm/clause"
)

// Mail log statuses. A "sending" row is a claim: a send with its key has
// started and may or may not have reached the server.
const (
	MailSending   = "sending"
	MailSent      = "sent"
	MailRecorded  = "recorded"
	MailRejected  = "rejected"
	MailUncertain = "uncertain"
)

// ClaimMail inserts m unless a message with its idempotency key exists, and
// reports whether it did. The claim is what makes a send happen at most once
// per key.
func (s *Store) ClaimMail(ctx context.Context, m *MailMessage) (bool, error) {
	m.ID = 0
	m.CreatedAt = s.now()
	res := s.conn(ctx).Clauses(clause.OnConflict{Columns: []clause.Column{{Name: "idempotency_key"}}, DoNothing: true}).Create(m)
	if res.Error != nil {
		return false, fmt.Errorf("claim mail: %w", res.Error)
	}
	return res.RowsAffected == 1, nil
}

// MailByKey reads an organization's mail log entry by idempotency key.
func (s *Store) MailByKey(ctx context.Context, orgID, key string) (MailMessage, error) {
	var m MailMessage
	if err := s.conn(ctx).Where("org_id = ? AND idempotency_key = ?", orgID, key).Take(&m).Error; err != nil {
		return MailMessage{}, notFound(err, "mail")
	}
	return m, nil
}

// SetMailStatus records how a claimed send ended.
func (s *Store) SetMailStatus(ctx context.Context, orgID, key, status string) error {
	if err := s.conn(ctx).Model(&MailMessage{}).Where("org_id = ? AND idempotency_key = ?", orgID, key).
		Update("status", status).Error; err != nil {
		return fmt.Errorf("set mail status: %w", err)
	}
	return nil
}

// ReleaseMail drops a claim whose send is known not to have happened, so
// that a retry may send.
func (s *Store) ReleaseMail(ctx context.Context, orgID, key string) error {
	if err := s.conn(ctx).Where("org_id = ? AND idempotency_key = ? AND status = ?", orgID, key, MailSending).
		Delete(&MailMessage{}).Error; err != nil {
		return fmt.Errorf("release mail: %w", err)
	}
	return nil
}
