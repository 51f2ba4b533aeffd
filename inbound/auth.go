package inbound

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/scimsync/scimsync/internal/secret"
	"github.com/scimsync/scimsync/store"
)

// principal is who a SCIM request acts as: one token of one organization.
type principal struct {
	OrgID   string
	TokenID string
}

// Actor names the principal in audit events, never with the secret.
func (p principal) Actor() string { return "scim:token:" + p.TokenID }

type principalKey struct{}

func principalFrom(ctx context.Context) principal {
	p, _ := ctx.Value(principalKey{}).(principal)
	return p
}

// tokenStore is what authentication needs of the store.
type tokenStore interface {
	SCIMTokenByHash(ctx context.Context, tokenHash string) (store.SCIMToken, error)
	Org(ctx context.Context, id string) (store.Org, error)
	TouchSCIMToken(ctx context.Context, id string, at time.Time) error
}

// authenticator checks SCIM bearer tokens. A verdict is cached briefly
// (AuthCacheTTL) so a busy IdP does not cost two lookups per request. An
// operator's change reaches the cache through forget, at once in the
// process that made it and over Redis in the others; the TTL bounds how
// long a change is missed when that message is lost. Expiry is checked on
// every request. Last use is written at most once per lastUsedEvery per
// token.
//
// Lookups of one token are single-flighted, and a verdict in the last
// quarter of its TTL is refreshed in the background while requests go on
// using it. Without that, every request in flight when a verdict expired
// went to the database at once, and at a steady 1,000 requests a second
// those queued behind each other every TTL. The bound holds all the same:
// a verdict counts as read when its lookup started, and lives a TTL from
// there, whoever waited for it.
type authenticator struct {
	store tokenStore
	now   func() time.Time
	ttl   time.Duration
	log   *slog.Logger

	mu    sync.Mutex
	cache map[string]cachedToken // by token hash
	// flights holds the lookup under way for each token hash.
	flights map[string]*flight
	// gen counts forgets. A lookup stores its verdict only if no forget
	// came between its read of the database and the store: otherwise a
	// verdict read just before a revocation committed could be cached
	// just after the revocation's forget, and outlive it. Nor does a
	// request join a lookup that started before a forget.
	gen      uint64
	lastUsed map[string]time.Time // by token id: last write
}

type cachedToken struct {
	tok     store.SCIMToken
	enabled bool
	until   time.Time
	// refreshAt is when a request starts a background refresh: the last
	// quarter of the TTL, and after a failed refresh a sixteenth of the
	// TTL later, so a failing database gets a few tries per TTL rather
	// than one per request.
	refreshAt time.Time
}

// flight is one database lookup of a token, which any number of requests
// may wait for.
type flight struct {
	start   time.Time
	gen     uint64
	done    chan struct{} // closed when the fields below are set
	waiters int           // requests waiting, for tests
	tok     store.SCIMToken
	enabled bool
	err     error
}

const lastUsedEvery = time.Minute

// lookupTimeout bounds a lookup, which no single request's cancellation
// ends since others may be waiting for it.
const lookupTimeout = DefaultRequestTimeout

func newAuthenticator(st tokenStore, now func() time.Time, ttl time.Duration) *authenticator {
	return &authenticator{
		store: st, now: now, ttl: ttl, log: slog.New(slog.DiscardHandler),
		cache: map[string]cachedToken{}, flights: map[string]*flight{}, lastUsed: map[string]time.Time{},
	}
}

// lookup returns the token and whether its organization has SCIM on.
func (a *authenticator) lookup(ctx context.Context, hash string) (store.SCIMToken, bool, error) {
	if a.ttl <= 0 {
		return a.read(ctx, hash)
	}
	now := a.now()
	a.mu.Lock()
	if c, ok := a.cache[hash]; ok && now.Before(c.until) {
		if !now.Before(c.refreshAt) && a.flights[hash] == nil {
			c.refreshAt = now.Add(a.ttl / 16)
			a.cache[hash] = c
			a.startLocked(ctx, hash, now)
		}
		a.mu.Unlock()
		return c.tok, c.enabled, nil
	}
	// No verdict: wait for a lookup, joining one under way unless a
	// forget came since it started or its verdict would be out of date.
	f := a.flights[hash]
	if f == nil || f.gen != a.gen || !now.Before(f.start.Add(a.ttl)) {
		f = a.startLocked(ctx, hash, now)
	}
	f.waiters++
	a.mu.Unlock()
	select {
	case <-f.done:
		return f.tok, f.enabled, f.err
	case <-ctx.Done():
		return store.SCIMToken{}, false, ctx.Err()
	}
}

// startLocked starts a lookup of hash in the background. a.mu is held.
func (a *authenticator) startLocked(ctx context.Context, hash string, now time.Time) *flight {
	f := &flight{start: now, gen: a.gen, done: make(chan struct{})}
	a.flights[hash] = f
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), lookupTimeout)
	go func() {
		defer cancel()
		tok, enabled, err := a.read(ctx, hash)
		a.mu.Lock()
		defer a.mu.Unlock()
		f.tok, f.enabled, f.err = tok, enabled, err
		close(f.done)
		if a.flights[hash] == f {
			delete(a.flights, hash)
		}
		a.settleLocked(hash, f)
	}()
	return f
}

// settleLocked puts what a finished lookup found in the cache. a.mu is
// held.
func (a *authenticator) settleLocked(hash string, f *flight) {
	switch {
	case f.err == nil:
		until := f.start.Add(a.ttl)
		if a.gen != f.gen || !a.cache[hash].until.Before(until) {
			return // forgotten meanwhile, or a later lookup came first
		}
		if _, ok := a.cache[hash]; !ok && len(a.cache) >= maxCachedTokens { // many distinct tokens: start over rather than grow
			clear(a.cache)
		}
		a.cache[hash] = cachedToken{tok: f.tok, enabled: f.enabled, until: until, refreshAt: until.Add(-a.ttl / 4)}
	case isNotFound(f.err):
		delete(a.cache, hash) // the token is gone: the next request is refused
	default:
		// A database error keeps a cached verdict until its own expiry,
		// never longer: a revocation is still seen within the TTL, and a
		// passing error costs no request anything.
		if _, ok := a.cache[hash]; ok {
			a.log.Warn("refresh SCIM token verdict", "err", f.err)
		}
	}
}

// read looks a token up in the database.
func (a *authenticator) read(ctx context.Context, hash string) (store.SCIMToken, bool, error) {
	tok, err := a.store.SCIMTokenByHash(ctx, hash)
	if err != nil {
		return store.SCIMToken{}, false, fmt.Errorf("look up SCIM token: %w", err)
	}
	org, err := a.store.Org(ctx, tok.OrgID)
	if err != nil {
		return store.SCIMToken{}, false, fmt.Errorf("look up organization of SCIM token: %w", err)
	}
	return tok, org.SCIMEnabled, nil
}

// maxCachedTokens bounds the cache, and so the cost of a forget's scan.
const maxCachedTokens = 10000

// forget drops the cached verdicts of one token of an organization, or,
// with tokenID empty, of all its tokens. The cache is keyed by token hash,
// so this scans it: forgets come from operators and are rare, and a scan
// of a full cache takes about 0.15 ms (BenchmarkForget), where an index by
// token and organization would cost every cache fill.
func (a *authenticator) forget(orgID, tokenID string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.gen++
	for hash, c := range a.cache {
		if c.tok.OrgID == orgID && (tokenID == "" || c.tok.ID == tokenID) {
			delete(a.cache, hash)
		}
	}
}

// forgetAll drops every cached verdict.
func (a *authenticator) forgetAll() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.gen++
	clear(a.cache)
}

// touch records last use, coarsened to once a minute per token.
func (a *authenticator) touch(ctx context.Context, tokenID string) error {
	now := a.now()
	a.mu.Lock()
	last, ok := a.lastUsed[tokenID]
	due := !ok || now.Sub(last) >= lastUsedEvery
	if due {
		if len(a.lastUsed) >= maxCachedTokens {
			a.pruneLastUsed(now)
		}
		a.lastUsed[tokenID] = now
	}
	a.mu.Unlock()
	if !due {
		return nil
	}
	return a.store.TouchSCIMToken(ctx, tokenID, now.UTC().Truncate(time.Second))
}

// pruneLastUsed drops the last writes older than lastUsedEvery: their
// tokens' next use writes anyway, so forgetting them changes nothing, and
// the map stays as large as the tokens used within a minute. a.mu is held.
func (a *authenticator) pruneLastUsed(now time.Time) {
	for id, last := range a.lastUsed {
		if now.Sub(last) >= lastUsedEvery {
			delete(a.lastUsed, id)
		}
	}
}

// require authenticates the request and puts the principal in its context.
func (s *Server) require(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok := bearerToken(r)
		if tok == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="scimsync"`)
			writeError(w, http.StatusUnauthorized, "", "missing bearer token")
			return
		}
		hash := secret.Hash(tok)
		t, enabled, err := s.auth.lookup(r.Context(), hash)
		// The hash lookup found a row with this hash; the constant-time
		// compare keeps the final decision free of timing differences.
		if err != nil || !secret.Equal(tok, t.TokenHash) || !t.Usable(s.auth.now()) {
			if err != nil && !isNotFound(err) {
				s.fail(w, r, err)
				return
			}
			w.Header().Set("WWW-Authenticate", `Bearer realm="scimsync", error="invalid_token"`)
			writeError(w, http.StatusUnauthorized, "", "invalid, revoked or expired token")
			return
		}
		if !enabled {
			writeError(w, http.StatusForbidden, "", "SCIM provisioning is disabled for this organization")
			return
		}
		if err := s.auth.touch(r.Context(), t.ID); err != nil {
			s.log.WarnContext(r.Context(), "record token use", "token_id", t.ID, "err", err)
		}
		ctx := context.WithValue(r.Context(), principalKey{}, principal{OrgID: t.OrgID, TokenID: t.ID})
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

func bearerToken(r *http.Request) string {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(tok)
}
