package inbound

import (
	"net/http"

	"github.com/scimsync/scimsync/inbound/schema"
)

const listURN = "urn:ietf:params:scim:api:messages:2.0:ListResponse"

// listResponse is the RFC 7644 §3.4.2 list; numbers are JSON integers.
type listResponse struct {
	Schemas      []string `json:"schemas"`
	TotalResults int      `json:"totalResults"`
	StartIndex   int      `json:"startIndex"`
	ItemsPerPage int      `json:"itemsPerPage"`
	Resources    []any    `json:"Resources"`
}

func newList(total, start int, items []any) listResponse {
	if items == nil {
		items = []any{}
	}
	return listResponse{Schemas: []string{listURN}, TotalResults: total, StartIndex: start, ItemsPerPage: len(items), Resources: items}
}

func (s *Server) serviceProviderConfig(w http.ResponseWriter, r *http.Request) {
	type supported struct {
		Supported bool `json:"supported"`
	}
	s.write(w, http.StatusOK, map[string]any{
		"schemas":          []string{"urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"},
		"documentationUri": "https://github.com/scimsync/scimsync",
		"patch":            supported{true},
		"bulk":             map[string]any{"supported": false, "maxOperations": 0, "maxPayloadSize": 0},
		"filter":           map[string]any{"supported": true, "maxResults": MaxResults},
		"changePassword":   supported{false},
		"sort":             supported{false},
		"etag":             supported{true},
		"authenticationSchemes": []map[string]any{{
			"type": "oauthbearertoken", "name": "OAuth Bearer Token", "primary": true,
			"description": "Authentication with a per-organization bearer token created in scimsync's admin API.",
		}},
		"meta": map[string]any{"resourceType": "ServiceProviderConfig", "location": s.baseURL() + "/ServiceProviderConfig"},
	})
}

func (s *Server) resourceTypes(w http.ResponseWriter, r *http.Request) {
	var items []any
	for _, rt := range schema.ResourceTypes() {
		items = append(items, rt.Resource(s.baseURL()))
	}
	s.write(w, http.StatusOK, newList(len(items), 1, items))
}

func (s *Server) resourceType(w http.ResponseWriter, r *http.Request) {
	rt, ok := schema.LookupResourceType(r.PathValue("id"))
	if !ok {
		writeError(w, http.StatusNotFound, "", "no resource type "+r.PathValue("id"))
		return
	}
	s.write(w, http.StatusOK, rt.Resource(s.baseURL()))
}

func (s *Server) schemas(w http.ResponseWriter, r *http.Request) {
	var items []any
	for _, sc := range schema.Schemas() {
		items = append(items, sc.Resource(s.baseURL()))
	}
	s.write(w, http.StatusOK, newList(len(items), 1, items))
}

func (s *Server) schemaByID(w http.ResponseWriter, r *http.Request) {
	sc, ok := schema.LookupSchema(r.PathValue("id"))
	if !ok {
		writeError(w, http.StatusNotFound, "", "no schema "+r.PathValue("id"))
		return
	}
	s.write(w, http.StatusOK, sc.Resource(s.baseURL()))
}
