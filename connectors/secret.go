package connectors

import (
	"context"
	"errors"
	"log/slog"
	"net/url"
	"slices"
	"strings"
)

// Secret is a credential value. It prints as "[redacted]" through fmt, slog
// and encoding/json, so a credential cannot leak by logging a config struct;
// Reveal gives the value to the code that sends it.
type Secret string

const redacted = "[redacted]"

func (s Secret) String() string               { return redacted }
func (s Secret) GoString() string             { return redacted }
func (s Secret) LogValue() slog.Value         { return slog.StringValue(redacted) }
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }

// Reveal returns the credential itself.
func (s Secret) Reveal() string { return string(s) }

// minSecretLen keeps very short values (which are not real credentials) from
// turning ordinary words in messages into "[redacted]".
const minSecretLen = 4

// secretForms returns the values worth scrubbing, with their URL-escaped
// forms, longest first so that a secret containing another is scrubbed whole.
func secretForms(values []string) []string {
	var out []string
	for _, v := range values {
		if len(v) < minSecretLen {
			continue
		}
		out = append(out, v)
		if e := url.QueryEscape(v); e != v {
			out = append(out, e)
		}
	}
	slices.SortFunc(out, func(a, b string) int { return len(b) - len(a) })
	return slices.Compact(out)
}

// redact returns err, or an error with the same meaning whose message has
// every secret replaced when the message contained one.
func redact(err error, secrets []string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	clean := msg
	for _, s := range secrets {
		clean = strings.ReplaceAll(clean, s, redacted)
	}
	if clean == msg {
		return err
	}
	// Unwrapping to the original error would hand its secret-bearing message
	// back to whoever prints it, so keep only what callers match on: the
	// sentinels, the context errors, and a scrubbed copy of any APIError.
	r := &redactedError{msg: clean}
	var apiErr *APIError
	if errors.As(err, &apiErr) {
		c := *apiErr
		for _, s := range secrets {
			c.Message = strings.ReplaceAll(c.Message, s, redacted)
			c.Code = strings.ReplaceAll(c.Code, s, redacted)
		}
		r.kinds = append(r.kinds, &c)
	}
	for _, k := range []error{ErrUnauthorized, ErrRateLimited, ErrUnavailable, ErrGroupNotFound, ErrInvalidConfig, ErrCursorExpired, context.Canceled, context.DeadlineExceeded} {
		if errors.Is(err, k) {
			r.kinds = append(r.kinds, k)
		}
	}
	var cfgErr *ConfigError
	if errors.As(err, &cfgErr) {
		r.kinds = append(r.kinds, cfgErr) // names fields, never values
	}
	return r
}

type redactedError struct {
	msg   string
	kinds []error
}

func (e *redactedError) Error() string   { return e.msg }
func (e *redactedError) Unwrap() []error { return e.kinds }

// redacting scrubs credentials from every error its Directory returns, as a
// last line of defence: the IdP may echo a credential in an error body.
type redacting struct {
	d       Directory
	secrets []string
}

func (r redacting) ListUsers(ctx context.Context, fn func([]User) error) error {
	return redact(r.d.ListUsers(ctx, fn), r.secrets)
}

func (r redacting) ListGroups(ctx context.Context, fn func([]Group) error) error {
	return redact(r.d.ListGroups(ctx, fn), r.secrets)
}

func (r redacting) ListGroupMembers(ctx context.Context, groupID string, fn func([]string) error) error {
	return redact(r.d.ListGroupMembers(ctx, groupID, fn), r.secrets)
}

func (r redacting) TestConnection(ctx context.Context) error {
	return redact(r.d.TestConnection(ctx), r.secrets)
}
