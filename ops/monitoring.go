package ops

import (
	"net/http"

	"github.com/hibiken/asynq"
	"github.com/hibiken/asynqmon"
)

// MonitoringPath is where the dashboard is mounted.
const MonitoringPath = "/monitoring/"

// requirer wraps a handler behind the admin token.
type requirer interface {
	Require(next http.Handler, allowBasic bool) http.Handler
}

// Monitoring returns the asynq dashboard. asynqmon has no auth of its own,
// so it is wrapped to need the admin token, as Bearer or as the HTTP Basic
// password so a browser can log in.
//
// A browser sends Basic credentials with any request to the site, a form
// posted from another site included, and the dashboard's buttons (pause a
// queue, delete tasks) carry no CSRF token of their own: so a request that
// changes something must come from the dashboard's own origin, as the
// browser's Sec-Fetch-Site or Origin header says. Clients that are not
// browsers send neither and are not affected.
func Monitoring(opt asynq.RedisConnOpt, auth requirer) (http.Handler, func() error) {
	h := asynqmon.New(asynqmon.Options{RootPath: "/monitoring", RedisConnOpt: opt})
	return http.NewCrossOriginProtection().Handler(auth.Require(h, true)), h.Close
}
