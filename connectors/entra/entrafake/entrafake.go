// Package entrafake is a Microsoft Entra ID fake for tests: one httptest
// server on loopback that plays both the login endpoint (client-credentials
// tokens) and Microsoft Graph's user, group and group-member collections,
// with Graph's JSON shapes, @odata.nextLink paging and error bodies.
//
// Tests mutate the directory between listings and inject failures by route
// and page (FailNext, FailPage, HangPage, RateLimit). Routes are the Route*
// constants.
package entrafake

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
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
	RouteToken        = "/{tenant}/oauth2/v2.0/token"
	RouteUsers        = "/v1.0/users"
	RouteGroups       = "/v1.0/groups"
	RouteGroupMembers = "/v1.0/groups/{id}/members"
)

// Credentials the fake accepts unless options say otherwise.
const (
	DefaultTenantID     = "11111111-2222-4333-8444-555555555555"
	DefaultClientID     = "66666666-7777-4888-9999-aaaaaaaaaaaa"
	DefaultClientSecret = "fake~Entra.client_secret-0123456789abcdef"
)

// WrongSecretMessage starts Entra's error description for a wrong client
// secret.
const WrongSecretMessage = "AADSTS7000215: Invalid client secret provided."

// Member types as Graph names them in "@odata.type".
const (
	TypeUser   = "#microsoft.graph.user"
	TypeGroup  = "#microsoft.graph.group"
	TypeDevice = "#microsoft.graph.device"
)

// User is an Entra user as the fake stores it.
type User struct {
	ID                string // assigned by AddUser when empty
	UserPrincipalName string
	Mail              string // empty is answered as null
	GivenName         string
	Surname           string
	Disabled          bool // accountEnabled: false
}

// Group is an Entra group.
type Group struct {
	ID          string
	DisplayName string
}

// Option configures a Server.
type Option func(*Server)

// WithCredentials sets the tenant and client credentials the fake accepts.
func WithCredentials(tenantID, clientID, clientSecret string) Option {
	return func(s *Server) { s.tenant, s.clientID, s.secret = tenantID, clientID, clientSecret }
}

// WithClock makes the fake read time from now, which its Date and
// Retry-After headers and rate-limit windows follow.
func WithClock(now func() time.Time) Option { return func(s *Server) { s.now = now } }

// WithNextLinkBase makes @odata.nextLink point at base instead of the fake,
// as a hostile or misconfigured server might.
func WithNextLinkBase(base string) Option { return func(s *Server) { s.nextBase = base } }

// Server is a running fake. Its methods are safe for concurrent use.
type Server struct {
	// Controls inject failures and count requests by route: FailNext,
	// FailPage, HangPage, RateLimit and Requests. A 429, injected or from a
	// spent rate limit, comes with Retry-After.
	fakeidp.Controls

	core     *fakeidp.Server
	tb       testing.TB
	tenant   string
	clientID string
	secret   string
	now      func() time.Time // set by WithClock; nil means real time
	nextBase string

	mu  sync.Mutex
	seq int
	// changes is the log delta queries read: a token is a position in it,
	// valid while issued in the current epoch.
	changes []change
	epoch   int
	tokens  map[string]bool
	users   []*User // sorted by ID: listing order and paging cursor
	byID    map[string]*User
	groups  []*group // sorted by ID
	gByID   map[string]*group
}

type group struct {
	Group
	members []member // sorted by id
}

type member struct{ id, typ string }

// New starts a fake on a loopback port; it closes when the test ends.
func New(tb testing.TB, opts ...Option) *Server {
	tb.Helper()
	s := &Server{
		tb: tb, tenant: DefaultTenantID, clientID: DefaultClientID, secret: DefaultClientSecret,
		tokens: map[string]bool{}, byID: map[string]*User{}, gByID: map[string]*group{},
	}
	for _, o := range opts {
		o(s)
	}
	s.core = fakeidp.Start(s, s.now, fakeidp.Dialect{Throttle: fakeidp.RetryAfter(2), WriteError: writeFault})
	s.Controls = s.core.Controls()
	tb.Cleanup(s.Close)
	return s
}

// URL serves as both the Graph URL and the login URL.
func (s *Server) URL() string { return s.core.URL() }

// TenantID, ClientID and ClientSecret are the credentials the fake accepts.
func (s *Server) TenantID() string     { return s.tenant }
func (s *Server) ClientID() string     { return s.clientID }
func (s *Server) ClientSecret() string { return s.secret }

// Close stops the fake.
func (s *Server) Close() { s.core.Close() }

// RevokeTokens makes Graph refuse every token issued so far, as when one
// expires early.
func (s *Server) RevokeTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.tokens)
}

func (s *Server) nextID() string {
	s.seq++
	return fmt.Sprintf("%08x-0000-4000-8000-%012x", s.seq, s.seq)
}

// AddUser adds u and returns it with its ID.
func (s *Server) AddUser(u User) User {
	s.mu.Lock()
	defer s.mu.Unlock()
	if u.ID == "" {
		u.ID = s.nextID()
	}
	if _, dup := s.byID[u.ID]; dup {
		s.tb.Fatalf("entrafake: AddUser: duplicate id %s", u.ID)
	}
	stored := u
	i, _ := slices.BinarySearchFunc(s.users, u.ID, func(x *User, id string) int { return strings.Compare(x.ID, id) })
	s.users = slices.Insert(s.users, i, &stored)
	s.byID[u.ID] = &stored
	s.record(change{user: u.ID})
	return u
}

// UpdateUser changes the user with id through fn (its ID cannot change).
func (s *Server) UpdateUser(id string, fn func(*User)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.mustUser("UpdateUser", id)
	fn(u)
	u.ID = id
	s.record(change{user: id})
}

// DeleteUser deletes the user, from the listing and from its groups.
func (s *Server) DeleteUser(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mustUser("DeleteUser", id)
	delete(s.byID, id)
	s.users = slices.DeleteFunc(s.users, func(u *User) bool { return u.ID == id })
	for _, g := range s.groups {
		if slices.ContainsFunc(g.members, func(m member) bool { return m.id == id }) {
			g.members = slices.DeleteFunc(g.members, func(m member) bool { return m.id == id })
			s.record(change{group: g.ID, member: id, memberType: TypeUser, removed: true})
		}
	}
	s.record(change{user: id, removed: true})
}

// AddGroup adds a group.
func (s *Server) AddGroup(displayName string) Group {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := &group{Group: Group{ID: s.nextID(), DisplayName: displayName}}
	s.groups = append(s.groups, g) // ids grow, so the slice stays sorted
	s.gByID[g.ID] = g
	s.record(change{group: g.ID})
	return g.Group
}

// AddMember puts the user in the group.
func (s *Server) AddMember(groupID, userID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mustUser("AddMember", userID)
	s.addMember(groupID, userID, TypeUser)
}

// AddMemberObject puts a directory object of another type (TypeGroup,
// TypeDevice) in the group.
func (s *Server) AddMemberObject(groupID, id, odataType string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.addMember(groupID, id, odataType)
}

func (s *Server) addMember(groupID, id, typ string) {
	g := s.mustGroup("AddMember", groupID)
	i, found := slices.BinarySearchFunc(g.members, id, func(m member, id string) int { return strings.Compare(m.id, id) })
	if !found {
		g.members = slices.Insert(g.members, i, member{id: id, typ: typ})
		s.record(change{group: groupID, member: id, memberType: typ})
	}
}

// RemoveMember takes the object out of the group.
func (s *Server) RemoveMember(groupID, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.mustGroup("RemoveMember", groupID)
	if i := slices.IndexFunc(g.members, func(m member) bool { return m.id == id }); i >= 0 {
		s.record(change{group: groupID, member: id, memberType: g.members[i].typ, removed: true})
		g.members = slices.Delete(g.members, i, i+1)
	}
}

func (s *Server) mustUser(op, id string) *User {
	u, ok := s.byID[id]
	if !ok {
		s.tb.Fatalf("entrafake: %s: no user %s", op, id)
	}
	return u
}

func (s *Server) mustGroup(op, id string) *group {
	g, ok := s.gByID[id]
	if !ok {
		s.tb.Fatalf("entrafake: %s: no group %s", op, id)
	}
	return g
}

// ServeHTTP answers token requests and the Graph collections.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.core.SetDate(w)
	if strings.HasSuffix(r.URL.Path, "/oauth2/v2.0/token") {
		s.serveToken(w, r)
		return
	}
	if r.URL.Path == RouteUsersDelta || r.URL.Path == RouteGroupsDelta {
		s.serveDelta(w, r)
		return
	}
	route, groupID := fakeidp.Match(r.URL.Path, RouteUsers, RouteGroups, RouteGroupMembers)
	if route == "" || r.Method != http.MethodGet {
		graphError(w, http.StatusBadRequest, "BadRequest", "Resource not found for the segment '"+r.URL.Path+"'.")
		return
	}
	q := r.URL.Query()
	top := 100 // Graph's default page size
	if t, err := strconv.Atoi(q.Get("$top")); err == nil && t > 0 {
		top = min(t, 999)
	}
	after := ""
	if st := q.Get("$skiptoken"); st != "" {
		b, err := base64.RawURLEncoding.DecodeString(st)
		if err != nil {
			graphError(w, http.StatusBadRequest, "Request_BadRequest", "Invalid $skiptoken.")
			return
		}
		after = string(b)
	}

	s.mu.Lock()
	page := s.pageOf(route, groupID, after, top)
	s.mu.Unlock()
	v := s.core.Admit(route, page)

	if !s.authorized(w, r) {
		return
	}
	if s.core.Fail(w, r, v) {
		return
	}

	s.mu.Lock()
	var value []map[string]any
	var next string
	switch route {
	case RouteUsers:
		value, next = s.usersPage(after, top)
	case RouteGroups:
		value, next = s.groupsPage(after, top)
	case RouteGroupMembers:
		g, ok := s.gByID[groupID]
		if !ok {
			s.mu.Unlock()
			graphError(w, http.StatusNotFound, "Request_ResourceNotFound",
				fmt.Sprintf("Resource '%s' does not exist or one of its queried reference-property objects are not present.", groupID))
			return
		}
		value, next = s.membersPage(g, after, top)
	}
	s.mu.Unlock()

	body := map[string]any{"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#" + strings.TrimPrefix(route, "/v1.0/"), "value": value}
	if next != "" {
		base := s.nextBase
		if base == "" {
			base = "http://" + r.Host
		}
		q.Set("$skiptoken", base64.RawURLEncoding.EncodeToString([]byte(next)))
		q.Set("$top", strconv.Itoa(top))
		body["@odata.nextLink"] = base + r.URL.Path + "?" + odataQuery(q)
	}
	w.Header().Set("Content-Type", "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8")
	_ = json.NewEncoder(w).Encode(body)
}

// odataQuery encodes q keeping "$" and "," readable, as Graph's links do.
func odataQuery(q url.Values) string {
	return strings.NewReplacer("%24", "$", "%2C", ",").Replace(q.Encode())
}

// writeFault writes Graph's error for a 429 or an injected failure, on the
// token endpoint too.
func writeFault(w http.ResponseWriter, status int) {
	switch status {
	case http.StatusTooManyRequests:
		graphError(w, status, "TooManyRequests", "Too many requests.")
	case http.StatusServiceUnavailable:
		graphError(w, status, "serviceNotAvailable", "The service is temporarily unavailable.")
	default:
		graphError(w, status, "generalException", "General exception while processing.")
	}
}

func (s *Server) serveToken(w http.ResponseWriter, r *http.Request) {
	v := s.core.Admit(RouteToken, 1)
	if s.core.Fail(w, r, v) {
		return
	}
	tenant := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/"), "/oauth2/v2.0/token")
	if err := r.ParseForm(); err != nil || r.Method != http.MethodPost {
		tokenError(w, http.StatusBadRequest, "invalid_request", "AADSTS900144: The request body must contain the following parameter: 'grant_type'.")
		return
	}
	id, secret, basic := r.BasicAuth()
	if !basic {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	switch {
	case tenant != s.tenant:
		tokenError(w, http.StatusBadRequest, "invalid_request", fmt.Sprintf("AADSTS90002: Tenant '%s' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.", tenant))
	case r.PostForm.Get("grant_type") != "client_credentials":
		tokenError(w, http.StatusBadRequest, "unsupported_grant_type", "AADSTS70003: The app requested an unsupported grant type.")
	case !strings.HasSuffix(r.PostForm.Get("scope"), "/.default"):
		tokenError(w, http.StatusBadRequest, "invalid_scope", "AADSTS1002012: The provided value for scope is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier.")
	case id != s.clientID:
		tokenError(w, http.StatusBadRequest, "unauthorized_client", fmt.Sprintf("AADSTS700016: Application with identifier '%s' was not found in the directory.", id))
	case secret != s.secret:
		tokenError(w, http.StatusUnauthorized, "invalid_client", fmt.Sprintf("%s Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '%s'.", WrongSecretMessage, id))
	default:
		tok := rand.Text()
		s.mu.Lock()
		s.tokens[tok] = true
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		_ = json.NewEncoder(w).Encode(map[string]any{"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": tok})
	}
}

// pageOf tells which page (1-based) a cursor starts, for FailPage.
func (s *Server) pageOf(route, groupID, after string, top int) int {
	switch route {
	case RouteUsers:
		return fakeidp.PageAfter(s.users, userKey, after, top)
	case RouteGroups:
		return fakeidp.PageAfter(s.groups, groupKey, after, top)
	}
	var members []member // none for an unknown group
	if g, ok := s.gByID[groupID]; ok {
		members = g.members
	}
	return fakeidp.PageAfter(members, memberKey, after, top)
}

// Listings are sorted by these ids, which are also their cursors.
func userKey(u *User) string    { return u.ID }
func groupKey(g *group) string  { return g.ID }
func memberKey(m member) string { return m.id }

// cursorPage returns the items after the one with id after, and the cursor
// of the next page ("" on the last).
func cursorPage[T any](all []T, id func(T) string, after string, top int) ([]T, string) {
	i, found := slices.BinarySearchFunc(all, after, func(x T, a string) int { return strings.Compare(id(x), a) })
	if found {
		i++
	}
	end := min(i+top, len(all))
	if end < len(all) {
		return all[i:end], id(all[end-1])
	}
	return all[i:end], ""
}

func orNull(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func (s *Server) usersPage(after string, top int) ([]map[string]any, string) {
	page, next := cursorPage(s.users, userKey, after, top)
	out := make([]map[string]any, 0, len(page))
	for _, u := range page {
		out = append(out, map[string]any{
			"id": u.ID, "userPrincipalName": u.UserPrincipalName, "mail": orNull(u.Mail),
			"givenName": orNull(u.GivenName), "surname": orNull(u.Surname), "accountEnabled": !u.Disabled,
		})
	}
	return out, next
}

func (s *Server) groupsPage(after string, top int) ([]map[string]any, string) {
	page, next := cursorPage(s.groups, groupKey, after, top)
	out := make([]map[string]any, 0, len(page))
	for _, g := range page {
		out = append(out, map[string]any{"id": g.ID, "displayName": g.DisplayName})
	}
	return out, next
}

func (s *Server) membersPage(g *group, after string, top int) ([]map[string]any, string) {
	page, next := cursorPage(g.members, memberKey, after, top)
	out := make([]map[string]any, 0, len(page))
	for _, m := range page {
		out = append(out, map[string]any{"@odata.type": m.typ, "id": m.id})
	}
	return out, next
}

func graphError(w http.ResponseWriter, status int, code, message string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{
		"code": code, "message": message,
		"innerError": map[string]string{"date": "2030-01-02T03:04:05", "request-id": "00000000-0000-0000-0000-000000000000"},
	}})
}

func tokenError(w http.ResponseWriter, status int, code, description string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"error": code, "error_description": description, "error_codes": []int{},
		"timestamp": "2030-01-02 03:04:05Z", "trace_id": "00000000-0000-0000-0000-000000000000",
		"correlation_id": "00000000-0000-0000-0000-000000000000",
	})
}

// authorized answers Graph's 401 unless the request carries a token this
// fake issued.
func (s *Server) authorized(w http.ResponseWriter, r *http.Request) bool {
	s.mu.Lock()
	ok := s.tokens[strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")]
	s.mu.Unlock()
	if !ok {
		graphError(w, http.StatusUnauthorized, "InvalidAuthenticationToken", "Access token validation failure. Invalid audience.")
	}
	return ok
}
