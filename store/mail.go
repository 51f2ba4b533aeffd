package store

import (
	"context"
	"fmt"
	"strings"

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

// ClaimMails is ClaimMail for many messages: it inserts those whose
// idempotency key no message has yet and returns the keys it inserted, in
// one statement per BatchRows(8) messages. Of messages sharing a key only
// the first is inserted.
func (s *Store) ClaimMails(ctx context.Context, ms []MailMessage) (map[string]bool, error) {
	claimed := make(map[string]bool, len(ms))
	now := s.now()
	n := s.d.batchRows(8)
	for len(ms) > 0 {
		chunk := ms[:min(n, len(ms))]
		ms = ms[len(chunk):]
		var sb strings.Builder
		args := make([]any, 0, 8*len(chunk))
		sb.WriteString("INSERT INTO mail_log (org_id, idempotency_key, recipient, subject, text_body, html_body, status, created_at) VALUES ")
		for i, m := range chunk {
			if i > 0 {
				sb.WriteString(", ")
			}
			sb.WriteString("(?, ?, ?, ?, ?, ?, ?, ?)")
			args = append(args, m.OrgID, m.IdempotencyKey, m.Recipient, m.Subject, m.TextBody, m.HTMLBody, m.Status, now)
		}
		// RETURNING names the rows this statement inserted, not those a
		// conflict skipped.
		sb.WriteString(" ON CONFLICT (idempotency_key) DO NOTHING RETURNING idempotency_key")
		var keys []string
		if err := s.conn(ctx).Raw(sb.String(), args...).Scan(&keys).Error; err != nil {
			return nil, fmt.Errorf("claim mails: %w", err)
		}
		for _, k := range keys {
			claimed[k] = true
		}
	}
	return claimed, nil
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
