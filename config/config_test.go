package config

import (
	"errors"
	"flag"
	"io"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestDefaults(t *testing.T) {
	c, err := FromEnv(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		HTTPAddr:          "127.0.0.1:8080",
		PublicURL:         "http://127.0.0.1:8080",
		DatabaseURL:       "sqlite://scimsync.db",
		DataDir:           ".",
		MailFrom:          "scimsync <no-reply@localhost>",
		ReconcileSchedule: "@every 1h",
		InviteTTL:         7 * 24 * time.Hour,
		InviteResendAfter: 24 * time.Hour,
		InviteMaxSends:    5,
		DeprovisionGuard:  0.1,
		ShutdownTimeout:   30 * time.Second,

		ReconcileStaleAfter: 2 * time.Minute,
		EventRetention:      30 * 24 * time.Hour,
		ConsoleIdleTimeout:  30 * time.Minute,
	}
	if diff := cmp.Diff(want, c); diff != "" {
		t.Errorf("defaults (-want +got):\n%s", diff)
	}
}

func TestFlagOverridesEnv(t *testing.T) {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	build := Bind(fs, env(map[string]string{"SCIMSYNC_HTTP_ADDR": "0.0.0.0:9000", "DATABASE_URL": "postgres://u@db:5432/x"}))
	if err := fs.Parse([]string{"--http-addr", "127.0.0.1:7000", "--public-url", "https://sync.example.com/"}); err != nil {
		t.Fatal(err)
	}
	c, err := build()
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTPAddr != "127.0.0.1:7000" || c.PublicURL != "https://sync.example.com" || c.DatabaseURL != "postgres://u@db:5432/x" {
		t.Errorf("got addr=%q public=%q db=%q", c.HTTPAddr, c.PublicURL, c.DatabaseURL)
	}
}

func TestInvalid(t *testing.T) {
	tests := []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"DATABASE_URL": "mysql://x"}, "supported: sqlite://PATH"},
		{map[string]string{"DATABASE_URL": "scimsync.db"}, "DATABASE_URL"},
		{map[string]string{"REDIS_URL": "memcached://x"}, "REDIS_URL: unsupported scheme"},
		{map[string]string{"SCIMSYNC_HTTP_ADDR": "8080"}, "SCIMSYNC_HTTP_ADDR"},
		{map[string]string{"SCIMSYNC_PUBLIC_URL": "ftp://x"}, "SCIMSYNC_PUBLIC_URL"},
		{map[string]string{"SMTP_URL": "mail.example.com"}, "SMTP_URL"},
		{map[string]string{"SCIMSYNC_RECONCILE_SCHEDULE": "every hour"}, "SCIMSYNC_RECONCILE_SCHEDULE"},
		{map[string]string{"SCIMSYNC_INVITE_MAX_SENDS": "0"}, "SCIMSYNC_INVITE_MAX_SENDS"},
		{map[string]string{"SCIMSYNC_INVITE_RESEND_AFTER": "-1h"}, "SCIMSYNC_INVITE_RESEND_AFTER"},
		{map[string]string{"SCIMSYNC_DEPROVISION_GUARD": "150%"}, "outside"},
		{map[string]string{"SCIMSYNC_LOG_LEVEL": "loud"}, "SCIMSYNC_LOG_LEVEL"},
		{map[string]string{"SCIMSYNC_ADMIN_TOKEN": "short"}, "at least 16"},
		{map[string]string{"SCIMSYNC_METRICS_ADDR": "9090"}, "SCIMSYNC_METRICS_ADDR"},
		{map[string]string{"SCIMSYNC_DB_MAX_CONNS": "-1"}, "SCIMSYNC_DB_MAX_CONNS"},
		{map[string]string{"SCIMSYNC_DB_MAX_CONNS": "many"}, "SCIMSYNC_DB_MAX_CONNS"},
		{map[string]string{"SCIMSYNC_DEBUG_ADDR": "6060"}, "SCIMSYNC_DEBUG_ADDR"},
		{map[string]string{"SCIMSYNC_DEBUG_ADDR": ":6060"}, "not a loopback address"},
		{map[string]string{"SCIMSYNC_DEBUG_ADDR": "0.0.0.0:6060"}, "not a loopback address"},
		{map[string]string{"SCIMSYNC_DEBUG_ADDR": "192.0.2.1:6060"}, "not a loopback address"},
		{map[string]string{"SCIMSYNC_DEBUG_ADDR": "example.com:6060"}, "not a loopback address"},
		{map[string]string{"SCIMSYNC_RECONCILE_STALE_AFTER": "0s"}, "SCIMSYNC_RECONCILE_STALE_AFTER"},
		{map[string]string{"SCIMSYNC_EVENT_RETENTION": "30d"}, "SCIMSYNC_EVENT_RETENTION"},
		{map[string]string{"SCIMSYNC_WEBHOOK_ALLOW_PRIVATE": "maybe"}, "SCIMSYNC_WEBHOOK_ALLOW_PRIVATE"},
		{map[string]string{"SCIMSYNC_TRUSTED_PROXIES": "10.0.0.0/8, proxy.internal"}, "SCIMSYNC_TRUSTED_PROXIES"},
		{map[string]string{"SCIMSYNC_TRUSTED_PROXIES": "10.0.0.0/33"}, "SCIMSYNC_TRUSTED_PROXIES"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			_, err := FromEnv(env(tt.env))
			if !errors.Is(err, ErrUsage) {
				t.Fatalf("err = %v, want ErrUsage", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %q, want it to mention %q", err, tt.want)
			}
		})
	}
}

func TestAllErrorsReported(t *testing.T) {
	_, err := FromEnv(env(map[string]string{"DATABASE_URL": "mysql://x", "REDIS_URL": "x://y"}))
	if err == nil || !strings.Contains(err.Error(), "DATABASE_URL") || !strings.Contains(err.Error(), "REDIS_URL") {
		t.Errorf("err = %v, want both settings named", err)
	}
}

func TestValid(t *testing.T) {
	tests := []map[string]string{
		{"DATABASE_URL": "postgresql://u:p@127.0.0.1/test?sslmode=disable"},
		{"DATABASE_URL": "sqlite:///var/lib/scimsync/data.db"},
		{"REDIS_URL": "rediss://:pw@redis:6380/2"},
		{"REDIS_URL": "redis-sentinel://:pw@s1:26379,s2:26379?master=mymaster"},
		{"REDIS_URL": "redis-cluster://n1:7000,n2:7001"},
		{"SMTP_URL": "smtp://user:pass@mail:1025"},
		{"SCIMSYNC_RECONCILE_SCHEDULE": "*/15 * * * *"},
		{"SCIMSYNC_DEPROVISION_GUARD": "0.25"},
		{"SCIMSYNC_WEBHOOK_ALLOW_PRIVATE": "true"},
		{"SCIMSYNC_DB_MAX_CONNS": "8"},
		{"SCIMSYNC_DEBUG_ADDR": "127.0.0.1:6060"},
		{"SCIMSYNC_DEBUG_ADDR": "[::1]:6060"},
		{"SCIMSYNC_DEBUG_ADDR": "localhost:0"},
	}
	for _, e := range tests {
		if _, err := FromEnv(env(e)); err != nil {
			t.Errorf("%v: %v", e, err)
		}
	}
}

func TestDataDirFollowsSQLite(t *testing.T) {
	c, err := FromEnv(env(map[string]string{"DATABASE_URL": "sqlite:///var/lib/scimsync/data.db"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.DataDir != "/var/lib/scimsync" {
		t.Errorf("DataDir = %q", c.DataDir)
	}
}

func TestTrustedProxies(t *testing.T) {
	c, err := FromEnv(env(map[string]string{"SCIMSYNC_TRUSTED_PROXIES": " 10.1.2.3/8, 192.0.2.7 ,fd00::/8,, ::ffff:198.51.100.1"}))
	if err != nil {
		t.Fatal(err)
	}
	want := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.0.2.7/32"), netip.MustParsePrefix("fd00::/8"), netip.MustParsePrefix("198.51.100.1/32")}
	if diff := cmp.Diff(want, c.TrustedProxies, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
		t.Errorf("TrustedProxies (-want +got):\n%s", diff)
	}
}

func TestParseShare(t *testing.T) {
	for in, want := range map[string]float64{"10%": 0.1, "0.5": 0.5, "0%": 0, "100%": 1} {
		got, err := ParseShare(in)
		if err != nil || got != want {
			t.Errorf("ParseShare(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
}

func TestVarsHaveFlags(t *testing.T) {
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	Bind(fs, env(nil))
	for _, v := range Vars {
		if fs.Lookup(v.Flag) == nil {
			t.Errorf("%s has no flag", v.Env)
		}
	}
}
