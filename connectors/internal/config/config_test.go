package config

import (
	"errors"
	"testing"

	"github.com/scimsync/scimsync/connectors"
)

func TestBaseURL(t *testing.T) {
	tests := []struct {
		raw, def string
		want     string // "" means invalid
	}{
		{"https://acme.okta.com", "", "https://acme.okta.com"},
		{" https://acme.okta.com/ ", "", "https://acme.okta.com"},
		{"", "https://console.jumpcloud.com", "https://console.jumpcloud.com"},
		{"http://127.0.0.1:8080", "", "http://127.0.0.1:8080"},
		{"http://127.1.2.3", "", "http://127.1.2.3"},
		{"http://localhost:1", "", "http://localhost:1"},
		{"http://LOCALHOST", "", "http://LOCALHOST"},
		{"http://[::1]:8080", "", "http://[::1]:8080"},
		{"", "", ""},
		{"http://example.com", "", ""},
		{"http://192.168.1.10", "", ""},
		{"http://localhost.example.com", "", ""},
		{"http://[::ffff:10.0.0.1]", "", ""},
		{"ftp://example.com", "", ""},
		{"example.com", "", ""},
		{"https://example.com/path", "", ""},
		{"https://example.com?q=1", "", ""},
		{"https://example.com#f", "", ""},
		{"https://user:pw@example.com", "", ""},
		{"https:///nohost", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.raw, func(t *testing.T) {
			u, err := BaseURL("okta", "settings.orgUrl", tt.raw, tt.def)
			if tt.want == "" {
				var ce *connectors.ConfigError
				if !errors.As(err, &ce) || ce.Field != "settings.orgUrl" {
					t.Fatalf("got %v, %v; want a ConfigError on settings.orgUrl", u, err)
				}
				return
			}
			if err != nil || u.String() != tt.want {
				t.Fatalf("got %v, %v; want %s", u, err, tt.want)
			}
		})
	}
}

func TestDecodeNamesTheField(t *testing.T) {
	var v struct {
		Key string `json:"apiKey"`
	}
	tests := map[string]string{
		`{"apiKey":1}`:           "credentials.apiKey",
		`{"apiKey":"a","x":"y"}`: "credentials.x",
		`[1]`:                    "credentials",
		`{"apiKey":`:             "credentials",
		`{"apiKey":"a"} {}`:      "credentials",
	}
	for raw, field := range tests {
		err := Decode("jumpcloud", "credentials", []byte(raw), &v)
		var ce *connectors.ConfigError
		if !errors.As(err, &ce) || ce.Field != field {
			t.Errorf("Decode(%s) = %v, want a ConfigError on %s", raw, err, field)
		}
	}
}
