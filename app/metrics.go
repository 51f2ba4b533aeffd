package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/scimsync/scimsync/ops"
)

// MetricsHandler is the surface of a process without the api role:
// /metrics (its own job, relay and scheduler counters), /healthz and
// /readyz. Scrapers need it per process, since counters such as tasks run
// are each worker's own.
func (a *App) MetricsHandler() http.Handler {
	mux := http.NewServeMux()
	a.healthRoutes(mux)
	return mux
}

// healthRoutes are /healthz, /readyz and /metrics, which every process
// with a listener serves.
func (a *App) healthRoutes(mux *http.ServeMux) {
	mux.Handle("GET /healthz", ops.Healthz())
	mux.Handle("GET /readyz", ops.Readyz(3*time.Second,
		ops.Check{Name: "database", Ping: a.Store.Ping},
		ops.Check{Name: "redis", Ping: a.Broker.Ping},
	))
	mux.Handle("GET /metrics", ops.MetricsHandler(a.Registry))
}

// startMetrics serves MetricsHandler on SCIMSYNC_METRICS_ADDR until ctx
// ends.
func (a *App) startMetrics(ctx context.Context, wg *sync.WaitGroup, fail func(error)) error {
	ln, err := net.Listen("tcp", a.Cfg.MetricsAddr)
	if err != nil {
		return fmt.Errorf("listen on %s (SCIMSYNC_METRICS_ADDR): %w", a.Cfg.MetricsAddr, err)
	}
	srv := &http.Server{
		Handler:           a.MetricsHandler(),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(a.Log.Handler(), slog.LevelWarn),
	}
	a.Log.Info("metrics listening", "addr", ln.Addr().String())
	wg.Add(2)
	go func() {
		defer wg.Done()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fail(fmt.Errorf("metrics server: %w", err))
		}
	}()
	go func() {
		defer wg.Done()
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), a.Cfg.ShutdownTimeout)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	return nil
}
