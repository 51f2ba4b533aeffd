package oktafake

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"
)

func TestClearFaultsEndsAnOutage(t *testing.T) {
	s := New(t)
	get := func() int {
		req, _ := http.NewRequest("GET", s.URL()+RouteUsers, nil)
		req.Header.Set("Authorization", "SSWS "+s.Token())
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	s.FailNext(RouteUsers, http.StatusInternalServerError, 3)
	if got := get(); got != http.StatusInternalServerError {
		t.Fatalf("injected failure: got %d", got)
	}
	s.ClearFaults()
	if got := get(); got != http.StatusOK {
		t.Errorf("after ClearFaults: got %d, want 200", got)
	}
}

func TestLatencyHoldsEachRequest(t *testing.T) {
	s := New(t)
	get := func(ctx context.Context) error {
		req, _ := http.NewRequestWithContext(ctx, "GET", s.URL()+RouteUsers, nil)
		req.Header.Set("Authorization", "SSWS "+s.Token())
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	const d = 50 * time.Millisecond
	s.Latency(d)
	start := time.Now()
	if err := get(context.Background()); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < d {
		t.Errorf("answered after %v, want at least %v", took, d)
	}

	// A client that gives up is let go: the fake does not hold its
	// handler for the whole latency.
	s.Latency(time.Hour)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if err := get(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("client gave up: got %v", err)
	}
	s.Latency(0)
	if err := get(context.Background()); err != nil {
		t.Errorf("latency lifted: %v", err)
	}
}
