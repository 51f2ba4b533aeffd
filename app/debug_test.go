package app

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestDebugListener runs a scheduler with SCIMSYNC_DEBUG_ADDR set and reads
// what an operator would profile a stall with: the block and mutex
// profiles (switched on by the listener), a runtime trace and the pool's
// statistics; after shutdown the listener is gone.
func TestDebugListener(t *testing.T) {
	addr := freeAddr(t)
	a := newRoleApp(t, "")
	a.Cfg.DebugAddr = addr
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx, Roles{Scheduler: true}, io.Discard) }()

	get := func(path string) (int, []byte) {
		t.Helper()
		var err error
		for range 100 {
			var resp *http.Response
			if resp, err = http.Get("http://" + addr + path); err == nil {
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				return resp.StatusCode, b
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatalf("GET %s: %v", path, err)
		return 0, nil
	}
	for _, tt := range []struct{ path, want string }{
		{"/debug/pprof/", "mutex"},
		{"/debug/pprof/block?debug=1", "cycles/second="},
		{"/debug/pprof/mutex?debug=1", "sampling period=10"},
		{"/debug/pprof/trace?seconds=0.05", "go 1."},
	} {
		code, body := get(tt.path)
		if code != http.StatusOK || !strings.Contains(string(body), tt.want) {
			t.Errorf("GET %s = %d, want 200 with %q:\n%.300s", tt.path, code, tt.want, body)
		}
	}
	code, body := get("/debug/dbpool")
	var pool map[string]float64
	if err := json.Unmarshal(body, &pool); code != http.StatusOK || err != nil {
		t.Fatalf("GET /debug/dbpool = %d, %v: %s", code, err, body)
	}
	if _, ok := pool["waitCount"]; !ok || pool["maxOpen"] < 1 {
		t.Errorf("/debug/dbpool = %v, want waitCount and maxOpen", pool)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if _, err := http.Get("http://" + addr + "/debug/pprof/"); err == nil {
		t.Error("debug listener still up after shutdown")
	}
}
