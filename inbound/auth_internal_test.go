package inbound

import (
	"context"
	"fmt"
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
