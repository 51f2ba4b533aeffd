package console

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"

	"github.com/scimsync/scimsync/admin"
	"github.com/scimsync/scimsync/store"
)

// newTestConsole serves the console's sign-in and a page behind Require
// over miniredis, whose clock the test moves.
func newTestConsole(t *testing.T, idle time.Duration) (*httptest.Server, *miniredis.Miniredis) {
	t.Helper()
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { rdb.Close() })
	c := &Console{Auth: admin.NewAuth("the-admin-token"), Redis: rdb, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), IdleTimeout: idle}
	mux := http.NewServeMux()
	mux.Handle(Prefix, c.Handler())
	mux.Handle("/protected", c.Require(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "in") }), false))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv, mr
}

func TestIdleTimeoutEndsASession(t *testing.T) {
	srv, mr := newTestConsole(t, 30*time.Minute)
	c := signedIn(t, srv)
	get := func() int {
		resp, err := c.Get(srv.URL + "/protected")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := get(); got != http.StatusOK {
		t.Fatalf("fresh session = %d", got)
	}
	// Each request extends the session by the idle timeout.
	mr.FastForward(29 * time.Minute)
	if got := get(); got != http.StatusOK {
		t.Fatalf("after 29 idle minutes = %d", got)
	}
	mr.FastForward(29 * time.Minute)
	if got := get(); got != http.StatusOK {
		t.Fatalf("29 minutes after the last request = %d", got)
	}
	mr.FastForward(31 * time.Minute)
	if got := get(); got != http.StatusUnauthorized {
		t.Errorf("after 31 idle minutes = %d, want 401", got)
	}
}

// signedIn returns a client holding a session.
func signedIn(t *testing.T, srv *httptest.Server) *http.Client {
	t.Helper()
	c := srv.Client()
	jar := &simpleJar{}
	c.Jar = jar
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := c.Get(srv.URL + Prefix + "signin")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	_, rest, _ := strings.Cut(string(body), `name="csrf" value="`)
	csrf, _, _ := strings.Cut(rest, `"`)
	resp, err = c.PostForm(srv.URL+Prefix+"signin", url.Values{"csrf": {csrf}, "token": {"the-admin-token"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-in = %d", resp.StatusCode)
	}
	return c
}

// simpleJar keeps cookies by name, whatever their path.
type simpleJar struct{ cookies map[string]*http.Cookie }

func (j *simpleJar) SetCookies(_ *url.URL, cs []*http.Cookie) {
	if j.cookies == nil {
		j.cookies = map[string]*http.Cookie{}
	}
	for _, c := range cs {
		if c.MaxAge < 0 {
			delete(j.cookies, c.Name)
			continue
		}
		j.cookies[c.Name] = c
	}
}

func (j *simpleJar) Cookies(*url.URL) []*http.Cookie {
	var out []*http.Cookie
	for _, c := range j.cookies {
		out = append(out, c)
	}
	return out
}

func TestParseMapping(t *testing.T) {
	tests := []struct {
		name, in string
		want     store.JSONMap
		wantErr  bool
	}{
		{"empty", "\n \n", store.JSONMap{}, false},
		{"lines", "Eng Leads = admin\n  Sales=member  \n", store.JSONMap{"Eng Leads": "admin", "Sales": "member"}, false},
		{"no equals", "Eng Leads admin", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseMapping(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" && !tt.wantErr {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestReadConnectorLeavesEmptyCredentialsOut(t *testing.T) {
	tests := []struct {
		name            string
		form            url.Values
		settings, creds string
	}{
		{"all set", url.Values{"settings.orgUrl": {" https://x.okta.com "}, "credentials.apiToken": {"tok"}, "groups": {"Eng, , Sales"}},
			`{"groups":["Eng","Sales"],"orgUrl":"https://x.okta.com"}`, `{"apiToken":"tok"}`},
		{"credentials kept", url.Values{"settings.orgUrl": {"https://x.okta.com"}}, `{"orgUrl":"https://x.okta.com"}`, ``},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/", strings.NewReader(tt.form.Encode()))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			f := connectorForm{Type: knownTypes["okta"], Values: map[string]string{}, FieldErrors: map[string]string{}}
			s, c, ok := readConnector(r, &f)
			if !ok {
				t.Fatalf("not ok: %+v", f)
			}
			if string(s) != tt.settings || string(c) != tt.creds {
				t.Errorf("settings %s credentials %s, want %s and %s", s, c, tt.settings, tt.creds)
			}
			if _, shown := f.Values["apiToken"]; shown {
				t.Error("a credential is kept for display")
			}
		})
	}
}

func TestCookiesAreSecureBehindHTTPS(t *testing.T) {
	for _, secure := range []bool{false, true} {
		c := &Console{Secure: secure}
		for _, name := range []string{cookieName, signinCookie} {
			ck := c.cookie(name, "v", 0)
			if ck.Secure != secure || !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode {
				t.Errorf("secure=%t: %s = %+v", secure, name, ck)
			}
		}
	}
}
