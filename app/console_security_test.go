package app

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/scimsync/scimsync/admin"
	"github.com/scimsync/scimsync/broker/brokertest"
	"github.com/scimsync/scimsync/console"
	"github.com/scimsync/scimsync/internal/secret"
	"github.com/scimsync/scimsync/internal/syncbuf"
	"github.com/scimsync/scimsync/store"
	"github.com/scimsync/scimsync/store/storetest"
)

// consoleClient is a browser without JavaScript: cookies, forms, and
// redirects left to the test.
type consoleClient struct {
	t    *testing.T
	base string
	http *http.Client
}

func newConsoleClient(t *testing.T, base string) *consoleClient {
	jar, _ := cookiejar.New(nil)
	return &consoleClient{t: t, base: base, http: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func (c *consoleClient) get(path string) (int, string, http.Header) {
	c.t.Helper()
	resp, err := c.http.Get(c.base + path)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

func (c *consoleClient) post(path string, form url.Values) (int, string, http.Header) {
	c.t.Helper()
	resp, err := c.http.PostForm(c.base+path, form)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

// csrf reads the CSRF token of the page at path.
func (c *consoleClient) csrf(path string) string {
	c.t.Helper()
	_, body, _ := c.get(path)
	m := csrfField.FindStringSubmatch(body)
	if m == nil {
		c.t.Fatalf("%s has no CSRF field", path)
	}
	return m[1]
}

func (c *consoleClient) signin(token string) (int, string, http.Header) {
	c.t.Helper()
	return c.post("/console/signin", url.Values{"csrf": {c.csrf("/console/signin")}, "token": {token}})
}

func (c *consoleClient) cookie(name string) *http.Cookie {
	u, _ := url.Parse(c.base + "/console/")
	for _, ck := range c.http.Jar.Cookies(u) {
		if ck.Name == name {
			return ck
		}
	}
	return nil
}

func TestConsoleSecurity(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			s := newTestServer(t, b, brokertest.Open(t))

			t.Run("without a session a page redirects to sign-in", func(t *testing.T) {
				c := newConsoleClient(t, s.URL)
				for _, path := range []string{"/console/", "/console/orgs/x/members"} {
					code, _, h := c.get(path)
					if code != http.StatusSeeOther || h.Get("Location") != "/console/signin" {
						t.Errorf("GET %s = %d to %q", path, code, h.Get("Location"))
					}
				}
				if code, _, _ := c.post("/console/orgs", url.Values{"name": {"x"}}); code != http.StatusUnauthorized {
					t.Errorf("POST without a session = %d", code)
				}
			})

			t.Run("sign-in sets a strict cookie and stores only its hash", func(t *testing.T) {
				c := newConsoleClient(t, s.URL)
				code, _, h := c.signin(adminToken)
				if code != http.StatusSeeOther || h.Get("Location") != "/console/" {
					t.Fatalf("sign-in = %d to %q", code, h.Get("Location"))
				}
				var set *http.Cookie
				for _, ck := range (&http.Response{Header: h}).Cookies() {
					if ck.Name == "scimsync_console" && ck.Value != "" {
						set = ck
					}
				}
				if set == nil || !set.HttpOnly || set.SameSite != http.SameSiteStrictMode || set.Path != "/" {
					t.Fatalf("session cookie = %+v", set)
				}
				rdb := s.app.Broker.Client()
				keys, err := rdb.Keys(context.Background(), "scimsync:console:session:*").Result()
				if err != nil {
					t.Fatal(err)
				}
				sum := sha256.Sum256([]byte(set.Value))
				found := false
				for _, k := range keys {
					if strings.Contains(k, set.Value) {
						t.Errorf("Redis key %q holds the session id", k)
					}
					found = found || strings.HasSuffix(k, hex.EncodeToString(sum[:]))
				}
				if !found {
					t.Errorf("no session under the id's hash in %q", keys)
				}
				if code, _, _ := c.get("/console/"); code != http.StatusOK {
					t.Errorf("GET /console/ signed in = %d", code)
				}
			})

			t.Run("a POST without the CSRF token is refused", func(t *testing.T) {
				c := newConsoleClient(t, s.URL)
				c.signin(adminToken)
				for name, form := range map[string]url.Values{
					"none":  {"name": {"Forged"}},
					"wrong": {"name": {"Forged"}, "csrf": {"not-the-token"}},
				} {
					if code, _, _ := c.post("/console/orgs", form); code != http.StatusForbidden {
						t.Errorf("%s: POST /console/orgs = %d, want 403", name, code)
					}
				}
				orgs, _ := s.app.AdminService().Orgs(context.Background())
				for _, o := range orgs {
					if o.Name == "Forged" {
						t.Error("an organization was created without the CSRF token")
					}
				}
				if code, _, _ := c.post("/console/signin", url.Values{"token": {adminToken}}); code != http.StatusForbidden {
					t.Errorf("sign-in without its CSRF token = %d", code)
				}
				if code, _, _ := c.post("/console/orgs", url.Values{"name": {"Real"}, "csrf": {c.csrf("/console/")}}); code != http.StatusSeeOther {
					t.Errorf("POST with the CSRF token = %d", code)
				}
			})

			t.Run("the session cookie is refused after sign-out", func(t *testing.T) {
				c := newConsoleClient(t, s.URL)
				c.signin(adminToken)
				old := c.cookie("scimsync_console")
				csrf := c.csrf("/console/")
				if code, _, h := c.post("/console/signout", url.Values{"csrf": {csrf}}); code != http.StatusSeeOther || h.Get("Location") != "/console/signin" {
					t.Fatalf("sign-out = %d to %q", code, h.Get("Location"))
				}
				replay := newConsoleClient(t, s.URL)
				u, _ := url.Parse(s.URL + "/console/")
				replay.http.Jar.SetCookies(u, []*http.Cookie{old})
				if code, _, _ := replay.get("/console/"); code != http.StatusSeeOther {
					t.Errorf("GET with the old cookie = %d, want a redirect to sign-in", code)
				}
				if code, _, _ := replay.post("/console/orgs", url.Values{"name": {"After"}, "csrf": {csrf}}); code != http.StatusUnauthorized {
					t.Errorf("POST with the old cookie = %d", code)
				}
			})

			t.Run("a SCIM token cannot sign in", func(t *testing.T) {
				_, org, _ := s.do(t, call{method: "POST", path: "/api/v1/orgs", auth: adminToken, body: `{"name":"Scim"}`})
				_, tok, _ := s.do(t, call{method: "POST", path: "/api/v1/orgs/" + org["id"].(string) + "/scim-tokens", auth: adminToken, body: `{}`})
				c := newConsoleClient(t, s.URL)
				if code, body, _ := c.signin(tok["token"].(string)); code != http.StatusUnauthorized || !strings.Contains(body, "not the admin token") {
					t.Errorf("sign-in with a SCIM token = %d", code)
				}
				if c.cookie("scimsync_console") != nil {
					t.Error("a SCIM token got a session")
				}
			})

			t.Run("the dashboard takes a console session", func(t *testing.T) {
				c := newConsoleClient(t, s.URL)
				if code, _, _ := c.get("/monitoring/"); code != http.StatusUnauthorized {
					t.Errorf("/monitoring/ without a session = %d", code)
				}
				c.signin(adminToken)
				if code, _, _ := c.get("/monitoring/"); code != http.StatusOK {
					t.Errorf("/monitoring/ with a session = %d", code)
				}
			})

		})
	}
}

// TestConsoleSignInLimit: after MaxFailures wrong tokens from one address
// even the right one is refused for a while, and no token reaches the log.
func TestConsoleSignInLimit(t *testing.T) {
	var logs bytes.Buffer
	s := newAppServer(t, storetest.Open(t, storetest.Backends()[0], store.Options{}), brokertest.Open(t), func(a *App) {
		a.Log = slog.New(slog.NewTextHandler(&logs, nil))
	})
	c := newConsoleClient(t, s.URL)
	const wrong = "wrong-token-do-not-log-me"
	for i := range console.MaxFailures {
		if code, _, _ := c.signin(wrong); code != http.StatusUnauthorized {
			t.Fatalf("wrong token %d = %d", i+1, code)
		}
	}
	if code, _, _ := c.signin(adminToken); code != http.StatusTooManyRequests {
		t.Errorf("the right token after %d wrong ones = %d, want 429", console.MaxFailures, code)
	}
	if strings.Contains(logs.String(), wrong) || strings.Contains(logs.String(), adminToken) {
		t.Error("a token was logged")
	}
	if !strings.Contains(logs.String(), "console sign-in with a wrong token") {
		t.Errorf("no log of the wrong tokens: %s", logs.String())
	}
}

// TestConsoleConnectorErrors: the admin API's validation, shown next to
// the field at fault, and a refused credential never echoed.
func TestConsoleConnectorErrors(t *testing.T) {
	s := newTestServer(t, storetest.Backends()[0], brokertest.Open(t))
	_, org, _ := s.do(t, call{method: "POST", path: "/api/v1/orgs", auth: adminToken, body: `{"name":"Acme"}`})
	path := "/console/orgs/" + org["id"].(string) + "/connector"
	c := newConsoleClient(t, s.URL)
	c.signin(adminToken)
	tests := []struct {
		name string
		form url.Values
		want string
	}{
		{"missing org URL", url.Values{"type": {"okta"}, "credentials.apiToken": {"secret-value-1"}}, `id="settings.orgUrl-error"`},
		{"no credentials stored", url.Values{"type": {"okta"}, "settings.orgUrl": {"https://example.okta.com"}}, `id="credentials.apiToken-error"`},
		{"no type", url.Values{"type": {""}}, "Choose your IdP."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.form.Set("csrf", c.csrf(path))
			tt.form.Set("action", "save")
			code, body, _ := c.post(path, tt.form)
			if code != http.StatusBadRequest || !strings.Contains(body, tt.want) {
				t.Errorf("= %d, want 400 with %s:\n%s", code, tt.want, body)
			}
			if strings.Contains(body, "secret-value-1") {
				t.Error("a credential is echoed")
			}
		})
	}
	if _, err := s.app.AdminService().Connector(context.Background(), org["id"].(string)); err == nil {
		t.Error("a refused connector was stored")
	}
}

// TestConsoleNewSecretShownOnce: a form that makes a secret answers with a
// redirect, and the page it leads to shows the secret once. A reload
// creates nothing more and shows nothing; the secret is in no address,
// no log and no other session's page.
func TestConsoleNewSecretShownOnce(t *testing.T) {
	logs := &syncbuf.Buffer{}
	s := newAppServer(t, storetest.Open(t, lastBackend(), store.Options{}), brokertest.Open(t), func(a *App) {
		a.Log = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	ctx := context.Background()
	svc := s.app.AdminService()
	o, err := svc.CreateOrg(ctx, "Acme")
	if err != nil {
		t.Fatal(err)
	}
	orgPath := "/console/orgs/" + o.ID
	hookURL := "http://127.0.0.1:9/hook"
	hook, err := svc.CreateWebhook(ctx, o.ID, admin.WebhookInput{URL: &hookURL})
	if err != nil {
		t.Fatal(err)
	}
	hookPath := "/console/webhooks/" + hook.ID
	tokenValue := regexp.MustCompile(`id="token-value" readonly value="([^"]+)"`)

	tests := []struct {
		name       string
		post, page string
		form       url.Values
		shown      *regexp.Regexp
		// made checks what the POST made, given the secret shown.
		made func(t *testing.T, sec string)
	}{
		{"a SCIM token", orgPath + "/tokens", orgPath, url.Values{"description": {"Okta"}}, tokenValue, func(t *testing.T, sec string) {
			toks, err := svc.SCIMTokens(ctx, o.ID)
			if err != nil || len(toks) != 1 || !strings.HasPrefix(sec, secret.PrefixSCIM) {
				t.Errorf("tokens = %+v, %v; shown %d characters", toks, err, len(sec))
			}
		}},
		{"a webhook", orgPath + "/webhooks", orgPath + "/webhooks", url.Values{"url": {"http://127.0.0.1:9/other"}, "enabled": {"true"}}, secretValue, func(t *testing.T, sec string) {
			hooks, err := svc.ListWebhooks(ctx, o.ID)
			if err != nil || len(hooks) != 2 {
				t.Errorf("webhooks = %+v, %v; want the first and one more", hooks, err)
			}
		}},
		{"a rotated webhook secret", hookPath + "/rotate", hookPath, url.Values{}, secretValue, func(t *testing.T, sec string) {
			if sec == hook.Secret {
				t.Error("the old secret is shown")
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newConsoleClient(t, s.URL)
			c.signin(adminToken)
			other := newConsoleClient(t, s.URL)
			other.signin(adminToken)

			tt.form.Set("csrf", c.csrf(tt.page))
			code, body, h := c.post(tt.post, tt.form)
			if code != http.StatusSeeOther || h.Get("Location") != tt.page {
				t.Fatalf("POST = %d to %q, want 303 to %s", code, h.Get("Location"), tt.page)
			}
			if tt.shown.MatchString(body) {
				t.Error("the POST's answer shows the secret")
			}
			// What waits in Redis for the page, sealed under the session.
			var kept []string
			rdb := s.app.Broker.Client()
			keys, _ := rdb.Keys(ctx, "scimsync:console:*:flash").Result()
			for _, k := range keys {
				vals, _ := rdb.HGetAll(ctx, k).Result()
				for _, v := range vals {
					kept = append(kept, v)
				}
			}
			if len(kept) == 0 {
				t.Fatal("nothing kept in Redis for the page")
			}
			if code, body, _ := other.get(tt.page); code != http.StatusOK || tt.shown.MatchString(body) {
				t.Errorf("another session's page = %d, shows the secret: %v", code, tt.shown.MatchString(body))
			}
			code, body, _ = c.get(tt.page)
			m := tt.shown.FindStringSubmatch(body)
			if code != http.StatusOK || m == nil {
				t.Fatalf("page after the redirect = %d, no secret:\n%s", code, body)
			}
			sec := m[1]
			code, body, _ = c.get(tt.page)
			if code != http.StatusOK || strings.Contains(body, sec) || tt.shown.MatchString(body) {
				t.Errorf("reload = %d: the secret is shown again", code)
			}
			tt.made(t, sec)
			for _, v := range kept {
				if strings.Contains(v, sec) {
					t.Error("Redis held the secret in clear")
				}
			}
			if strings.Contains(logs.String(), sec) {
				t.Error("the secret is in the log")
			}
		})
	}
}
