package console

import (
	"encoding/json"
	"testing"
)

func TestGuardAllowsTheLimitAndReadsOlderPlans(t *testing.T) {
	tests := []struct {
		name, guard string
		want        float64
	}{
		{"share and limit", `{"share":0.86,"limit":0.1}`, 0.1},
		// Older plans kept the configured limit in share.
		{"recorded before limit", `{"share":0.2}`, 0.2},
		{"a limit of nothing", `{"share":0.5,"limit":0}`, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var g guardVerdict
			if err := json.Unmarshal([]byte(tt.guard), &g); err != nil {
				t.Fatal(err)
			}
			if got := g.Allows(); got != tt.want {
				t.Errorf("Allows() = %v, want %v", got, tt.want)
			}
		})
	}
}
