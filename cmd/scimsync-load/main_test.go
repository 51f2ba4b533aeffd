package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestCheckURL(t *testing.T) {
	tests := []struct {
		url string
		ok  bool
	}{
		{"http://127.0.0.1:8080/scim/v2/", true},
		{"http://[::1]:8080/scim/v2", true},
		{"http://localhost:8080/scim/v2", true},
		{"http://192.0.2.1:8080/scim/v2", false},
		{"ftp://127.0.0.1/scim/v2", false},
		{"127.0.0.1:8080", false},
	}
	for _, tt := range tests {
		got, err := checkURL(tt.url)
		if (err == nil) != tt.ok {
			t.Errorf("checkURL(%q) = %q, %v; want ok=%v", tt.url, got, err, tt.ok)
		}
		if err == nil && strings.HasSuffix(got, "/") {
			t.Errorf("checkURL(%q) = %q keeps the trailing slash", tt.url, got)
		}
	}
}

func TestQuantile(t *testing.T) {
	var d []time.Duration
	for i := 1; i <= 100; i++ {
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	for q, want := range map[float64]time.Duration{0.5: 50 * time.Millisecond, 0.99: 99 * time.Millisecond, 1: 100 * time.Millisecond} {
		if got := quantile(d, q); got != want {
			t.Errorf("quantile(%v) = %v, want %v", q, got, want)
		}
	}
	if quantile(nil, 0.5) != 0 {
		t.Error("quantile of nothing")
	}
}

// TestRun drives a fake SCIM endpoint in both modes and counts what it saw.
func TestRun(t *testing.T) {
	var posts, gets atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer tok" {
			http.Error(w, "no", http.StatusUnauthorized)
			return
		}
		io.Copy(io.Discard, r.Body)
		switch {
		case r.Method == http.MethodPost && r.URL.Path == "/scim/v2/Users":
			posts.Add(1)
			w.WriteHeader(http.StatusCreated)
		case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Query().Get("filter"), `userName eq "load-`):
			gets.Add(1)
			io.WriteString(w, `{"totalResults":1}`)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()

	base := config{url: srv.URL + "/scim/v2", token: "tok", concurrency: 4, duration: 200 * time.Millisecond, max: 50, users: 10, runID: "t"}
	for _, mode := range []string{"create", "filter"} {
		c := base
		c.mode = mode
		res, err := run(context.Background(), c)
		if err != nil {
			t.Fatalf("%s: %v", mode, err)
		}
		if res.Errors != 0 || res.Requests == 0 || res.Requests > c.max {
			t.Errorf("%s: %+v", mode, res)
		}
	}
	if posts.Load() < 10 || gets.Load() == 0 {
		t.Errorf("posts %d, gets %d", posts.Load(), gets.Load())
	}

	bad := base
	bad.mode, bad.token = "create", "wrong"
	res, err := run(context.Background(), bad)
	if err != nil || res.Errors == 0 || res.FirstError == "" {
		t.Errorf("a refused token is not counted as errors: %+v, %v", res, err)
	}
}
