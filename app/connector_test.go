package app

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/scimsync/scimsync/broker/brokertest"
	"github.com/scimsync/scimsync/connectors/okta/oktafake"
	"github.com/scimsync/scimsync/store/storetest"
)

func TestConnectorAPI(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			s := newTestServer(t, b, brokertest.Open(t))
			okta := oktafake.New(t)
			_, org, _ := s.do(t, call{method: "POST", path: "/api/v1/orgs", auth: adminToken, body: `{"name":"Acme"}`})
			orgID := org["id"].(string)
			_, other, _ := s.do(t, call{method: "POST", path: "/api/v1/orgs", auth: adminToken, body: `{"name":"Other"}`})
			path := "/api/v1/orgs/" + orgID + "/connector"
			good := `{"type":"okta","settings":{"orgUrl":"` + okta.URL() + `"},"credentials":{"apiToken":"` + oktafake.DefaultToken + `"}}`

			tests := []struct {
				name, method, path, body string
				want                     int
				code                     string
			}{
				{"none yet", "GET", path, "", 404, "not_found"},
				{"unknown type", "PUT", path, `{"type":"ldap","settings":{},"credentials":{}}`, 400, "invalid_request"},
				{"missing credentials", "PUT", path, `{"type":"okta","settings":{"orgUrl":"` + okta.URL() + `"}}`, 400, "invalid_request"},
				{"plain http to a public host", "PUT", path, `{"type":"okta","settings":{"orgUrl":"http://acme.okta.com"},"credentials":{"apiToken":"x"}}`, 400, "invalid_request"},
				{"wrong token", "PUT", path, `{"type":"okta","settings":{"orgUrl":"` + okta.URL() + `"},"credentials":{"apiToken":"wrong-token-value"}}`, 400, "connection_failed"},
				{"unknown org", "PUT", "/api/v1/orgs/nope/connector", good, 404, "not_found"},
				{"good", "PUT", path, good, 200, ""},
				{"settings change keeps credentials", "PUT", path, `{"type":"okta","settings":{"orgUrl":"` + okta.URL() + `","groups":[]}}`, 200, ""},
				{"read", "GET", path, "", 200, ""},
				{"other org has none", "GET", "/api/v1/orgs/" + other["id"].(string) + "/connector", "", 404, "not_found"},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					code, body, _ := s.do(t, call{method: tt.method, path: tt.path, auth: adminToken, body: tt.body})
					if code != tt.want {
						t.Fatalf("status = %d, want %d: %v", code, tt.want, body)
					}
					raw := string(mustJSON(t, body))
					for _, secret := range []string{oktafake.DefaultToken, "wrong-token-value"} {
						if strings.Contains(raw, secret) {
							t.Errorf("answer contains a credential: %s", raw)
						}
					}
					if tt.code != "" {
						if e, _ := body["error"].(map[string]any); e == nil || e["code"] != tt.code {
							t.Errorf("error = %v, want code %s", body, tt.code)
						}
					}
					if tt.name == "wrong token" && !strings.Contains(raw, oktafake.UnauthorizedSummary) {
						t.Errorf("the IdP's message is missing: %s", raw)
					}
					if tt.name == "read" && (body["type"] != "okta" || body["hasCredentials"] != true) {
						t.Errorf("connector = %v", body)
					}
				})
			}

			row, err := s.app.Store.Connector(context.Background(), orgID)
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Contains(row.Credentials, []byte(oktafake.DefaultToken)) {
				t.Error("credentials are stored in plain text")
			}
			dir, typ, err := s.app.Connectors().Directory(context.Background(), orgID)
			if err != nil || typ != "okta" {
				t.Fatalf("Directory = %v, %q", err, typ)
			}
			if err := dir.TestConnection(context.Background()); err != nil {
				t.Errorf("stored connector does not connect: %v", err)
			}
			if code, _, _ := s.do(t, call{method: "DELETE", path: path, auth: adminToken}); code != 204 {
				t.Errorf("delete = %d", code)
			}
			if code, _, _ := s.do(t, call{method: "GET", path: path, auth: adminToken}); code != 404 {
				t.Errorf("after delete = %d, want 404", code)
			}
		})
	}
}
