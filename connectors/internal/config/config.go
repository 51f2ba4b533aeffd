// Package config holds the validation shared by the connectors: strict
// decoding of settings and credentials, and the rules for IdP base URLs.
package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strings"

	"github.com/scimsync/scimsync/connectors"
	"github.com/scimsync/scimsync/internal/weburl"
)

// Decode decodes the JSON object raw (doc is "settings" or "credentials")
// into v, rejecting unknown fields so that, for instance, a credential pasted
// into settings is refused instead of being stored where it would be shown.
// Errors name the field at fault, never its value.
func Decode(typ, doc string, raw json.RawMessage, v any) error {
	if len(bytes.TrimSpace(raw)) == 0 {
		raw = json.RawMessage("{}")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		if _, extra := dec.Token(); extra != io.EOF {
			return &connectors.ConfigError{Type: typ, Field: doc, Problem: "must be a single JSON object"}
		}
		return nil
	}
	var typeErr *json.UnmarshalTypeError
	switch {
	case errors.As(err, &typeErr) && typeErr.Field != "":
		return &connectors.ConfigError{Type: typ, Field: doc + "." + typeErr.Field, Problem: "must be a " + typeErr.Type.Kind().String()}
	case errors.As(err, &typeErr):
		return &connectors.ConfigError{Type: typ, Field: doc, Problem: "must be a JSON object"}
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		field := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return &connectors.ConfigError{Type: typ, Field: doc + "." + field, Problem: "is not a known field"}
	}
	return &connectors.ConfigError{Type: typ, Field: doc, Problem: "is not valid JSON"}
}

// Required reports a missing field.
func Required(typ, field, value string) error {
	if strings.TrimSpace(value) == "" {
		return &connectors.ConfigError{Type: typ, Field: field, Problem: "is required"}
	}
	return nil
}

// BaseURL parses an IdP base URL: https, or plain http for a loopback host
// only (127.0.0.0/8, ::1, localhost), which is what tests and local fakes
// use. It must have no user info, path, query or fragment. def replaces an
// empty raw; with def empty, an empty raw is an error.
func BaseURL(typ, field, raw, def string) (*url.URL, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		if def == "" {
			return nil, &connectors.ConfigError{Type: typ, Field: field, Problem: "is required"}
		}
		raw = def
	}
	bad := func(problem string) error {
		return &connectors.ConfigError{Type: typ, Field: field, Problem: problem}
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.Opaque != "" {
		return nil, bad("must be an absolute URL such as https://example.com")
	}
	if err := weburl.CheckScheme(u); err != nil {
		return nil, bad(err.Error())
	}
	if u.User != nil {
		return nil, bad("must not contain user info")
	}
	if strings.Trim(u.Path, "/") != "" || u.RawQuery != "" || u.Fragment != "" || u.ForceQuery {
		return nil, bad("must be a base URL without path, query or fragment")
	}
	u.Path, u.RawPath = "", ""
	return u, nil
}

// IsLoopback reports whether host (no port) is a loopback name or address.
func IsLoopback(host string) bool { return weburl.IsLoopback(host) }

// Logger returns the logger of opts, or one that discards, tagged with the
// connector type.
func Logger(typ string, opts connectors.Options) *slog.Logger {
	l := opts.Logger
	if l == nil {
		l = slog.New(slog.DiscardHandler)
	}
	return l.With("connector", typ)
}

// ValidID reports whether an IdP id is safe to put in a URL path segment.
// The IdPs' ids are alphanumeric with dashes or underscores; refusing anything
// else keeps a hostile or corrupt id from rewriting the request path.
func ValidID(id string) error {
	if id == "" {
		return errors.New("empty id")
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return fmt.Errorf("id %q has a character other than letters, digits, '-' and '_'", id)
		}
	}
	return nil
}
