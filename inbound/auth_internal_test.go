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
