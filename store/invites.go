package store

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm/clause"

	"github.com/scimsync/scimsync/lifecycle"
)

// IssueInvite records the decision to invite a membership for the
// sendNumber-th time: it inserts the invite, supersedes the membership's
// earlier unaccepted invites and counts the send on the membership. When
// that decision is already recorded it changes nothing and returns false,
// so a decision replayed by a retried job yields one invite.
func (s *Store) IssueInvite(ctx context.Context, orgID, membershipID string, sendNumber int, tokenHash string, expiresAt time.Time) (Invite, bool, error) {
	now := s.now()
	inv := Invite{ID: NewID(), OrgID: orgID, MembershipID: membershipID, TokenHash: tokenHash, SendNumber: sendNumber, CreatedAt: now, ExpiresAt: expiresAt}
	db := s.conn(ctx)
	res := db.Clauses(clause.OnConflict{DoNothing: true}).Create(&inv)
	if res.Error != nil {
		return Invite{}, false, fmt.Errorf("issue invite: %w", res.Error)
	}
	if res.RowsAffected == 0 {
		return Invite{}, false, nil
	}
	if sendNumber > 1 {
		if err := db.Model(&Invite{}).
			Where("org_id = ? AND membership_id = ? AND send_number < ? AND accepted_at IS NULL AND superseded_at IS NULL", orgID, membershipID, sendNumber).
			Update("superseded_at", now).Error; err != nil {
			return Invite{}, false, fmt.Errorf("issue invite: supersede older: %w", err)
		}
	}
	if err := db.Model(&Membership{}).Where("org_id = ? AND id = ? AND invite_sends < ?", orgID, membershipID, sendNumber).
		Updates(map[string]any{"invite_sends": sendNumber, "last_invited_at": now}).Error; err != nil {
		return Invite{}, false, fmt.Errorf("issue invite: count send: %w", err)
	}
	return inv, true, nil
}

// SupersedeInvites voids a membership's unaccepted invites.
func (s *Store) SupersedeInvites(ctx context.Context, orgID, membershipID string) error {
	if err := s.conn(ctx).Model(&Invite{}).
		Where("org_id = ? AND membership_id = ? AND accepted_at IS NULL AND superseded_at IS NULL", orgID, membershipID).
		Update("superseded_at", s.now()).Error; err != nil {
		return fmt.Errorf("supersede invites: %w", err)
	}
	return nil
}

// Invite reads one of an organization's invites.
func (s *Store) Invite(ctx context.Context, orgID, id string) (Invite, error) {
	var inv Invite
	if err := s.conn(ctx).Where("org_id = ? AND id = ?", orgID, id).Take(&inv).Error; err != nil {
		return Invite{}, notFound(err, "invite")
	}
	return inv, nil
}

// Invites lists a membership's invites, oldest decision first.
func (s *Store) Invites(ctx context.Context, orgID, membershipID string) ([]Invite, error) {
	var out []Invite
	if err := s.conn(ctx).Where("org_id = ? AND membership_id = ?", orgID, membershipID).
		Order("send_number").Find(&out).Error; err != nil {
		return nil, fmt.Errorf("list invites: %w", err)
	}
	return out, nil
}

// InviteByTokenHash finds an invite by the hash of its token, in any
// organization: the token is the credential that names it. The caller still
// compares in constant time and checks that the invite is open.
func (s *Store) InviteByTokenHash(ctx context.Context, tokenHash string) (Invite, error) {
	var inv Invite
	if err := s.conn(ctx).Where("token_hash = ?", tokenHash).Take(&inv).Error; err != nil {
		return Invite{}, notFound(err, "invite")
	}
	return inv, nil
}

// SetInviteToken gives an open invite the token its e-mail will carry, and
// the expiry counted from now. ErrNotFound when the invite is no longer
// open (accepted or superseded).
func (s *Store) SetInviteToken(ctx context.Context, orgID, id, tokenHash string, expiresAt time.Time) error {
	return s.updateOpenInvite(ctx, "set invite token", orgID, id, map[string]any{"token_hash": tokenHash, "expires_at": expiresAt})
}

// RecordInviteSent is SetInviteToken and MarkInviteSent in one statement,
// for an e-mail recorded in the transaction that claimed it.
func (s *Store) RecordInviteSent(ctx context.Context, orgID, id, tokenHash string, expiresAt time.Time) error {
	return s.updateOpenInvite(ctx, "record invite sent", orgID, id, map[string]any{"token_hash": tokenHash, "expires_at": expiresAt, "sent_at": s.now()})
}

// updateOpenInvite sets fields of an invite that is still open;
// ErrNotFound when it is not.
func (s *Store) updateOpenInvite(ctx context.Context, op, orgID, id string, fields map[string]any) error {
	res := s.conn(ctx).Model(&Invite{}).
		Where("org_id = ? AND id = ? AND accepted_at IS NULL AND superseded_at IS NULL", orgID, id).
		Updates(fields)
	if res.Error != nil {
		return fmt.Errorf("%s: %w", op, res.Error)
	}
	if res.RowsAffected == 0 {
		return fmt.Errorf("open invite %w", ErrNotFound)
	}
	return nil
}

// MarkInviteSent records that an invite's e-mail went out (or was
// recorded). The membership's last_invited_at stays the decision's time,
// which re-sending counts from.
func (s *Store) MarkInviteSent(ctx context.Context, orgID, id string) error {
	if err := s.conn(ctx).Model(&Invite{}).Where("org_id = ? AND id = ?", orgID, id).Update("sent_at", s.now()).Error; err != nil {
		return fmt.Errorf("mark invite sent: %w", err)
	}
	return nil
}

// InviteToSend is an invite with what its e-mail needs.
type InviteToSend struct {
	Invite
	MemberStatus    string `gorm:"column:member_status"`
	MemberEmail     string `gorm:"column:member_email"`
	MemberFirstName string `gorm:"column:member_first_name"`
	OrgName         string `gorm:"column:org_name"`
}

// InviteForSending reads an invite with its membership's status, e-mail
// and first name and its organization's name, in one round trip.
func (s *Store) InviteForSending(ctx context.Context, orgID, id string) (InviteToSend, error) {
	out, err := s.InvitesForSending(ctx, orgID, []string{id})
	return oneOf(out, err, id, "invite")
}

// InvitesForSending is InviteForSending for many invites of an
// organization, in one round trip, keyed by invite id; ids that do not
// exist are absent. Each invite and its membership are looked up by
// primary key alone (the organization is checked after): a plan made
// without table statistics could otherwise pick the (org_id, status) index
// and read every member of the organization for each invite.
func (s *Store) InvitesForSending(ctx context.Context, orgID string, ids []string) (map[string]InviteToSend, error) {
	out := make(map[string]InviteToSend, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	var rows []InviteToSend
	from, arg := s.eachRow("invites", "i", "id", ids, "")
	err := s.conn(ctx).Raw(`SELECT i.*, m.status AS member_status, m.email AS member_email, m.first_name AS member_first_name, o.name AS org_name
FROM `+from+` `+s.d.joinEach("org_memberships", "m", "m.id = i.membership_id")+`
JOIN organizations o ON o.id = i.org_id
WHERE i.org_id = ? AND m.org_id = i.org_id`, arg, orgID).Scan(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("get invites to send: %w", err)
	}
	for _, r := range rows {
		out[r.ID] = r
	}
	return out, nil
}

// AcceptInvite uses an open, unexpired invite and makes its pending
// membership active, returning that membership.
// ErrNotFound when the invite or the membership does not qualify; the
// caller must then roll back. Only one of concurrent accepts succeeds.
func (s *Store) AcceptInvite(ctx context.Context, orgID, id string) (Membership, error) {
	now := s.now()
	db := s.conn(ctx)
	res := db.Model(&Invite{}).
		Where("org_id = ? AND id = ? AND accepted_at IS NULL AND superseded_at IS NULL AND expires_at > ?", orgID, id, now).
		Update("accepted_at", now)
	if res.Error != nil {
		return Membership{}, fmt.Errorf("accept invite: %w", res.Error)
	}
	if res.RowsAffected == 0 {
		return Membership{}, fmt.Errorf("open invite %w", ErrNotFound)
	}
	inv, err := s.Invite(ctx, orgID, id)
	if err != nil {
		return Membership{}, fmt.Errorf("accept invite: %w", err)
	}
	res = db.Model(&Membership{}).Where("org_id = ? AND id = ? AND status = ?", orgID, inv.MembershipID, lifecycle.StatusPendingSetup).
		Updates(map[string]any{"status": lifecycle.StatusActive, "updated_at": now})
	if res.Error != nil {
		return Membership{}, fmt.Errorf("accept invite: activate membership: %w", res.Error)
	}
	if res.RowsAffected == 0 {
		return Membership{}, fmt.Errorf("pending membership %w", ErrNotFound)
	}
	return s.Membership(ctx, orgID, inv.MembershipID)
}

// InvitesDue lists, in id order after afterID, up to limit pending members
// of an organization that have an e-mail, were invited fewer than maxSends
// times, and were last invited at or before invitedBefore: those whose
// invite should be sent again.
func (s *Store) InvitesDue(ctx context.Context, orgID string, invitedBefore time.Time, maxSends int, afterID string, limit int) ([]Membership, error) {
	var out []Membership
	if err := s.conn(ctx).
		Where("org_id = ? AND status = ? AND email <> '' AND invite_sends > 0 AND invite_sends < ? AND last_invited_at <= ? AND id > ?",
			orgID, lifecycle.StatusPendingSetup, maxSends, invitedBefore, afterID).
		Order("id").Limit(limit).Find(&out).Error; err != nil {
		return nil, fmt.Errorf("list invites due: %w", err)
	}
	return out, nil
}
