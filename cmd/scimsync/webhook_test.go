package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/scimsync/scimsync/internal/syncbuf"
)

var testWebhookSecret = "whsec_" + base64.StdEncoding.EncodeToString([]byte("scimsync-test-webhook-secret-32b"))

// listener is a running `webhook listen`.
type listener struct {
	addr        string
	out, errOut *syncbuf.Buffer
	stop        func() int // cancels its context and returns its exit code
}

func startListener(t *testing.T, env map[string]string, args ...string) *listener {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	l := &listener{out: &syncbuf.Buffer{}, errOut: &syncbuf.Buffer{}}
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, append([]string{"webhook", "listen", "--addr", "127.0.0.1:0"}, args...), l.out, l.errOut, func(k string) string { return env[k] })
	}()
	l.stop = func() int {
		cancel()
		select {
		case code := <-done:
			return code
		case <-time.After(10 * time.Second):
			t.Fatal("webhook listen did not stop after its context ended")
			return -1
		}
	}
	addrRE := regexp.MustCompile(`msg=listening addr=(127\.0\.0\.1:\d+)`)
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if m := addrRE.FindStringSubmatch(l.errOut.String()); m != nil {
			l.addr = m[1]
			return l
		}
		select {
		case code := <-done:
			t.Fatalf("webhook listen exited with %d: %s", code, l.errOut.String())
		default:
		}
	}
	cancel()
	t.Fatalf("webhook listen did not listen: %s", l.errOut.String())
	return nil
}

// deliver posts body signed with secret at ts, as a webhook sender does.
func deliver(t *testing.T, addr, secret, id string, ts time.Time, body string) int {
	t.Helper()
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := wh.Sign(id, ts, []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, "http://"+addr+"/", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(standardwebhooks.HeaderWebhookID, id)
	req.Header.Set(standardwebhooks.HeaderWebhookTimestamp, strconv.FormatInt(ts.Unix(), 10))
	req.Header.Set(standardwebhooks.HeaderWebhookSignature, sig)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

const (
	memberEvent = `{"id":"ev_1","type":"member.provisioned","orgId":"org_1","sequence":1,"createdAt":"2026-01-02T03:04:05Z",
  "data":{"id":"m_1","userId":"u_1","status":"pending_setup","role":"member","email":"ann@example.com"}}`
	groupEvent      = `{"id":"ev_2","type":"group.created","orgId":"org_1","sequence":2,"createdAt":"2026-01-02T03:04:05Z","data":{"id":"g_1","name":"Engineering","memberCount":0,"members":[]}}`
	groupLinkEvent  = `{"id":"ev_3","type":"group.member_added","orgId":"org_1","sequence":3,"createdAt":"2026-01-02T03:04:05Z","data":{"group":{"id":"g_1","name":"Engineering"},"member":{"id":"m_1","email":"ann@example.com","status":"pending_setup"}}}`
	runEvent        = `{"id":"ev_4","type":"sync_run.blocked","orgId":"org_1","sequence":4,"createdAt":"2026-01-02T03:04:05Z","data":{"id":"run_9","status":"blocked"}}`
	forgedEvent     = `{"id":"ev_5","type":"member.removed","orgId":"org_1","sequence":5,"createdAt":"2026-01-02T03:04:05Z","data":{"email":"forged@example.com","status":"active"}}`
	staleEvent      = `{"id":"ev_6","type":"member.removed","orgId":"org_1","sequence":6,"createdAt":"2026-01-02T03:04:05Z","data":{"email":"stale@example.com","status":"active"}}`
	otherWebhookKey = "whsec_b3RoZXItc2VjcmV0LW9mLXRoaXJ0eS10d28tYnl0ZXM="
)

func TestWebhookListen(t *testing.T) {
	l := startListener(t, map[string]string{webhookSecretEnv: testWebhookSecret})
	now := time.Now()

	for _, c := range []struct {
		name, id, body, want string
	}{
		{"member", "ev_1", memberEvent, "1\tmember.provisioned\torg_1\tann@example.com pending_setup\n"},
		{"group", "ev_2", groupEvent, "2\tgroup.created\torg_1\t\"Engineering\" (0 members)\n"},
		{"group member", "ev_3", groupLinkEvent, "3\tgroup.member_added\torg_1\t\"Engineering\" ann@example.com\n"},
		{"run", "ev_4", runEvent, "4\tsync_run.blocked\torg_1\trun run_9 blocked\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if code := deliver(t, l.addr, testWebhookSecret, c.id, now, c.body); code != http.StatusNoContent {
				t.Fatalf("status %d, want 204: %s", code, l.errOut.String())
			}
			if !strings.Contains(l.out.String(), c.want) {
				t.Errorf("stdout %q lacks %q", l.out.String(), c.want)
			}
		})
	}

	t.Run("duplicate", func(t *testing.T) {
		if code := deliver(t, l.addr, testWebhookSecret, "ev_1", now.Add(time.Second), memberEvent); code != http.StatusNoContent {
			t.Fatalf("status %d, want 204 (received before)", code)
		}
		if n := strings.Count(l.out.String(), "ann@example.com pending_setup"); n != 1 {
			t.Errorf("the event is printed %d times, want once: %q", n, l.out.String())
		}
		if n := strings.Count(l.errOut.String(), `msg="duplicate delivery, ignored" webhook_id=ev_1`); n != 1 {
			t.Errorf("duplicate reported %d times, want once: %s", n, l.errOut.String())
		}
	})

	for _, c := range []struct {
		name, secret, id string
		ts               time.Time
		body             string
		code             int
		reason           string
	}{
		{"wrong signature", otherWebhookKey, "ev_5", now, forgedEvent, 401, "no matching signature"},
		{"old timestamp", testWebhookSecret, "ev_6", now.Add(-10 * time.Minute), staleEvent, 401, "timestamp too old"},
		{"future timestamp", testWebhookSecret, "ev_9", now.Add(10 * time.Minute), staleEvent, 401, "timestamp too new"},
		{"malformed JSON", testWebhookSecret, "ev_7", now, `{"id":"ev_7","type":`, 400, "body is not an event"},
		{"not an event", testWebhookSecret, "ev_8", now, `{"hello":"world"}`, 400, "no type or orgId"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if code := deliver(t, l.addr, c.secret, c.id, c.ts, c.body); code != c.code {
				t.Errorf("status %d, want %d", code, c.code)
			}
			if !strings.Contains(l.errOut.String(), `webhook_id=`+c.id) || !strings.Contains(l.errOut.String(), c.reason) {
				t.Errorf("log does not give the reason %q for %s: %s", c.reason, c.id, l.errOut.String())
			}
		})
	}
	t.Run("no signature headers", func(t *testing.T) {
		resp, err := http.Post("http://"+l.addr+"/", "application/json", strings.NewReader(memberEvent))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("status %d, want 400", resp.StatusCode)
		}
	})

	if code := l.stop(); code != exitOK {
		t.Errorf("exit %d after its context ended: %s", code, l.errOut.String())
	}
	for _, s := range []string{"forged@", "stale@", "ev_7", "hello"} {
		if strings.Contains(l.out.String(), s) {
			t.Errorf("a refused delivery was printed (%s): %q", s, l.out.String())
		}
	}
	if n := strings.Count(l.out.String(), "\n"); n != 4 {
		t.Errorf("%d lines printed, want 4: %q", n, l.out.String())
	}
	if !strings.Contains(l.errOut.String(), "msg=stopped") {
		t.Error("no clean stop in the log")
	}
	key := strings.TrimPrefix(testWebhookSecret, "whsec_")
	if strings.Contains(l.out.String()+l.errOut.String(), key) {
		t.Error("the secret appears in the output")
	}
}

func TestWebhookListenJSON(t *testing.T) {
	l := startListener(t, nil, "--json", "--secret", testWebhookSecret)
	if code := deliver(t, l.addr, testWebhookSecret, "ev_1", time.Now(), memberEvent); code != http.StatusNoContent {
		t.Fatalf("status %d: %s", code, l.errOut.String())
	}
	if code := deliver(t, l.addr, testWebhookSecret, "ev_2", time.Now(), groupEvent); code != http.StatusNoContent {
		t.Fatalf("status %d: %s", code, l.errOut.String())
	}
	if code := l.stop(); code != exitOK {
		t.Errorf("exit %d", code)
	}
	lines := strings.Split(strings.TrimSuffix(l.out.String(), "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("want 2 lines, got %q", l.out.String())
	}
	for i, want := range []string{memberEvent, groupEvent} {
		var compact bytes.Buffer
		if err := json.Compact(&compact, []byte(want)); err != nil {
			t.Fatal(err)
		}
		if lines[i] != compact.String() {
			t.Errorf("line %d = %s, want %s", i, lines[i], compact.String())
		}
	}
}

func TestWebhookListenUsage(t *testing.T) {
	for _, c := range []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"no verb", nil, []string{"webhook"}, "expected one of: listen"},
		{"no secret", nil, []string{"webhook", "listen"}, "--secret or $SCIMSYNC_WEBHOOK_SECRET is required"},
		{"bad secret", nil, []string{"webhook", "listen", "--secret", "whsec_not*base64"}, "not whsec_ followed by base64"},
		{"bad env secret", map[string]string{webhookSecretEnv: "whsec_"}, []string{"webhook", "listen"}, "not whsec_ followed by base64"},
		{"stray argument", nil, []string{"webhook", "listen", "--secret", testWebhookSecret, "extra"}, "unexpected argument"},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, out, errOut := runCLI(t, c.env, c.args...)
			if code != exitUsage {
				t.Errorf("exit %d, want %d", code, exitUsage)
			}
			if !strings.Contains(out+errOut, c.want) {
				t.Errorf("output %q lacks %q", out+errOut, c.want)
			}
			if strings.Contains(out+errOut, "not*base64") {
				t.Error("the secret is echoed")
			}
		})
	}
	if code, _, errOut := runCLI(t, nil, "webhook", "listen", "--addr", "nope", "--secret", testWebhookSecret); code != exitError || !strings.Contains(errOut, "nope") {
		t.Errorf("bad address: exit %d, %q", code, errOut)
	}
}
