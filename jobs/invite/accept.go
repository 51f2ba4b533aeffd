package invite

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/scimsync/scimsync/internal/secret"
	"github.com/scimsync/scimsync/lifecycle"
	"github.com/scimsync/scimsync/store"
)

// ErrInvalid refuses a token that is unknown, used, superseded or expired,
// or whose member is no longer pending. It never says which: the answer
// must not help anyone guess.
var ErrInvalid = errors.New("the invite link is not valid")

// Accepted is the membership an invite activated.
type Accepted struct {
	OrgID        string `json:"orgId"`
	MembershipID string `json:"membershipId"`
	Status       string `json:"status"`
}

// maxTokenLen bounds what is hashed: real tokens are 48 characters.
const maxTokenLen = 128

// Accept finishes a member's setup with an invite token: pending_setup
// becomes active. It looks the invite up by the token's hash, compares in
// constant time, and uses the invite in the same statement that checks it
// is still open, so a token works once even under concurrent requests.
func (s *Service) Accept(ctx context.Context, token string) (Accepted, error) {
	if !strings.HasPrefix(token, secret.PrefixInvite) || len(token) > maxTokenLen {
		return Accepted{}, ErrInvalid
	}
	var out Accepted
	err := s.Store.Tx(ctx, func(tx *store.Store) error {
		inv, err := tx.InviteByTokenHash(ctx, secret.Hash(token))
		if errors.Is(err, store.ErrNotFound) {
			return ErrInvalid
		}
		if err != nil {
			return err
		}
		if !secret.Equal(token, inv.TokenHash) {
			return ErrInvalid
		}
		m, err := tx.AcceptInvite(ctx, inv.OrgID, inv.ID)
		if errors.Is(err, store.ErrNotFound) {
			return ErrInvalid
		}
		if err != nil {
			return err
		}
		out = Accepted{OrgID: m.OrgID, MembershipID: m.ID, Status: m.Status}
		if err := tx.AddAuditEvent(ctx, store.AuditEvent{OrgID: m.OrgID, Actor: Actor, Action: "member.activate",
			EntityType: "member", EntityID: m.ID, Outcome: "updated", Detail: fmt.Sprintf("invite #%d accepted", inv.SendNumber)}); err != nil {
			return err
		}
		return tx.AppendEvents(ctx, m.OrgID, []store.Change{{Type: lifecycle.EventMemberActivated, EntityType: store.EntityMember, EntityID: m.ID}})
	})
	if errors.Is(err, ErrInvalid) {
		return Accepted{}, ErrInvalid
	}
	if err != nil {
		return Accepted{}, fmt.Errorf("accept invite: %w", err)
	}
	return out, nil
}
