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
// revocation or SCIM switch-off that nobody tells the server of (Forget)
// takes effect within AuthCacheTTL, an expiry at once, and an unknown
// token is never remembered.
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
			h.clock.Advance(ttl - time.Millisecond)
			get(tn, tn.token).want(t, http.StatusOK) // the cached verdict, within the bound
			h.clock.Advance(time.Millisecond)
			get(tn, tn.token).wantError(t, http.StatusUnauthorized, "")
		})

		t.Run("scim switched off", func(t *testing.T) {
			tn := h.tenant()
			get(tn, tn.token).want(t, http.StatusOK)
			off := false
			if _, err := h.st.UpdateOrg(ctx, tn.org.ID, store.OrgPatch{SCIMEnabled: &off}); err != nil {
				t.Fatal(err)
			}
			h.clock.Advance(ttl)
			get(tn, tn.token).wantError(t, http.StatusForbidden, "")
		})

		t.Run("expiry is exact", func(t *testing.T) {
			tn := h.tenant()
			exp := h.clock.Now().Add(time.Second)
			token, _ := h.newToken(tn.org.ID, &exp)
			get(tn, token).want(t, http.StatusOK)
			h.clock.Advance(time.Second) // within the TTL of the cached verdict
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

// TestForget checks that Forget drops exactly what it names, so that the
// next request with a forgotten token is checked against the database,
// while others keep their cached verdict.
func TestForget(t *testing.T) {
	eachBackend(t, func(t *testing.T, h *harness) {
		ctx := context.Background()
		tests := []struct {
			name   string
			forget func(a, b *tenant)
			// The status of each token (a's two, b's one) once all are
			// revoked in the database: 401 forgotten, 200 still cached.
			wantA1, wantA2, wantB int
		}{
			{"one token", func(a, b *tenant) { h.scim.Forget(a.org.ID, a.tokenID) }, 401, 200, 200},
			{"one organization", func(a, b *tenant) { h.scim.Forget(a.org.ID, "") }, 401, 401, 200},
			{"a token id of another organization", func(a, b *tenant) { h.scim.Forget(b.org.ID, a.tokenID) }, 200, 200, 200},
			{"everything", func(a, b *tenant) { h.scim.ForgetAll() }, 401, 401, 401},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				a, b := h.tenant(), h.tenant()
				a2, a2ID := h.newToken(a.org.ID, nil)
				tokens := []struct {
					tn        *tenant
					token, id string
					want      int
				}{{a, a.token, a.tokenID, tt.wantA1}, {a, a2, a2ID, tt.wantA2}, {b, b.token, b.tokenID, tt.wantB}}
				for _, tok := range tokens {
					tok.tn.send(request{method: "GET", path: "/Users", header: map[string]string{"Authorization": "Bearer " + tok.token}}).want(t, http.StatusOK)
					if err := h.st.RevokeSCIMToken(ctx, tok.tn.org.ID, tok.id); err != nil {
						t.Fatal(err)
					}
				}
				tt.forget(a, b)
				for i, tok := range tokens {
					got := tok.tn.send(request{method: "GET", path: "/Users", header: map[string]string{"Authorization": "Bearer " + tok.token}})
					if got.Status != tok.want {
						t.Errorf("token %d: status %d, want %d", i, got.Status, tok.want)
					}
				}
			})
		}
	}, func(s *inbound.Server) { s.AuthCacheTTL = time.Hour })
}
