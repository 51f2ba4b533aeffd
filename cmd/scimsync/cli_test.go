package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/scimsync/scimsync/broker/brokertest"
	"github.com/scimsync/scimsync/internal/syncbuf"
	"github.com/scimsync/scimsync/invalidation"
	"github.com/scimsync/scimsync/store"
	"github.com/scimsync/scimsync/store/storetest"
)

// runCLI runs the command line with env and returns exit code, stdout, stderr.
func runCLI(t *testing.T, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(context.Background(), args, &out, &errOut, func(k string) string { return env[k] })
	return code, out.String(), errOut.String()
}

func TestHelpEverywhere(t *testing.T) {
	for _, args := range [][]string{
		{"--help"}, {"serve", "--help"}, {"api", "--help"}, {"worker", "--help"}, {"scheduler", "--help"},
		{"migrate", "--help"}, {"org", "create", "--help"}, {"scim", "enable", "--help"}, {"scim", "disable", "--help"},
		{"scim-token", "create", "--help"}, {"webhook", "listen", "--help"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			code, out, errOut := runCLI(t, nil, args...)
			if code != exitOK {
				t.Fatalf("exit %d, stderr %q", code, errOut)
			}
			if !strings.Contains(out+errOut, "Usage: scimsync") {
				t.Errorf("no usage text: %q", out+errOut)
			}
		})
	}
	_, _, errOut := runCLI(t, nil, "serve", "--help")
	for _, f := range []string{"-database-url", "-redis-url", "DATABASE_URL", "SCIMSYNC_DEPROVISION_GUARD"} {
		if !strings.Contains(errOut, f) {
			t.Errorf("serve --help lacks %q", f)
		}
	}
}

func TestUsageErrors(t *testing.T) {
	dir := t.TempDir()
	db := map[string]string{"DATABASE_URL": "sqlite://" + filepath.Join(dir, "x.db")}
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"no command", nil, nil, "Usage"},
		{"unknown command", nil, []string{"frobnicate"}, "unknown command"},
		{"mysql", map[string]string{"DATABASE_URL": "mysql://x"}, []string{"serve"}, "supported: sqlite://PATH"},
		{"bad flag", nil, []string{"serve", "--nope"}, "flag provided but not defined"},
		{"bad addr flag", nil, []string{"api", "--http-addr", "nope"}, "SCIMSYNC_HTTP_ADDR"},
		{"stray argument", nil, []string{"migrate", "extra"}, "unexpected argument"},
		{"org without verb", db, []string{"org"}, "expected one of: create"},
		{"org without name", db, []string{"org", "create"}, "--name is required"},
		{"scim bad verb", db, []string{"scim", "toggle"}, "unknown subcommand"},
		{"scim without org", db, []string{"scim", "enable"}, "--org is required"},
		{"token bad ttl", db, []string{"scim-token", "create", "--org", "x", "--ttl-days", "-3"}, "ttlDays"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runCLI(t, tt.env, tt.args...)
			if code != exitUsage {
				t.Errorf("exit = %d, want %d", code, exitUsage)
			}
			if !strings.Contains(out+errOut, tt.want) {
				t.Errorf("output %q lacks %q", out+errOut, tt.want)
			}
		})
	}
}

func TestManagementCommands(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			env := map[string]string{"DATABASE_URL": storetest.DatabaseURL(t, b), "SCIMSYNC_PUBLIC_URL": "https://sync.example.com"}
			code, out, errOut := runCLI(t, env, "migrate")
			if code != 0 || !strings.Contains(out, fmt.Sprintf("applied %d migration(s); schema version %d", store.LatestSchemaVersion(), store.LatestSchemaVersion())) {
				t.Fatalf("migrate = %d %q %q", code, out, errOut)
			}
			if code, out, _ := runCLI(t, env, "migrate"); code != 0 || !strings.Contains(out, "applied 0 migration") {
				t.Errorf("second migrate = %d %q", code, out)
			}
			code, out, errOut = runCLI(t, env, "org", "create", "--name", "Acme")
			if code != 0 {
				t.Fatalf("org create = %d %q", code, errOut)
			}
			var org struct {
				ID          string
				Name        string
				SCIMEnabled bool
			}
			if err := json.Unmarshal([]byte(out), &org); err != nil || org.Name != "Acme" || org.ID == "" {
				t.Fatalf("org create printed %q (%v)", out, err)
			}
			if code, out, _ := runCLI(t, env, "scim", "enable", "--org", org.ID); code != 0 || !strings.Contains(out, `"scimEnabled": true`) {
				t.Errorf("scim enable = %d %q", code, out)
			}
			if code, out, _ := runCLI(t, env, "scim", "disable", "--org", org.ID); code != 0 || !strings.Contains(out, `"scimEnabled": false`) {
				t.Errorf("scim disable = %d %q", code, out)
			}
			code, out, _ = runCLI(t, env, "scim-token", "create", "--org", org.ID, "--description", "okta", "--ttl-days", "90")
			if code != 0 || !strings.Contains(out, "SCIM URL: https://sync.example.com/scim/v2") || !regexp.MustCompile(`Token: +sst_[A-Za-z0-9_-]{43}`).MatchString(out) {
				t.Errorf("scim-token create = %d %q", code, out)
			}
			code, _, errOut = runCLI(t, env, "scim", "enable", "--org", "missing")
			if code != exitError || !strings.Contains(errOut, `organization "missing" not found`) {
				t.Errorf("unknown org = %d %q", code, errOut)
			}
		})
	}
}

// TestServeStartsAndStops runs `serve` with embedded defaults: it must
// answer, and exit 0 when its context ends (as on SIGTERM).
func TestServeStartsAndStops(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{
		"DATABASE_URL":              "sqlite://" + filepath.Join(dir, "scimsync.db"),
		"SCIMSYNC_HTTP_ADDR":        "127.0.0.1:0",
		"SCIMSYNC_ADMIN_TOKEN":      "serve-test-admin-token",
		"SCIMSYNC_SECRET_KEY":       strings.Repeat("ab", 32),
		"SCIMSYNC_SHUTDOWN_TIMEOUT": "5s",
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var errOut syncbuf.Buffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"serve"}, io.Discard, &errOut, func(k string) string { return env[k] })
	}()
	addrRE := regexp.MustCompile(`msg="http listening" addr=(127\.0\.0\.1:\d+)`)
	var addr string
	for deadline := time.Now().Add(20 * time.Second); addr == "" && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if m := addrRE.FindStringSubmatch(errOut.String()); m != nil {
			addr = m[1]
		}
		select {
		case code := <-done:
			t.Fatalf("serve exited early with %d: %s", code, errOut.String())
		default:
		}
	}
	if addr == "" {
		t.Fatalf("serve did not listen: %s", errOut.String())
	}
	if !strings.Contains(errOut.String(), "in-memory, jobs do not survive restart") {
		t.Error("log does not say Redis is embedded")
	}
	for path, want := range map[string]int{"/healthz": 200, "/readyz": 200, "/metrics": 200, "/monitoring/": 401} {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s = %d, want %d", path, resp.StatusCode, want)
		}
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("serve exit = %d after shutdown: %s", code, errOut.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("serve did not stop after its context ended")
	}
	if !strings.Contains(errOut.String(), "msg=stopped") {
		t.Error("no graceful stop in the log")
	}
	if strings.Contains(errOut.String(), "serve-test-admin-token") {
		t.Error("the admin token appears in the log")
	}
}

// TestSCIMSwitchTellsServers: `scim enable|disable` runs in a process of its
// own, so it tells the processes serving SCIM over Redis, which drop their
// cached token checks of the organization at once.
func TestSCIMSwitchTellsServers(t *testing.T) {
	br := brokertest.Open(t)
	co := br.Opt.(asynq.RedisClientOpt)
	ctx := context.Background()
	ps := br.Client().Subscribe(ctx, br.Channel(invalidation.ChannelName))
	t.Cleanup(func() { ps.Close() })
	if _, err := ps.Receive(ctx); err != nil { // the subscription's confirmation
		t.Fatal(err)
	}
	env := map[string]string{"DATABASE_URL": storetest.DatabaseURL(t, storetest.Backends()[0]), "REDIS_URL": fmt.Sprintf("redis://%s/%d", co.Addr, co.DB)}
	code, out, errOut := runCLI(t, env, "org", "create", "--name", "Acme")
	if code != 0 {
		t.Fatalf("org create = %d %q", code, errOut)
	}
	var org struct{ ID string }
	if err := json.Unmarshal([]byte(out), &org); err != nil {
		t.Fatal(err)
	}
	for _, verb := range []string{"disable", "enable"} {
		t.Run(verb, func(t *testing.T) {
			if code, _, errOut := runCLI(t, env, "scim", verb, "--org", org.ID); code != 0 {
				t.Fatalf("scim %s = %d %q", verb, code, errOut)
			}
			rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			msg, err := ps.ReceiveMessage(rctx)
			if err != nil {
				t.Fatalf("no invalidation published: %v", err)
			}
			if want := `{"orgId":"` + org.ID + `"}`; msg.Payload != want {
				t.Errorf("published %q, want %q", msg.Payload, want)
			}
		})
	}

	t.Run("embedded redis", func(t *testing.T) {
		delete(env, "REDIS_URL")
		code, _, errOut := runCLI(t, env, "scim", "disable", "--org", org.ID)
		if code != 0 || !strings.Contains(errOut, "REDIS_URL is not set: a running scimsync applies this within 2s") {
			t.Errorf("scim disable = %d %q; want the delay named", code, errOut)
		}
	})
}
