// Package fakeidp holds what the IdP fakes (oktafake, jumpcloudfake,
// entrafake, googlefake) share: the loopback server, injected failures,
// request counters and per-route rate limits, all driven by a clock the test
// controls.
//
// A fake serves its IdP's routes itself and asks its Server what to do with
// each request (Admit, then Fail). Its tests drive failures through the
// Controls the fake embeds, so every fake offers the same ones.
package fakeidp

import (
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Fault is a failure to inject into the answers of one route.
type Fault struct {
	Status int  // HTTP status to answer with
	Hang   bool // instead of answering, hold the request until the client gives up
	Times  int  // how many requests it hits; 0 means 1
}

// Dialect is how an IdP words the failures Fail answers with.
type Dialect struct {
	// Throttle sets the headers of a 429 that tell the client when to retry.
	Throttle Throttle
	// WriteError writes an error answer with status in the IdP's shape.
	WriteError func(w http.ResponseWriter, status int)
}

// Throttle sets the headers of a 429 answer. v is what Admit decided: an
// injected 429 (v.Fault set) or a spent rate limit (v.Limited); now is the
// fake's clock.
type Throttle func(h http.Header, v Verdict, now time.Time)

// RetryAfter is the Throttle of IdPs that send Retry-After: injected seconds
// for an injected 429, and for a spent rate limit the seconds until its
// window resets, rounded up and at least 1.
func RetryAfter(injected int) Throttle {
	return func(h http.Header, v Verdict, now time.Time) {
		wait := injected
		if v.Fault == nil {
			wait = max(int(math.Ceil(v.ResetsAt.Sub(now).Seconds())), 1)
		}
		h.Set("Retry-After", strconv.Itoa(wait))
	}
}

// Match tells which of routes path is, and the id in it for a route with an
// {id} segment, which stands for one non-empty path segment. Routes are tried
// in order; a path none matches gives "".
func Match(path string, routes ...string) (route, id string) {
	for _, rt := range routes {
		prefix, suffix, templated := strings.Cut(rt, "{id}")
		switch {
		case !templated:
			if path == rt {
				return rt, ""
			}
		case strings.HasPrefix(path, prefix) && strings.HasSuffix(path, suffix):
			seg := strings.TrimSuffix(strings.TrimPrefix(path, prefix), suffix)
			if seg != "" && !strings.Contains(seg, "/") {
				return rt, seg
			}
		}
	}
	return "", ""
}

// PageAfter tells which page (1-based) of size items a cursor listing
// resumes on after the item with id after in all, sorted by id; "" starts
// page 1. Fakes that page by cursor use it to find the page a FailPage
// fault is for.
func PageAfter[T any](all []T, id func(T) string, after string, size int) int {
	if after == "" {
		return 1
	}
	i, _ := slices.BinarySearchFunc(all, after, func(x T, a string) int { return strings.Compare(id(x), a) })
	return (i+1)/size + 1
}

// Server is a running fake's shared state: its loopback server, counters,
// faults and rate limits. Its methods are safe for concurrent use.
type Server struct {
	srv     *httptest.Server
	now     func() time.Time
	dialect Dialect
	done    chan struct{}

	mu       sync.Mutex
	requests map[string]int
	faults   []pending
	budgets  map[string]*budget
	latency  time.Duration
	closed   bool
}

type pending struct {
	route string
	page  int // 0: any page
	fault Fault
	left  int
}

// budget is a route's rate limit: limit requests per window.
type budget struct {
	limit  int
	window time.Duration
	start  time.Time
	used   int
}

// Start serves h on a loopback port. The fake reads time from now (nil: real
// time) and answers failures as d words them. The caller closes it.
func Start(h http.Handler, now func() time.Time, d Dialect) *Server {
	if now == nil {
		now = time.Now
	}
	s := &Server{now: now, dialect: d, done: make(chan struct{}), requests: map[string]int{}, budgets: map[string]*budget{}}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		d := s.latency
		s.mu.Unlock()
		if d > 0 {
			s.wait(r, d)
			if r.Context().Err() != nil {
				return // the client gave up: the request never reached the IdP
			}
		}
		h.ServeHTTP(w, r)
	}))
	return s
}

// URL is the base URL of the loopback server.
func (s *Server) URL() string { return s.srv.URL }

// Now is the fake's clock.
func (s *Server) Now() time.Time { return s.now() }

// Close releases requests held by Hang faults and stops the server. The
// release comes first: stopping waits for requests in flight.
func (s *Server) Close() {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		close(s.done)
	}
	s.mu.Unlock()
	s.srv.Close()
}

// Controls are the test-facing side of s, for a fake to embed.
func (s *Server) Controls() Controls { return Controls{s: s} }

// inject makes the next f.Times requests for page (1-based; 0 for any page)
// of route fail as f says.
func (s *Server) inject(route string, page int, f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, pending{route: route, page: page, fault: f, left: max(f.Times, 1)})
}

// Verdict is what Admit decided about a request.
type Verdict struct {
	Fault    *Fault // an injected failure to answer with
	Limited  bool   // the route's rate limit is spent
	Limit    int    // the route's budget, when it has one
	Left     int
	ResetsAt time.Time
}

// Admit counts a request for page of route and decides whether a fault or
// the rate limit answers it.
func (s *Server) Admit(route string, page int) Verdict {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests[route]++
	var v Verdict
	for i := range s.faults {
		f := &s.faults[i]
		if f.left > 0 && f.route == route && (f.page == 0 || f.page == page) {
			f.left--
			fault := f.fault
			v.Fault = &fault
			break
		}
	}
	if b, ok := s.budgets[route]; ok {
		now := s.now()
		if !now.Before(b.start.Add(b.window)) {
			b.start, b.used = now, 0
		}
		if v.Fault == nil {
			if b.used >= b.limit {
				v.Limited = true
			} else {
				b.used++
			}
		}
		v.Limit, v.Left, v.ResetsAt = b.limit, b.limit-b.used, b.start.Add(b.window)
	}
	return v
}

// Fail answers the request if v fails it, and reports whether it did. A Hang
// fault holds the request until its client gives up; an injected 429 or a
// spent rate limit gets a 429 with the dialect's throttling headers; any other
// fault gets its status.
func (s *Server) Fail(w http.ResponseWriter, r *http.Request, v Verdict) bool {
	switch {
	case v.Fault != nil && v.Fault.Hang:
		s.hang(r)
	case v.Limited, v.Fault != nil && v.Fault.Status == http.StatusTooManyRequests:
		s.dialect.Throttle(w.Header(), v, s.now())
		s.dialect.WriteError(w, http.StatusTooManyRequests)
	case v.Fault != nil:
		s.dialect.WriteError(w, v.Fault.Status)
	default:
		return false
	}
	return true
}

// hang holds a request until its client gives up or the fake closes.
func (s *Server) hang(r *http.Request) {
	select {
	case <-r.Context().Done():
	case <-s.done:
	}
}

// wait holds a request for d, or until its client gives up or the fake
// closes.
func (s *Server) wait(r *http.Request, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-r.Context().Done():
	case <-s.done:
	}
}

// SetDate stamps the response with the fake's clock, which IdPs' rate-limit
// headers are relative to.
func (s *Server) SetDate(w http.ResponseWriter) {
	w.Header().Set("Date", s.now().UTC().Format(http.TimeFormat))
}

// Controls inject failures into a fake and count its requests, by route (one
// of the fake's Route* constants). Each fake embeds Controls, so that its
// tests call these as methods of the fake; how a failure reads on the wire
// (status, headers and body) is the fake's IdP's own.
type Controls struct{ s *Server }

// FailNext makes the next count requests to route answer status. A 429
// comes with the headers the IdP sends to say when to retry.
func (c Controls) FailNext(route string, status, count int) {
	c.s.inject(route, 0, Fault{Status: status, Times: count})
}

// FailPage makes the next count requests for page (1-based) of route answer
// status.
func (c Controls) FailPage(route string, page, status, count int) {
	c.s.inject(route, page, Fault{Status: status, Times: count})
}

// HangPage makes the next count requests for page of route hang until the
// client gives up.
func (c Controls) HangPage(route string, page, count int) {
	c.s.inject(route, page, Fault{Hang: true, Times: count})
}

// ClearFaults drops the injected failures no request has met yet, as when
// an IdP's outage ends.
func (c Controls) ClearFaults() {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	c.s.faults = nil
}

// RateLimit gives route a budget of limit requests per window; once spent,
// requests get the IdP's 429 until the window resets on the fake's clock.
// A limit of 0 lifts it.
func (c Controls) RateLimit(route string, limit int, window time.Duration) {
	s := c.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if limit <= 0 {
		delete(s.budgets, route)
		return
	}
	s.budgets[route] = &budget{limit: limit, window: window, start: s.now()}
}

// Latency makes every request take at least d before it is answered, as a
// real IdP's do; 0 answers at once. Writes beside a listing overlap with
// this wait, as they do with a real IdP's.
func (c Controls) Latency(d time.Duration) {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	c.s.latency = d
}

// Requests is how many requests route has received.
func (c Controls) Requests(route string) int {
	s := c.s
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests[route]
}
