package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/scimsync/scimsync/store"
)

// ConnectorView is a connector as the admin API shows it: never with its
// credentials.
type ConnectorView struct {
	Type           string          `json:"type"`
	Settings       json.RawMessage `json:"settings"`
	HasCredentials bool            `json:"hasCredentials"`
	CreatedAt      time.Time       `json:"createdAt"`
	UpdatedAt      time.Time       `json:"updatedAt"`
}

func viewConnector(c store.Connector) ConnectorView {
	return ConnectorView{Type: c.Type, Settings: json.RawMessage(c.Settings), HasCredentials: len(c.Credentials) > 0, CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt}
}

// PutConnector validates a connector, tests it against the IdP, and stores
// it with its credentials sealed (see source.Opener.Check). Omitted
// credentials keep the stored ones of a connector of the same type, so
// settings can change without re-sending secrets. A connector the IdP
// refuses gives an error matching source.ErrConnection.
func (s *Service) PutConnector(ctx context.Context, orgID, typ string, settings, credentials json.RawMessage) (ConnectorView, error) {
	if _, err := s.Store.Org(ctx, orgID); err != nil {
		return ConnectorView{}, err
	}
	if isEmptyJSON(settings) {
		settings = json.RawMessage(`{}`)
	}
	if isEmptyJSON(credentials) {
		credentials = nil // keep the stored ones
	}
	if s.Connectors == nil {
		return ConnectorView{}, errors.New("put connector: no connector opener")
	}
	sealed, err := s.Connectors.Check(ctx, orgID, typ, settings, credentials)
	if err := checkError(err); err != nil {
		return ConnectorView{}, err
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, settings); err != nil {
		return ConnectorView{}, fmt.Errorf("%w: settings: %v", ErrInvalid, err)
	}
	c := store.Connector{OrgID: orgID, Type: typ, Settings: compact.String(), Credentials: sealed}
	err = s.Store.Tx(ctx, func(tx *store.Store) error {
		if err := tx.PutConnector(ctx, &c); err != nil {
			return err
		}
		return tx.AddAuditEvent(ctx, store.AuditEvent{OrgID: orgID, Actor: actorAdmin, Action: "connector.put", EntityType: "connector", EntityID: orgID, Detail: "type=" + typ})
	})
	if err != nil {
		return ConnectorView{}, err
	}
	c, err = s.Store.Connector(ctx, orgID)
	if err != nil {
		return ConnectorView{}, err
	}
	return viewConnector(c), nil
}

func isEmptyJSON(b json.RawMessage) bool {
	t := bytes.TrimSpace(b)
	return len(t) == 0 || bytes.Equal(t, []byte("null"))
}

// Connector shows an organization's connector.
func (s *Service) Connector(ctx context.Context, orgID string) (ConnectorView, error) {
	if _, err := s.Store.Org(ctx, orgID); err != nil {
		return ConnectorView{}, err
	}
	c, err := s.Store.Connector(ctx, orgID)
	if err != nil {
		return ConnectorView{}, err
	}
	return viewConnector(c), nil
}

// DeleteConnector removes an organization's connector.
func (s *Service) DeleteConnector(ctx context.Context, orgID string) error {
	if _, err := s.Store.Org(ctx, orgID); err != nil {
		return err
	}
	return s.Store.Tx(ctx, func(tx *store.Store) error {
		if err := tx.DeleteConnector(ctx, orgID); err != nil {
			return err
		}
		return tx.AddAuditEvent(ctx, store.AuditEvent{OrgID: orgID, Actor: actorAdmin, Action: "connector.delete", EntityType: "connector", EntityID: orgID})
	})
}
