// Package fakeidp holds what the IdP fakes (oktafake, jumpcloudfake,
// entrafake) share: injected failures, request counters and per-route rate
// limits, all driven by a clock the test controls.
package fakeidp

import (
	"net/http"
	"sync"
	"time"
)

// Fault is a failure to inject into the answers of one route.
type Fault struct {
	Status int  // HTTP status to answer with
	Hang   bool // instead of answering, hold the request until the client gives up
	Times  int  // how many requests it hits; 0 means 1
}

// Server is the shared state of a fake: counters, faults and rate limits. Its
// methods are safe for concurrent use.
type Server struct {
	now  func() time.Time
	done chan struct{}

	mu       sync.Mutex
	requests map[string]int
	faults   []pending
	limits   map[string]*window
	closed   bool
}

type pending struct {
	route string
	page  int // 0: any page
	fault Fault
	left  int
}

type window struct {
	limit  int
	length time.Duration
	start  time.Time
	used   int
}

// NewServer returns shared fake state reading time from now (nil: real time).
func NewServer(now func() time.Time) *Server {
	if now == nil {
		now = time.Now
	}
	return &Server{now: now, done: make(chan struct{}), requests: map[string]int{}, limits: map[string]*window{}}
}

// Now is the fake's clock.
func (s *Server) Now() time.Time { return s.now() }

// Close releases requests held by Hang faults.
func (s *Server) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.closed = true
		close(s.done)
	}
}

// FailPage makes the next f.Times requests for page (1-based; 0 for any
// page) of route fail as f says.
func (s *Server) FailPage(route string, page int, f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, pending{route: route, page: page, fault: f, left: max(f.Times, 1)})
}

// RateLimit enforces limit requests per window on route, advertising the
// budget in X-Rate-Limit-* headers and answering 429 once it is spent.
// A limit of 0 removes the rate limit.
func (s *Server) RateLimit(route string, limit int, length time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if limit <= 0 {
		delete(s.limits, route)
		return
	}
	s.limits[route] = &window{limit: limit, length: length, start: s.now()}
}

// Requests is how many requests route has received.
func (s *Server) Requests(route string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests[route]
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
	if w, ok := s.limits[route]; ok {
		now := s.now()
		if !now.Before(w.start.Add(w.length)) {
			w.start, w.used = now, 0
		}
		if v.Fault == nil {
			if w.used >= w.limit {
				v.Limited = true
			} else {
				w.used++
			}
		}
		v.Limit, v.Left, v.ResetsAt = w.limit, w.limit-w.used, w.start.Add(w.length)
	}
	return v
}

// Hang holds a request until its client gives up or the fake closes.
func (s *Server) Hang(r *http.Request) {
	select {
	case <-r.Context().Done():
	case <-s.done:
	}
}

// SetDate stamps the response with the fake's clock, which IdPs' rate-limit
// headers are relative to.
func (s *Server) SetDate(w http.ResponseWriter) {
	w.Header().Set("Date", s.now().UTC().Format(http.TimeFormat))
}
