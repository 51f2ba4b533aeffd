// Command scimsync-load drives a running scimsync's SCIM endpoint with
// concurrent requests for a fixed time and reports throughput and latency.
//
//	scimsync-load -url http://127.0.0.1:8080/scim/v2 -token sst_… -mode create
//	scimsync-load -url … -token … -mode filter -users 2000
//
// Modes: create (POST /Users with unique userNames), filter
// (GET /Users?filter=userName eq "…" over users it creates first), and seed
// (only create the users of a later filter run, which then passes -seeded
// and the same -run, so that its figures leave the seeding out). It talks
// to loopback addresses only, and stops at -duration or -max requests.
//
// With -rate it offers a constant rate instead, whatever the answers take
// (an open model, so that a stall shows as latency rather than as a lower
// rate), in modes create, filter and health (GET /healthz):
//
//	scimsync-load -url … -token … -mode create -rate 1000/s -duration 15s
//
// Mode provision serves an Okta fake of -users users answering in
// -page-delay a page, has the scimsync at -url (its base URL) provision
// them through the admin API, and times the first reconcile, every member
// pending_setup, every invite recorded, and a no-op reconcile against a
// bare listing of the fake (scripts/bench-e2e.sh); -duration bounds the
// wait:
//
//	scimsync-load -url http://127.0.0.1:8080 -mode provision -users 100000 -db postgres://… -duration 15m
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

type config struct {
	url         string
	token       string
	mode        string
	concurrency int
	duration    time.Duration
	max         int64
	users       int
	seeded      bool
	runID       string
	jsonOut     bool
	rateText    string      // -rate as given; empty for the closed model
	rate        vegeta.Rate // parsed from rateText
	// provision mode
	adminToken string
	dbURL      string
	pageDelay  time.Duration
}

func main() {
	c, err := parseFlags(os.Args[1:], os.Getenv)
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "scimsync-load:", err)
		}
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	var res any
	switch {
	case c.mode == "provision":
		res, err = runProvision(ctx, c)
	case c.rateText != "":
		res, err = runRate(ctx, c)
	default:
		res, err = run(ctx, c)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "scimsync-load:", err)
		os.Exit(1)
	}
	if c.jsonOut {
		enc := json.NewEncoder(os.Stdout)
		if err := enc.Encode(res); err != nil {
			fmt.Fprintln(os.Stderr, "scimsync-load:", err)
			os.Exit(1)
		}
		return
	}
	fmt.Println(res)
}

// parseFlags reads the command line.
func parseFlags(args []string, getenv func(string) string) (config, error) {
	var c config
	fs := flag.NewFlagSet("scimsync-load", flag.ContinueOnError)
	fs.StringVar(&c.url, "url", "http://127.0.0.1:8080/scim/v2", "SCIM base URL (loopback only)")
	fs.StringVar(&c.token, "token", getenv("SCIMSYNC_LOAD_TOKEN"), "SCIM bearer token (default $SCIMSYNC_LOAD_TOKEN)")
	fs.StringVar(&c.mode, "mode", "create", "create, filter, seed or provision; with -rate create, filter or health")
	fs.IntVar(&c.concurrency, "c", 32, "concurrent connections (with -rate: idle connections kept)")
	fs.DurationVar(&c.duration, "duration", 20*time.Second, "how long to drive load")
	fs.Int64Var(&c.max, "max", 2_000_000, "stop after this many requests")
	fs.IntVar(&c.users, "users", 2000, "users to create before a filter run")
	fs.BoolVar(&c.seeded, "seeded", false, "filter over the users a seed run with the same -run created")
	fs.StringVar(&c.runID, "run", fmt.Sprintf("%x", rand.Uint32()), "name of this run, part of every userName")
	fs.BoolVar(&c.jsonOut, "json", false, "print the result as one JSON object")
	fs.StringVar(&c.rateText, "rate", "", "offer this constant rate, like 1000/s, for -duration (open model; -c and -max do not apply)")
	fs.StringVar(&c.adminToken, "admin-token", getenv("SCIMSYNC_ADMIN_TOKEN"), "provision: admin API token (default $SCIMSYNC_ADMIN_TOKEN)")
	fs.StringVar(&c.dbURL, "db", getenv("DATABASE_URL"), "provision: the server's Postgres database, where members and e-mails are counted (default $DATABASE_URL)")
	fs.DurationVar(&c.pageDelay, "page-delay", 20*time.Millisecond, "provision: the Okta fake's response time per page")
	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	if fs.NArg() > 0 {
		return config{}, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if c.rateText != "" {
		r, err := parseRate(c.rateText)
		if err != nil {
			return config{}, err
		}
		c.rate = r
	}
	return c, nil
}

// result is one run's figures; latencies in milliseconds.
type result struct {
	Mode        string  `json:"mode"`
	Concurrency int     `json:"concurrency"`
	Seconds     float64 `json:"seconds"`
	Requests    int64   `json:"requests"`
	Errors      int64   `json:"errors"`
	PerSecond   float64 `json:"perSecond"`
	P50         float64 `json:"p50Ms"`
	P90         float64 `json:"p90Ms"`
	P99         float64 `json:"p99Ms"`
	Max         float64 `json:"maxMs"`
	FirstError  string  `json:"firstError,omitempty"`
}

func (r result) String() string {
	s := fmt.Sprintf("%s: %d requests in %.1fs with %d connections: %.0f req/s, p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, max %.2f ms, errors %d",
		r.Mode, r.Requests, r.Seconds, r.Concurrency, r.PerSecond, r.P50, r.P90, r.P99, r.Max, r.Errors)
	if r.FirstError != "" {
		s += " (first: " + r.FirstError + ")"
	}
	return s
}

func run(ctx context.Context, c config) (result, error) {
	base, err := checkURL(c.url)
	if err != nil {
		return result{}, err
	}
	if c.token == "" {
		return result{}, errors.New("a SCIM token is required (-token or SCIMSYNC_LOAD_TOKEN)")
	}
	if c.concurrency < 1 || c.duration <= 0 || c.max < 1 {
		return result{}, errors.New("-c, -duration and -max must be positive")
	}
	l := newLoader(base, c)
	var op func(ctx context.Context, worker int, seq int64) error
	switch c.mode {
	case "create":
		op = l.create
	case "filter", "seed":
		t0 := time.Now()
		if err := l.seed(ctx, c); err != nil {
			return result{}, err
		}
		if c.mode == "seed" {
			return result{Mode: "seed", Concurrency: c.concurrency, Seconds: time.Since(t0).Seconds(), Requests: int64(c.users)}, nil
		}
		op = l.filter
	default:
		return result{}, fmt.Errorf("unknown -mode %q: want create, filter or seed", c.mode)
	}
	return drive(ctx, c, op), nil
}

// checkURL accepts http(s) URLs whose host is a loopback address.
func checkURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("-url %q: want http://127.0.0.1:PORT/scim/v2", raw)
	}
	host := u.Hostname()
	ips, err := net.LookupIP(host)
	if err != nil || len(ips) == 0 {
		return "", fmt.Errorf("-url host %q: %w", host, err)
	}
	for _, ip := range ips {
		if !ip.IsLoopback() {
			return "", fmt.Errorf("-url host %q is not loopback: this tool only loads a local server", host)
		}
	}
	return strings.TrimRight(u.String(), "/"), nil
}

// newLoader returns the loader of a run against base.
func newLoader(base string, c config) *loader {
	return &loader{base: base, token: c.token, run: c.runID, client: &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			MaxIdleConns: c.concurrency, MaxIdleConnsPerHost: c.concurrency, MaxConnsPerHost: c.concurrency,
			IdleConnTimeout: time.Minute, DisableCompression: true,
		},
	}}
}

// seed names the users a filter run looks up and, unless -seeded says a
// seed run made them already, creates them.
func (l *loader) seed(ctx context.Context, c config) error {
	if c.users < 1 {
		return errors.New("-users must be positive for a filter or seed run")
	}
	l.names = make([]string, c.users)
	for i := range l.names {
		l.names[i] = l.seedName(i)
	}
	if c.seeded {
		return nil
	}
	return l.prepare(ctx, c.concurrency)
}

// loader sends the requests of one run.
type loader struct {
	base, token, run string
	client           *http.Client
	names            []string // users a filter run looks up
}

func (l *loader) userName(worker int, seq int64) string {
	return fmt.Sprintf("load-%s-%d-%d@example.com", l.run, worker, seq)
}

func (l *loader) seedName(i int) string { return fmt.Sprintf("load-%s-seed-%d@example.com", l.run, i) }

func (l *loader) create(ctx context.Context, worker int, seq int64) error {
	return l.createNamed(ctx, l.userName(worker, seq))
}

func (l *loader) createNamed(ctx context.Context, name string) error {
	return l.do(ctx, http.MethodPost, "/Users", []byte(userBody(name)), http.StatusCreated, "")
}

// userBody is the SCIM user every create sends, named name.
func userBody(name string) string {
	return fmt.Sprintf(`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":%q,"externalId":%q,`+
		`"name":{"givenName":"Load","familyName":"Test"},"emails":[{"value":%q,"type":"work","primary":true}],"active":true}`,
		name, "ext-"+name, name)
}

func (l *loader) filter(ctx context.Context, _ int, _ int64) error {
	name := l.names[rand.IntN(len(l.names))]
	q := url.QueryEscape(`userName eq "` + name + `"`)
	return l.do(ctx, http.MethodGet, "/Users?filter="+q, nil, http.StatusOK, `"totalResults":1`)
}

// prepare creates the users a filter run looks up.
func (l *loader) prepare(ctx context.Context, concurrency int) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, concurrency)
	for range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(len(l.names)) || ctx.Err() != nil {
					return
				}
				if err := l.createNamed(ctx, l.names[i]); err != nil {
					errc <- fmt.Errorf("create users for the filter run: %w", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	return <-errc
}

// do sends one request and checks the status (and, when given, that the
// body contains want).
func (l *loader) do(ctx context.Context, method, path string, body []byte, status int, want string) error {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, l.base+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+l.token)
	req.Header.Set("Accept", "application/scim+json")
	if body != nil {
		req.Header.Set("Content-Type", "application/scim+json")
	}
	resp, err := l.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != status {
		return fmt.Errorf("%s %s: status %d: %.200s", method, path, resp.StatusCode, got)
	}
	if want != "" && !bytes.Contains(got, []byte(want)) {
		return fmt.Errorf("%s %s: body lacks %s: %.200s", method, path, want, got)
	}
	return nil
}

// drive runs op on c.concurrency workers until the time or count is up.
func drive(ctx context.Context, c config, op func(context.Context, int, int64) error) result {
	ctx, cancel := context.WithTimeout(ctx, c.duration)
	defer cancel()
	var (
		issued   atomic.Int64
		errCount atomic.Int64
		firstErr atomic.Value
		mu       sync.Mutex
		all      []time.Duration
		wg       sync.WaitGroup
	)
	start := time.Now()
	for w := range c.concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lat := make([]time.Duration, 0, 4096)
			for ctx.Err() == nil {
				seq := issued.Add(1)
				if seq > c.max {
					break
				}
				t0 := time.Now()
				err := op(ctx, w, seq)
				if ctx.Err() != nil {
					break // cut off by the deadline: not a server error
				}
				lat = append(lat, time.Since(t0))
				if err != nil {
					errCount.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
				}
			}
			mu.Lock()
			all = append(all, lat...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	slices.Sort(all)
	r := result{
		Mode: c.mode, Concurrency: c.concurrency, Seconds: elapsed.Seconds(),
		Requests: int64(len(all)), Errors: errCount.Load(),
		PerSecond: float64(len(all)) / elapsed.Seconds(),
		P50:       ms(quantile(all, 0.50)), P90: ms(quantile(all, 0.90)), P99: ms(quantile(all, 0.99)), Max: ms(quantile(all, 1)),
	}
	if s, ok := firstErr.Load().(string); ok {
		r.FirstError = s
	}
	return r
}

func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// logf reports progress on stderr.
func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "scimsync-load: "+format+"\n", args...)
}
