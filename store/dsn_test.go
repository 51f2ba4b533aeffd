package store

import "testing"

func TestWithConnectTimeout(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"postgres://u@db:5432/app", "postgres://u@db:5432/app?connect_timeout=10"},
		{"postgres://u@db/app?sslmode=require", "postgres://u@db/app?connect_timeout=10&sslmode=require"},
		{"postgres://u@db/app?connect_timeout=3", "postgres://u@db/app?connect_timeout=3"},
	} {
		if got := withConnectTimeout(tc.in); got != tc.want {
			t.Errorf("withConnectTimeout(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestPostgresConns(t *testing.T) {
	for _, tt := range []struct{ cpus, want int }{{1, 8}, {2, 8}, {3, 12}, {8, 32}, {16, 64}} {
		if got := postgresConns(tt.cpus); got != tt.want {
			t.Errorf("postgresConns(%d) = %d, want %d", tt.cpus, got, tt.want)
		}
	}
}
