package httpjson

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestDecode(t *testing.T) {
	tests := []struct {
		name string
		body string
		want error
	}{
		{"ok", `{"name":"a"}`, nil},
		{"extra fields ok", `{"name":"a","x":1}`, nil},
		{"empty", ``, ErrSyntax},
		{"syntax", `{"name":`, ErrSyntax},
		{"type", `{"name":1}`, ErrSyntax},
		{"trailing", `{"name":"a"} x`, ErrSyntax},
		{"too large", `{"name":"` + strings.Repeat("a", MaxBody) + `"}`, ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(tt.body))
			var v struct{ Name string }
			err := Decode(httptest.NewRecorder(), r, &v)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Decode = %v, want %v", err, tt.want)
			}
			if err != nil && strings.Contains(err.Error(), "aaaa") {
				t.Errorf("error echoes the input: %v", err)
			}
		})
	}
}

func TestError(t *testing.T) {
	w := httptest.NewRecorder()
	Error(w, 404, "not_found", "organization not found")
	if w.Code != 404 || w.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("status %d, type %q", w.Code, w.Header().Get("Content-Type"))
	}
	if got := strings.TrimSpace(w.Body.String()); got != `{"error":{"code":"not_found","message":"organization not found"}}` {
		t.Errorf("body = %s", got)
	}
}
