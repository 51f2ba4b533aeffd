package admin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/scimsync/scimsync/internal/httpjson"
	"github.com/scimsync/scimsync/internal/secret"
	"github.com/scimsync/scimsync/store"
)

// Auth checks the admin token. Only its hash is held.
type Auth struct {
	hash string
}

// settingStore is what admin-token bootstrap needs of the store.
type settingStore interface {
	SetSettingIfAbsent(ctx context.Context, key, value string) (string, error)
}

// LoadAuth returns the admin token check. A configured token is hashed in
// memory and never stored. Without one, the first process to start generates
// a token, stores its hash, and prints the token once to announce; later
// starts reuse the stored hash and print nothing.
func LoadAuth(ctx context.Context, st settingStore, configured string, announce io.Writer) (*Auth, error) {
	if configured != "" {
		return &Auth{hash: secret.Hash(configured)}, nil
	}
	tok := secret.NewToken(secret.PrefixAdmin)
	h := secret.Hash(tok)
	stored, err := st.SetSettingIfAbsent(ctx, store.SettingAdminTokenHash, h)
	if err != nil {
		return nil, fmt.Errorf("load admin token: %w", err)
	}
	if stored == h && announce != nil {
		fmt.Fprintf(announce, "\n  Generated admin token (shown once, stored hashed; set SCIMSYNC_ADMIN_TOKEN to choose your own):\n\n    %s\n\n", tok)
	}
	return &Auth{hash: stored}, nil
}

// NewAuth makes a check for a known token (for tests and embedding).
func NewAuth(token string) *Auth { return &Auth{hash: secret.Hash(token)} }

// Valid reports whether token is the admin token, in constant time.
func (a *Auth) Valid(token string) bool {
	// A SCIM or invite token is never an admin token; the prefix check
	// costs nothing and keeps a leaked SCIM token off the admin API even if
	// an operator chose it as SCIMSYNC_ADMIN_TOKEN.
	if strings.HasPrefix(token, secret.PrefixSCIM) || strings.HasPrefix(token, secret.PrefixInvite) {
		return false
	}
	return token != "" && secret.Equal(token, a.hash)
}

var errNoToken = errors.New("missing or invalid admin token")

// Require wraps next so that it needs the admin token as a Bearer token, or,
// when allowBasic is set, as the password of HTTP Basic auth (so a browser
// can log in to the dashboard).
func (a *Auth) Require(next http.Handler, allowBasic bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.Valid(bearer(r)) {
			next.ServeHTTP(w, r)
			return
		}
		if allowBasic {
			if _, pw, ok := r.BasicAuth(); ok && a.Valid(pw) {
				next.ServeHTTP(w, r)
				return
			}
			w.Header().Set("WWW-Authenticate", `Basic realm="scimsync", charset="UTF-8"`)
		} else {
			w.Header().Set("WWW-Authenticate", `Bearer realm="scimsync"`)
		}
		httpjson.Error(w, http.StatusUnauthorized, "unauthorized", errNoToken.Error())
	})
}

func bearer(r *http.Request) string {
	h := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(tok)
}
