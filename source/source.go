// Package source opens the connector an organization stored: the IdP
// directory a reconciliation pulls from. It unseals the stored credentials
// for a pull, and checks, tests and seals what an operator submits before
// it is stored, so that neither the admin API nor the reconciler handles
// the key that seals IdP credentials at rest.
//
// It opens connectors by type name through connectors.Open; which types
// exist is decided by the command that links them in (cmd/scimsync
// imports connectors/all), never here.
package source

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/scimsync/scimsync/connectors"
	"github.com/scimsync/scimsync/internal/secret"
	"github.com/scimsync/scimsync/store"
)

// ErrConnection marks a submitted connector whose IdP refused it or could
// not be reached; its message is the IdP's, never a credential.
var ErrConnection = errors.New("connection test failed")

// ErrNoCredentials is a submission without credentials for an
// organization whose stored connector is missing or of another type, so
// that there are none to keep.
var ErrNoCredentials = errors.New("credentials are required")

// TestTimeout bounds the test connection Check makes.
const TestTimeout = 30 * time.Second

// Opener opens organizations' connectors. Credentials are sealed with the
// organization's id as additional data, so a row copied to another
// organization does not open.
type Opener struct {
	Store *store.Store
	// Box seals IdP credentials at rest.
	Box *secret.Box
	// Options tune the connectors it opens (transport, retries); zero is
	// fine.
	Options connectors.Options
}

// Directory opens an organization's stored connector for a pull, and
// returns its type, which pulled rows carry as their source. The error
// matches store.ErrNotFound when the organization has none.
func (o *Opener) Directory(ctx context.Context, orgID string) (connectors.Directory, string, error) {
	c, err := o.Store.Connector(ctx, orgID)
	if err != nil {
		return nil, "", err
	}
	creds, err := o.Box.Open(c.Credentials, []byte(orgID))
	if err != nil {
		return nil, "", fmt.Errorf("open connector: %w", err)
	}
	dir, err := connectors.Open(ctx, c.Type, json.RawMessage(c.Settings), creds, o.Options)
	if err != nil {
		return nil, "", fmt.Errorf("open connector: %w", err)
	}
	return dir, c.Type, nil
}

// Check opens the connector an operator submits for an organization and
// tests it against the IdP, within TestTimeout. Nil credentials stand
// for those stored with the organization's connector of the same type, so
// settings can change without re-sending secrets. It returns the
// credentials sealed for storing.
//
// Errors: ErrNoCredentials when there are none to keep; a
// *connectors.ConfigError (errors.Is connectors.ErrInvalidConfig) for an
// unknown type or invalid settings or credentials; ErrConnection when the
// test fails.
func (o *Opener) Check(ctx context.Context, orgID, typ string, settings, credentials json.RawMessage) ([]byte, error) {
	if len(credentials) == 0 {
		prev, err := o.Store.Connector(ctx, orgID)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
		if err != nil || prev.Type != typ {
			return nil, ErrNoCredentials
		}
		if credentials, err = o.Box.Open(prev.Credentials, []byte(orgID)); err != nil {
			return nil, fmt.Errorf("stored credentials: %w", err)
		}
	}
	dir, err := connectors.Open(ctx, typ, settings, credentials, o.Options)
	if err != nil {
		return nil, err
	}
	tctx, cancel := context.WithTimeout(ctx, TestTimeout)
	defer cancel()
	if err := dir.TestConnection(tctx); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrConnection, err)
	}
	return o.Box.Seal(credentials, []byte(orgID)), nil
}
