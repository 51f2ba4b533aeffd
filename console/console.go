// Package console serves the operator console at /console/: pages rendered
// on the server, working without JavaScript, behind a sign-in with the
// admin token. Every change goes through admin.Service, so the console
// validates exactly as the admin API does.
package console

import (
	"embed"
	"errors"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/scimsync/scimsync/admin"
	"github.com/scimsync/scimsync/store"
)

// Prefix is where the console is mounted.
const Prefix = "/console/"

// DefaultIdleTimeout ends a session left alone this long.
const DefaultIdleTimeout = 30 * time.Minute

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// TokenChecker is the admin token check (admin.Auth).
type TokenChecker interface {
	Valid(token string) bool
	Require(next http.Handler, allowBasic bool) http.Handler
}

// Console is the operator console.
type Console struct {
	Service *admin.Service
	Auth    TokenChecker
	// Redis holds sessions and sign-in failure counts, shared by every
	// process that serves the console.
	Redis redis.UniversalClient
	Log   *slog.Logger
	// IdleTimeout ends a session without requests (default
	// DefaultIdleTimeout).
	IdleTimeout time.Duration
	// Secure marks the cookies Secure: set when the public URL is https.
	Secure bool
	// MonitoringPath is linked from every page when set.
	MonitoringPath string
	// TrustedProxies are reverse proxies whose X-Forwarded-For names the
	// client sign-in failures are counted by (see clientAddr).
	TrustedProxies []netip.Prefix

	pages map[string]*template.Template
}

// Require wraps next so that it needs a console session or, failing that,
// the admin token as auth.Require asks for it: the dashboard at
// /monitoring/ opens from the console without a second sign-in.
func (c *Console) Require(next http.Handler, allowBasic bool) http.Handler {
	fallback := c.Auth.Require(next, allowBasic)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := c.session(r); err == nil {
			next.ServeHTTP(w, r)
			return
		}
		fallback.ServeHTTP(w, r)
	})
}

// Handler serves the console; mount it at Prefix.
func (c *Console) Handler() http.Handler {
	c.pages = parsePages()
	mux := http.NewServeMux()
	static, _ := fs.Sub(staticFS, "static")
	mux.Handle("GET "+Prefix+"static/", http.StripPrefix(Prefix+"static/", http.FileServerFS(static)))
	mux.HandleFunc("GET "+Prefix+"signin", c.signinPage)
	mux.HandleFunc("POST "+Prefix+"signin", c.signin)

	auth := func(pattern string, h func(http.ResponseWriter, *http.Request, session)) {
		mux.HandleFunc(pattern, c.authed(h))
	}
	auth("POST "+Prefix+"signout", c.signout)
	auth("GET "+Prefix+"{$}", c.orgsPage)
	auth("POST "+Prefix+"orgs", c.createOrg)
	auth("GET "+Prefix+"orgs/{org}", c.orgPage)
	auth("POST "+Prefix+"orgs/{org}/scim", c.setSCIM)
	auth("POST "+Prefix+"orgs/{org}/tokens", c.createToken)
	auth("GET "+Prefix+"orgs/{org}/tokens/{id}/revoke", c.revokeTokenPage)
	auth("POST "+Prefix+"orgs/{org}/tokens/{id}/revoke", c.revokeToken)
	auth("POST "+Prefix+"orgs/{org}/settings", c.saveSettings)
	auth("GET "+Prefix+"orgs/{org}/connector", c.connectorPage)
	auth("POST "+Prefix+"orgs/{org}/connector", c.saveConnector)
	auth("GET "+Prefix+"orgs/{org}/connector/delete", c.deleteConnectorPage)
	auth("POST "+Prefix+"orgs/{org}/connector/delete", c.deleteConnector)
	auth("GET "+Prefix+"orgs/{org}/members", c.membersPage)
	auth("GET "+Prefix+"orgs/{org}/groups", c.groupsPage)
	auth("GET "+Prefix+"orgs/{org}/runs", c.runsPage)
	auth("POST "+Prefix+"orgs/{org}/runs", c.startRun)
	auth("GET "+Prefix+"orgs/{org}/runs/{run}", c.runPage)
	auth("GET "+Prefix+"orgs/{org}/runs/{run}/confirm", c.confirmPage)
	auth("POST "+Prefix+"orgs/{org}/runs/{run}/confirm", c.confirmRun)
	auth("GET "+Prefix+"orgs/{org}/audit", c.auditPage)
	auth("GET "+Prefix+"orgs/{org}/events", c.eventsPage)
	auth("GET "+Prefix+"orgs/{org}/members/{member}/settle", c.settlePage)
	auth("POST "+Prefix+"orgs/{org}/members/{member}/settle", c.settle)
	auth("GET "+Prefix+"orgs/{org}/webhooks", c.webhooksPage)
	auth("POST "+Prefix+"orgs/{org}/webhooks", c.createWebhook)
	auth("GET "+Prefix+"webhooks", c.webhooksPage)
	auth("POST "+Prefix+"webhooks", c.createWebhook)
	auth("GET "+Prefix+"webhooks/{id}", c.webhookPage)
	auth("POST "+Prefix+"webhooks/{id}", c.updateWebhook)
	auth("POST "+Prefix+"webhooks/{id}/rotate", c.rotateWebhook)
	auth("GET "+Prefix+"webhooks/{id}/delete", c.deleteWebhookPage)
	auth("POST "+Prefix+"webhooks/{id}/delete", c.deleteWebhook)
	auth("POST "+Prefix+"webhooks/{id}/deliveries/{delivery}/retry", c.retryDelivery)
	mux.HandleFunc(Prefix, func(w http.ResponseWriter, r *http.Request) {
		c.render(w, r, http.StatusNotFound, "error", view{Title: "Not found", Data: "There is nothing at this address."})
	})
	return secureHeaders(mux)
}

// secureHeaders keeps pages out of caches and frames and scripts to the
// console's own files.
func secureHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "same-origin")
		if !strings.HasPrefix(r.URL.Path, Prefix+"static/") {
			h.Set("Cache-Control", "no-store")
		}
		next.ServeHTTP(w, r)
	})
}

// authed runs h for a signed-in operator, checking the CSRF token of
// every POST; without a session, a page redirects to the sign-in.
func (c *Console) authed(h func(http.ResponseWriter, *http.Request, session)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s, err := c.session(r)
		if errors.Is(err, errNoSession) {
			if r.Method == http.MethodGet {
				http.Redirect(w, r, Prefix+"signin", http.StatusSeeOther)
				return
			}
			c.render(w, r, http.StatusUnauthorized, "error", view{Title: "Signed out", Data: "Your session has ended. Sign in again."})
			return
		}
		if err != nil {
			c.failed(w, r, err)
			return
		}
		if r.Method == http.MethodPost {
			r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
			if !validCSRF(r, s.CSRF) {
				c.render(w, r, http.StatusForbidden, "error", view{Title: "Form expired", Data: "This form is out of date or did not come from the console. Go back, reload the page and try again."})
				return
			}
		}
		h(w, r, s)
	}
}

// signinPage shows the sign-in form with a fresh double-submit token.
func (c *Console) signinPage(w http.ResponseWriter, r *http.Request) {
	if _, err := c.session(r); err == nil {
		http.Redirect(w, r, Prefix, http.StatusSeeOther)
		return
	}
	c.showSignin(w, r, http.StatusOK, "")
}

func (c *Console) showSignin(w http.ResponseWriter, r *http.Request, status int, problem string) {
	tok := randomToken()
	http.SetCookie(w, c.cookie(signinCookie, tok, 600))
	c.render(w, r, status, "signin", view{Title: "Sign in", CSRF: tok, Error: problem})
}

func (c *Console) signin(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	ck, err := r.Cookie(signinCookie)
	if err != nil || !validCSRF(r, ck.Value) {
		c.showSignin(w, r, http.StatusForbidden, "The sign-in form expired. Try again.")
		return
	}
	addr := c.clientAddr(r)
	limited, err := c.throttled(ctx, addr)
	if err != nil {
		c.failed(w, r, err)
		return
	}
	if limited {
		c.Log.WarnContext(ctx, "console sign-in refused: too many wrong tokens", "client", addr)
		c.showSignin(w, r, http.StatusTooManyRequests, "Too many wrong tokens from your address. Wait 15 minutes, then try again.")
		return
	}
	if !c.Auth.Valid(strings.TrimSpace(r.PostFormValue("token"))) {
		if err := c.fail(ctx, addr); err != nil {
			c.failed(w, r, err)
			return
		}
		// The token itself is never logged: a near miss is almost a secret.
		c.Log.WarnContext(ctx, "console sign-in with a wrong token", "client", addr)
		c.showSignin(w, r, http.StatusUnauthorized, "That is not the admin token.")
		return
	}
	http.SetCookie(w, c.cookie(signinCookie, "", -1))
	if err := c.newSession(ctx, w); err != nil {
		c.failed(w, r, err)
		return
	}
	c.Log.InfoContext(ctx, "console sign-in", "client", addr)
	http.Redirect(w, r, Prefix, http.StatusSeeOther)
}

func (c *Console) signout(w http.ResponseWriter, r *http.Request, s session) {
	if err := c.endSession(r.Context(), w, s); err != nil {
		c.failed(w, r, err)
		return
	}
	http.Redirect(w, r, Prefix+"signin", http.StatusSeeOther)
}

// failed shows an error page: a request to fix, a missing page, or an
// internal error logged here.
func (c *Console) failed(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, admin.ErrInvalid):
		c.render(w, r, http.StatusBadRequest, "error", view{Title: "Cannot do that", Data: err.Error()})
	case errors.Is(err, store.ErrNotFound):
		c.render(w, r, http.StatusNotFound, "error", view{Title: "Not found", Data: "There is nothing at this address."})
	case errors.Is(err, store.ErrConflict):
		c.render(w, r, http.StatusConflict, "error", view{Title: "Conflict", Data: "That conflicts with the current state. Reload and try again."})
	default:
		c.Log.ErrorContext(r.Context(), "console", "method", r.Method, "path", r.URL.Path, "err", err)
		c.render(w, r, http.StatusInternalServerError, "error", view{Title: "Something went wrong", Data: "The server could not do that. Try again in a moment; the error is in the server's log."})
	}
}
