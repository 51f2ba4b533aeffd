package schema

import "strings"

// Meta is the "meta" attribute of the /Schemas and /ResourceTypes
// resources.
type Meta struct {
	ResourceType string `json:"resourceType"`
	Location     string `json:"location"`
}

// SchemaResource is the JSON form of a schema served at /Schemas
// (RFC 7643 §7).
type SchemaResource struct {
	Schemas     []string     `json:"schemas"`
	ID          string       `json:"id"`
	Name        string       `json:"name"`
	Description string       `json:"description,omitempty"`
	Attributes  []*Attribute `json:"attributes"`
	Meta        Meta         `json:"meta"`
}

// SchemaExtension is an entry of a resource type's "schemaExtensions".
type SchemaExtension struct {
	Schema   string `json:"schema"`
	Required bool   `json:"required"`
}

// ResourceTypeResource is the JSON form of a resource type served at
// /ResourceTypes (RFC 7643 §6).
type ResourceTypeResource struct {
	Schemas          []string          `json:"schemas"`
	ID               string            `json:"id"`
	Name             string            `json:"name"`
	Endpoint         string            `json:"endpoint"`
	Description      string            `json:"description,omitempty"`
	Schema           string            `json:"schema"`
	SchemaExtensions []SchemaExtension `json:"schemaExtensions,omitempty"`
	Meta             Meta              `json:"meta"`
}

// Resource renders the schema for /Schemas. baseURL is the SCIM base URL,
// such as "https://example.com/scim/v2".
func (s *Schema) Resource(baseURL string) SchemaResource {
	return SchemaResource{
		Schemas:     []string{SchemaURN},
		ID:          s.ID,
		Name:        s.Name,
		Description: s.Description,
		Attributes:  s.Attributes,
		Meta: Meta{
			ResourceType: "Schema",
			Location:     strings.TrimSuffix(baseURL, "/") + "/Schemas/" + s.ID,
		},
	}
}

// Resource renders the resource type for /ResourceTypes. baseURL is the
// SCIM base URL, such as "https://example.com/scim/v2".
func (rt *ResourceType) Resource(baseURL string) ResourceTypeResource {
	r := ResourceTypeResource{
		Schemas:     []string{ResourceTypeURN},
		ID:          rt.ID,
		Name:        rt.Name,
		Endpoint:    rt.Endpoint,
		Description: rt.Description,
		Schema:      rt.Schema.ID,
		Meta: Meta{
			ResourceType: "ResourceType",
			Location:     strings.TrimSuffix(baseURL, "/") + "/ResourceTypes/" + rt.ID,
		},
	}
	for _, e := range rt.Extensions {
		r.SchemaExtensions = append(r.SchemaExtensions, SchemaExtension{Schema: e.Schema.ID, Required: e.Required})
	}
	return r
}
