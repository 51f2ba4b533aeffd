// Package googlefake is a Google Workspace fake for tests: one httptest
// server on loopback that plays both Google's OAuth token endpoint (the
// JWT-bearer grant of a service account with domain-wide delegation) and the
// Admin SDK Directory API's users.list, groups.list and members.list, with
// their JSON shapes, nextPageToken paging and error bodies.
//
// Tests mutate the directory between listings and inject failures by route
// and page (FailNext, FailPage, HangPage, RateLimit); FailRateLimit403
// answers as Google does when a per-user quota is spent.
package googlefake

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
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
	RouteToken   = "/token"
	RouteUsers   = "/admin/directory/v1/users"
	RouteGroups  = "/admin/directory/v1/groups"
	RouteMembers = "/admin/directory/v1/groups/{id}/members"
)

// Defaults the fake accepts unless options say otherwise.
const (
	DefaultCustomerID  = "C01abc23d"
	DefaultAdminEmail  = "admin@example.com"
	DefaultClientEmail = "scimsync@example-project.iam.gserviceaccount.com"
)

// Messages of the token endpoint, as Google words them.
const (
	BadSignatureMessage = "Invalid JWT Signature."
	BadSubjectMessage   = "Client is unauthorized to retrieve access tokens using this method, or client not authorized for any of the scopes requested."
)

// Member types.
const (
	TypeUser     = "USER"
	TypeGroup    = "GROUP"
	TypeCustomer = "CUSTOMER"
)

// User is a Google user as the fake stores it.
type User struct {
	ID           string // assigned by AddUser when empty
	PrimaryEmail string
	GivenName    string
	FamilyName   string
	Suspended    bool
	Archived     bool
}

// Group is a Google group.
type Group struct {
	ID    string
	Name  string
	Email string
}

// Option configures a Server.
type Option func(*Server)

// WithClock makes the fake read time from now, which its Date and
// Retry-After headers and rate-limit windows follow.
func WithClock(now func() time.Time) Option { return func(s *Server) { s.now = now } }

// WithAdminEmail sets the administrator the service account may act for.
func WithAdminEmail(email string) Option { return func(s *Server) { s.adminEmail = email } }

// Server is a running fake. Its methods are safe for concurrent use.
type Server struct {
	// Controls inject failures and count requests by route: FailNext,
	// FailPage, HangPage, RateLimit and Requests. A 429 comes with
	// Retry-After.
	fakeidp.Controls

	core       *fakeidp.Server
	tb         testing.TB
	now        func() time.Time
	key        *rsa.PrivateKey
	adminEmail string

	mu     sync.Mutex
	seq    int
	tokens map[string]bool
	users  []*User // sorted by ID: listing order and paging cursor
	byID   map[string]*User
	groups []*group // sorted by ID
	gByID  map[string]*group
	forbid map[string]int // route: 403 rateLimitExceeded answers left
	// forbidGroup: groups whose members requests answer 403 forbidden
	forbidGroup map[string]bool
	reason      string
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
		tb: tb, key: testKey(tb), adminEmail: DefaultAdminEmail,
		tokens: map[string]bool{}, byID: map[string]*User{}, gByID: map[string]*group{}, forbid: map[string]int{}, forbidGroup: map[string]bool{},
	}
	for _, o := range opts {
		o(s)
	}
	s.core = fakeidp.Start(s, s.now, fakeidp.Dialect{Throttle: fakeidp.RetryAfter(2), WriteError: writeFault})
	s.Controls = s.core.Controls()
	tb.Cleanup(s.Close)
	return s
}

// testKey is a fresh RSA key. 1024 bits keeps tests fast; the fake checks
// signatures, not key strength.
func testKey(tb testing.TB) *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		tb.Fatalf("googlefake: generate key: %v", err)
	}
	return k
}

// URL is the Directory API's base URL (settings "apiUrl").
func (s *Server) URL() string { return s.core.URL() }

// Close stops the fake.
func (s *Server) Close() { s.core.Close() }

// CustomerID and AdminEmail are the settings the fake serves.
func (s *Server) CustomerID() string { return DefaultCustomerID }
func (s *Server) AdminEmail() string { return s.adminEmail }

// Key is a service-account JSON key the fake's token endpoint accepts.
func (s *Server) Key() string { return s.keyJSON(s.key) }

// ForeignKey is a well-formed JSON key for the same service account whose
// private key the fake does not know: its token requests are refused with
// BadSignatureMessage.
func (s *Server) ForeignKey() string { return s.keyJSON(testKey(s.tb)) }

func (s *Server) keyJSON(k *rsa.PrivateKey) string {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		s.tb.Fatalf("googlefake: marshal key: %v", err)
	}
	b, _ := json.Marshal(map[string]string{
		"type":           "service_account",
		"project_id":     "example-project",
		"private_key_id": "0123456789abcdef",
		"private_key":    string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		"client_email":   DefaultClientEmail,
		"client_id":      "123456789012345678901",
		"token_uri":      s.URL() + RouteToken,
	})
	return string(b)
}

// FailRateLimit403 answers the next count requests of route with 403 and
// reason ("rateLimitExceeded" or "userRateLimitExceeded"), as Google does
// for a spent per-user or per-minute quota.
func (s *Server) FailRateLimit403(route, reason string, count int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.forbid[route] += count
	s.reason = reason
}

// ForbidGroup answers every members request of groupID with 403
// forbidden, as Google does for a group the admin may not read.
func (s *Server) ForbidGroup(groupID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.forbidGroup[groupID] = true
}

func (s *Server) nextID() string {
	s.seq++
	return fmt.Sprintf("1%020d", s.seq) // fixed width: ids sort as they are made
}

// AddUser adds u and returns it with its ID.
func (s *Server) AddUser(u User) User {
	s.mu.Lock()
	defer s.mu.Unlock()
	if u.ID == "" {
		u.ID = s.nextID()
	}
	if _, dup := s.byID[u.ID]; dup {
		s.tb.Fatalf("googlefake: AddUser: duplicate id %s", u.ID)
	}
	stored := u
	i, _ := slices.BinarySearchFunc(s.users, u.ID, func(x *User, id string) int { return strings.Compare(x.ID, id) })
	s.users = slices.Insert(s.users, i, &stored)
	s.byID[u.ID] = &stored
	return u
}

// UpdateUser changes the user with id through fn (its ID cannot change).
func (s *Server) UpdateUser(id string, fn func(*User)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.mustUser("UpdateUser", id)
	fn(u)
	u.ID = id
}

// DeleteUser deletes the user, from users.list and from its groups.
func (s *Server) DeleteUser(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mustUser("DeleteUser", id)
	delete(s.byID, id)
	s.users = slices.DeleteFunc(s.users, func(u *User) bool { return u.ID == id })
	for _, g := range s.groups {
		g.members = slices.DeleteFunc(g.members, func(m member) bool { return m.id == id })
	}
}

// AddGroup adds a group.
func (s *Server) AddGroup(name string) Group {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := s.nextID()
	g := &group{Group: Group{ID: id, Name: name, Email: "g" + id + "@example.com"}}
	s.groups = append(s.groups, g) // ids grow, so the slice stays sorted
	s.gByID[g.ID] = g
	return g.Group
}

// AddMember puts the user in the group.
func (s *Server) AddMember(groupID, userID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mustUser("AddMember", userID)
	s.addMember(groupID, userID, TypeUser)
}

// AddMemberObject puts a member of another type (TypeGroup, TypeCustomer)
// in the group.
func (s *Server) AddMemberObject(groupID, id, typ string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.addMember(groupID, id, typ)
}

func (s *Server) addMember(groupID, id, typ string) {
	g := s.mustGroup("AddMember", groupID)
	i, found := slices.BinarySearchFunc(g.members, id, func(m member, id string) int { return strings.Compare(m.id, id) })
	if !found {
		g.members = slices.Insert(g.members, i, member{id: id, typ: typ})
	}
}

func (s *Server) mustUser(op, id string) *User {
	u, ok := s.byID[id]
	if !ok {
		s.tb.Fatalf("googlefake: %s: no user %s", op, id)
	}
	return u
}

func (s *Server) mustGroup(op, id string) *group {
	g, ok := s.gByID[id]
	if !ok {
		s.tb.Fatalf("googlefake: %s: no group %s", op, id)
	}
	return g
}

// ServeHTTP answers token requests and the Directory API listings.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.core.SetDate(w)
	if r.URL.Path == RouteToken {
		s.serveToken(w, r)
		return
	}
	route, groupID := fakeidp.Match(r.URL.Path, RouteUsers, RouteGroups, RouteMembers)
	if route == "" || r.Method != http.MethodGet {
		googleError(w, http.StatusNotFound, "notFound", "Not Found")
		return
	}
	q := r.URL.Query()
	size := 100 // the API's default page size
	limit := 500
	if route != RouteUsers {
		limit = 200
	}
	if n, err := strconv.Atoi(q.Get("maxResults")); err == nil && n > 0 {
		size = min(n, limit)
	}
	after := ""
	if t := q.Get("pageToken"); t != "" {
		b, err := base64.RawURLEncoding.DecodeString(t)
		if err != nil {
			googleError(w, http.StatusBadRequest, "invalid", "Invalid Input: pageToken")
			return
		}
		after = string(b)
	}

	s.mu.Lock()
	page := s.pageOf(route, groupID, after, size)
	s.mu.Unlock()
	v := s.core.Admit(route, page)

	s.mu.Lock()
	authorized := s.tokens[strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")]
	forbid := s.forbid[route] > 0
	if authorized && forbid {
		s.forbid[route]--
	}
	reason := s.reason
	forbidden := route == RouteMembers && s.forbidGroup[groupID]
	s.mu.Unlock()
	if !authorized {
		googleError(w, http.StatusUnauthorized, "authError", "Login Required.")
		return
	}
	if forbid {
		googleError(w, http.StatusForbidden, reason, "Quota exceeded for quota metric 'Queries' and limit 'Queries per minute per user'.")
		return
	}
	if forbidden {
		googleError(w, http.StatusForbidden, "forbidden", "Not Authorized to access this resource/api")
		return
	}
	if s.core.Fail(w, r, v) {
		return
	}
	if route != RouteMembers && q.Get("customer") != DefaultCustomerID && q.Get("customer") != "my_customer" && q.Get("domain") != "example.com" {
		googleError(w, http.StatusBadRequest, "badRequest", "Bad Request")
		return
	}

	s.mu.Lock()
	body := map[string]any{}
	var items []map[string]any
	var next string
	switch route {
	case RouteUsers:
		body["kind"] = "admin#directory#users"
		items, next = s.usersPage(after, size)
		body["users"] = items
	case RouteGroups:
		body["kind"] = "admin#directory#groups"
		items, next = s.groupsPage(after, size)
		body["groups"] = items
	case RouteMembers:
		g, ok := s.gByID[groupID]
		if !ok {
			s.mu.Unlock()
			googleError(w, http.StatusNotFound, "notFound", "Resource Not Found: groupKey")
			return
		}
		body["kind"] = "admin#directory#members"
		items, next = s.membersPage(g, after, size)
		body["members"] = items
	}
	s.mu.Unlock()
	if len(items) == 0 {
		delete(body, "users")
		delete(body, "groups")
		delete(body, "members")
	}
	if next != "" {
		body["nextPageToken"] = base64.RawURLEncoding.EncodeToString([]byte(next))
	}
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	_ = json.NewEncoder(w).Encode(body)
}

// pageOf is the 1-based page of a listing request resuming after id after.
func (s *Server) pageOf(route, groupID, after string, size int) int {
	switch route {
	case RouteUsers:
		return fakeidp.PageAfter(s.users, func(u *User) string { return u.ID }, after, size)
	case RouteGroups:
		return fakeidp.PageAfter(s.groups, func(g *group) string { return g.ID }, after, size)
	}
	if g, ok := s.gByID[groupID]; ok {
		return fakeidp.PageAfter(g.members, func(m member) string { return m.id }, after, size)
	}
	return 1
}

// window returns the items after id after, up to size, and the cursor of
// the next page ("" when this is the last).
func window[T any](all []T, id func(T) string, after string, size int) ([]T, string) {
	i := 0
	if after != "" {
		i, _ = slices.BinarySearchFunc(all, after, func(x T, a string) int { return strings.Compare(id(x), a) })
		if i < len(all) && id(all[i]) == after {
			i++
		}
	}
	end := min(i+size, len(all))
	page := all[i:end]
	if end < len(all) {
		return page, id(all[end-1])
	}
	return page, ""
}

func (s *Server) usersPage(after string, size int) ([]map[string]any, string) {
	page, next := window(s.users, func(u *User) string { return u.ID }, after, size)
	out := make([]map[string]any, 0, len(page))
	for _, u := range page {
		out = append(out, map[string]any{
			"kind":         "admin#directory#user",
			"id":           u.ID,
			"primaryEmail": u.PrimaryEmail,
			"name":         map[string]any{"givenName": u.GivenName, "familyName": u.FamilyName, "fullName": strings.TrimSpace(u.GivenName + " " + u.FamilyName)},
			"suspended":    u.Suspended,
			"archived":     u.Archived,
			"isAdmin":      false,
		})
	}
	return out, next
}

func (s *Server) groupsPage(after string, size int) ([]map[string]any, string) {
	page, next := window(s.groups, func(g *group) string { return g.ID }, after, size)
	out := make([]map[string]any, 0, len(page))
	for _, g := range page {
		out = append(out, map[string]any{"kind": "admin#directory#group", "id": g.ID, "name": g.Name, "email": g.Email})
	}
	return out, next
}

func (s *Server) membersPage(g *group, after string, size int) ([]map[string]any, string) {
	page, next := window(g.members, func(m member) string { return m.id }, after, size)
	out := make([]map[string]any, 0, len(page))
	for _, m := range page {
		status := "ACTIVE"
		if u, ok := s.byID[m.id]; ok && (u.Suspended || u.Archived) {
			status = "SUSPENDED"
		}
		out = append(out, map[string]any{"kind": "admin#directory#member", "id": m.id, "type": m.typ, "role": "MEMBER", "status": status})
	}
	return out, next
}

func writeFault(w http.ResponseWriter, status int) {
	switch status {
	case http.StatusTooManyRequests:
		googleError(w, status, "rateLimitExceeded", "Rate Limit Exceeded")
	case http.StatusServiceUnavailable:
		googleError(w, status, "backendError", "The service is currently unavailable.")
	default:
		googleError(w, status, "backendError", "Backend Error")
	}
}

// googleError writes an error in the shape of Google's JSON APIs.
func googleError(w http.ResponseWriter, status int, reason, message string) {
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{
		"code": status, "message": message,
		"errors": []map[string]any{{"domain": "global", "reason": reason, "message": message}},
	}})
}

// serveToken answers the JWT-bearer grant: the assertion must be signed by
// the service account's key and name the administrator as its subject.
func (s *Server) serveToken(w http.ResponseWriter, r *http.Request) {
	v := s.core.Admit(RouteToken, 1)
	if s.core.Fail(w, r, v) {
		return
	}
	refuse := func(status int, code, desc string) {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": desc})
	}
	if r.Method != http.MethodPost || r.ParseForm() != nil {
		refuse(http.StatusBadRequest, "invalid_request", "Invalid request.")
		return
	}
	if r.PostForm.Get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer" {
		refuse(http.StatusBadRequest, "unsupported_grant_type", "Invalid grant_type: "+r.PostForm.Get("grant_type"))
		return
	}
	parts := strings.Split(r.PostForm.Get("assertion"), ".")
	if len(parts) != 3 {
		refuse(http.StatusBadRequest, "invalid_grant", "Invalid JWT: Token must be a short-lived token and in a reasonable timeframe.")
		return
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err != nil || rsa.VerifyPKCS1v15(&s.key.PublicKey, crypto.SHA256, digest[:], sig) != nil {
		refuse(http.StatusBadRequest, "invalid_grant", BadSignatureMessage)
		return
	}
	var claims struct {
		Iss   string `json:"iss"`
		Sub   string `json:"sub"`
		Aud   string `json:"aud"`
		Scope string `json:"scope"`
		Exp   int64  `json:"exp"`
		Iat   int64  `json:"iat"`
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil || json.Unmarshal(payload, &claims) != nil {
		refuse(http.StatusBadRequest, "invalid_grant", "Invalid JWT: malformed claims.")
		return
	}
	// The assertion's times come from the client's real clock.
	if claims.Iss != DefaultClientEmail || claims.Scope == "" || claims.Exp <= claims.Iat || claims.Exp-claims.Iat > 3600 {
		refuse(http.StatusBadRequest, "invalid_grant", "Invalid JWT: claims are not those of this service account.")
		return
	}
	if claims.Aud != "http://"+r.Host+RouteToken {
		refuse(http.StatusBadRequest, "invalid_grant", "Invalid JWT: audience is not the token endpoint.")
		return
	}
	if claims.Sub != s.adminEmail {
		refuse(http.StatusUnauthorized, "unauthorized_client", BadSubjectMessage)
		return
	}
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	tok := "ya29." + base64.RawURLEncoding.EncodeToString(b)
	s.mu.Lock()
	s.tokens[tok] = true
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	_ = json.NewEncoder(w).Encode(map[string]any{"access_token": tok, "token_type": "Bearer", "expires_in": 3599})
}
