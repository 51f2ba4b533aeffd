package oktafake

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// get fetches rawURL with the fake's token and returns the status, the
// body's ids (or error code) and the next link.
func get(t *testing.T, s *Server, rawURL string) (status int, ids []string, errorCode, next string) {
	t.Helper()
	req, _ := http.NewRequest("GET", rawURL, nil)
	req.Header.Set("Authorization", "SSWS "+s.Token())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var e struct{ ErrorCode, ErrorSummary string }
		if err := json.NewDecoder(resp.Body).Decode(&e); err != nil {
			t.Fatalf("error body: %v", err)
		}
		return resp.StatusCode, nil, e.ErrorCode + " " + e.ErrorSummary, ""
	}
	var page []struct{ ID, Status string }
	if err := json.NewDecoder(resp.Body).Decode(&page); err != nil {
		t.Fatal(err)
	}
	for _, u := range page {
		ids = append(ids, u.ID+" "+u.Status)
	}
	for _, l := range resp.Header.Values("Link") {
		if strings.HasSuffix(l, `rel="next"`) {
			next = strings.TrimSuffix(strings.TrimPrefix(strings.Split(l, ";")[0], "<"), ">")
		}
	}
	return resp.StatusCode, ids, "", next
}

// walk follows a listing's next links from rawURL and returns every item
// and every next link it followed.
func walk(t *testing.T, s *Server, rawURL string) (items, links []string) {
	t.Helper()
	for rawURL != "" {
		status, ids, code, next := get(t, s, rawURL)
		if status != http.StatusOK {
			t.Fatalf("GET %s = %d %s", rawURL, status, code)
		}
		items = append(items, ids...)
		if next != "" {
			links = append(links, next)
		}
		rawURL = next
	}
	return items, links
}

func TestUserListingsByStatus(t *testing.T) {
	s := New(t)
	var listed, deprovisioned []string
	for i, st := range []string{StatusActive, StatusDeprovisioned, StatusSuspended, StatusDeprovisioned, StatusStaged,
		StatusDeprovisioned, StatusDeprovisioned, StatusLockedOut, StatusDeprovisioned, StatusRecovery} {
		u := s.AddUser(User{Email: string(rune('a'+i)) + "@example.com", Status: st})
		if st == StatusDeprovisioned {
			deprovisioned = append(deprovisioned, u.ID+" "+st)
		} else {
			listed = append(listed, u.ID+" "+st)
		}
	}
	filter := url.QueryEscape(FilterDeprovisioned)
	tests := []struct {
		name string
		url  string
		want []string
	}{
		{"default leaves deprovisioned out", s.URL() + RouteUsers + "?limit=2", listed},
		{"filter lists only deprovisioned", s.URL() + RouteUsers + "?limit=2&filter=" + filter, deprovisioned},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, links := walk(t, s, tt.url)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("listing (-want +got):\n%s", diff)
			}
			if len(links) < 2 {
				t.Fatalf("followed %d next links, want a listing of at least 3 pages", len(links))
			}
			wantFilter := ""
			if strings.Contains(tt.url, "filter=") {
				wantFilter = FilterDeprovisioned
			}
			for _, l := range links {
				u, err := url.Parse(l)
				if err != nil {
					t.Fatal(err)
				}
				if got := u.Query().Get("filter"); got != wantFilter || u.Query().Get("limit") != "2" {
					t.Errorf("next link %s: filter %q, want %q, with limit 2", l, got, wantFilter)
				}
			}
		})
	}

	// A group lists its deactivated members: Okta keeps them in groups.
	g := s.AddGroup("Engineering")
	for _, id := range []string{listed[0], deprovisioned[0]} {
		s.AddMember(g.ID, strings.Fields(id)[0])
	}
	if got, _ := walk(t, s, s.URL()+"/api/v1/groups/"+g.ID+"/users"); !cmp.Equal(got, []string{listed[0], deprovisioned[0]}) {
		t.Errorf("group members = %q", got)
	}

	// Re-activation moves a user back to the default listing.
	id := strings.Fields(deprovisioned[0])[0]
	s.SetStatus(id, StatusActive)
	got, _ := walk(t, s, s.URL()+RouteUsers)
	if !cmp.Equal(got, append([]string{id + " " + StatusActive}, listed...), cmpopts.SortSlices(func(a, b string) bool { return a < b })) {
		t.Errorf("default listing after re-activation = %q", got)
	}
	s.DeleteUser(strings.Fields(deprovisioned[1])[0])
	got, _ = walk(t, s, s.URL()+RouteUsers+"?filter="+filter)
	if diff := cmp.Diff(deprovisioned[2:], got); diff != "" {
		t.Errorf("deactivated users after a re-activation and a deletion (-want +got):\n%s", diff)
	}
}

func TestUnsupportedFilterIsInvalidSearchCriteria(t *testing.T) {
	s := New(t)
	s.AddUser(User{Email: "a@example.com"})
	for _, tt := range []struct{ name, path, filter string }{
		{"another status", RouteUsers, `status eq "ACTIVE"`},
		{"a profile attribute", RouteUsers, `profile.login eq "a@example.com"`},
		{"unquoted", RouteUsers, `status eq DEPROVISIONED`},
		{"empty", RouteUsers, ``},
		{"on groups", RouteGroups, FilterDeprovisioned},
	} {
		t.Run(tt.name, func(t *testing.T) {
			status, _, code, _ := get(t, s, s.URL()+tt.path+"?filter="+url.QueryEscape(tt.filter))
			if status != http.StatusBadRequest || code != "E0000031 Invalid search criteria." {
				t.Errorf("got %d %q, want 400 E0000031 Invalid search criteria.", status, code)
			}
		})
	}
}

// The deactivated users' pages are numbered after the default listing's,
// as the connector reads them, and both count as requests of RouteUsers.
func TestDeprovisionedPagesFollowDefaultPages(t *testing.T) {
	s := New(t, WithMaxLimit(2))
	for i := range 5 { // 3 listed (2 pages), 2 deprovisioned (page 3)
		st := StatusActive
		if i >= 3 {
			st = StatusDeprovisioned
		}
		s.AddUser(User{Email: string(rune('a'+i)) + "@example.com", Status: st})
	}
	s.FailPage(RouteUsers, 3, http.StatusInternalServerError, 1)
	if items, _ := walk(t, s, s.URL()+RouteUsers); len(items) != 3 {
		t.Fatalf("default listing: %q", items)
	}
	filtered := s.URL() + RouteUsers + "?filter=" + url.QueryEscape(FilterDeprovisioned)
	if status, _, _, _ := get(t, s, filtered); status != http.StatusInternalServerError {
		t.Errorf("page 3 (the first of the deactivated users) = %d, want the injected 500", status)
	}
	if items, _ := walk(t, s, filtered); len(items) != 2 {
		t.Errorf("deactivated users: %q", items)
	}
	if got := s.Requests(RouteUsers); got != 4 {
		t.Errorf("RouteUsers served %d requests, want 4", got)
	}
}
