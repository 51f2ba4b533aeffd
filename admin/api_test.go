package admin_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/scimsync/scimsync/admin"
	"github.com/scimsync/scimsync/store/storetest"
)

// TestDatabaseDown: with the database unreachable the admin API answers
// 503 with Retry-After and says why, and serves again once it is back.
func TestDatabaseDown(t *testing.T) {
	st, px := storetest.OpenBehindProxy(t)
	srv := httptest.NewServer((&admin.API{Service: &admin.Service{Store: st}, Auth: admin.NewAuth(token)}).Handler())
	t.Cleanup(srv.Close)
	get := func() (*http.Response, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest("GET", srv.URL+"/api/v1/orgs", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
			t.Fatalf("body: %v", err)
		}
		return resp, body
	}
	if resp, body := get(); resp.StatusCode != http.StatusOK {
		t.Fatalf("before: %d %v", resp.StatusCode, body)
	}
	px.Down()
	resp, body := get()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "5" {
		t.Errorf("database down: %d, Retry-After %q, %v; want 503 with Retry-After 5", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	px.Up()
	// A pooled connection the outage cut fails the one request that finds
	// it (within a second of its last use, before the driver pings idle
	// ones), so a few may get 503 first.
	for attempt := 1; ; attempt++ {
		resp, body := get()
		if resp.StatusCode == http.StatusOK {
			break
		}
		if attempt == 5 {
			t.Fatalf("database back: still %d %v after %d requests", resp.StatusCode, body, attempt)
		}
	}
}
