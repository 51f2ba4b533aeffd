package inbound

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/scimsync/scimsync/inbound/schema"
)

// etag is the weak entity tag of a resource version, also its meta.version.
func etag(version int64) string { return `W/"` + strconv.FormatInt(version, 10) + `"` }

// checkIfMatch honours If-Match: "*" or a list of tags, weak or strong.
func checkIfMatch(r *http.Request, version int64) error {
	h := strings.TrimSpace(r.Header.Get("If-Match"))
	if h == "" || h == "*" {
		return nil
	}
	want := strconv.FormatInt(version, 10)
	for _, t := range strings.Split(h, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if strings.Trim(t, `"`) == want {
			return nil
		}
	}
	return errPrecondition
}

func meta(resourceType, location string, created, modified time.Time, version int64) map[string]any {
	return map[string]any{
		"resourceType": resourceType,
		"created":      created.UTC().Format(time.RFC3339Nano),
		"lastModified": modified.UTC().Format(time.RFC3339Nano),
		"version":      etag(version),
		"location":     location,
	}
}

// stored renders a stored resource body with what the server owns: id,
// schemas and meta.
func (s *Server) stored(rt *schema.ResourceType, attributes, id string, created, modified time.Time, version int64) (map[string]any, error) {
	m, err := decodeAttributes(attributes)
	if err != nil {
		return nil, err
	}
	s.addOwned(m, rt, id, created, modified, version)
	return m, nil
}

// addOwned adds to a resource body what the server owns.
func (s *Server) addOwned(m map[string]any, rt *schema.ResourceType, id string, created, modified time.Time, version int64) {
	m["id"] = id
	withSchemas(m, rt)
	m["meta"] = meta(rt.Name, s.baseURL()+rt.Endpoint+"/"+id, created, modified, version)
}

// decodeAttributes reads a stored resource body.
func decodeAttributes(raw string) (map[string]any, error) {
	m := map[string]any{}
	if raw == "" {
		return m, nil
	}
	if err := json.Unmarshal([]byte(raw), &m); err != nil {
		return nil, fmt.Errorf("decode stored resource: %w", err)
	}
	return m, nil
}

// storedBody is the part of a resource body that is stored: all but what
// the server owns and the attributes in drop. It shares m's values.
func storedBody(m map[string]any, drop ...string) map[string]any {
	c := make(map[string]any, len(m))
	for k, v := range m {
		c[k] = v
	}
	for _, k := range append(drop, "id", "meta") {
		delete(c, k)
	}
	return c
}

// encodeAttributes stores a resource body without what the server owns.
func encodeAttributes(m map[string]any, drop ...string) (string, error) {
	b, err := json.Marshal(storedBody(m, drop...))
	if err != nil {
		return "", fmt.Errorf("encode resource: %w", err)
	}
	return string(b), nil
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

// withSchemas sets the resource's schemas: the core URN and each extension
// whose attributes it carries.
func withSchemas(m map[string]any, rt *schema.ResourceType) {
	schemas := []any{rt.Schema.ID}
	for _, e := range rt.Extensions {
		if _, ok := m[e.Schema.ID]; ok {
			schemas = append(schemas, e.Schema.ID)
		}
	}
	m["schemas"] = schemas
}

// paging reads startIndex and count (RFC 7644 §3.4.2.4).
func paging(q url.Values) (start, count int, err error) {
	start, count = 1, DefaultCount
	if v := q.Get("startIndex"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return 0, 0, schema.Errorf(schema.ScimTypeInvalidValue, "startIndex must be an integer")
		}
		start = max(n, 1)
	}
	if v := q.Get("count"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return 0, 0, schema.Errorf(schema.ScimTypeInvalidValue, "count must be an integer")
		}
		count = min(max(n, 0), MaxResults)
	}
	return start, count, nil
}
