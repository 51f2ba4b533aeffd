package inbound

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/scimsync/scimsync/store"
)

// fakeTokens is a token store of one token whose first read can be held
// until the test lets it go.
type fakeTokens struct {
	tok   store.SCIMToken
	reads atomic.Int32
	// held, when set, receives the first read, which then waits on release.
	held    chan struct{}
	release chan struct{}
}

func (f *fakeTokens) SCIMTokenByHash(ctx context.Context, hash string) (store.SCIMToken, error) {
	if f.reads.Add(1) == 1 && f.held != nil {
		f.held <- struct{}{}
		<-f.release
	}
	return f.tok, nil
}

func (f *fakeTokens) Org(ctx context.Context, id string) (store.Org, error) {
	return store.Org{ID: id, SCIMEnabled: true}, nil
}

func (f *fakeTokens) TouchSCIMToken(ctx context.Context, id string, at time.Time) error { return nil }

// TestForgetDuringLookup checks that a verdict read from the database
// before a forget is not cached after it: the revocation it may predate
// would otherwise be missed for a whole TTL.
func TestForgetDuringLookup(t *testing.T) {
	for _, tt := range []struct {
		name      string
		forget    func(a *authenticator)
		wantReads int32 // by the lookup after the held one
	}{
		{"no forget: the second lookup is cached", func(a *authenticator) {}, 1},
		{"token forgotten", func(a *authenticator) { a.forget("o1", "t1") }, 2},
		{"organization forgotten", func(a *authenticator) { a.forget("o1", "") }, 2},
		{"everything forgotten", func(a *authenticator) { a.forgetAll() }, 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			f := &fakeTokens{tok: store.SCIMToken{ID: "t1", OrgID: "o1"}, held: make(chan struct{}), release: make(chan struct{})}
			a := newAuthenticator(f, time.Now, time.Hour)
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, _, err := a.lookup(ctx, "h1"); err != nil {
					t.Error(err)
				}
			}()
			<-f.held
			tt.forget(a)
			close(f.release)
			wg.Wait()
			if _, _, err := a.lookup(ctx, "h1"); err != nil {
				t.Fatal(err)
			}
			if got := f.reads.Load(); got != tt.wantReads {
				t.Errorf("database reads = %d, want %d", got, tt.wantReads)
			}
		})
	}
}

// BenchmarkForget measures a forget's scan of a full cache, under the
// lock every SCIM request takes.
func BenchmarkForget(b *testing.B) {
	a := newAuthenticator(&fakeTokens{}, time.Now, time.Hour)
	until := time.Now().Add(time.Hour)
	fill := func() {
		for i := range maxCachedTokens {
			a.cache[fmt.Sprintf("hash-%d", i)] = cachedToken{tok: store.SCIMToken{ID: fmt.Sprintf("t%d", i), OrgID: fmt.Sprintf("o%d", i%1000)}, until: until}
		}
	}
	for _, bm := range []struct {
		name   string
		forget func()
	}{
		{"token", func() { a.forget("o7", "t7") }},
		{"organization", func() { a.forget("o7", "") }},
	} {
		b.Run(bm.name, func(b *testing.B) {
			fill()
			for b.Loop() {
				bm.forget()
			}
		})
	}
}

// countingTouches is a token store that counts last-use writes by token.
type countingTouches struct {
	fakeTokens
	mu      sync.Mutex
	touches map[string]int
}

func (c *countingTouches) TouchSCIMToken(ctx context.Context, id string, at time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.touches[id]++
	return nil
}

// The last-use map forgets tokens not used for a minute once it is full,
// so a long-running process that sees many tokens does not grow it without
// bound, and the coarsening to a write a minute per token still holds.
func TestLastUsedStaysBounded(t *testing.T) {
	now := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	st := &countingTouches{touches: map[string]int{}}
	a := newAuthenticator(st, func() time.Time { return now }, time.Hour)
	ctx := context.Background()
	for i := range maxCachedTokens {
		if err := a.touch(ctx, fmt.Sprint("old", i)); err != nil {
			t.Fatal(err)
		}
	}
	now = now.Add(lastUsedEvery)
	if err := a.touch(ctx, "recent"); err != nil {
		t.Fatal(err)
	}
	if n := len(a.lastUsed); n != 1 {
		t.Errorf("last-use entries after the old ones aged = %d, want 1", n)
	}
	// Within the minute, a second use of the recent token writes nothing.
	now = now.Add(lastUsedEvery / 2)
	if err := a.touch(ctx, "recent"); err != nil {
		t.Fatal(err)
	}
	// A forgotten token is written again on its next use, as it would be
	// after a minute anyway.
	if err := a.touch(ctx, "old0"); err != nil {
		t.Fatal(err)
	}
	if st.touches["recent"] != 1 || st.touches["old0"] != 2 {
		t.Errorf("writes: recent %d (want 1), old0 %d (want 2)", st.touches["recent"], st.touches["old0"])
	}
}

// gatedTokens is a token store that counts lookups, can hold them at a
// gate, and answers with whatever token or error the test last set.
type gatedTokens struct {
	reads   atomic.Int32
	entered chan struct{} // when set, receives each lookup as it starts
	gate    chan struct{} // when set, a lookup waits for it to close

	mu  sync.Mutex
	tok store.SCIMToken
	err error
}

func (g *gatedTokens) set(tok store.SCIMToken, err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.tok, g.err = tok, err
}

func (g *gatedTokens) SCIMTokenByHash(ctx context.Context, hash string) (store.SCIMToken, error) {
	g.reads.Add(1)
	g.mu.Lock()
	entered, gate := g.entered, g.gate
	g.mu.Unlock()
	if entered != nil {
		entered <- struct{}{}
	}
	if gate != nil {
		<-gate
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.tok, g.err
}

func (g *gatedTokens) hold() (entered chan struct{}, release func()) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.entered, g.gate = make(chan struct{}, 100), make(chan struct{})
	gate := g.gate
	return g.entered, func() {
		g.mu.Lock()
		g.entered, g.gate = nil, nil
		g.mu.Unlock()
		close(gate)
	}
}

func (g *gatedTokens) Org(ctx context.Context, id string) (store.Org, error) {
	return store.Org{ID: id, SCIMEnabled: true}, nil
}

func (g *gatedTokens) TouchSCIMToken(ctx context.Context, id string, at time.Time) error { return nil }

// testClock is a settable time for the authenticator.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

const testTTL = 2 * time.Second

func newTestAuth() (*authenticator, *gatedTokens, *testClock) {
	st := &gatedTokens{tok: store.SCIMToken{ID: "t1", OrgID: "o1"}}
	clk := &testClock{now: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)}
	return newAuthenticator(st, clk.Now, testTTL), st, clk
}

// flightOf returns the lookup under way for hash, if any.
func (a *authenticator) flightOf(hash string) *flight {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.flights[hash]
}

// waitFlight waits until no lookup of hash is under way.
func (a *authenticator) waitFlight(hash string) {
	if f := a.flightOf(hash); f != nil {
		<-f.done
	}
}

// waitWaiters waits until n requests wait for the lookup of hash.
func (a *authenticator) waitWaiters(t *testing.T, hash string, n int) {
	t.Helper()
	for range 1_000_000 {
		a.mu.Lock()
		f := a.flights[hash]
		got := 0
		if f != nil {
			got = f.waiters
		}
		a.mu.Unlock()
		if got >= n {
			return
		}
		runtime.Gosched()
	}
	t.Fatalf("fewer than %d requests joined the lookup", n)
}

// At expiry, or before any verdict, concurrent requests share one lookup.
func TestLookupSingleFlight(t *testing.T) {
	const n = 50
	for _, tt := range []struct {
		name      string
		warm      bool
		wantReads int32
	}{
		{"nothing cached", false, 1},
		{"verdict expired", true, 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			a, st, clk := newTestAuth()
			if tt.warm {
				if _, _, err := a.lookup(ctx, "h1"); err != nil {
					t.Fatal(err)
				}
				clk.Advance(testTTL)
			}
			entered, release := st.hold()
			var wg sync.WaitGroup
			errs := make(chan error, n)
			for range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					tok, _, err := a.lookup(ctx, "h1")
					if err == nil && tok.ID != "t1" {
						err = fmt.Errorf("token %q, want t1", tok.ID)
					}
					errs <- err
				}()
			}
			<-entered
			a.waitWaiters(t, "h1", n)
			release()
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Error(err)
				}
			}
			if got := st.reads.Load(); got != tt.wantReads {
				t.Errorf("database reads = %d, want %d", got, tt.wantReads)
			}
		})
	}
}

// In the last quarter of its TTL a verdict is refreshed in the background:
// the request that starts the refresh, and those after it, are answered
// from the cache without waiting, and the refreshed verdict then lives a
// TTL from the refresh.
func TestRefreshAheadDoesNotBlock(t *testing.T) {
	ctx := context.Background()
	a, st, clk := newTestAuth()
	if _, _, err := a.lookup(ctx, "h1"); err != nil {
		t.Fatal(err)
	}
	// Before the last quarter nothing is refreshed.
	clk.Advance(testTTL/2 + testTTL/8)
	if _, _, err := a.lookup(ctx, "h1"); err != nil {
		t.Fatal(err)
	}
	if got := st.reads.Load(); got != 1 {
		t.Fatalf("database reads before the refresh window = %d, want 1", got)
	}
	clk.Advance(testTTL / 8) // three quarters of the TTL
	entered, release := st.hold()
	answered := make(chan error, 3)
	go func() {
		for range 3 {
			_, _, err := a.lookup(ctx, "h1")
			answered <- err
		}
	}()
	<-entered // the refresh is under way, and held
	for range 3 {
		select {
		case err := <-answered:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(10 * time.Second):
			release()
			t.Fatal("a request waited for the background refresh")
		}
	}
	release()
	a.waitFlight("h1")
	if got := st.reads.Load(); got != 2 {
		t.Fatalf("database reads = %d, want 2 (one refresh for three requests)", got)
	}
	// Past the first verdict's expiry, the refreshed one answers.
	clk.Advance(testTTL / 2)
	if _, _, err := a.lookup(ctx, "h1"); err != nil {
		t.Fatal(err)
	}
	if got := st.reads.Load(); got != 2 {
		t.Errorf("database reads after the first verdict expired = %d, want 2", got)
	}
}

// A refresh that finds the token revoked or gone ends its use at once,
// without waiting for the old verdict to expire.
func TestRefreshSeesRevocation(t *testing.T) {
	revoked := time.Date(2026, 3, 2, 9, 0, 1, 0, time.UTC)
	for _, tt := range []struct {
		name    string
		tok     store.SCIMToken
		err     error
		wantErr bool
	}{
		{"revoked", store.SCIMToken{ID: "t1", OrgID: "o1", RevokedAt: &revoked}, nil, false},
		{"deleted", store.SCIMToken{}, store.ErrNotFound, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			a, st, clk := newTestAuth()
			if _, _, err := a.lookup(ctx, "h1"); err != nil {
				t.Fatal(err)
			}
			st.set(tt.tok, tt.err)
			clk.Advance(testTTL * 3 / 4)
			tok, _, err := a.lookup(ctx, "h1") // the old verdict, within the bound
			if err != nil || !tok.Usable(clk.Now()) {
				t.Fatalf("before the refresh: token usable %v, err %v; want the cached verdict", tok.Usable(clk.Now()), err)
			}
			a.waitFlight("h1")
			tok, _, err = a.lookup(ctx, "h1")
			if gotErr := err != nil; gotErr != tt.wantErr || (err == nil && tok.Usable(clk.Now())) {
				t.Errorf("after the refresh: token usable %v, err %v; want it refused", tok.Usable(clk.Now()), err)
			}
		})
	}
}

// A refresh that fails keeps the cached verdict until its own expiry and
// no longer; tries again a sixteenth of the TTL later, not on every
// request; and once the TTL is out the error reaches the request.
func TestRefreshErrorBoundedByTTL(t *testing.T) {
	ctx := context.Background()
	a, st, clk := newTestAuth()
	if _, _, err := a.lookup(ctx, "h1"); err != nil {
		t.Fatal(err)
	}
	down := errors.New("database down")
	st.set(store.SCIMToken{}, down)
	clk.Advance(testTTL * 3 / 4)
	steps := []struct {
		advance   time.Duration
		wantErr   bool
		wantReads int32 // after the step's lookup has settled
	}{
		{0, false, 2},              // starts the first refresh, which fails
		{0, false, 2},              // no new try at once
		{testTTL / 16, false, 3},   // a second try
		{testTTL/16 - 1, false, 3}, // not yet a third
		{testTTL/8 + 1, true, 4},   // expired: the request looks up itself and fails
	}
	for i, s := range steps {
		clk.Advance(s.advance)
		_, _, err := a.lookup(ctx, "h1")
		if gotErr := err != nil; gotErr != s.wantErr {
			t.Fatalf("step %d: err %v, want error %v", i, err, s.wantErr)
		}
		if err != nil && !errors.Is(err, down) {
			t.Fatalf("step %d: err %v, want %v", i, err, down)
		}
		a.waitFlight("h1")
		if got := st.reads.Load(); got != s.wantReads {
			t.Fatalf("step %d: database reads = %d, want %d", i, got, s.wantReads)
		}
	}
	// The database is back: the next request is served and cached again.
	st.set(store.SCIMToken{ID: "t1", OrgID: "o1"}, nil)
	if _, _, err := a.lookup(ctx, "h1"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.lookup(ctx, "h1"); err != nil {
		t.Fatal(err)
	}
	if got := st.reads.Load(); got != 5 {
		t.Errorf("database reads after recovery = %d, want 5", got)
	}
}
