package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/scimsync/scimsync/connectors"
	"github.com/scimsync/scimsync/lifecycle"
	"github.com/scimsync/scimsync/source"
	"github.com/scimsync/scimsync/store"
)

// Reads for the operator console: each checks the organization exists, so
// an unknown id is store.ErrNotFound and never an empty page.

// Orgs lists the organizations.
func (s *Service) Orgs(ctx context.Context) ([]store.Org, error) { return s.Store.Orgs(ctx) }

// Org shows one organization.
func (s *Service) Org(ctx context.Context, id string) (store.Org, error) { return s.Store.Org(ctx, id) }

// SCIMTokens lists an organization's tokens with their status, never
// their secrets.
func (s *Service) SCIMTokens(ctx context.Context, orgID string) ([]TokenView, error) {
	if _, err := s.Store.Org(ctx, orgID); err != nil {
		return nil, err
	}
	toks, err := s.Store.SCIMTokens(ctx, orgID)
	if err != nil {
		return nil, err
	}
	now := s.Store.Now()
	out := make([]TokenView, len(toks))
	for i, t := range toks {
		status := "active"
		switch {
		case t.RevokedAt != nil:
			status = "revoked"
		case !t.Usable(now):
			status = "expired"
		}
		out[i] = TokenView{ID: t.ID, Description: t.Description, Status: status, CreatedAt: t.CreatedAt, ExpiresAt: t.ExpiresAt, LastUsedAt: t.LastUsedAt, RevokedAt: t.RevokedAt}
	}
	return out, nil
}

// MemberQuery filters and pages an organization's members.
type MemberQuery struct {
	// Status is pending_setup, active, deprovisioned or "" for all.
	Status string
	// Email keeps members whose e-mail contains it, ignoring case.
	Email string
	// After is the last id of the previous page.
	After string
	Limit int
}

// Members lists an organization's members in id order.
func (s *Service) Members(ctx context.Context, orgID string, q MemberQuery) ([]store.Membership, error) {
	switch q.Status {
	case "", lifecycle.StatusPendingSetup, lifecycle.StatusActive, lifecycle.StatusDeprovisioned:
	default:
		return nil, fmt.Errorf("%w: status must be pending_setup, active or deprovisioned", ErrInvalid)
	}
	if q.Limit < 1 || q.Limit > 1000 {
		return nil, fmt.Errorf("%w: limit must be 1 to 1000", ErrInvalid)
	}
	if _, err := s.Store.Org(ctx, orgID); err != nil {
		return nil, err
	}
	return s.Store.SearchMembers(ctx, orgID, q.Status, q.Email, q.After, q.Limit)
}

// Member reads one member of an organization.
func (s *Service) Member(ctx context.Context, orgID, id string) (store.Membership, error) {
	return s.Store.Membership(ctx, orgID, id)
}

// MemberByEmail reads the organization's member who is the person with
// this e-mail; store.ErrNotFound when there is none.
func (s *Service) MemberByEmail(ctx context.Context, orgID, email string) (store.Membership, error) {
	m, err := s.Store.MembershipByEmail(ctx, orgID, email)
	return m.Membership, err
}

// Groups lists an organization's local groups with their members.
func (s *Service) Groups(ctx context.Context, orgID, after string, limit int) ([]store.GroupView, error) {
	if _, err := s.Store.Org(ctx, orgID); err != nil {
		return nil, err
	}
	return s.Store.LocalGroups(ctx, orgID, after, limit)
}

// SyncRuns lists an organization's runs, newest first, before the given id.
func (s *Service) SyncRuns(ctx context.Context, orgID, before string, limit int) ([]store.SyncRun, error) {
	if _, err := s.Store.Org(ctx, orgID); err != nil {
		return nil, err
	}
	return s.Store.SyncRuns(ctx, orgID, before, limit)
}

// SyncRun shows one run.
func (s *Service) SyncRun(ctx context.Context, orgID, id string) (store.SyncRun, error) {
	return s.Store.SyncRun(ctx, orgID, id)
}

// SyncRunItems returns up to limit of a run's planned changes after the
// cursor after (0: from the first), of the given action when set, and the
// cursor of the next page (0 when this one is the last).
func (s *Service) SyncRunItems(ctx context.Context, orgID, runID, action string, after int64, limit int) ([]SyncRunItemView, int64, error) {
	var actions []string
	if action != "" {
		actions = []string{action}
	}
	// One more than asked says whether a next page exists.
	items, err := s.Store.SyncRunItemsAfter(ctx, orgID, runID, after, limit+1, actions...)
	if err != nil {
		return nil, 0, err
	}
	var next int64
	if len(items) > limit {
		items = items[:limit]
		next = items[limit-1].ID
	}
	out := make([]SyncRunItemView, len(items))
	for i, it := range items {
		out[i] = SyncRunItemView{Action: it.Action, EntityType: it.EntityType, EntityID: it.EntityID, Detail: it.Detail}
	}
	return out, next, nil
}

// SyncRunItemCounts counts a run's planned changes by action.
func (s *Service) SyncRunItemCounts(ctx context.Context, orgID, runID string) (map[string]int, error) {
	return s.Store.CountSyncRunItems(ctx, orgID, runID)
}

// AuditEvents lists an organization's audit log, newest first, before the
// given event id (0: from the newest).
func (s *Service) AuditEvents(ctx context.Context, orgID string, before int64, limit int) ([]store.AuditEvent, error) {
	if _, err := s.Store.Org(ctx, orgID); err != nil {
		return nil, err
	}
	return s.Store.AuditEvents(ctx, orgID, before, limit)
}

// TestConnector checks a connector as PutConnector would, and asks the IdP,
// without storing anything. Omitted credentials test the stored ones of a
// connector of the same type. The errors are PutConnector's.
func (s *Service) TestConnector(ctx context.Context, orgID, typ string, settings, credentials json.RawMessage) error {
	if _, err := s.Store.Org(ctx, orgID); err != nil {
		return err
	}
	if isEmptyJSON(settings) {
		settings = json.RawMessage(`{}`)
	}
	if isEmptyJSON(credentials) {
		credentials = nil
	}
	if s.Connectors == nil {
		return errors.New("test connector: no connector opener")
	}
	_, err := s.Connectors.Check(ctx, orgID, typ, settings, credentials)
	return checkError(err)
}

// checkError classifies a source.Opener.Check error the same way for
// saving and testing a connector.
func checkError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, source.ErrNoCredentials), errors.Is(err, connectors.ErrInvalidConfig):
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	case errors.Is(err, source.ErrConnection):
		return err
	default:
		return fmt.Errorf("check connector: %w", err)
	}
}
