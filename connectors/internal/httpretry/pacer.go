package httpretry

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/scimsync/scimsync/internal/clock"
)

// pacer keeps requests within a share of the rate limit the IdP advertises
// in X-Rate-Limit-Limit, -Remaining and -Reset. It acts on the IdP's count of
// what remains, not its own, so concurrent syncs of one organization back
// off together.
type pacer struct {
	share   float64
	maxWait time.Duration
	clock   clock.Clock
	log     *slog.Logger

	mu      sync.Mutex
	buckets map[string]bucket
}

type bucket struct {
	limit, remaining int
	resetAt          time.Time // on the local clock
}

// wait blocks while the bucket's remaining budget is below (1-share)×limit
// and its window has not reset.
func (p *pacer) wait(ctx context.Context, key string) error {
	p.mu.Lock()
	b, ok := p.buckets[key]
	p.mu.Unlock()
	if !ok || b.limit <= 0 || float64(b.remaining) >= (1-p.share)*float64(b.limit) {
		return nil
	}
	d := b.resetAt.Sub(p.clock.Now())
	if d <= 0 {
		return nil
	}
	d = min(d, p.maxWait)
	p.log.InfoContext(ctx, "pacing idp requests to stay within the rate-limit share",
		"bucket", key, "remaining", b.remaining, "limit", b.limit, "wait", d)
	if err := p.clock.Sleep(ctx, d); err != nil {
		return err
	}
	p.mu.Lock()
	if cur, ok := p.buckets[key]; ok && cur.resetAt.Equal(b.resetAt) {
		delete(p.buckets, key) // the window we waited for is over
	}
	p.mu.Unlock()
	return nil
}

// observe records the budget a response advertises, if any.
func (p *pacer) observe(key string, h http.Header) {
	limit, err1 := strconv.Atoi(h.Get("X-Rate-Limit-Limit"))
	remaining, err2 := strconv.Atoi(h.Get("X-Rate-Limit-Remaining"))
	reset, err3 := strconv.ParseInt(h.Get("X-Rate-Limit-Reset"), 10, 64)
	if err1 != nil || err2 != nil || err3 != nil || limit <= 0 {
		return
	}
	now := p.clock.Now()
	// Carry the server's "time until reset" over to the local clock; add a
	// second because both the reset and Date are truncated to the second.
	resetAt := now.Add(time.Unix(reset, 0).Sub(serverNow(h, now)) + time.Second)
	p.mu.Lock()
	if p.buckets == nil {
		p.buckets = make(map[string]bucket)
	}
	p.buckets[key] = bucket{limit: limit, remaining: remaining, resetAt: resetAt}
	p.mu.Unlock()
}
