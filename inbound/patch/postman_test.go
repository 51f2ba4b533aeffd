package patch_test

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/scimsync/scimsync/inbound/patch"
	"github.com/scimsync/scimsync/inbound/schema"
)

// microsoftCollection is Microsoft's SCIM reference test collection. It
// lives outside the module; checkouts without it skip the test.
const microsoftCollection = "../../../shared/conformance/third_party/microsoft/PostmanCollection.json"

type postmanItem struct {
	Name    string        `json:"name"`
	Item    []postmanItem `json:"item"`
	Request *struct {
		Method string          `json:"method"`
		URL    json.RawMessage `json:"url"`
		Body   struct {
			Raw string `json:"raw"`
		} `json:"body"`
	} `json:"request"`
}

var postmanVariable = regexp.MustCompile(`{{\w+}}`)

// Every PATCH body in Microsoft's collection applies cleanly to a
// resource of the kind its URL names, and every POST or PUT body
// normalises, save those that leave out userName.
func TestMicrosoftCollection(t *testing.T) {
	b, err := os.ReadFile(microsoftCollection)
	if os.IsNotExist(err) {
		t.Skipf("no %s", microsoftCollection)
	}
	if err != nil {
		t.Fatal(err)
	}
	var collection postmanItem
	if err := json.Unmarshal(b, &collection); err != nil {
		t.Fatal(err)
	}
	seen := 0
	var bodies []postmanItem
	var walk func(items []postmanItem)
	walk = func(items []postmanItem) {
		for _, it := range items {
			walk(it.Item)
			if it.Request == nil {
				continue
			}
			switch it.Request.Method {
			case "POST", "PUT":
				bodies = append(bodies, it)
				continue
			case "PATCH":
			default:
				continue
			}
			seen++
			t.Run(it.Name, func(t *testing.T) {
				url := string(it.Request.URL)
				rt, base := schema.User(), baseUser
				if strings.Contains(url, "/Groups/") {
					rt, base = schema.Group(), baseGroup
				}
				body := postmanVariable.ReplaceAllString(it.Request.Body.Raw, "u9")
				var req patch.Request
				if err := json.Unmarshal([]byte(body), &req); err != nil {
					t.Fatalf("%v in %s", err, body)
				}
				if _, err := patch.Apply(decode(t, base), req.Operations, rt); err != nil {
					t.Errorf("Apply(%s): %v", body, err)
				}
			})
		}
	}
	walk(collection.Item)
	if seen == 0 {
		t.Error("no PATCH requests in the collection")
	}
	for _, it := range bodies {
		t.Run(it.Name, func(t *testing.T) {
			rt := schema.User()
			if strings.Contains(string(it.Request.URL), "/Groups") {
				rt = schema.Group()
			}
			body := postmanVariable.ReplaceAllString(it.Request.Body.Raw, "u9")
			body = strings.ReplaceAll(body, "${__UUID}", "6a2f1b66-3b1a-4a4e-9a59-6d3d1e1a1a1a")
			var resource map[string]any
			if json.Unmarshal([]byte(body), &resource) != nil {
				t.Skip("not JSON; the HTTP layer rejects it")
			}
			got, err := patch.Normalize(resource, rt)
			if _, named := resource["userName"]; rt == schema.User() && !named {
				if scimType(err) != schema.ScimTypeInvalidValue {
					t.Errorf("Normalize without userName: %v, want invalidValue", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Normalize: %v", err)
			}
			// The collection posts "active": "True" and expects true back.
			if active, ok := got["active"]; ok {
				if _, isBool := active.(bool); !isBool {
					t.Errorf("active = %#v, want a boolean", active)
				}
			}
		})
	}
}
