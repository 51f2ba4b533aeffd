package inbound

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/scimsync/scimsync/inbound/schema"
	"github.com/scimsync/scimsync/internal/clock"
	"github.com/scimsync/scimsync/internal/httpjson"
	"github.com/scimsync/scimsync/store"
)

// Prefix is where the service provider is mounted.
const Prefix = "/scim/v2"

// MaxResults caps one page of a list; advertised in ServiceProviderConfig.
const MaxResults = 1000

// DefaultCount is the page size when a client names none.
const DefaultCount = 100

// DefaultRequestTimeout is a SCIM request's deadline. IdPs wait 15 to 60 s
// for an answer; a request that has waited 10 s for the database is better
// retried than held.
const DefaultRequestTimeout = 10 * time.Second

// DefaultAuthCacheTTL is how long a token verdict is reused by default.
// Changes made through the admin service reach the cache at once; this
// bounds how long one is missed when that notice is lost (Redis down).
const DefaultAuthCacheTTL = 2 * time.Second

// Server serves /scim/v2 for every organization; the bearer token picks the
// organization.
type Server struct {
	Store *store.Store
	Log   *slog.Logger
	// PublicURL is the base of meta.location.
	PublicURL string
	// Notify, when set, is called after a write commits outbox work, so a
	// relay can pick it up at once instead of at its next poll.
	Notify func()
	// Clock tells the time of token checks and their cache (default the
	// real clock).
	Clock clock.Clock
	// AuthCacheTTL is how long a token verdict is reused unless Forget
	// drops it first (default DefaultAuthCacheTTL; a negative value
	// disables the cache).
	AuthCacheTTL time.Duration
	// RequestTimeout bounds each request, waits for a database connection
	// included (default DefaultRequestTimeout); past it the IdP gets a 503
	// with Retry-After.
	RequestTimeout time.Duration

	// Resolved from the fields above, with their defaults, on first use;
	// the exported fields are never written. auth is shared by Handler and
	// Forget.
	initOnce sync.Once
	log      *slog.Logger
	auth     *authenticator
}

// init resolves the settings and builds the authenticator, once.
func (s *Server) init() {
	s.initOnce.Do(func() {
		s.log = orDiscard(s.Log)
		s.auth = newAuthenticator(s.Store, clock.OrReal(s.Clock).Now, cmp.Or(s.AuthCacheTTL, DefaultAuthCacheTTL))
		s.auth.log = s.log
	})
}

// Forget drops what the server remembers about one SCIM token of an
// organization, or, with tokenID empty, about all the organization's tokens
// (its SCIM switch changed). The next request with such a token is checked
// against the database.
func (s *Server) Forget(orgID, tokenID string) {
	s.init()
	s.auth.forget(orgID, tokenID)
}

// ForgetAll drops what the server remembers about every token.
func (s *Server) ForgetAll() {
	s.init()
	s.auth.forgetAll()
}

// Handler returns the SCIM service provider, to be mounted at Prefix+"/".
func (s *Server) Handler() http.Handler {
	s.init()

	mux := http.NewServeMux()
	p := Prefix
	mux.HandleFunc("GET "+p+"/ServiceProviderConfig", s.serviceProviderConfig)
	mux.HandleFunc("GET "+p+"/ResourceTypes", s.resourceTypes)
	mux.HandleFunc("GET "+p+"/ResourceTypes/{id}", s.resourceType)
	mux.HandleFunc("GET "+p+"/Schemas", s.schemas)
	mux.HandleFunc("GET "+p+"/Schemas/{id}", s.schemaByID)

	mux.HandleFunc("GET "+p+"/Users", s.listUsers)
	mux.HandleFunc("POST "+p+"/Users", s.createUser)
	mux.HandleFunc("GET "+p+"/Users/{id}", s.getUser)
	mux.HandleFunc("PUT "+p+"/Users/{id}", s.replaceUser)
	mux.HandleFunc("PATCH "+p+"/Users/{id}", s.patchUser)
	mux.HandleFunc("DELETE "+p+"/Users/{id}", s.deleteUser)

	mux.HandleFunc("GET "+p+"/Groups", s.listGroups)
	mux.HandleFunc("POST "+p+"/Groups", s.createGroup)
	mux.HandleFunc("GET "+p+"/Groups/{id}", s.getGroup)
	mux.HandleFunc("PUT "+p+"/Groups/{id}", s.replaceGroup)
	mux.HandleFunc("PATCH "+p+"/Groups/{id}", s.patchGroup)
	mux.HandleFunc("DELETE "+p+"/Groups/{id}", s.deleteGroup)

	mux.HandleFunc(catchAll, func(w http.ResponseWriter, r *http.Request) {
		if allowedElsewhere(mux, r) {
			writeError(w, http.StatusMethodNotAllowed, "", r.Method+" is not supported on "+r.URL.Path)
			return
		}
		writeError(w, http.StatusNotFound, "", "no such SCIM endpoint: "+r.Method+" "+r.URL.Path)
	})
	return httpjson.WithDeadline(s.require(mux), cmp.Or(s.RequestTimeout, DefaultRequestTimeout))
}

// catchAll answers requests no resource route matches: a SCIM 404, or a
// SCIM 405 when the path exists under another method (instead of
// ServeMux's plain-text answers).
const catchAll = Prefix + "/"

// allowedElsewhere reports whether r's path has a route under another
// method. Only requests that reach the catch-all pay for the probe.
func allowedElsewhere(mux *http.ServeMux, r *http.Request) bool {
	for _, m := range []string{"GET", "POST", "PUT", "PATCH", "DELETE"} {
		if m == r.Method {
			continue
		}
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pattern := mux.Handler(probe); pattern != "" && pattern != catchAll {
			return true
		}
	}
	return false
}

func (s *Server) baseURL() string { return strings.TrimRight(s.PublicURL, "/") + Prefix }

func (s *Server) write(w http.ResponseWriter, status int, v any) {
	httpjson.Write(w, status, ContentType, v)
}

// decode reads a JSON object body.
func decode(w http.ResponseWriter, r *http.Request) (map[string]any, error) {
	var m map[string]any
	if err := httpjson.Decode(w, r, &m); err != nil {
		return nil, err
	}
	if m == nil {
		return nil, schema.Errorf(schema.ScimTypeInvalidSyntax, "the body must be a JSON object")
	}
	return m, nil
}

// notify tells the relay new outbox work committed.
func (s *Server) notify() {
	if s.Notify != nil {
		s.Notify()
	}
}

func isNotFound(err error) bool { return errors.Is(err, store.ErrNotFound) }

// tx runs fn in a transaction.
func (s *Server) tx(ctx context.Context, fn func(tx *store.Store) error) error {
	return s.Store.Tx(ctx, fn)
}

// maxStaleRetries bounds txRetry. Each round of contention lets one writer
// through, so this many concurrent writers to one resource all succeed.
const maxStaleRetries = 64

// txRetry runs a read-modify-write transaction. When a concurrent writer
// changed the resource in between (ErrStale) and the client did not pin a
// version with If-Match, it runs again on the fresh row, after a short
// random pause that spreads the contenders out; with If-Match the stale
// version is the client's 412.
func (s *Server) txRetry(ctx context.Context, r *http.Request, fn func(tx *store.Store) error) error {
	pinned := r.Header.Get("If-Match") != ""
	for attempt := 1; ; attempt++ {
		err := s.tx(ctx, fn)
		if !errors.Is(err, store.ErrStale) || pinned || attempt >= maxStaleRetries {
			return err
		}
		pause := time.Duration(rand.Int64N(int64(min(attempt, 10)) * int64(time.Millisecond)))
		select {
		case <-ctx.Done():
			return fmt.Errorf("retry stale write: %w", ctx.Err())
		case <-time.After(pause):
		}
	}
}
