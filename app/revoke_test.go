package app

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/scimsync/scimsync/broker"
	"github.com/scimsync/scimsync/broker/brokertest"
	"github.com/scimsync/scimsync/inbound"
	"github.com/scimsync/scimsync/internal/clock"
	"github.com/scimsync/scimsync/internal/syncbuf"
	"github.com/scimsync/scimsync/invalidation"
	"github.com/scimsync/scimsync/store"
	"github.com/scimsync/scimsync/store/storetest"
)

// longTTL makes the SCIM token cache outlive any test, so that a refusal
// can only come from an invalidation, never from an expired verdict.
const longTTL = time.Minute

func withSCIM(configure func(*inbound.Server)) func(*App) {
	return func(a *App) { a.configureSCIM = configure }
}

// sharedStores opens two stores on one database, as two replicas do.
func sharedStores(t *testing.T, b storetest.Backend) (*store.Store, *store.Store) {
	t.Helper()
	u := storetest.DatabaseURL(t, b)
	ctx := context.Background()
	var sts [2]*store.Store
	for i := range sts {
		st, err := store.Open(ctx, u, store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		sts[i] = st
	}
	if _, err := sts[0].Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return sts[0], sts[1]
}

// scimOrg creates, through s's admin API, an organization with SCIM on
// and n tokens.
func scimOrg(t *testing.T, s *testServer, n int) (orgID string, tokens, ids []string) {
	t.Helper()
	code, org, _ := s.do(t, call{method: "POST", path: "/api/v1/orgs", auth: adminToken, body: `{"name":"Acme"}`})
	if code != http.StatusCreated {
		t.Fatalf("create org = %d %v", code, org)
	}
	orgID = org["id"].(string)
	setSCIM(t, s, orgID, true)
	for range n {
		code, tok, _ := s.do(t, call{method: "POST", path: "/api/v1/orgs/" + orgID + "/scim-tokens", auth: adminToken, body: `{}`})
		if code != http.StatusCreated {
			t.Fatalf("create token = %d %v", code, tok)
		}
		tokens, ids = append(tokens, tok["token"].(string)), append(ids, tok["id"].(string))
	}
	return orgID, tokens, ids
}

func setSCIM(t *testing.T, s *testServer, orgID string, on bool) {
	t.Helper()
	body := `{"scimEnabled":false}`
	if on {
		body = `{"scimEnabled":true}`
	}
	if code, got, _ := s.do(t, call{method: "PATCH", path: "/api/v1/orgs/" + orgID, auth: adminToken, body: body}); code != http.StatusOK {
		t.Fatalf("set scimEnabled=%t = %d %v", on, code, got)
	}
}

func revoke(t *testing.T, s *testServer, orgID, tokenID string) {
	t.Helper()
	if code, got, _ := s.do(t, call{method: "DELETE", path: "/api/v1/orgs/" + orgID + "/scim-tokens/" + tokenID, auth: adminToken}); code != http.StatusNoContent {
		t.Fatalf("revoke = %d %v", code, got)
	}
}

// scimStatus is the status of one SCIM request with token.
func scimStatus(t *testing.T, s *testServer, token string) int {
	t.Helper()
	code, _, _ := s.do(t, call{method: "GET", path: "/scim/v2/Users?count=1", auth: token})
	return code
}

func wantSCIM(t *testing.T, s *testServer, token string, want int) {
	t.Helper()
	if got := scimStatus(t, s, token); got != want {
		t.Fatalf("SCIM request = %d, want %d", got, want)
	}
}

// eventuallySCIM polls until a SCIM request with token gets want, and logs
// how long after start that was. The bound is generous: the point is that
// the change arrives at all while the cache TTL is far away; how fast it
// arrives is logged, not asserted.
func eventuallySCIM(t *testing.T, s *testServer, token string, want int, what string, start time.Time) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(2 * time.Millisecond) {
		got := scimStatus(t, s, token)
		if got == want {
			t.Logf("%s reached the other replica %v after the admin call began", what, time.Since(start))
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: SCIM request still %d after 10s, want %d", what, got, want)
		}
	}
}

// TestSCIMAccessChangesApplyAtOnce: in the process that served the admin
// call, the very next SCIM request sees the change.
func TestSCIMAccessChangesApplyAtOnce(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			s := newAppServer(t, storetest.Open(t, b, store.Options{}), brokertest.Open(t), withSCIM(func(s *inbound.Server) { s.AuthCacheTTL = longTTL }))
			orgID, tokens, ids := scimOrg(t, s, 2)

			t.Run("revoke", func(t *testing.T) {
				wantSCIM(t, s, tokens[0], http.StatusOK) // cached
				revoke(t, s, orgID, ids[0])
				wantSCIM(t, s, tokens[0], http.StatusUnauthorized)
				wantSCIM(t, s, tokens[1], http.StatusOK)
			})
			t.Run("switch off and on", func(t *testing.T) {
				wantSCIM(t, s, tokens[1], http.StatusOK) // cached
				setSCIM(t, s, orgID, false)
				wantSCIM(t, s, tokens[1], http.StatusForbidden)
				setSCIM(t, s, orgID, true)
				wantSCIM(t, s, tokens[1], http.StatusOK)
			})
		})
	}
}

// waitSubscribers waits until n processes listen for invalidations, so
// that a test's change cannot race a replica's start.
func waitSubscribers(t *testing.T, br *broker.Broker, n int64) {
	t.Helper()
	ch := br.Channel(invalidation.ChannelName)
	waitFor(t, "invalidation subscribers", func() bool {
		got, err := br.Client().PubSubNumSub(context.Background(), ch).Result()
		return err == nil && got[ch] >= n
	})
}

// TestSCIMAccessChangesReachOtherReplicas runs two `api` replicas on one
// database and one Redis: a change made through either reaches the other
// over Redis. The cache TTL is a minute, so only the invalidation can
// explain a refusal within the test.
func TestSCIMAccessChangesReachOtherReplicas(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			br := brokertest.Open(t)
			st1, st2 := sharedStores(t, b)
			long := withSCIM(func(s *inbound.Server) { s.AuthCacheTTL = longTTL })
			one, two := newAppServer(t, st1, br, long), newAppServer(t, st2, br, long)
			waitSubscribers(t, br, 2)
			orgID, tokens, ids := scimOrg(t, one, 2)
			for _, s := range []*testServer{one, two} {
				for _, tok := range tokens {
					wantSCIM(t, s, tok, http.StatusOK) // both caches warm
				}
			}

			start := time.Now()
			revoke(t, one, orgID, ids[0])
			eventuallySCIM(t, two, tokens[0], http.StatusUnauthorized, "revocation", start)
			wantSCIM(t, two, tokens[1], http.StatusOK)

			start = time.Now()
			setSCIM(t, two, orgID, false)
			eventuallySCIM(t, one, tokens[1], http.StatusForbidden, "switch-off", start)
			start = time.Now()
			setSCIM(t, two, orgID, true)
			eventuallySCIM(t, one, tokens[1], http.StatusOK, "switch-on", start)
		})
	}
}

// TestRevokeWhileRedisDown: without Redis the revocation still succeeds and
// applies at once where it was made; another replica applies it when its
// cached verdict expires.
func TestRevokeWhileRedisDown(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			st1, st2 := sharedStores(t, b)
			clk := clock.NewFake(time.Now()) // shared by the replicas
			logs := &syncbuf.Buffer{}
			var servers []*testServer
			for i, st := range []*store.Store{st1, st2} {
				br, err := broker.Open(context.Background(), "redis://127.0.0.1:1", nil)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { br.Close() })
				servers = append(servers, newAppServer(t, st, br, func(a *App) {
					if i == 0 {
						a.Log = slog.New(slog.NewTextHandler(logs, nil))
					}
					a.configureSCIM = func(s *inbound.Server) { s.Clock = clk } // the default TTL
				}))
			}
			one, two := servers[0], servers[1]
			orgID, tokens, ids := scimOrg(t, one, 1)
			wantSCIM(t, one, tokens[0], http.StatusOK)
			wantSCIM(t, two, tokens[0], http.StatusOK)

			revoke(t, one, orgID, ids[0])
			wantSCIM(t, one, tokens[0], http.StatusUnauthorized)
			wantSCIM(t, two, tokens[0], http.StatusOK) // cached, within the bound
			clk.Advance(inbound.DefaultAuthCacheTTL)
			wantSCIM(t, two, tokens[0], http.StatusUnauthorized)

			var warned bool
			for _, line := range strings.Split(logs.String(), "\n") {
				warned = warned || strings.Contains(line, "level=WARN") && strings.Contains(line, "token_id="+ids[0]) && strings.Contains(line, "err=")
			}
			if !warned {
				t.Errorf("no warning with the token and err logged:\n%s", logs.String())
			}
		})
	}
}
