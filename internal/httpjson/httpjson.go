// Package httpjson reads and writes the JSON bodies of scimsync's HTTP APIs,
// with the body size limit and the error shape they share.
package httpjson

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// MaxBody is the largest request body accepted.
const MaxBody = 1 << 20

// What a 503 answered while the database cannot be reached, or when a
// request's deadline passed waiting for it, says: its Retry-After, in
// seconds, and its message. The SCIM and admin APIs share them, each in its
// own error body.
const (
	RetryAfterUnavailable = "5"
	UnavailableMessage    = "the service cannot reach its database; retry later"
)

// WithDeadline gives every request to h a deadline d from its start. A
// request that waits for a pooled database connection, or on a lock,
// otherwise waits as long as the client does; past its deadline it is
// answered as the database being unavailable (see DeadlinePassed), so the
// client retries instead of piling up.
func WithDeadline(h http.Handler, d time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), d)
		defer cancel()
		rd := r.WithContext(ctx)
		h.ServeHTTP(w, rd)
		// The mux inside records the route on the request it was handed;
		// middleware outside (metrics) reads it from theirs.
		r.Pattern = rd.Pattern
	})
}

// DeadlinePassed reports whether r failed with err because its own
// deadline (WithDeadline) passed, as against the client going away, which
// cancels r instead. Drivers report a deadline in their own words (SQLite
// an interrupted statement), so any error after the deadline counts.
func DeadlinePassed(r *http.Request, err error) bool {
	return err != nil && errors.Is(r.Context().Err(), context.DeadlineExceeded)
}

// Errors returned by Decode, for callers to map to their own error shape.
var (
	ErrTooLarge = errors.New("request body is larger than 1 MiB")
	ErrSyntax   = errors.New("malformed JSON")
)

// Decode reads one JSON value from r's body into v, allowing at most MaxBody
// bytes. Unknown fields are allowed: clients may send more than we read.
func Decode(w http.ResponseWriter, r *http.Request, v any) error {
	body := http.MaxBytesReader(w, r.Body, MaxBody)
	dec := json.NewDecoder(body)
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		switch {
		case errors.As(err, &mbe):
			return ErrTooLarge
		case errors.Is(err, io.EOF):
			return fmt.Errorf("%w: empty body", ErrSyntax)
		default:
			return fmt.Errorf("%w: %s", ErrSyntax, jsonDetail(err))
		}
	}
	// Trailing garbage after the value is malformed too.
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return ErrTooLarge
		}
		return fmt.Errorf("%w: unexpected data after the JSON value", ErrSyntax)
	}
	return nil
}

// jsonDetail describes a decode error without echoing the input.
func jsonDetail(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("syntax error at byte %d", se.Offset)
	case errors.As(err, &te):
		return fmt.Sprintf("%s must be %s", strings.TrimPrefix(te.Field, "."), te.Type)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "unexpected end of input"
	}
	return "cannot decode"
}

// Write sends v as JSON with the given status and content type
// (application/json when empty).
func Write(w http.ResponseWriter, status int, contentType string, v any) {
	if contentType == "" {
		contentType = "application/json"
	}
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	if v != nil {
		enc := json.NewEncoder(w)
		enc.SetEscapeHTML(false)
		_ = enc.Encode(v)
	}
}

// Problem is the error body of the admin API.
type Problem struct {
	Error ProblemDetail `json:"error"`
}

// ProblemDetail is a machine code and a human message.
type ProblemDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Error writes a Problem.
func Error(w http.ResponseWriter, status int, code, message string) {
	Write(w, status, "", Problem{ProblemDetail{Code: code, Message: message}})
}
