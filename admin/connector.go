package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/scimsync/scimsync/connectors"
	_ "github.com/scimsync/scimsync/connectors/all" // every connector type
	"github.com/scimsync/scimsync/store"
)

// ErrConnection is a connector whose IdP refused or could not be reached by
// the test connection; its message is the IdP's, never a credential.
var ErrConnection = errors.New("connection test failed")

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

// ConnectorTestTimeout bounds the test connection made on PUT.
const ConnectorTestTimeout = 30 * time.Second

// PutConnector validates a connector, tests it against the IdP, and stores
// it with its credentials sealed. Omitted credentials keep the stored ones
// of a connector of the same type, so settings can change without
// re-sending secrets.
func (s *Service) PutConnector(ctx context.Context, orgID, typ string, settings, credentials json.RawMessage) (ConnectorView, error) {
	if _, err := s.Store.Org(ctx, orgID); err != nil {
		return ConnectorView{}, err
	}
	if isEmptyJSON(settings) {
		settings = json.RawMessage(`{}`)
	}
	if isEmptyJSON(credentials) {
		prev, err := s.Store.Connector(ctx, orgID)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return ConnectorView{}, fmt.Errorf("put connector: %w", err)
		}
		if err != nil || prev.Type != typ {
			return ConnectorView{}, fmt.Errorf("%w: credentials are required", ErrInvalid)
		}
		if credentials, err = s.Box.Open(prev.Credentials, []byte(orgID)); err != nil {
			return ConnectorView{}, fmt.Errorf("put connector: stored credentials: %w", err)
		}
	}
	dir, err := connectors.Open(ctx, typ, settings, credentials, s.ConnectorOptions)
	if err != nil {
		if errors.Is(err, connectors.ErrInvalidConfig) {
			return ConnectorView{}, fmt.Errorf("%w: %v", ErrInvalid, err)
		}
		return ConnectorView{}, fmt.Errorf("put connector: %w", err)
	}
	tctx, cancel := context.WithTimeout(ctx, ConnectorTestTimeout)
	defer cancel()
	if err := dir.TestConnection(tctx); err != nil {
		return ConnectorView{}, fmt.Errorf("%w: %v", ErrConnection, err)
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, settings); err != nil {
		return ConnectorView{}, fmt.Errorf("%w: settings: %v", ErrInvalid, err)
	}
	c := store.Connector{OrgID: orgID, Type: typ, Settings: compact.String(), Credentials: s.Box.Seal(credentials, []byte(orgID))}
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

// Directory opens an organization's connector for listing; ErrNotFound when
// it has none.
func (s *Service) Directory(ctx context.Context, orgID string) (connectors.Directory, string, error) {
	c, err := s.Store.Connector(ctx, orgID)
	if err != nil {
		return nil, "", err
	}
	creds, err := s.Box.Open(c.Credentials, []byte(orgID))
	if err != nil {
		return nil, "", fmt.Errorf("open connector: %w", err)
	}
	dir, err := connectors.Open(ctx, c.Type, json.RawMessage(c.Settings), creds, s.ConnectorOptions)
	if err != nil {
		return nil, "", fmt.Errorf("open connector: %w", err)
	}
	return dir, c.Type, nil
}
