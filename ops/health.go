package ops

import (
	"context"
	"net/http"
	"time"

	"github.com/scimsync/scimsync/internal/httpjson"
)

// Check is one readiness dependency, such as the database or Redis.
type Check struct {
	Name string
	Ping func(ctx context.Context) error
}

// Healthz answers 200 while the process serves HTTP.
func Healthz() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		httpjson.Write(w, http.StatusOK, "", map[string]string{"status": "ok"})
	})
}

// Readyz answers 200 when every check passes within timeout, else 503 with
// the name of what failed. Error texts are not shown: they may name hosts.
func Readyz(timeout time.Duration, checks ...Check) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), timeout)
		defer cancel()
		status := http.StatusOK
		out := map[string]string{}
		for _, c := range checks {
			if err := c.Ping(ctx); err != nil {
				status = http.StatusServiceUnavailable
				out[c.Name] = "unreachable"
				continue
			}
			out[c.Name] = "ok"
		}
		body := map[string]any{"status": "ok", "checks": out}
		if status != http.StatusOK {
			body["status"] = "unavailable"
		}
		httpjson.Write(w, status, "", body)
	})
}
