package inbound_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/scimsync/scimsync/inbound"
	"github.com/scimsync/scimsync/internal/secret"
	"github.com/scimsync/scimsync/store"
)

// TestAuthCacheBoundsStaleness checks the token cache's contract: a
// revocation or SCIM switch-off takes effect within AuthCacheTTL, an
// expiry at once, and an unknown token is never remembered.
func TestAuthCacheBoundsStaleness(t *testing.T) {
	const ttl = 2 * time.Second
	eachBackend(t, func(t *testing.T, h *harness) {
		ctx := context.Background()
		get := func(tn *tenant, token string) reply {
			return tn.send(request{method: "GET", path: "/Users", header: map[string]string{"Authorization": "Bearer " + token}})
		}

		t.Run("revocation", func(t *testing.T) {
			tn := h.tenant()
			get(tn, tn.token).want(t, http.StatusOK)
			if err := h.st.RevokeSCIMToken(ctx, tn.org.ID, tn.tokenID); err != nil {
				t.Fatal(err)
			}
			h.clock.Add(ttl - time.Millisecond)
			get(tn, tn.token).want(t, http.StatusOK) // the cached verdict, within the bound
			h.clock.Add(time.Millisecond)
			get(tn, tn.token).wantError(t, http.StatusUnauthorized, "")
		})

		t.Run("scim switched off", func(t *testing.T) {
			tn := h.tenant()
			get(tn, tn.token).want(t, http.StatusOK)
			off := false
			if _, err := h.st.UpdateOrg(ctx, tn.org.ID, store.OrgPatch{SCIMEnabled: &off}); err != nil {
				t.Fatal(err)
			}
			h.clock.Add(ttl)
			get(tn, tn.token).wantError(t, http.StatusForbidden, "")
		})

		t.Run("expiry is exact", func(t *testing.T) {
			tn := h.tenant()
			exp := h.clock.Now().Add(time.Second)
			token, _ := h.newToken(tn.org.ID, &exp)
			get(tn, token).want(t, http.StatusOK)
			h.clock.Add(time.Second) // within the TTL of the cached verdict
			get(tn, token).wantError(t, http.StatusUnauthorized, "")
		})

		t.Run("unknown tokens are not remembered", func(t *testing.T) {
			tn := h.tenant()
			late := secret.NewToken(secret.PrefixSCIM)
			get(tn, late).wantError(t, http.StatusUnauthorized, "")
			if _, err := h.st.CreateSCIMToken(ctx, tn.org.ID, "late", secret.Hash(late), nil); err != nil {
				t.Fatal(err)
			}
			get(tn, late).want(t, http.StatusOK)
		})
	}, func(s *inbound.Server) { s.AuthCacheTTL = ttl })
}
