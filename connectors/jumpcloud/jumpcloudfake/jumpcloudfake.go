// Package jumpcloudfake is a JumpCloud API fake for tests: an httptest
// server on loopback serving the system-user (v1), user-group and
// group-member (v2) listings with JumpCloud's JSON shapes, limit/skip paging
// and error bodies.
//
// Like JumpCloud, it pages by offset over insertion order, so deleting a
// user shifts later users back. Tests mutate the directory between listings
// and inject failures by route and page (FailNext, FailPage, HangPage,
// RateLimit). Routes are the Route* constants.
package jumpcloudfake

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/scimsync/scimsync/connectors/internal/fakeidp"
)

// Routes, for counting requests and injecting failures.
const (
	RouteUsers        = "/api/systemusers"
	RouteGroups       = "/api/v2/usergroups"
	RouteGroupMembers = "/api/v2/usergroups/{id}/members"
)

// DefaultAPIKey is the API key the fake accepts unless WithAPIKey says
// otherwise.
const DefaultAPIKey = "jcfake-0123456789abcdef0123456789abcdef0123"

// UnauthorizedMessage is JumpCloud's message for an API key it does not know.
const UnauthorizedMessage = "Unauthorized: api key user not found"

// User is a JumpCloud system user as the fake stores it. The zero value of
// the state fields is an activated, unlocked, unsuspended user.
type User struct {
	ID        string // assigned by AddUser when empty
	Username  string
	Email     string
	Firstname string
	Lastname  string
	Pending   bool // invited but never activated ("activated": false)
	Suspended bool
	Locked    bool // "account_locked"
}

// Group is a JumpCloud user group.
type Group struct {
	ID   string
	Name string
}

// Option configures a Server.
type Option func(*Server)

// WithAPIKey sets the API key the fake accepts.
func WithAPIKey(key string) Option { return func(s *Server) { s.key = key } }

// WithOrgID makes the fake require x-org-id: id, as for a multi-tenant
// administrator's key.
func WithOrgID(id string) Option { return func(s *Server) { s.orgID = id } }

// WithClock makes the fake read time from now, which its Date and
// Retry-After headers and rate-limit windows follow.
func WithClock(now func() time.Time) Option { return func(s *Server) { s.now = now } }

// Server is a running fake. Its methods are safe for concurrent use.
type Server struct {
	// Controls inject failures and count requests by route: FailNext,
	// FailPage, HangPage, RateLimit and Requests. A 429, injected or from a
	// spent rate limit, comes with Retry-After.
	fakeidp.Controls

	core  *fakeidp.Server
	tb    testing.TB
	key   string
	orgID string
	now   func() time.Time // set by WithClock; nil means real time

	mu     sync.Mutex
	seq    int
	users  []*User // insertion order, which is the listing order
	byID   map[string]*User
	groups []*group
	gByID  map[string]*group
}

type group struct {
	Group
	members []string // user ids, insertion order
}

// New starts a fake on a loopback port; it closes when the test ends.
func New(tb testing.TB, opts ...Option) *Server {
	tb.Helper()
	s := &Server{tb: tb, key: DefaultAPIKey, byID: map[string]*User{}, gByID: map[string]*group{}}
	for _, o := range opts {
		o(s)
	}
	s.core = fakeidp.Start(s, s.now, fakeidp.Dialect{Throttle: fakeidp.RetryAfter(1), WriteError: writeFault})
	s.Controls = s.core.Controls()
	tb.Cleanup(s.Close)
	return s
}

// URL is the base URL to configure the connector with.
func (s *Server) URL() string { return s.core.URL() }

// APIKey is the API key the fake accepts.
func (s *Server) APIKey() string { return s.key }

// Close stops the fake.
func (s *Server) Close() { s.core.Close() }

func (s *Server) nextID() string {
	s.seq++
	return fmt.Sprintf("5f%022x", s.seq) // 24 hex digits, like a JumpCloud id
}

// AddUser adds u and returns it with its ID.
func (s *Server) AddUser(u User) User {
	s.mu.Lock()
	defer s.mu.Unlock()
	if u.ID == "" {
		u.ID = s.nextID()
	}
	if _, dup := s.byID[u.ID]; dup {
		s.tb.Fatalf("jumpcloudfake: AddUser: duplicate id %s", u.ID)
	}
	stored := u
	s.users = append(s.users, &stored)
	s.byID[u.ID] = &stored
	return u
}

// User returns the stored user with id.
func (s *Server) User(id string) (User, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.byID[id]
	if !ok {
		return User{}, false
	}
	return *u, true
}

// UpdateUser changes the user with id through fn (its ID cannot change).
func (s *Server) UpdateUser(id string, fn func(*User)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.mustUser("UpdateUser", id)
	fn(u)
	u.ID = id
}

// DeleteUser deletes the user, from the listing and from its groups.
func (s *Server) DeleteUser(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mustUser("DeleteUser", id)
	delete(s.byID, id)
	s.users = slices.DeleteFunc(s.users, func(u *User) bool { return u.ID == id })
	for _, g := range s.groups {
		g.members = slices.DeleteFunc(g.members, func(m string) bool { return m == id })
	}
}

// AddGroup adds a user group.
func (s *Server) AddGroup(name string) Group {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := &group{Group: Group{ID: s.nextID(), Name: name}}
	s.groups = append(s.groups, g)
	s.gByID[g.ID] = g
	return g.Group
}

// AddMember puts the user in the group.
func (s *Server) AddMember(groupID, userID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.mustGroup("AddMember", groupID)
	s.mustUser("AddMember", userID)
	if !slices.Contains(g.members, userID) {
		g.members = append(g.members, userID)
	}
}

// RemoveMember takes the user out of the group.
func (s *Server) RemoveMember(groupID, userID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.mustGroup("RemoveMember", groupID)
	g.members = slices.DeleteFunc(g.members, func(m string) bool { return m == userID })
}

func (s *Server) mustUser(op, id string) *User {
	u, ok := s.byID[id]
	if !ok {
		s.tb.Fatalf("jumpcloudfake: %s: no user %s", op, id)
	}
	return u
}

func (s *Server) mustGroup(op, id string) *group {
	g, ok := s.gByID[id]
	if !ok {
		s.tb.Fatalf("jumpcloudfake: %s: no group %s", op, id)
	}
	return g
}

// ServeHTTP answers the JumpCloud listings.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.core.SetDate(w)
	route, groupID := fakeidp.Match(r.URL.Path, RouteUsers, RouteGroups, RouteGroupMembers)
	if route == "" || r.Method != http.MethodGet {
		writeError(w, http.StatusNotFound, "Not Found")
		return
	}
	limit, skip := 10, 0 // JumpCloud's defaults
	if l, err := strconv.Atoi(r.URL.Query().Get("limit")); err == nil && l > 0 {
		limit = min(l, 100)
	}
	if k, err := strconv.Atoi(r.URL.Query().Get("skip")); err == nil && k > 0 {
		skip = k
	}
	v := s.core.Admit(route, skip/limit+1)
	if r.Header.Get("x-api-key") != s.key {
		writeError(w, http.StatusUnauthorized, UnauthorizedMessage)
		return
	}
	if s.orgID != "" && r.Header.Get("x-org-id") != s.orgID {
		writeError(w, http.StatusUnauthorized, "Unauthorized: no organization selected")
		return
	}
	if s.core.Fail(w, r, v) {
		return
	}

	s.mu.Lock()
	var body any
	switch route {
	case RouteUsers:
		page := window(s.users, skip, limit)
		results := make([]map[string]any, 0, len(page))
		for _, u := range page {
			state := "ACTIVATED"
			switch {
			case u.Suspended:
				state = "SUSPENDED"
			case u.Pending:
				state = "STAGED"
			}
			results = append(results, map[string]any{
				"_id": u.ID, "id": u.ID, "username": u.Username, "email": u.Email,
				"firstname": u.Firstname, "lastname": u.Lastname,
				"displayname":    strings.TrimSpace(u.Firstname + " " + u.Lastname),
				"activated":      !u.Pending,
				"suspended":      u.Suspended,
				"account_locked": u.Locked,
				"state":          state,
				"created":        "2024-01-02T03:04:05.000Z",
			})
		}
		body = map[string]any{"totalCount": len(s.users), "results": results}
	case RouteGroups:
		page := window(s.groups, skip, limit)
		out := make([]map[string]any, 0, len(page))
		for _, g := range page {
			out = append(out, map[string]any{"id": g.ID, "name": g.Name, "type": "user_group", "attributes": nil})
		}
		body = out
	case RouteGroupMembers:
		g, ok := s.gByID[groupID]
		if !ok {
			s.mu.Unlock()
			writeError(w, http.StatusNotFound, "Not Found")
			return
		}
		page := window(g.members, skip, limit)
		out := make([]map[string]any, 0, len(page))
		for _, id := range page {
			out = append(out, map[string]any{"attributes": nil, "to": map[string]any{"attributes": nil, "id": id, "type": "user"}})
		}
		body = out
	}
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	_ = json.NewEncoder(w).Encode(body)
}

func window[T any](all []T, skip, limit int) []T {
	if skip >= len(all) {
		return nil
	}
	return all[skip:min(skip+limit, len(all))]
}

// writeFault writes JumpCloud's error for a 429 or an injected failure.
func writeFault(w http.ResponseWriter, status int) { writeError(w, status, http.StatusText(status)) }

func writeError(w http.ResponseWriter, status int, message string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": http.StatusText(status), "message": message})
}
