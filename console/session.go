package console

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/scimsync/scimsync/internal/secret"
)

const (
	cookieName = "scimsync_console"
	// signinCookie carries the sign-in form's CSRF token before there is
	// a session (double submit).
	signinCookie = "scimsync_console_signin"
	keyPrefix    = "scimsync:console:"
)

// Sign-in throttling: after MaxFailures wrong tokens from one client address
// within FailureWindow, sign-in from that address is refused until the
// window ends.
const (
	MaxFailures   = 10
	FailureWindow = 15 * time.Minute
)

// errNoSession: the request carries no live session.
var errNoSession = errors.New("no console session")

// session is a signed-in operator. Redis holds it under the hash of its id,
// so a copy of Redis does not hand out live sessions.
type session struct {
	key  string // the Redis key
	CSRF string
	// box seals what the session keeps in Redis for a moment (a new
	// secret on its way to its page) under a key made from the session's
	// id, which only the browser holds: Redis alone cannot read it.
	box *secret.Box
}

// randomToken is a session id or CSRF token: 256 random bits, made as the
// project's bearer tokens are.
func randomToken() string { return secret.NewToken("") }

func sessionKey(id string) string {
	return keyPrefix + "session:" + secret.Hash(id)
}

// newSession stores a session and sets its cookie.
func (c *Console) newSession(ctx context.Context, w http.ResponseWriter) error {
	id := randomToken()
	if err := c.Redis.Set(ctx, sessionKey(id), randomToken(), c.idle()).Err(); err != nil {
		return fmt.Errorf("store console session: %w", err)
	}
	http.SetCookie(w, c.cookie(cookieName, id, 0))
	return nil
}

// session returns the request's session and extends it by the idle timeout.
func (c *Console) session(r *http.Request) (session, error) {
	ck, err := r.Cookie(cookieName)
	if err != nil || ck.Value == "" {
		return session{}, errNoSession
	}
	key := sessionKey(ck.Value)
	csrf, err := c.Redis.GetEx(r.Context(), key, c.idle()).Result()
	if errors.Is(err, redis.Nil) {
		return session{}, errNoSession
	}
	if err != nil {
		return session{}, fmt.Errorf("read console session: %w", err)
	}
	box, err := flashBox(ck.Value)
	if err != nil {
		return session{}, err
	}
	return session{key: key, CSRF: csrf, box: box}, nil
}

// endSession deletes the session and its cookie.
func (c *Console) endSession(ctx context.Context, w http.ResponseWriter, s session) error {
	http.SetCookie(w, c.cookie(cookieName, "", -1))
	if err := c.Redis.Del(ctx, s.key, flashKey(s)).Err(); err != nil {
		return fmt.Errorf("delete console session: %w", err)
	}
	return nil
}

// cookie makes one of the console's cookies. The session's has path "/"
// because /monitoring/ accepts it too.
func (c *Console) cookie(name, value string, maxAge int) *http.Cookie {
	path := "/"
	if name == signinCookie {
		path = Prefix
	}
	return &http.Cookie{Name: name, Value: value, Path: path, MaxAge: maxAge, HttpOnly: true, Secure: c.Secure, SameSite: http.SameSiteStrictMode}
}

func (c *Console) idle() time.Duration {
	if c.IdleTimeout > 0 {
		return c.IdleTimeout
	}
	return DefaultIdleTimeout
}

// validCSRF compares a form's token with the expected one in constant time.
func validCSRF(r *http.Request, want string) bool {
	got := r.PostFormValue("csrf")
	return want != "" && got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

// clientAddr is the address sign-in failures are counted by: the peer's,
// since a forwarded header could be forged to dodge the limit, unless the
// peer is one of TrustedProxies. Then it is the nearest X-Forwarded-For
// hop that is not a trusted proxy: a client can put anything at the start
// of the header, but not after what the proxies append, so the walk goes
// from the end and stops at the first hop not trusted.
func (c *Console) clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	addr, err := netip.ParseAddr(host)
	if err != nil || !c.trusted(addr) {
		return host
	}
	var hops []string
	for _, v := range r.Header.Values("X-Forwarded-For") {
		hops = append(hops, strings.Split(v, ",")...)
	}
	for i := len(hops) - 1; i >= 0; i-- {
		hop, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break // believe nothing before a hop that is not an address
		}
		addr = hop.WithZone("").Unmap()
		if !c.trusted(addr) {
			break
		}
	}
	return addr.String()
}

func (c *Console) trusted(addr netip.Addr) bool {
	addr = addr.WithZone("").Unmap()
	for _, p := range c.TrustedProxies {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

func failureKey(addr string) string { return keyPrefix + "signin-failures:" + addr }

// throttled reports whether addr has used up its failed sign-ins.
func (c *Console) throttled(ctx context.Context, addr string) (bool, error) {
	n, err := c.Redis.Get(ctx, failureKey(addr)).Int()
	if errors.Is(err, redis.Nil) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read sign-in failures: %w", err)
	}
	return n >= MaxFailures, nil
}

// fail counts a wrong token from addr; the window starts at the first.
func (c *Console) fail(ctx context.Context, addr string) error {
	key := failureKey(addr)
	pipe := c.Redis.TxPipeline()
	pipe.Incr(ctx, key)
	pipe.ExpireNX(ctx, key, FailureWindow)
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("count sign-in failure: %w", err)
	}
	return nil
}
