package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// parseRate reads -rate: "N/s", "N/m", "N/ms" or a bare N (per second).
func parseRate(s string) (vegeta.Rate, error) {
	n, unit, ok := strings.Cut(strings.TrimSpace(s), "/")
	if !ok {
		unit = "s"
	}
	freq, err := strconv.Atoi(n)
	if err != nil || freq < 1 {
		return vegeta.Rate{}, fmt.Errorf("-rate %q: want a positive count per unit, like 1000/s", s)
	}
	per, err := time.ParseDuration("1" + unit)
	if err != nil || per <= 0 {
		return vegeta.Rate{}, fmt.Errorf("-rate %q: unknown unit %q (s, m or ms)", s, unit)
	}
	return vegeta.Rate{Freq: freq, Per: per}, nil
}

// rateResult is one open-model run's figures; latencies in milliseconds.
type rateResult struct {
	Mode       string  `json:"mode"`
	Rate       string  `json:"rate"`
	Seconds    float64 `json:"seconds"`
	Requests   uint64  `json:"requests"`
	Sent       float64 `json:"sentPerSecond"`
	Throughput float64 `json:"throughput"` // answered as expected, per second
	Success    float64 `json:"success"`    // share answered as expected
	P50        float64 `json:"p50Ms"`
	P90        float64 `json:"p90Ms"`
	P99        float64 `json:"p99Ms"`
	Max        float64 `json:"maxMs"`
	// LoadCPU is this tool's own CPU time per request, which the machine
	// spends beside the server's and the database's.
	LoadCPU    float64 `json:"loadCpuMsPerRequest"`
	FirstError string  `json:"firstError,omitempty"`
}

func (r rateResult) String() string {
	s := fmt.Sprintf("%s at %s: %d requests in %.1fs: sent %.0f/s, throughput %.0f/s, success %.4f, p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, max %.2f ms",
		r.Mode, r.Rate, r.Requests, r.Seconds, r.Sent, r.Throughput, r.Success, r.P50, r.P90, r.P99, r.Max)
	if r.FirstError != "" {
		s += " (first error: " + r.FirstError + ")"
	}
	return s
}

// targets makes the requests of an open-model run, one per call.
type targets struct {
	base, healthURL string
	header          http.Header
	l               *loader
	seq             atomic.Int64
}

func newTargets(base, token string, l *loader) (*targets, error) {
	u, err := url.Parse(base)
	if err != nil {
		return nil, fmt.Errorf("parse -url: %w", err)
	}
	h := http.Header{}
	h.Set("Authorization", "Bearer "+token)
	h.Set("Accept", "application/scim+json")
	return &targets{base: base, healthURL: u.Scheme + "://" + u.Host + "/healthz", header: h, l: l}, nil
}

// create is POST /Users with a userName no other request of the run has.
func (g *targets) create(t *vegeta.Target) error {
	t.Method, t.URL = http.MethodPost, g.base+"/Users"
	t.Body = []byte(userBody(g.l.userName(0, g.seq.Add(1))))
	t.Header = g.header.Clone()
	t.Header.Set("Content-Type", "application/scim+json")
	return nil
}

// filter is GET /Users?filter=userName eq "…" over the seeded users.
func (g *targets) filter(t *vegeta.Target) error {
	name := g.l.names[rand.IntN(len(g.l.names))]
	t.Method, t.URL, t.Body = http.MethodGet, g.base+"/Users?filter="+url.QueryEscape(`userName eq "`+name+`"`), nil
	t.Header = g.header
	return nil
}

// health is GET /healthz of the same server, without the token.
func (g *targets) health(t *vegeta.Target) error {
	t.Method, t.URL, t.Body, t.Header = http.MethodGet, g.healthURL, nil, nil
	return nil
}

// runRate offers c.rate requests for c.duration whatever the answers take
// (an open model: a slow answer does not slow the arrivals, so queueing
// shows in the latencies instead of hiding in a lower rate).
func runRate(ctx context.Context, c config) (rateResult, error) {
	base, err := checkURL(c.url)
	if err != nil {
		return rateResult{}, err
	}
	if c.token == "" && c.mode != "health" {
		return rateResult{}, errors.New("a SCIM token is required (-token or SCIMSYNC_LOAD_TOKEN)")
	}
	if c.duration <= 0 {
		return rateResult{}, errors.New("-duration must be positive")
	}
	l := newLoader(base, c)
	g, err := newTargets(base, c.token, l)
	if err != nil {
		return rateResult{}, err
	}
	var (
		tr         vegeta.Targeter
		wantStatus = http.StatusOK
		wantBody   string
	)
	switch c.mode {
	case "create":
		tr, wantStatus = g.create, http.StatusCreated
	case "filter":
		if err := l.seed(ctx, c); err != nil {
			return rateResult{}, err
		}
		tr, wantBody = g.filter, `"totalResults":1`
	case "health":
		tr = g.health
	default:
		return rateResult{}, fmt.Errorf("unknown -mode %q with -rate: want create, filter or health", c.mode)
	}
	atk := vegeta.NewAttacker(vegeta.Timeout(30*time.Second), vegeta.KeepAlive(true), vegeta.Connections(c.concurrency))
	var (
		m        vegeta.Metrics
		ok       uint64
		firstErr string
	)
	cpu0 := processCPU()
	results := atk.Attack(tr, c.rate, c.duration, c.mode)
	for done := false; !done; {
		select {
		case <-ctx.Done():
			atk.Stop()
			done = true
		case res, more := <-results:
			if !more {
				done = true
				break
			}
			if why := judge(res, wantStatus, wantBody); why != "" {
				if firstErr == "" {
					firstErr = why
				}
			} else {
				ok++
			}
			m.Add(res)
		}
	}
	m.Close()
	r := rateResult{
		Mode: c.mode, Rate: c.rateText, Seconds: (m.Duration + m.Wait).Seconds(), Requests: m.Requests, Sent: m.Rate,
		P50: ms(m.Latencies.P50), P90: ms(m.Latencies.P90), P99: ms(m.Latencies.P99), Max: ms(m.Latencies.Max),
		FirstError: firstErr,
	}
	if m.Requests > 0 {
		r.Success = float64(ok) / float64(m.Requests)
		r.LoadCPU = ms(processCPU()-cpu0) / float64(m.Requests)
	}
	if r.Seconds > 0 {
		r.Throughput = float64(ok) / r.Seconds
	}
	return r, nil
}

// judge says why an answer is not the expected one, or "" when it is.
func judge(res *vegeta.Result, status int, body string) string {
	switch {
	case res.Error != "":
		return res.Error
	case int(res.Code) != status:
		return fmt.Sprintf("status %d: %.200s", res.Code, res.Body)
	case body != "" && !strings.Contains(string(res.Body), body):
		return fmt.Sprintf("body lacks %s: %.200s", body, res.Body)
	}
	return ""
}
