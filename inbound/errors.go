package inbound

import (
	"errors"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/scimsync/scimsync/inbound/schema"
	"github.com/scimsync/scimsync/internal/httpjson"
	"github.com/scimsync/scimsync/store"
)

// ContentType is what every SCIM response carries.
const ContentType = "application/scim+json"

const errorURN = "urn:ietf:params:scim:api:messages:2.0:Error"

// scimTypes the HTTP layer itself produces.
const (
	scimTypeUniqueness schema.ScimType = "uniqueness"
	scimTypeTooMany    schema.ScimType = "tooMany"
)

// scimError is the RFC 7644 §3.12 error body; status is a string there.
type scimError struct {
	Schemas  []string `json:"schemas"`
	Status   string   `json:"status"`
	ScimType string   `json:"scimType,omitempty"`
	Detail   string   `json:"detail,omitempty"`
}

func writeError(w http.ResponseWriter, status int, scimType schema.ScimType, detail string) {
	httpjson.Write(w, status, ContentType, scimError{
		Schemas: []string{errorURN}, Status: strconv.Itoa(status), ScimType: string(scimType), Detail: detail,
	})
}

// errPrecondition is an If-Match that names another version.
var errPrecondition = errors.New("resource version does not match If-Match")

// fail maps an error to its SCIM answer. Only here do store and engine
// errors become HTTP.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	var se *schema.Error
	var ce *store.ConflictError
	switch {
	case errors.As(err, &se):
		writeError(w, se.Status(), se.ScimType, se.Detail)
	case errors.Is(err, httpjson.ErrTooLarge):
		writeError(w, http.StatusRequestEntityTooLarge, "", "request body is larger than 1 MiB")
	case errors.Is(err, httpjson.ErrSyntax):
		writeError(w, http.StatusBadRequest, schema.ScimTypeInvalidSyntax, err.Error())
	case errors.As(err, &ce):
		writeError(w, http.StatusConflict, scimTypeUniqueness, ce.Error())
	case errors.Is(err, store.ErrNotFound):
		writeError(w, http.StatusNotFound, "", "resource "+r.PathValue("id")+" not found")
	case errors.Is(err, errPrecondition), errors.Is(err, store.ErrStale):
		writeError(w, http.StatusPreconditionFailed, "", errPrecondition.Error())
	case store.IsUnavailable(err), httpjson.DeadlinePassed(r, err):
		// IdPs retry a 5xx; Retry-After says when. A write that met this
		// may or may not have been made: its retry finds out (a create
		// then gets 409, which IdPs answer with a lookup).
		s.log.WarnContext(r.Context(), "scim request: database unavailable", "method", r.Method, "path", r.URL.Path, "err", err)
		w.Header().Set("Retry-After", httpjson.RetryAfterUnavailable)
		writeError(w, http.StatusServiceUnavailable, "", httpjson.UnavailableMessage)
	default:
		s.log.ErrorContext(r.Context(), "scim request failed", "method", r.Method, "route", r.Pattern, "err", err)
		writeError(w, http.StatusInternalServerError, "", "internal error")
	}
}

// orDiscard returns l, or a discarding logger when l is nil.
func orDiscard(l *slog.Logger) *slog.Logger {
	if l != nil {
		return l
	}
	return slog.New(slog.DiscardHandler)
}
