package httpjson

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestDeadlinePassed(t *testing.T) {
	errDB := errors.New("driver: statement interrupted")
	tests := []struct {
		name   string
		cancel bool // the client goes away before the deadline
		err    error
		want   bool
	}{
		{"deadline, context error", false, context.DeadlineExceeded, true},
		{"deadline, driver's own words", false, errDB, true},
		{"deadline, no error", false, nil, false},
		{"client gone", true, context.Canceled, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got bool
			h := WithDeadline(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if _, ok := r.Context().Deadline(); !ok {
					t.Error("the handler's request has no deadline")
				}
				<-r.Context().Done()
				got = DeadlinePassed(r, tt.err)
			}), 20*time.Millisecond)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tt.cancel {
				cancel()
			}
			h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequestWithContext(ctx, "GET", "/", nil))
			if got != tt.want {
				t.Errorf("DeadlinePassed = %v, want %v", got, tt.want)
			}
		})
	}
}
