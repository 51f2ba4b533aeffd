package connectors

import (
	"errors"
	"fmt"
	"net/http"
)

// Errors a Directory's methods may match with errors.Is.
var (
	// ErrUnauthorized: the IdP refused the credentials (HTTP 401 or 403, or a
	// refused token request). The error carries the IdP's message.
	ErrUnauthorized = errors.New("unauthorized by the identity provider")
	// ErrRateLimited: the IdP kept answering 429 beyond the retry budget.
	ErrRateLimited = errors.New("rate limited by the identity provider")
	// ErrUnavailable: the IdP failed (5xx, timeouts, connection errors) beyond
	// the retry budget, or changed under a listing in a way that may have
	// hidden users. Trying again later may succeed.
	ErrUnavailable = errors.New("identity provider unavailable")
	// ErrGroupNotFound: a group named in the "groups" setting does not exist.
	ErrGroupNotFound = errors.New("group not found in the identity provider")
	// ErrInvalidConfig: unknown connector type or invalid settings or
	// credentials; the admin API answers 400. Errors matching it are a
	// *ConfigError.
	ErrInvalidConfig = errors.New("invalid connector configuration")
)

// APIError is an error answer from an IdP API. It matches ErrUnauthorized,
// ErrRateLimited or ErrUnavailable according to its status.
type APIError struct {
	Status  int    // HTTP status
	Code    string // the IdP's error code, e.g. E0000011 or invalid_client; may be empty
	Message string // the IdP's own message; may be empty
}

func (e *APIError) Error() string {
	s := fmt.Sprintf("HTTP %d %s", e.Status, http.StatusText(e.Status))
	if e.Message != "" {
		s += ": " + e.Message
	}
	if e.Code != "" {
		s += " (" + e.Code + ")"
	}
	return s
}

// Unwrap classifies the status into one of the package's sentinel errors.
func (e *APIError) Unwrap() error {
	switch {
	case e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden:
		return ErrUnauthorized
	case e.Status == http.StatusTooManyRequests:
		return ErrRateLimited
	case e.Status >= 500:
		return ErrUnavailable
	}
	return nil
}

// ConfigError describes invalid connector configuration. It never contains a
// credential's value, only the name of the field at fault.
type ConfigError struct {
	Type    string // connector type, e.g. "okta"
	Field   string // e.g. "settings.orgUrl", "credentials.apiToken", "type"
	Problem string // what is wrong, e.g. "is required"
}

func (e *ConfigError) Error() string {
	if e.Type == "" {
		return fmt.Sprintf("connector: %s %s", e.Field, e.Problem)
	}
	return fmt.Sprintf("%s connector: %s %s", e.Type, e.Field, e.Problem)
}

// Unwrap makes every ConfigError match ErrInvalidConfig.
func (e *ConfigError) Unwrap() error { return ErrInvalidConfig }
