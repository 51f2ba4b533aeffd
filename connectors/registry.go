package connectors

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/scimsync/scimsync/internal/clock"
)

// Options tune how a connector talks to its IdP. The zero value is ready for
// production use.
type Options struct {
	// Logger receives retries, waits and per-page progress. Nil discards.
	Logger *slog.Logger
	// Transport carries the connector's HTTP requests, beneath its retries
	// and pacing. Nil means http.DefaultTransport; tests point it at fakes.
	Transport http.RoundTripper
	// Retry bounds retries, waits and the share of the IdP's rate limit a
	// sync may use.
	Retry RetryPolicy
}

// RetryPolicy bounds how hard a connector tries. Zero fields take the
// documented defaults.
type RetryPolicy struct {
	// MaxRetries is how often one request is retried after a 5xx answer, a
	// timeout or a connection error. Default 3; negative disables retries.
	MaxRetries int
	// MaxRateLimitWaits is how many 429 answers one request waits out before
	// the listing fails with ErrRateLimited. Default 5; negative waits none.
	MaxRateLimitWaits int
	// BaseDelay is the first backoff after a failure; it doubles per retry,
	// with jitter, up to MaxDelay. Defaults 1s and 30s.
	BaseDelay, MaxDelay time.Duration
	// MaxRateLimitWait is the longest single wait a 429 or the pacing may
	// impose; an IdP asking for more fails the request. Default 2m.
	MaxRateLimitWait time.Duration
	// AttemptTimeout bounds one HTTP attempt, body included. Default 60s.
	AttemptTimeout time.Duration
	// RateLimitShare is the share of an IdP's advertised rate limit (Okta's
	// X-Rate-Limit-* headers) a sync may use, so that the organization's
	// other integrations keep the rest: requests wait for the window to reset
	// once fewer than (1-share)×limit remain. Default 0.5; 1 turns pacing off.
	RateLimitShare float64
	// Clock waits out backoffs and rate limits and tells the time. Nil
	// means the real clock; tests inject a fake so that nothing sleeps.
	Clock clock.Clock
}

// OpenFunc builds a Directory from a connector's settings and credentials.
// It validates them, returning a *ConfigError when they are wrong, and does
// no I/O. Settings arrive without the generic "groups" field, which Open
// handles for every connector.
type OpenFunc func(ctx context.Context, settings, credentials json.RawMessage, opts Options) (Directory, error)

var (
	registryMu sync.RWMutex
	registry   = map[string]OpenFunc{}
)

// Register makes a connector available to Open under typ. Connector packages
// call it from init. It panics if typ is registered twice.
func Register(typ string, open OpenFunc) {
	registryMu.Lock()
	defer registryMu.Unlock()
	if _, dup := registry[typ]; dup {
		panic("connectors: Register called twice for " + typ)
	}
	registry[typ] = open
}

// Types lists the registered connector types, sorted.
func Types() []string {
	registryMu.RLock()
	defer registryMu.RUnlock()
	types := make([]string, 0, len(registry))
	for t := range registry {
		types = append(types, t)
	}
	slices.Sort(types)
	return types
}

// Open builds the Directory of connector type typ from the settings and
// credentials stored for an organization (JSON objects, shapes in the admin
// API's contract). It does no I/O; use TestConnection to check the IdP
// accepts them.
//
// When settings has a non-empty "groups" list, the Directory is limited to
// the members of those groups (see FilterGroups). Errors from the Directory
// never contain a credential's value.
//
// An unknown type or invalid settings or credentials give a *ConfigError
// (errors.Is ErrInvalidConfig).
func Open(ctx context.Context, typ string, settings, credentials json.RawMessage, opts Options) (Directory, error) {
	registryMu.RLock()
	open, ok := registry[typ]
	registryMu.RUnlock()
	if !ok {
		known := strings.Join(Types(), ", ")
		if known == "" {
			known = "none: this binary links in no connector; cmd/scimsync imports connectors/all"
		}
		return nil, &ConfigError{Field: "type", Problem: fmt.Sprintf("%q is not a known connector type (known: %s)", typ, known)}
	}
	settings, groups, err := splitGroups(typ, settings)
	if err != nil {
		return nil, err
	}
	secrets, err := credentialStrings(typ, credentials)
	if err != nil {
		return nil, err
	}
	d, err := open(ctx, settings, credentials, opts)
	if err != nil {
		return nil, redact(err, secrets)
	}
	if len(groups) > 0 {
		d = FilterGroups(d, groups)
	}
	if len(secrets) > 0 {
		d = redacting{d: d, secrets: secrets}
	}
	return d, nil
}

// splitGroups takes the generic "groups" field out of settings.
func splitGroups(typ string, settings json.RawMessage) (json.RawMessage, []string, error) {
	if len(bytes.TrimSpace(settings)) == 0 {
		return json.RawMessage("{}"), nil, nil
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(settings, &fields); err != nil || fields == nil {
		return nil, nil, &ConfigError{Type: typ, Field: "settings", Problem: "must be a JSON object"}
	}
	raw, ok := fields["groups"]
	if !ok {
		return settings, nil, nil
	}
	delete(fields, "groups")
	rest, err := json.Marshal(fields)
	if err != nil {
		return nil, nil, fmt.Errorf("%s connector: re-encode settings: %w", typ, err)
	}
	var names []string
	if err := json.Unmarshal(raw, &names); err != nil {
		return nil, nil, &ConfigError{Type: typ, Field: "settings.groups", Problem: "must be a list of group names"}
	}
	var groups []string
	for _, n := range names {
		n = strings.TrimSpace(n)
		if n == "" {
			return nil, nil, &ConfigError{Type: typ, Field: "settings.groups", Problem: "must not contain an empty name"}
		}
		if !slices.ContainsFunc(groups, func(g string) bool { return strings.EqualFold(g, n) }) {
			groups = append(groups, n)
		}
	}
	return rest, groups, nil
}

// credentialStrings returns every string value in the credentials object,
// which Open scrubs from errors.
func credentialStrings(typ string, credentials json.RawMessage) ([]string, error) {
	if len(bytes.TrimSpace(credentials)) == 0 {
		return nil, nil
	}
	var fields map[string]any
	if err := json.Unmarshal(credentials, &fields); err != nil || fields == nil {
		return nil, &ConfigError{Type: typ, Field: "credentials", Problem: "must be a JSON object"}
	}
	var out []string
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case string:
			out = append(out, v)
		case map[string]any:
			for _, e := range v {
				walk(e)
			}
		case []any:
			for _, e := range v {
				walk(e)
			}
		}
	}
	walk(fields)
	return secretForms(out), nil
}
