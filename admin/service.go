package admin

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/scimsync/scimsync/config"
	"github.com/scimsync/scimsync/converge"
	"github.com/scimsync/scimsync/internal/secret"
	"github.com/scimsync/scimsync/source"
	"github.com/scimsync/scimsync/store"
)

// ErrInvalid marks a request the caller must fix (HTTP 400, exit code 2).
var ErrInvalid = errors.New("invalid request")

// Service carries out operator actions, each with its audit event. The
// admin API and the command line both call it.
type Service struct {
	Store *store.Store
	// PublicURL is the base of the SCIM URL handed out with tokens.
	PublicURL string
	// Connectors checks, tests and seals a connector before PutConnector
	// stores it; without it PutConnector fails.
	Connectors *source.Opener
	// Invalidate, when set, is told of every change to SCIM access after it
	// commits, so that cached token verdicts do not outlive it.
	Invalidate Invalidator
	// Converger applies the settlement of a kept last admin; without it
	// SettleAdmin fails.
	Converger *converge.Converger
	// Webhooks configures webhook endpoints.
	Webhooks Webhooks
}

// Invalidator drops cached SCIM token verdicts: those of one token of an
// organization, or, with tokenID empty, of all its tokens. It does so at
// once in this process and tells the others; it cannot fail the change,
// which is committed already.
type Invalidator interface {
	Invalidate(ctx context.Context, orgID, tokenID string)
}

func (s *Service) invalidate(ctx context.Context, orgID, tokenID string) {
	if s.Invalidate != nil {
		s.Invalidate.Invalidate(ctx, orgID, tokenID)
	}
}

const actorAdmin = "admin"

// CreateOrg creates an organization.
func (s *Service) CreateOrg(ctx context.Context, name string) (store.Org, error) {
	name = strings.TrimSpace(name)
	if name == "" {
		return store.Org{}, fmt.Errorf("%w: name is required", ErrInvalid)
	}
	if len(name) > 200 {
		return store.Org{}, fmt.Errorf("%w: name is longer than 200 characters", ErrInvalid)
	}
	var o store.Org
	err := s.Store.Tx(ctx, func(tx *store.Store) error {
		var err error
		if o, err = tx.CreateOrg(ctx, name); err != nil {
			return err
		}
		return tx.AddAuditEvent(ctx, store.AuditEvent{OrgID: o.ID, Actor: actorAdmin, Action: "org.create", EntityType: "org", EntityID: o.ID})
	})
	return o, err
}

// UpdateOrg changes an organization. A schedule is checked before it is
// stored; "" means the default schedule.
func (s *Service) UpdateOrg(ctx context.Context, id string, p store.OrgPatch) (store.Org, error) {
	if p.Name != nil {
		n := strings.TrimSpace(*p.Name)
		if n == "" || len(n) > 200 {
			return store.Org{}, fmt.Errorf("%w: name must be 1 to 200 characters", ErrInvalid)
		}
		p.Name = &n
	}
	if p.ReconcileSchedule != nil && *p.ReconcileSchedule != "" {
		if _, err := config.ParseSchedule(*p.ReconcileSchedule); err != nil {
			return store.Org{}, fmt.Errorf("%w: reconcileSchedule: %v", ErrInvalid, err)
		}
	}
	if p.FullReconcileSchedule != nil && *p.FullReconcileSchedule != "" {
		if _, err := config.ParseSchedule(*p.FullReconcileSchedule); err != nil {
			return store.Org{}, fmt.Errorf("%w: fullReconcileSchedule: %v", ErrInvalid, err)
		}
	}
	if p.RoleMapping != nil {
		for group, role := range *p.RoleMapping {
			if strings.TrimSpace(group) == "" || (role != "admin" && role != "member") {
				return store.Org{}, fmt.Errorf("%w: roleMapping maps IdP group names to \"admin\" or \"member\"", ErrInvalid)
			}
		}
	}
	var o store.Org
	err := s.Store.Tx(ctx, func(tx *store.Store) error {
		var err error
		if o, err = tx.UpdateOrg(ctx, id, p); err != nil {
			return err
		}
		return tx.AddAuditEvent(ctx, store.AuditEvent{OrgID: o.ID, Actor: actorAdmin, Action: "org.update", EntityType: "org", EntityID: o.ID, Detail: describePatch(p)})
	})
	if err != nil {
		return store.Org{}, err
	}
	if p.SCIMEnabled != nil {
		// Switching SCIM on counts too: a cached "off" would refuse an IdP
		// the operator just let in.
		s.invalidate(ctx, o.ID, "")
	}
	return o, nil
}

func describePatch(p store.OrgPatch) string {
	var parts []string
	if p.Name != nil {
		parts = append(parts, "name")
	}
	if p.SCIMEnabled != nil {
		parts = append(parts, fmt.Sprintf("scimEnabled=%t", *p.SCIMEnabled))
	}
	if p.ReconcileSchedule != nil {
		parts = append(parts, fmt.Sprintf("reconcileSchedule=%q", *p.ReconcileSchedule))
	}
	if p.FullReconcileSchedule != nil {
		parts = append(parts, fmt.Sprintf("fullReconcileSchedule=%q", *p.FullReconcileSchedule))
	}
	if p.RoleMapping != nil {
		parts = append(parts, "roleMapping")
	}
	return strings.Join(parts, " ")
}

// SetSCIMEnabled turns an organization's SCIM endpoint on or off.
func (s *Service) SetSCIMEnabled(ctx context.Context, id string, on bool) (store.Org, error) {
	return s.UpdateOrg(ctx, id, store.OrgPatch{SCIMEnabled: &on})
}

// NewSCIMToken is a freshly created token: the only time its secret exists
// outside the caller's hands.
type NewSCIMToken struct {
	ID          string     `json:"id"`
	Token       string     `json:"token"`
	SCIMURL     string     `json:"scimUrl"`
	Description string     `json:"description"`
	CreatedAt   time.Time  `json:"createdAt"`
	ExpiresAt   *time.Time `json:"expiresAt"`
}

// MaxTokenTTLDays bounds a token's lifetime (ten years).
const MaxTokenTTLDays = 3650

// CreateSCIMToken makes a SCIM bearer token for an organization; ttlDays 0
// means it does not expire.
func (s *Service) CreateSCIMToken(ctx context.Context, orgID, description string, ttlDays int) (NewSCIMToken, error) {
	if ttlDays < 0 || ttlDays > MaxTokenTTLDays {
		return NewSCIMToken{}, fmt.Errorf("%w: ttlDays must be 0 (no expiry) to %d", ErrInvalid, MaxTokenTTLDays)
	}
	if len(description) > 500 {
		return NewSCIMToken{}, fmt.Errorf("%w: description is longer than 500 characters", ErrInvalid)
	}
	tok := secret.NewToken(secret.PrefixSCIM)
	var out NewSCIMToken
	err := s.Store.Tx(ctx, func(tx *store.Store) error {
		if _, err := tx.Org(ctx, orgID); err != nil {
			return err
		}
		var exp *time.Time
		if ttlDays > 0 {
			e := tx.Now().Add(time.Duration(ttlDays) * 24 * time.Hour)
			exp = &e
		}
		t, err := tx.CreateSCIMToken(ctx, orgID, description, secret.Hash(tok), exp)
		if err != nil {
			return err
		}
		out = NewSCIMToken{ID: t.ID, Token: tok, SCIMURL: s.SCIMURL(), Description: t.Description, CreatedAt: t.CreatedAt, ExpiresAt: t.ExpiresAt}
		return tx.AddAuditEvent(ctx, store.AuditEvent{OrgID: orgID, Actor: actorAdmin, Action: "scim_token.create", EntityType: "scim_token", EntityID: t.ID})
	})
	return out, err
}

// SCIMURL is the base URL IdPs push to.
func (s *Service) SCIMURL() string { return strings.TrimRight(s.PublicURL, "/") + "/scim/v2" }

// RevokeSCIMToken revokes one of an organization's tokens.
func (s *Service) RevokeSCIMToken(ctx context.Context, orgID, tokenID string) error {
	err := s.Store.Tx(ctx, func(tx *store.Store) error {
		if err := tx.RevokeSCIMToken(ctx, orgID, tokenID); err != nil {
			return err
		}
		return tx.AddAuditEvent(ctx, store.AuditEvent{OrgID: orgID, Actor: actorAdmin, Action: "scim_token.revoke", EntityType: "scim_token", EntityID: tokenID})
	})
	if err != nil {
		return err
	}
	s.invalidate(ctx, orgID, tokenID)
	return nil
}
