// Package httpretry is the HTTP transport every connector sends its requests
// through: bounded retries with exponential backoff for 5xx answers, timeouts
// and connection errors; waits for 429 answers as the IdP asks (Retry-After,
// or Okta's X-Rate-Limit-Reset); and pacing that keeps a sync within a share
// of the IdP's advertised rate limit. Waits go through the policy's Clock, so
// they honour the context and tests inject a fake.
//
// A server error is not a rate limit. Okta sends X-Rate-Limit-Reset, the end
// of its one-minute window, on every answer; waiting for it after a 500
// would hold each retry for up to a minute. So a 5xx waits its backoff, or
// the Retry-After it sends, and the window's reset only when the same
// answer says the budget is spent (X-Rate-Limit-Remaining: 0).
package httpretry

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"

	"github.com/scimsync/scimsync/connectors"
	"github.com/scimsync/scimsync/internal/clock"
)

// Config configures a Transport.
type Config struct {
	// Base sends each attempt. Nil means http.DefaultTransport.
	Base   http.RoundTripper
	Policy connectors.RetryPolicy
	Logger *slog.Logger
	// PaceKey names the rate-limit bucket a request draws from (IdPs count
	// limits per endpoint), or "" for a request that is not paced. Nil paces
	// nothing.
	PaceKey func(*http.Request) string
}

// Transport is an http.RoundTripper that retries and paces. It is safe for
// concurrent use.
//
// When retries are exhausted it returns the last response unchanged (so the
// caller can read the IdP's error body), or, after transport errors, an error
// matching connectors.ErrUnavailable.
//
// The connectors only read, and their one POST (an OAuth client-credentials
// token request) is safe to repeat, so any request whose body can be rewound
// is retried.
type Transport struct {
	base    http.RoundTripper
	p       connectors.RetryPolicy
	log     *slog.Logger
	paceKey func(*http.Request) string
	pacer   *pacer
}

// New returns a Transport, filling in the policy's defaults.
func New(c Config) *Transport {
	t := &Transport{base: c.Base, p: WithDefaults(c.Policy), log: c.Logger, paceKey: c.PaceKey}
	if t.base == nil {
		t.base = http.DefaultTransport
	}
	if t.log == nil {
		t.log = slog.New(slog.DiscardHandler)
	}
	t.pacer = &pacer{share: t.p.RateLimitShare, maxWait: t.p.MaxRateLimitWait, clock: t.p.Clock, log: t.log}
	return t
}

// WithDefaults fills the zero fields of p with the documented defaults.
func WithDefaults(p connectors.RetryPolicy) connectors.RetryPolicy {
	if p.MaxRetries == 0 {
		p.MaxRetries = 3
	}
	p.MaxRetries = max(p.MaxRetries, 0)
	if p.MaxRateLimitWaits == 0 {
		p.MaxRateLimitWaits = 5
	}
	p.MaxRateLimitWaits = max(p.MaxRateLimitWaits, 0)
	if p.BaseDelay <= 0 {
		p.BaseDelay = time.Second
	}
	if p.MaxDelay <= 0 {
		p.MaxDelay = 30 * time.Second
	}
	if p.MaxRateLimitWait <= 0 {
		p.MaxRateLimitWait = 2 * time.Minute
	}
	if p.AttemptTimeout <= 0 {
		p.AttemptTimeout = time.Minute
	}
	if p.RateLimitShare <= 0 || p.RateLimitShare > 1 {
		p.RateLimitShare = 0.5
	}
	p.Clock = clock.OrReal(p.Clock)
	return p
}

func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	rewindable := req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
	if req.Body != nil && req.GetBody != nil {
		// Each attempt reads a fresh copy from GetBody; the original is ours
		// to close.
		defer req.Body.Close()
	}
	key := ""
	if t.paceKey != nil {
		key = t.paceKey(req)
	}
	log := t.log.With("method", req.Method, "path", req.URL.Path)
	retries, waits := 0, 0
	for attempt := 1; ; attempt++ {
		if key != "" {
			if err := t.pacer.wait(ctx, key); err != nil {
				return nil, err
			}
		}
		resp, err := t.attempt(req)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			if !rewindable || retries >= t.p.MaxRetries || !retryableError(err) {
				return nil, fmt.Errorf("%w: %w", connectors.ErrUnavailable, err)
			}
			retries++
			d := t.backoff(retries)
			log.WarnContext(ctx, "idp request failed; retrying", "attempt", attempt, "err", err, "delay", d)
			if err := t.p.Clock.Sleep(ctx, d); err != nil {
				return nil, err
			}
			continue
		}
		if key != "" {
			t.pacer.observe(key, resp.Header)
		}
		switch {
		case resp.StatusCode == http.StatusTooManyRequests:
			if !rewindable || waits >= t.p.MaxRateLimitWaits {
				log.WarnContext(ctx, "idp rate limit: giving up", "attempt", attempt, "waits", waits)
				return resp, nil
			}
			d, ok := retryAfter(resp.Header, t.p.Clock.Now())
			if !ok {
				d, ok = rateLimitReset(resp.Header, t.p.Clock.Now())
			}
			if !ok {
				d = t.backoff(waits + 1)
			}
			if d > t.p.MaxRateLimitWait {
				log.WarnContext(ctx, "idp rate limit: asked to wait too long; giving up", "wait", d, "max", t.p.MaxRateLimitWait)
				return resp, nil
			}
			waits++
			drain(resp)
			log.InfoContext(ctx, "idp rate limit hit; waiting", "attempt", attempt, "wait", d)
			if err := t.p.Clock.Sleep(ctx, d); err != nil {
				return nil, err
			}
		case retryableStatus(resp.StatusCode):
			if !rewindable || retries >= t.p.MaxRetries {
				return resp, nil
			}
			retries++
			d := t.backoff(retries)
			if sd, ok := serverErrorWait(resp.Header, t.p.Clock.Now()); ok && sd > d && sd <= t.p.MaxRateLimitWait {
				d = sd
			}
			drain(resp)
			log.WarnContext(ctx, "idp answered a server error; retrying", "attempt", attempt, "status", resp.StatusCode, "delay", d)
			if err := t.p.Clock.Sleep(ctx, d); err != nil {
				return nil, err
			}
		default:
			return resp, nil
		}
	}
}

// attempt sends one try of req under the per-attempt timeout. The timeout
// covers reading the body, so it is released when the body is closed.
func (t *Transport) attempt(req *http.Request) (*http.Response, error) {
	ctx, cancel := context.WithTimeout(req.Context(), t.p.AttemptTimeout)
	r := req.Clone(ctx)
	if req.GetBody != nil && req.Body != nil && req.Body != http.NoBody {
		body, err := req.GetBody()
		if err != nil {
			cancel()
			return nil, err
		}
		r.Body = body
	}
	connectors.CountRequest(req.Context())
	resp, err := t.base.RoundTrip(r)
	if err != nil {
		timedOut := ctx.Err() == context.DeadlineExceeded && req.Context().Err() == nil
		cancel()
		if timedOut {
			return nil, fmt.Errorf("attempt timed out after %v: %w", t.p.AttemptTimeout, err)
		}
		return nil, err
	}
	resp.Body = &cancelOnClose{ReadCloser: resp.Body, cancel: cancel}
	return resp, nil
}

type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (c *cancelOnClose) Close() error {
	err := c.ReadCloser.Close()
	c.cancel()
	return err
}

// backoff is exponential from BaseDelay, capped at MaxDelay, with jitter in
// its upper half so that many syncs failing together do not retry together.
func (t *Transport) backoff(n int) time.Duration {
	d := t.p.BaseDelay << min(n-1, 20)
	if d <= 0 || d > t.p.MaxDelay {
		d = t.p.MaxDelay
	}
	half := d / 2
	return half + rand.N(half+1)
}

func retryableStatus(code int) bool {
	switch code {
	case http.StatusRequestTimeout, http.StatusInternalServerError, http.StatusBadGateway,
		http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// retryableError is false for failures that repeating cannot fix.
func retryableError(err error) bool {
	var certErr *tls.CertificateVerificationError
	return !errors.As(err, &certErr)
}

// retryAfter is how long the server asked the client to wait in
// Retry-After, given as seconds or as an HTTP date. Dates are read against
// the response's Date header, so a skewed local clock does not matter.
func retryAfter(h http.Header, now time.Time) (time.Duration, bool) {
	ra := h.Get("Retry-After")
	if ra == "" {
		return 0, false
	}
	if secs, err := strconv.Atoi(ra); err == nil {
		return max(time.Duration(secs)*time.Second, 0), true
	}
	if at, err := http.ParseTime(ra); err == nil {
		return max(at.Sub(serverNow(h, now)), 0), true
	}
	return 0, false
}

// rateLimitReset is how long until Okta's rate-limit window resets
// (X-Rate-Limit-Reset, epoch seconds), plus one second as Okta's SDK adds,
// since the reset is truncated to the second.
func rateLimitReset(h http.Header, now time.Time) (time.Duration, bool) {
	reset, err := strconv.ParseInt(h.Get("X-Rate-Limit-Reset"), 10, 64)
	if err != nil {
		return 0, false
	}
	return max(time.Unix(reset, 0).Sub(serverNow(h, now))+time.Second, 0), true
}

// serverErrorWait is how long a server error asks the client to wait: its
// Retry-After, else the rate-limit window's reset only when the same answer
// says no request is left in it. A reset sent beside remaining budget is
// Okta's routine header, not a request to wait.
func serverErrorWait(h http.Header, now time.Time) (time.Duration, bool) {
	if d, ok := retryAfter(h, now); ok {
		return d, true
	}
	if h.Get("X-Rate-Limit-Remaining") == "0" {
		return rateLimitReset(h, now)
	}
	return 0, false
}

// serverNow is the server's time of the answer: its Date header, else now.
func serverNow(h http.Header, now time.Time) time.Time {
	if d, err := http.ParseTime(h.Get("Date")); err == nil {
		return d
	}
	return now
}

// drain reads a little of a body that is being discarded so that the
// connection can be reused, then closes it.
func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
}
