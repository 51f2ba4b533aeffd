package httpretry

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/scimsync/scimsync/connectors"
	"github.com/scimsync/scimsync/internal/clock"
)

// script answers each attempt with the next step and records the bodies it
// was sent.
type script struct {
	mu     sync.Mutex
	steps  []func(*http.Request) (*http.Response, error)
	bodies []string
}

func (s *script) RoundTrip(r *http.Request) (*http.Response, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.Body != nil {
		b, _ := io.ReadAll(r.Body)
		s.bodies = append(s.bodies, string(b))
	}
	if len(s.steps) == 0 {
		return nil, errors.New("script exhausted")
	}
	step := s.steps[0]
	s.steps = s.steps[1:]
	return step(r)
}

func answer(status int, header ...string) func(*http.Request) (*http.Response, error) {
	return func(r *http.Request) (*http.Response, error) {
		h := http.Header{}
		for i := 0; i+1 < len(header); i += 2 {
			h.Set(header[i], header[i+1])
		}
		return &http.Response{StatusCode: status, Header: h, Body: io.NopCloser(strings.NewReader("body " + strconv.Itoa(status))), Request: r}, nil
	}
}

func fail(err error) func(*http.Request) (*http.Response, error) {
	return func(*http.Request) (*http.Response, error) { return nil, err }
}

var start = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

func transport(steps ...func(*http.Request) (*http.Response, error)) (*Transport, *script, *clock.Fake) {
	clk := clock.NewFake(start, clock.SleepAdvances)
	s := &script{steps: steps}
	t := New(Config{Base: s, Policy: connectors.RetryPolicy{
		MaxRetries: 2, MaxRateLimitWaits: 2, BaseDelay: time.Second, MaxDelay: 8 * time.Second,
		MaxRateLimitWait: time.Minute, Clock: clk,
	}})
	return t, s, clk
}

func get(t *testing.T, tr *Transport) (*http.Response, error) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "https://idp.example/api", nil)
	return tr.RoundTrip(req)
}

func TestRetries(t *testing.T) {
	errReset := errors.New("connection reset by peer")
	tests := []struct {
		name       string
		steps      []func(*http.Request) (*http.Response, error)
		wantStatus int   // 0: an error
		wantErr    error // when wantStatus is 0
		minSlept   time.Duration
		maxSlept   time.Duration
	}{
		{"ok", []func(*http.Request) (*http.Response, error){answer(200)}, 200, nil, 0, 0},
		{"404 not retried", []func(*http.Request) (*http.Response, error){answer(404)}, 404, nil, 0, 0},
		{"500 then ok", []func(*http.Request) (*http.Response, error){answer(500), answer(200)}, 200, nil, 500 * time.Millisecond, time.Second},
		{"502 503 then ok", []func(*http.Request) (*http.Response, error){answer(502), answer(503), answer(200)}, 200, nil, 1500 * time.Millisecond, 3 * time.Second},
		{"500 beyond budget returns the last answer", []func(*http.Request) (*http.Response, error){answer(500), answer(500), answer(500), answer(200)}, 500, nil, 1500 * time.Millisecond, 3 * time.Second},
		{"503 with Retry-After", []func(*http.Request) (*http.Response, error){answer(503, "Retry-After", "7"), answer(200)}, 200, nil, 7 * time.Second, 7 * time.Second},
		{"transport error then ok", []func(*http.Request) (*http.Response, error){fail(errReset), answer(200)}, 200, nil, 500 * time.Millisecond, time.Second},
		{"transport errors beyond budget", []func(*http.Request) (*http.Response, error){fail(errReset), fail(errReset), fail(errReset)}, 0, connectors.ErrUnavailable, 1500 * time.Millisecond, 3 * time.Second},
		{"429 Retry-After seconds", []func(*http.Request) (*http.Response, error){answer(429, "Retry-After", "3"), answer(200)}, 200, nil, 3 * time.Second, 3 * time.Second},
		{"429 Okta reset", []func(*http.Request) (*http.Response, error){
			answer(429, "Date", start.Format(http.TimeFormat), "X-Rate-Limit-Reset", strconv.FormatInt(start.Unix()+10, 10)), answer(200),
		}, 200, nil, 11 * time.Second, 11 * time.Second},
		{"429 Retry-After date", []func(*http.Request) (*http.Response, error){
			answer(429, "Date", start.Format(http.TimeFormat), "Retry-After", start.Add(4*time.Second).Format(http.TimeFormat)), answer(200),
		}, 200, nil, 4 * time.Second, 4 * time.Second},
		{"429 beyond budget", []func(*http.Request) (*http.Response, error){answer(429, "Retry-After", "1"), answer(429, "Retry-After", "1"), answer(429, "Retry-After", "1")}, 429, nil, 2 * time.Second, 2 * time.Second},
		{"500 with Okta's routine reset waits its backoff", []func(*http.Request) (*http.Response, error){
			answer(500, okta(590, 50)...), answer(200, okta(589, 50)...),
		}, 200, nil, 500 * time.Millisecond, time.Second},
		{"500 with the budget spent waits for the reset", []func(*http.Request) (*http.Response, error){
			answer(500, okta(0, 10)...), answer(200),
		}, 200, nil, 11 * time.Second, 11 * time.Second},
		{"503 Retry-After beats the reset", []func(*http.Request) (*http.Response, error){
			answer(503, append(okta(0, 50), "Retry-After", "2")...), answer(200),
		}, 200, nil, 2 * time.Second, 2 * time.Second},
		{"429 asking too long", []func(*http.Request) (*http.Response, error){answer(429, "Retry-After", "3600")}, 429, nil, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr, _, clock := transport(tt.steps...)
			resp, err := get(t, tr)
			if tt.wantStatus == 0 {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("got %v, want %v", err, tt.wantErr)
				}
			} else {
				if err != nil {
					t.Fatal(err)
				}
				if resp.StatusCode != tt.wantStatus {
					t.Errorf("status %d, want %d", resp.StatusCode, tt.wantStatus)
				}
				// The caller reads the IdP's error body from the last answer.
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if want := "body " + strconv.Itoa(tt.wantStatus); string(b) != want {
					t.Errorf("body %q, want %q", b, want)
				}
			}
			if slept, _ := clock.Slept(); slept < tt.minSlept || slept > tt.maxSlept {
				t.Errorf("slept %v, want within [%v, %v]", slept, tt.minSlept, tt.maxSlept)
			}
		})
	}
}

// okta is the rate-limit headers Okta sends on every answer: a budget of
// 600 with remaining left, and a window resetting resetIn seconds after
// Date.
func okta(remaining, resetIn int) []string {
	return []string{
		"Date", start.Format(http.TimeFormat),
		"X-Rate-Limit-Limit", "600",
		"X-Rate-Limit-Remaining", strconv.Itoa(remaining),
		"X-Rate-Limit-Reset", strconv.FormatInt(start.Unix()+int64(resetIn), 10),
	}
}

// With the default policy, a burst of server errors costs seconds of
// backoff, never the rest of the rate-limit window that Okta names on every
// answer.
func TestServerErrorsBackOffUnderDefaults(t *testing.T) {
	clk := clock.NewFake(start, clock.SleepAdvances)
	s := &script{steps: []func(*http.Request) (*http.Response, error){
		answer(500, okta(599, 59)...), answer(500, okta(598, 59)...), answer(500, okta(597, 59)...), answer(200, okta(596, 59)...),
	}}
	tr := New(Config{Base: s, Policy: connectors.RetryPolicy{Clock: clk}})
	resp, err := get(t, tr)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d, want 200", resp.StatusCode)
	}
	// Three backoffs of about 1, 2 and 4 s, each jittered in its upper half.
	slept, n := clk.Slept()
	if n != 3 || slept < 3500*time.Millisecond || slept > 7*time.Second {
		t.Errorf("slept %v in %d sleeps, want 3.5s–7s in 3", slept, n)
	}
}

func TestRewindsBody(t *testing.T) {
	tr, s, _ := transport(answer(500), answer(200))
	req, _ := http.NewRequest(http.MethodPost, "https://login.example/token", strings.NewReader("grant_type=client_credentials"))
	resp, err := tr.RoundTrip(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("got %v, %v", resp, err)
	}
	if len(s.bodies) != 2 || s.bodies[0] != s.bodies[1] || s.bodies[1] != "grant_type=client_credentials" {
		t.Errorf("attempts were sent %q", s.bodies)
	}
}

func TestBodyThatCannotRewindIsNotRetried(t *testing.T) {
	tr, s, _ := transport(answer(500), answer(200))
	req, _ := http.NewRequest(http.MethodPost, "https://login.example/token", io.NopCloser(strings.NewReader("x")))
	req.GetBody = nil
	resp, err := tr.RoundTrip(req)
	if err != nil || resp.StatusCode != 500 || len(s.bodies) != 1 {
		t.Errorf("got %v, %v after %d attempts; want the 500 after 1", resp, err, len(s.bodies))
	}
}

func TestCancelledWhileWaiting(t *testing.T) {
	s := &script{steps: []func(*http.Request) (*http.Response, error){answer(503), answer(200)}}
	ctx, cancel := context.WithCancel(context.Background())
	tr := New(Config{Base: s, Policy: connectors.RetryPolicy{
		BaseDelay: time.Hour, MaxDelay: time.Hour, Clock: cancelOnSleep{cancel},
	}})
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "https://idp.example/api", nil)
	start := time.Now()
	if _, err := tr.RoundTrip(req); !errors.Is(err, context.Canceled) {
		t.Errorf("got %v, want context.Canceled", err)
	}
	if time.Since(start) > time.Second {
		t.Errorf("cancelled wait took %v", time.Since(start))
	}
}

// cancelOnSleep is the real clock, whose sleeps cancel the request first.
type cancelOnSleep struct{ cancel context.CancelFunc }

func (c cancelOnSleep) Now() time.Time                         { return time.Now() }
func (c cancelOnSleep) NewTimer(d time.Duration) clock.Timer   { return clock.Real{}.NewTimer(d) }
func (c cancelOnSleep) NewTicker(d time.Duration) clock.Ticker { return clock.Real{}.NewTicker(d) }
func (c cancelOnSleep) Sleep(ctx context.Context, d time.Duration) error {
	c.cancel()
	return clock.Real{}.Sleep(ctx, d)
}

func TestPacer(t *testing.T) {
	clk := clock.NewFake(start, clock.SleepAdvances)
	p := &pacer{share: 0.5, maxWait: time.Minute, clock: clk, log: New(Config{}).log}
	ctx := context.Background()
	headers := func(remaining int) http.Header {
		return http.Header{
			"Date":                   {start.Format(http.TimeFormat)},
			"X-Rate-Limit-Limit":     {"100"},
			"X-Rate-Limit-Remaining": {strconv.Itoa(remaining)},
			"X-Rate-Limit-Reset":     {strconv.FormatInt(start.Unix()+30, 10)},
		}
	}
	p.observe("b", headers(50))
	if err := p.wait(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	if slept, _ := clk.Slept(); slept != 0 {
		t.Errorf("waited %v with half the budget left", slept)
	}
	if err := p.wait(ctx, "other"); err != nil {
		t.Fatal(err)
	}
	p.observe("b", headers(49))
	if err := p.wait(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	if slept, _ := clk.Slept(); slept != 31*time.Second {
		t.Errorf("waited %v below the share, want 31s (to the reset)", slept)
	}
	// The window we waited for is over; the next request goes at once.
	if err := p.wait(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	if slept, _ := clk.Slept(); slept != 31*time.Second {
		t.Errorf("waited again after the reset: %v", slept)
	}
}

func TestBackoffBounds(t *testing.T) {
	tr := New(Config{Policy: connectors.RetryPolicy{BaseDelay: time.Second, MaxDelay: 10 * time.Second}})
	for n, want := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 5: 10 * time.Second, 100: 10 * time.Second} {
		for range 50 {
			if d := tr.backoff(n); d < want/2 || d > want {
				t.Fatalf("backoff(%d) = %v, want within [%v, %v]", n, d, want/2, want)
			}
		}
	}
}
