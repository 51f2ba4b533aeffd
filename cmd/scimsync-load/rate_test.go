package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	vegeta "github.com/tsenart/vegeta/v12/lib"
)

func TestParseFlags(t *testing.T) {
	env := func(k string) string {
		if k == "SCIMSYNC_LOAD_TOKEN" {
			return "from-env"
		}
		return ""
	}
	tests := []struct {
		name     string
		args     []string
		wantErr  bool
		token    string
		rate     vegeta.Rate
		duration time.Duration
		mode     string
	}{
		{"closed model by default", []string{"-mode", "filter"}, false, "from-env", vegeta.Rate{}, 20 * time.Second, "filter"},
		{"rate per second", []string{"-rate", "1000/s", "-duration", "15s", "-mode", "create", "-token", "x"}, false, "x", vegeta.Rate{Freq: 1000, Per: time.Second}, 15 * time.Second, "create"},
		{"bare rate is per second", []string{"-rate", "3000", "-mode", "health"}, false, "from-env", vegeta.Rate{Freq: 3000, Per: time.Second}, 20 * time.Second, "health"},
		{"rate per minute", []string{"-rate", "60/m"}, false, "from-env", vegeta.Rate{Freq: 60, Per: time.Minute}, 20 * time.Second, "create"},
		{"zero rate", []string{"-rate", "0/s"}, true, "", vegeta.Rate{}, 0, ""},
		{"unknown unit", []string{"-rate", "5/fortnight"}, true, "", vegeta.Rate{}, 0, ""},
		{"not a number", []string{"-rate", "fast"}, true, "", vegeta.Rate{}, 0, ""},
		{"stray argument", []string{"-rate", "5/s", "now"}, true, "", vegeta.Rate{}, 0, ""},
		{"unknown flag", []string{"-qps", "5"}, true, "", vegeta.Rate{}, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parseFlags(tt.args, env)
			if (err != nil) != tt.wantErr {
				t.Fatalf("parseFlags(%q) error %v, want error %v", tt.args, err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if c.token != tt.token || c.rate != tt.rate || c.duration != tt.duration || c.mode != tt.mode {
				t.Errorf("parseFlags(%q) = token %q, rate %v, duration %v, mode %q; want %q, %v, %v, %q",
					tt.args, c.token, c.rate, c.duration, c.mode, tt.token, tt.rate, tt.duration, tt.mode)
			}
		})
	}
}

func TestTargets(t *testing.T) {
	l := newLoader("http://127.0.0.1:8080/scim/v2", config{runID: "r1", concurrency: 1})
	l.names = []string{"a@example.com", "b@example.com"}
	g, err := newTargets("http://127.0.0.1:8080/scim/v2", "tok", l)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("create sends a new user each time", func(t *testing.T) {
		seen := map[string]bool{}
		for range 3 {
			var tg vegeta.Target
			if err := g.create(&tg); err != nil {
				t.Fatal(err)
			}
			if tg.Method != http.MethodPost || tg.URL != "http://127.0.0.1:8080/scim/v2/Users" {
				t.Errorf("create: %s %s", tg.Method, tg.URL)
			}
			if got := tg.Header.Get("Authorization"); got != "Bearer tok" {
				t.Errorf("create: Authorization %q", got)
			}
			if got := tg.Header.Get("Content-Type"); got != "application/scim+json" {
				t.Errorf("create: Content-Type %q", got)
			}
			var u struct {
				UserName string `json:"userName"`
				Emails   []struct {
					Value string `json:"value"`
				} `json:"emails"`
			}
			if err := json.Unmarshal(tg.Body, &u); err != nil {
				t.Fatalf("create body: %v: %s", err, tg.Body)
			}
			if !strings.HasPrefix(u.UserName, "load-r1-") || len(u.Emails) != 1 || u.Emails[0].Value != u.UserName {
				t.Errorf("create body: %s", tg.Body)
			}
			if seen[u.UserName] {
				t.Errorf("userName %q sent twice", u.UserName)
			}
			seen[u.UserName] = true
		}
	})

	t.Run("filter looks up a seeded user", func(t *testing.T) {
		for range 10 {
			var tg vegeta.Target
			if err := g.filter(&tg); err != nil {
				t.Fatal(err)
			}
			u, err := url.Parse(tg.URL)
			if err != nil {
				t.Fatal(err)
			}
			if tg.Method != http.MethodGet || u.Path != "/scim/v2/Users" || tg.Body != nil {
				t.Errorf("filter: %s %s", tg.Method, tg.URL)
			}
			f := u.Query().Get("filter")
			if f != `userName eq "a@example.com"` && f != `userName eq "b@example.com"` {
				t.Errorf("filter %q names no seeded user", f)
			}
			if got := tg.Header.Get("Authorization"); got != "Bearer tok" {
				t.Errorf("filter: Authorization %q", got)
			}
		}
	})

	t.Run("health asks the server root without the token", func(t *testing.T) {
		var tg vegeta.Target
		if err := g.health(&tg); err != nil {
			t.Fatal(err)
		}
		want := vegeta.Target{Method: http.MethodGet, URL: "http://127.0.0.1:8080/healthz"}
		if diff := cmp.Diff(want, tg); diff != "" {
			t.Errorf("health target (-want +got):\n%s", diff)
		}
	})
}

// TestRunRate offers a small rate to a fake server in each mode and checks
// what arrived and how it was judged; it asserts no timing.
func TestRunRate(t *testing.T) {
	var posts, gets, health atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if r.URL.Path == "/healthz" {
			health.Add(1)
			return
		}
		if r.Header.Get("Authorization") != "Bearer tok" {
			http.Error(w, "no", http.StatusUnauthorized)
			return
		}
		switch {
		case r.Method == http.MethodPost && r.URL.Path == "/scim/v2/Users":
			posts.Add(1)
			w.WriteHeader(http.StatusCreated)
		case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Query().Get("filter"), `userName eq "load-t-seed-`):
			gets.Add(1)
			io.WriteString(w, `{"totalResults":1}`)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()

	base := config{url: srv.URL + "/scim/v2", token: "tok", concurrency: 2, duration: 200 * time.Millisecond, users: 5, runID: "t", rateText: "50/s", rate: vegeta.Rate{Freq: 50, Per: time.Second}}
	for _, tt := range []struct {
		mode    string
		counter *atomic.Int64
	}{{"create", &posts}, {"filter", &gets}, {"health", &health}} {
		t.Run(tt.mode, func(t *testing.T) {
			c := base
			c.mode = tt.mode
			before := tt.counter.Load()
			res, err := runRate(context.Background(), c)
			if err != nil {
				t.Fatal(err)
			}
			if res.Requests == 0 || res.Success != 1 || res.FirstError != "" {
				t.Errorf("%+v", res)
			}
			if processCPU() > 0 && res.LoadCPU <= 0 {
				t.Errorf("the tool's CPU per request reads %v where the process's CPU is measured", res.LoadCPU)
			}
			if got := uint64(tt.counter.Load() - before); got != res.Requests {
				t.Errorf("server saw %d requests, result counts %d", got, res.Requests)
			}
		})
	}

	t.Run("a refused token is no success", func(t *testing.T) {
		c := base
		c.mode, c.token = "create", "wrong"
		res, err := runRate(context.Background(), c)
		if err != nil || res.Success != 0 || !strings.Contains(res.FirstError, "401") {
			t.Errorf("%+v, %v", res, err)
		}
	})

	t.Run("unknown mode", func(t *testing.T) {
		c := base
		c.mode = "seed"
		if _, err := runRate(context.Background(), c); err == nil {
			t.Error("seed with -rate accepted")
		}
	})
}
