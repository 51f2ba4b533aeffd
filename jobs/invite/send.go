package invite

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/scimsync/scimsync/internal/secret"
	"github.com/scimsync/scimsync/jobs/mail"
	"github.com/scimsync/scimsync/lifecycle"
	"github.com/scimsync/scimsync/store"
)

// SendOutcome says what Send did.
type SendOutcome string

const (
	// Sent: the SMTP server accepted the e-mail.
	Sent SendOutcome = "sent"
	// Recorded: no SMTP server is configured; the e-mail is in the mail log.
	Recorded SendOutcome = "recorded"
	// Duplicate: this invite's e-mail was sent, recorded or attempted
	// before; it is not sent again.
	Duplicate SendOutcome = "duplicate"
	// Obsolete: the invite was accepted or superseded, or its member is
	// gone or no longer pending; there is nothing to send.
	Obsolete SendOutcome = "obsolete"
)

// MailKey is the mail log's idempotency key of an invite's e-mail: one per
// (membership, send number), the unit of an invite decision.
func MailKey(inv store.Invite) string {
	return "invite:" + inv.MembershipID + ":" + strconv.Itoa(inv.SendNumber)
}

// Send e-mails an invite, at most once per decision:
//
//  1. In one transaction it claims the decision's key in the mail log, mints
//     the token and stores its hash. A key already claimed means an earlier
//     attempt sent, or may have sent, the e-mail: Duplicate, nothing sent.
//  2. It hands the e-mail to the SMTP server.
//  3. Accepted: the claim becomes "sent". Rejected for good (5xx): the claim
//     becomes "rejected", with an audit event, and the error wraps
//     mail.ErrRejected (do not retry). Lost while the server answered the
//     data: "uncertain", error wraps mail.ErrUncertain (do not retry: a
//     duplicate invite is worse than a late one, which re-sending brings).
//     Any other failure happened before the message was complete: the claim
//     is released and the error is returned for a retry, which mints a new
//     token.
//
// Without a mail sender, step 1 records the whole e-mail instead and that
// is the end.
func (s *Service) Send(ctx context.Context, orgID, inviteID string) (SendOutcome, error) {
	if s.Mail == nil {
		os, err := s.SendAll(ctx, orgID, []string{inviteID})
		if err != nil {
			return "", err
		}
		return os[0], nil
	}
	var c claimed
	err := s.Store.Tx(ctx, func(tx *store.Store) error {
		var err error
		c, err = s.claim(ctx, tx, orgID, inviteID)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("send invite: %w", err)
	}
	return s.settle(ctx, orgID, c)
}

// SendAll is Send for many invites of an organization, in order, and
// returns the outcomes of those it settled. Without a mail sender their
// e-mails are recorded in one transaction (record), so that a first
// provisioning's invites cost one commit and a few statements per batch
// rather than five statements and a commit each. With one, each invite is
// claimed and sent on its own, as Send does: a crash then leaves at most
// one claim without its send, and a retry of the batch finds the e-mails
// already sent (Duplicate) and sends only the others.
//
// The error joins the failures. When any of them may be retried, only
// those are returned, so that the batch is retried; a failure that must
// not be retried (mail.ErrRejected, mail.ErrUncertain) has recorded its
// outcome, and the retry finds it Duplicate.
func (s *Service) SendAll(ctx context.Context, orgID string, inviteIDs []string) ([]SendOutcome, error) {
	outcomes := make([]SendOutcome, 0, len(inviteIDs))
	if s.Mail == nil {
		var cs []claimed
		err := s.Store.Tx(ctx, func(tx *store.Store) error {
			var err error
			cs, err = s.record(ctx, tx, orgID, inviteIDs)
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("send invites: %w", err)
		}
		for _, c := range cs {
			o, _ := s.settle(ctx, orgID, c) // recorded, duplicate or obsolete: nothing is left to fail
			outcomes = append(outcomes, o)
		}
		return outcomes, nil
	}
	var retry, final []error
	for _, id := range inviteIDs {
		if err := ctx.Err(); err != nil {
			retry = append(retry, fmt.Errorf("send invite %s: %w", id, err))
			break
		}
		o, err := s.Send(ctx, orgID, id)
		switch {
		case err == nil:
			outcomes = append(outcomes, o)
		case errors.Is(err, mail.ErrRejected) || errors.Is(err, mail.ErrUncertain):
			final = append(final, fmt.Errorf("invite %s: %w", id, err))
		default:
			retry = append(retry, fmt.Errorf("invite %s: %w", id, err))
		}
	}
	if len(retry) > 0 {
		return outcomes, errors.Join(retry...)
	}
	return outcomes, errors.Join(final...)
}

// claimed is an invite after step 1 of Send: outcome is empty when its
// e-mail is claimed for the mail server, which msg holds.
type claimed struct {
	outcome SendOutcome
	inv     store.Invite
	msg     mail.Message
}

// claim does step 1 of Send in tx, with a mail sender.
func (s *Service) claim(ctx context.Context, tx *store.Store, orgID, inviteID string) (claimed, error) {
	it, err := tx.InviteForSending(ctx, orgID, inviteID)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return claimed{}, err
	}
	c, token, expires, err := s.compose(tx, it, err == nil)
	if err != nil || c.outcome != "" {
		return c, err
	}
	rec := mailRecord(orgID, it, c.msg, store.MailSending)
	ok, err := tx.ClaimMail(ctx, &rec)
	if err != nil {
		return claimed{}, err
	}
	if !ok {
		c.outcome = Duplicate
		return c, nil
	}
	return c, tx.SetInviteToken(ctx, orgID, c.inv.ID, secret.Hash(token), expires)
}

// record does the whole of Send without a mail sender for a batch of
// invites, in tx, set-based where it can be: one read of the invites, one
// insert into the mail log (which keeps each e-mail; a key already there
// makes a Duplicate), one update per recorded invite (its own token) and
// one insert of their audit events. It returns an outcome for each id, in
// order.
func (s *Service) record(ctx context.Context, tx *store.Store, orgID string, inviteIDs []string) ([]claimed, error) {
	its, err := tx.InvitesForSending(ctx, orgID, inviteIDs)
	if err != nil {
		return nil, err
	}
	cs := make([]claimed, len(inviteIDs))
	tokens := make([]string, len(inviteIDs))
	expires := make([]time.Time, len(inviteIDs))
	recs := make([]store.MailMessage, 0, len(inviteIDs))
	keys := make(map[string]bool, len(inviteIDs))
	for i, id := range inviteIDs {
		it, ok := its[id]
		cs[i], tokens[i], expires[i], err = s.compose(tx, it, ok)
		if err != nil {
			return nil, fmt.Errorf("invite %s: %w", id, err)
		}
		if cs[i].outcome != "" {
			continue
		}
		// An invite listed twice: the second finds its key claimed, as a
		// second Send would.
		key := MailKey(cs[i].inv)
		if keys[key] {
			cs[i].outcome = Duplicate
			continue
		}
		keys[key] = true
		rec := mailRecord(orgID, it, cs[i].msg, store.MailRecorded)
		rec.TextBody, rec.HTMLBody = cs[i].msg.Text, cs[i].msg.HTML // with no server, the log is the delivery
		recs = append(recs, rec)
	}
	claimedKeys, err := tx.ClaimMails(ctx, recs)
	if err != nil {
		return nil, err
	}
	var events []store.AuditEvent
	for i := range cs {
		c := &cs[i]
		if c.outcome != "" {
			continue
		}
		if !claimedKeys[MailKey(c.inv)] {
			c.outcome = Duplicate
			continue
		}
		if err := tx.RecordInviteSent(ctx, orgID, c.inv.ID, secret.Hash(tokens[i]), expires[i]); err != nil {
			return nil, fmt.Errorf("invite %s: %w", c.inv.ID, err)
		}
		c.outcome = Recorded
		events = append(events, auditEvent(c.inv, store.MailRecorded, ""))
	}
	return cs, tx.AddAuditEvents(ctx, events)
}

// compose checks that the invite it (found in tx, or not) is to be sent,
// and if so mints its token and renders its e-mail; otherwise the outcome
// is Obsolete.
func (s *Service) compose(tx *store.Store, it store.InviteToSend, found bool) (c claimed, token string, expires time.Time, err error) {
	if !found {
		return claimed{outcome: Obsolete}, "", time.Time{}, nil // removed with its membership
	}
	c = claimed{inv: it.Invite}
	if c.inv.AcceptedAt != nil || c.inv.SupersededAt != nil || it.MemberStatus != lifecycle.StatusPendingSetup || it.MemberEmail == "" {
		c.outcome = Obsolete
		return c, "", time.Time{}, nil
	}
	token = secret.NewToken(secret.PrefixInvite)
	expires = tx.Now().Add(s.Config.TTL)
	c.msg, err = render(s.Config.PublicURL, token, it, expires)
	if err != nil {
		return claimed{}, "", time.Time{}, err
	}
	return c, token, expires, nil
}

// mailRecord is the mail log's entry of an invite's e-mail.
func mailRecord(orgID string, it store.InviteToSend, msg mail.Message, status string) store.MailMessage {
	return store.MailMessage{OrgID: orgID, IdempotencyKey: MailKey(it.Invite), Recipient: it.MemberEmail, Subject: msg.Subject, Status: status}
}

// settle ends Send once its claim is committed: steps 2 and 3 for a claim,
// a log line for the other outcomes.
func (s *Service) settle(ctx context.Context, orgID string, c claimed) (SendOutcome, error) {
	switch c.outcome {
	case "":
		return s.deliver(ctx, c.inv, c.msg)
	case Recorded:
		s.sendLog().Log(ctx, "recorded in the mail log, not sent: SMTP_URL is not set",
			"org", orgID, "invite", c.inv.ID, "mail_key", MailKey(c.inv))
	case Duplicate:
		s.sendLog().Log(ctx, "already sent or attempted; not sending again",
			"org", orgID, "invite", c.inv.ID, "mail_key", MailKey(c.inv))
	}
	return c.outcome, nil
}

// deliver does steps 2 and 3 of Send.
func (s *Service) deliver(ctx context.Context, inv store.Invite, msg mail.Message) (SendOutcome, error) {
	sendErr := s.Mail.Send(ctx, msg)
	// Record the outcome even when ctx has ended: the send happened or not
	// regardless.
	rctx := context.WithoutCancel(ctx)
	var status string
	switch {
	case sendErr == nil:
		status = store.MailSent
	case errors.Is(sendErr, mail.ErrRejected):
		status = store.MailRejected
	case errors.Is(sendErr, mail.ErrUncertain):
		status = store.MailUncertain
	default:
		if err := s.Store.ReleaseMail(rctx, inv.OrgID, MailKey(inv)); err != nil {
			// The claim stays: this decision's e-mail is lost rather than
			// risked twice; the next re-send decision makes a new one.
			return "", fmt.Errorf("send invite: %w (and releasing the claim: %w)", sendErr, err)
		}
		return "", fmt.Errorf("send invite: %w", sendErr)
	}
	err := s.Store.Tx(rctx, func(tx *store.Store) error {
		detail := ""
		if sendErr != nil {
			detail = sendErr.Error()
		}
		return s.finish(rctx, tx, inv, status, detail)
	})
	if err != nil {
		return "", fmt.Errorf("send invite: record outcome %q: %w", status, err)
	}
	if sendErr != nil {
		s.Log.WarnContext(ctx, "invite e-mail not delivered; not retrying", "org", inv.OrgID, "invite", inv.ID, "status", status, "err", sendErr)
		return "", fmt.Errorf("send invite: %w", sendErr)
	}
	s.sendLog().Log(ctx, "sent", "org", inv.OrgID, "invite", inv.ID, "mail_key", MailKey(inv))
	return Sent, nil
}

// finish records how a claimed send ended, with its audit event.
func (s *Service) finish(ctx context.Context, tx *store.Store, inv store.Invite, status, detail string) error {
	if status != store.MailRecorded {
		if err := tx.SetMailStatus(ctx, inv.OrgID, MailKey(inv), status); err != nil {
			return err
		}
	}
	// An uncertain send counts as sent: the e-mail may be in the inbox, and
	// its link must then work.
	if status != store.MailRejected {
		if err := tx.MarkInviteSent(ctx, inv.OrgID, inv.ID); err != nil {
			return err
		}
	}
	return tx.AddAuditEvent(ctx, auditEvent(inv, status, detail))
}

// auditEvent is the audit event of how a claimed send ended.
func auditEvent(inv store.Invite, status, detail string) store.AuditEvent {
	if detail == "" {
		detail = "invite #" + strconv.Itoa(inv.SendNumber)
	} else {
		detail = "invite #" + strconv.Itoa(inv.SendNumber) + ": " + detail
	}
	return store.AuditEvent{OrgID: inv.OrgID, Actor: Actor, Action: "invite.send",
		EntityType: "member", EntityID: inv.MembershipID, Outcome: status, Detail: detail}
}
