package console

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
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

// newTestConsole serves c's sign-in and a page behind Require over
// miniredis, whose clock the test moves.
func newTestConsole(t *testing.T, c *Console) (*httptest.Server, *miniredis.Miniredis) {
	t.Helper()
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { rdb.Close() })
	c.Auth, c.Redis, c.Log = admin.NewAuth("the-admin-token"), rdb, slog.New(slog.NewTextHandler(io.Discard, nil))
	mux := http.NewServeMux()
	mux.Handle(Prefix, c.Handler())
	mux.Handle("/protected", c.Require(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "in") }), false))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv, mr
}

func TestIdleTimeoutEndsASession(t *testing.T) {
	srv, mr := newTestConsole(t, &Console{IdleTimeout: 30 * time.Minute})
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
	if got := signin(t, c, srv, "", "the-admin-token"); got != http.StatusSeeOther {
		t.Fatalf("sign-in = %d", got)
	}
	return c
}

// signin gives c its own cookies, signs in with token as a proxy
// forwarding for client would (none when ""), and returns the answer's
// status.
func signin(t *testing.T, c *http.Client, srv *httptest.Server, client, token string) int {
	t.Helper()
	c.Jar = &simpleJar{}
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := c.Get(srv.URL + Prefix + "signin")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	_, rest, _ := strings.Cut(string(body), `name="csrf" value="`)
	csrf, _, _ := strings.Cut(rest, `"`)
	req, _ := http.NewRequest("POST", srv.URL+Prefix+"signin", strings.NewReader(url.Values{"csrf": {csrf}, "token": {token}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if client != "" {
		req.Header.Set("X-Forwarded-For", client)
	}
	resp, err = c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
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

func TestClientAddr(t *testing.T) {
	proxies := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8")}
	tests := []struct {
		name    string
		trusted []netip.Prefix
		peer    string
		xff     []string
		want    string
	}{
		{"no proxies: the peer", nil, "10.0.0.5:1234", []string{"203.0.113.7"}, "10.0.0.5"},
		{"an untrusted peer's header is ignored", proxies, "198.51.100.9:1234", []string{"203.0.113.7"}, "198.51.100.9"},
		{"a trusted proxy's client", proxies, "10.0.0.5:1234", []string{"203.0.113.7"}, "203.0.113.7"},
		{"a forged start is skipped", proxies, "10.0.0.5:1234", []string{"1.2.3.4, 203.0.113.7"}, "203.0.113.7"},
		{"a chain of trusted proxies", proxies, "10.0.0.5:1234", []string{"203.0.113.7, 10.9.9.9", "10.0.0.6"}, "203.0.113.7"},
		{"IPv6 and a mapped IPv4", proxies, "[fd00::1]:443", []string{"::ffff:203.0.113.7"}, "203.0.113.7"},
		{"no header: the proxy", proxies, "10.0.0.5:1234", nil, "10.0.0.5"},
		{"a hop that is no address ends the walk", proxies, "10.0.0.5:1234", []string{"203.0.113.7, unknown"}, "10.0.0.5"},
		{"only proxies: the first", proxies, "10.0.0.5:1234", []string{"10.0.0.7, 10.0.0.6"}, "10.0.0.7"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", Prefix+"signin", nil)
			r.RemoteAddr = tt.peer
			for _, v := range tt.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			c := &Console{TrustedProxies: tt.trusted}
			if got := c.clientAddr(r); got != tt.want {
				t.Errorf("clientAddr = %q, want %q", got, tt.want)
			}
		})
	}
}

// Behind a trusted proxy, wrong tokens lock out the client that sent them,
// not every operator behind the proxy; without one, a forwarded header
// changes nothing.
func TestSignInLimitBehindAProxy(t *testing.T) {
	loopback := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	for _, tt := range []struct {
		name    string
		trusted []netip.Prefix
		// wantOther is the sign-in of another client after the first used
		// up its failures.
		wantOther int
	}{
		{"trusted proxy", loopback, http.StatusSeeOther},
		{"no trusted proxy", nil, http.StatusTooManyRequests},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv, _ := newTestConsole(t, &Console{TrustedProxies: tt.trusted})
			for i := range MaxFailures {
				if got := signin(t, srv.Client(), srv, "203.0.113.7", "wrong-token"); got != http.StatusUnauthorized {
					t.Fatalf("wrong token %d = %d", i+1, got)
				}
			}
			if got := signin(t, srv.Client(), srv, "203.0.113.7", "the-admin-token"); got != http.StatusTooManyRequests {
				t.Errorf("the locked-out client = %d, want 429", got)
			}
			if got := signin(t, srv.Client(), srv, "203.0.113.8", "the-admin-token"); got != tt.wantOther {
				t.Errorf("another client = %d, want %d", got, tt.wantOther)
			}
		})
	}
}
