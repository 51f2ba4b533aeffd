package inbound

import (
	"context"
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
type authenticator struct {
	store tokenStore
	now   func() time.Time
	ttl   time.Duration

	mu    sync.Mutex
	cache map[string]cachedToken // by token hash
	// gen counts forgets. A lookup stores its verdict only if no forget
	// came between its read of the database and the store: otherwise a
	// verdict read just before a revocation committed could be cached
	// just after the revocation's forget, and outlive it.
	gen      uint64
	lastUsed map[string]time.Time // by token id: last write
}

type cachedToken struct {
	tok     store.SCIMToken
	enabled bool
	until   time.Time
}

const lastUsedEvery = time.Minute

func newAuthenticator(st tokenStore, now func() time.Time, ttl time.Duration) *authenticator {
	return &authenticator{store: st, now: now, ttl: ttl, cache: map[string]cachedToken{}, lastUsed: map[string]time.Time{}}
}

// lookup returns the token and whether its organization has SCIM on.
func (a *authenticator) lookup(ctx context.Context, hash string) (store.SCIMToken, bool, error) {
	now := a.now()
	var gen uint64
	if a.ttl > 0 {
		a.mu.Lock()
		c, ok := a.cache[hash]
		gen = a.gen
		a.mu.Unlock()
		if ok && now.Before(c.until) {
			return c.tok, c.enabled, nil
		}
	}
	tok, err := a.store.SCIMTokenByHash(ctx, hash)
	if err != nil {
		return store.SCIMToken{}, false, err
	}
	org, err := a.store.Org(ctx, tok.OrgID)
	if err != nil {
		return store.SCIMToken{}, false, err
	}
	if a.ttl > 0 {
		a.mu.Lock()
		if a.gen == gen {
			if len(a.cache) >= maxCachedTokens { // many distinct tokens: start over rather than grow
				clear(a.cache)
			}
			a.cache[hash] = cachedToken{tok: tok, enabled: org.SCIMEnabled, until: now.Add(a.ttl)}
		}
		a.mu.Unlock()
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
