package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"runtime"
	"sync"
	"time"
)

// Sampling of the block and mutex profiles while the debug listener is on:
// one blocking event per blockProfileRate of time blocked, one mutex
// contention event in mutexProfileFraction. Both cost a little on every
// blocking operation, so they are off unless profiles are asked for.
const (
	blockProfileRate     = int(10 * time.Microsecond)
	mutexProfileFraction = 10
)

// DebugHandler serves net/http/pprof under /debug/pprof/ (the CPU profile,
// runtime/trace, heap, goroutines, block and mutex profiles) and the
// database pool's statistics at /debug/dbpool, to find where a running
// process stalls.
func (a *App) DebugHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("GET /debug/dbpool", func(w http.ResponseWriter, r *http.Request) {
		st := a.Store.PoolStats()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"maxOpen": st.MaxOpenConnections, "open": st.OpenConnections, "inUse": st.InUse, "idle": st.Idle,
			"waitCount": st.WaitCount, "waitSeconds": st.WaitDuration.Seconds(),
			"maxIdleClosed": st.MaxIdleClosed, "maxIdleTimeClosed": st.MaxIdleTimeClosed, "maxLifetimeClosed": st.MaxLifetimeClosed,
		})
	})
	return mux
}

// startDebug serves DebugHandler on SCIMSYNC_DEBUG_ADDR (a loopback
// address, checked by config) until ctx ends, with block and mutex
// profiling on.
func (a *App) startDebug(ctx context.Context, wg *sync.WaitGroup, fail func(error)) error {
	ln, err := net.Listen("tcp", a.Cfg.DebugAddr)
	if err != nil {
		return fmt.Errorf("listen on %s (SCIMSYNC_DEBUG_ADDR): %w", a.Cfg.DebugAddr, err)
	}
	runtime.SetBlockProfileRate(blockProfileRate)
	runtime.SetMutexProfileFraction(mutexProfileFraction)
	srv := &http.Server{
		Handler:           a.DebugHandler(),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(a.Log.Handler(), slog.LevelWarn),
	}
	a.Log.Info("debug listening", "addr", ln.Addr().String())
	wg.Add(2)
	go func() {
		defer wg.Done()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fail(fmt.Errorf("debug server: %w", err))
		}
	}()
	go func() {
		defer wg.Done()
		<-ctx.Done()
		_ = srv.Close() // a profile or trace under way is cut short
		runtime.SetBlockProfileRate(0)
		runtime.SetMutexProfileFraction(0)
	}()
	return nil
}
