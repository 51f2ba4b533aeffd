package admin

import "net/http"

// Routes lists the operations the admin API serves, as "METHOD /path".
func Routes() []string {
	var out []string
	for _, rt := range (&API{}).routes() {
		out = append(out, rt.method+" "+rt.path)
	}
	return out
}

// RouteOf is the pattern the admin API's mux routes r to.
func RouteOf(r *http.Request) string {
	_, pattern := (&API{}).mux().Handler(r)
	return pattern
}
