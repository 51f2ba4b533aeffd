package admin

import (
	_ "embed"
	"net/http"
)

// openAPI is the OpenAPI 3.1 document of the admin API, served as it is
// written. TestOpenAPIMatchesRoutes keeps it and routes in step.
//
//go:embed openapi.json
var openAPI []byte

func serveOpenAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Write(openAPI)
}
