// Package invite issues, sends and accepts the invitations that finish a
// provisioned member's setup (pending_setup → active).
//
// An invite is a decision (membership, send number), recorded once: a
// replayed decision finds its row and changes nothing. Its e-mail is sent by
// a job that mints the token at that moment, so the only copy of the token
// is the e-mail itself; the database keeps its hash. A newer invite
// supersedes the older ones; a token works once, before it expires, for a
// member still pending setup.
package invite

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/scimsync/scimsync/internal/secret"
	"github.com/scimsync/scimsync/internal/tally"
	"github.com/scimsync/scimsync/jobs/mail"
	"github.com/scimsync/scimsync/jobs/task"
	"github.com/scimsync/scimsync/lifecycle"
	"github.com/scimsync/scimsync/store"
)

// Config is the invite policy.
type Config struct {
	// PublicURL is the base of the accept link.
	PublicURL string
	// TTL is how long a link works after its e-mail is sent.
	TTL time.Duration
	// ResendAfter is how long an unaccepted invite waits before the
	// reconciler sends a new one.
	ResendAfter time.Duration
	// MaxSends caps the invites re-sending may bring a member to.
	MaxSends int
}

// Service issues, sends and accepts invites.
type Service struct {
	Store *store.Store
	// Mail sends the e-mails; nil records them in the mail log instead.
	Mail   mail.Sender
	Log    *slog.Logger
	Config Config
	// Notify, when set, is called after a commit that queued an e-mail in
	// the outbox.
	Notify func()

	sendsOnce sync.Once
	sends     *tally.Tally // per-invite lines: DEBUG each, INFO a summary
}

// sendLog is where per-invite outcomes are logged: each at DEBUG, their
// counts at INFO every few seconds, so a first pull of 100k members does
// not write 100k INFO lines.
func (s *Service) sendLog() *tally.Tally {
	s.sendsOnce.Do(func() { s.sends = tally.New(s.Log, "invite e-mails", tally.DefaultInterval) })
	return s.sends
}

// Actor is the audit actor of invite sends and acceptances.
const Actor = "invite"

// Issue records decision sendNumber to invite a membership, in tx, and
// queues its e-mail through tx's outbox. It reports false when that
// decision was recorded already.
func (s *Service) Issue(ctx context.Context, tx *store.Store, orgID, membershipID string, sendNumber int) (bool, error) {
	row, ok, err := s.Decide(ctx, tx, orgID, membershipID, sendNumber)
	if err != nil || !ok {
		return ok, err
	}
	return true, tx.AddOutbox(ctx, row)
}

// Decide is Issue leaving the outbox row of the e-mail to the caller, which
// must add it in tx (a batch adds its rows in one statement).
func (s *Service) Decide(ctx context.Context, tx *store.Store, orgID, membershipID string, sendNumber int) (store.OutboxRow, bool, error) {
	// Until its e-mail goes out the invite holds the hash of a token nobody
	// has, so it cannot be accepted.
	unknown := secret.Hash(secret.NewToken(secret.PrefixInvite))
	inv, ok, err := tx.IssueInvite(ctx, orgID, membershipID, sendNumber, unknown, tx.Now().Add(s.Config.TTL))
	if err != nil || !ok {
		return store.OutboxRow{}, ok, err
	}
	return task.SendInviteRow(orgID, inv.ID), true, nil
}

// DecideFirst records the first invite decision (send number 1) of each
// of the memberships, all created in tx, and returns the outbox rows of
// their e-mails for the caller to add in tx.
func (s *Service) DecideFirst(ctx context.Context, tx *store.Store, orgID string, membershipIDs []string) ([]store.OutboxRow, error) {
	expires := tx.Now().Add(s.Config.TTL)
	invs := make([]store.Invite, len(membershipIDs))
	for i, id := range membershipIDs {
		// As in Decide: a hash of a token nobody has.
		invs[i] = store.Invite{MembershipID: id, TokenHash: secret.Hash(secret.NewToken(secret.PrefixInvite)), ExpiresAt: expires}
	}
	if err := tx.IssueFirstInvites(ctx, orgID, invs); err != nil {
		return nil, err
	}
	rows := make([]store.OutboxRow, len(invs))
	for i, inv := range invs {
		rows[i] = task.SendInviteRow(orgID, inv.ID)
	}
	return rows, nil
}

// Due is a member whose invite is due to be sent again.
type Due struct {
	MembershipID string
	// SendNumber is the number the new invite gets.
	SendNumber int
}

// dueBatch is how many members Due and SendDue read at a time.
const dueBatch = 500

// Due lists the organization's pending members whose last invite is older
// than ResendAfter at now and who have had fewer than MaxSends invites. It
// changes nothing, for a dry run.
func (s *Service) Due(ctx context.Context, orgID string, now time.Time) ([]Due, error) {
	var out []Due
	err := s.eachDue(ctx, orgID, now, func(m store.Membership) error {
		out = append(out, Due{MembershipID: m.ID, SendNumber: m.InviteSends + 1})
		return nil
	})
	return out, err
}

// SendDue issues a new invite to every member Due lists and returns those
// it issued. Each decision is re-checked under the membership's lock, so
// concurrent callers (or a member accepting meanwhile) cannot add a send;
// a member never gets more than MaxSends invites from re-sending.
func (s *Service) SendDue(ctx context.Context, orgID string, now time.Time) ([]Due, error) {
	invitedBefore := now.Add(-s.Config.ResendAfter)
	var out []Due
	err := s.eachDue(ctx, orgID, now, func(candidate store.Membership) error {
		var d *Due
		err := s.Store.Tx(ctx, func(tx *store.Store) error {
			m, err := tx.LockMembership(ctx, orgID, candidate.ID)
			if err != nil || !isDue(m, invitedBefore, s.Config.MaxSends) {
				return ignoreNotFound(err)
			}
			ok, err := s.Issue(ctx, tx, orgID, m.ID, m.InviteSends+1)
			if err != nil || !ok {
				return err
			}
			d = &Due{MembershipID: m.ID, SendNumber: m.InviteSends + 1}
			return tx.AddAuditEvent(ctx, store.AuditEvent{OrgID: orgID, Actor: "reconciler", Action: "invite.resend",
				EntityType: "member", EntityID: m.ID, Detail: fmt.Sprintf("invite #%d", d.SendNumber)})
		})
		if err != nil {
			return fmt.Errorf("resend invite: %w", err)
		}
		if d != nil {
			out = append(out, *d)
		}
		return nil
	})
	if len(out) > 0 && s.Notify != nil {
		s.Notify()
	}
	return out, err
}

func (s *Service) eachDue(ctx context.Context, orgID string, now time.Time, fn func(store.Membership) error) error {
	invitedBefore := now.Add(-s.Config.ResendAfter)
	after := ""
	for {
		batch, err := s.Store.InvitesDue(ctx, orgID, invitedBefore, s.Config.MaxSends, after, dueBatch)
		if err != nil {
			return err
		}
		for _, m := range batch {
			if err := fn(m); err != nil {
				return err
			}
		}
		if len(batch) < dueBatch {
			return nil
		}
		after = batch[len(batch)-1].ID
	}
}

// isDue is InvitesDue's condition, for one membership read under lock.
func isDue(m store.Membership, invitedBefore time.Time, maxSends int) bool {
	return m.Status == lifecycle.StatusPendingSetup && m.Email != "" && m.InviteSends > 0 && m.InviteSends < maxSends &&
		m.LastInvitedAt != nil && !m.LastInvitedAt.After(invitedBefore)
}

func ignoreNotFound(err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	return err
}
