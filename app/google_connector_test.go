package app

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/scimsync/scimsync/broker/brokertest"
	_ "github.com/scimsync/scimsync/connectors/google" // the type this test connects
	"github.com/scimsync/scimsync/connectors/google/googlefake"
	"github.com/scimsync/scimsync/store/storetest"
)

// TestGoogleConnectorAPI stores a Google connector through the admin API:
// the JSON key is checked against the token endpoint, sealed, and never
// answered back, and a wrong adminEmail is refused with Google's words.
func TestGoogleConnectorAPI(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) { testGoogleConnectorAPI(t, newTestServer(t, b, brokertest.Open(t))) })
	}
}

func testGoogleConnectorAPI(t *testing.T, s *testServer) {
	g := googlefake.New(t)
	_, org, _ := s.do(t, call{method: "POST", path: "/api/v1/orgs", auth: adminToken, body: `{"name":"Acme"}`})
	orgID := org["id"].(string)
	path := "/api/v1/orgs/" + orgID + "/connector"
	key, err := json.Marshal(g.Key())
	if err != nil {
		t.Fatal(err)
	}
	body := func(adminEmail string) string {
		return `{"type":"google","settings":{"customerId":"` + g.CustomerID() + `","adminEmail":"` + adminEmail +
			`","apiUrl":"` + g.URL() + `"},"credentials":{"serviceAccountKey":` + string(key) + `}}`
	}
	privateKey := func(raw string) bool { return strings.Contains(raw, "PRIVATE KEY") }

	tests := []struct {
		name, body string
		want       int
		code       string
	}{
		{"wrong adminEmail", body("someone@example.com"), 400, "connection_failed"},
		{"no adminEmail", body(""), 400, "invalid_request"},
		{"good", body(g.AdminEmail()), 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, answer, _ := s.do(t, call{method: "PUT", path: path, auth: adminToken, body: tt.body})
			if code != tt.want {
				t.Fatalf("status = %d, want %d: %v", code, tt.want, answer)
			}
			raw := string(mustJSON(t, answer))
			if privateKey(raw) {
				t.Errorf("answer contains the key: %s", raw)
			}
			if tt.code != "" {
				if e, _ := answer["error"].(map[string]any); e == nil || e["code"] != tt.code {
					t.Errorf("error = %v, want code %s", answer, tt.code)
				}
			}
			if tt.name == "wrong adminEmail" && !strings.Contains(raw, googlefake.BadSubjectMessage) {
				t.Errorf("Google's message is missing: %s", raw)
			}
		})
	}

	row, err := s.app.Store.Connector(context.Background(), orgID)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(row.Credentials, []byte("PRIVATE KEY")) {
		t.Error("the key is stored in plain text")
	}
	dir, typ, err := s.app.Connectors().Directory(context.Background(), orgID)
	if err != nil || typ != "google" {
		t.Fatalf("Directory = %v, %q", err, typ)
	}
	if err := dir.TestConnection(context.Background()); err != nil {
		t.Errorf("stored connector does not connect: %v", err)
	}
}
