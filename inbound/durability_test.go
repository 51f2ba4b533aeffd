package inbound_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"go/parser"
	"go/token"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"

	"github.com/scimsync/scimsync/inbound"
	"github.com/scimsync/scimsync/jobs/task"
	"github.com/scimsync/scimsync/store"
	"github.com/scimsync/scimsync/store/storetest"
)

// work is an outbox row as the test compares it.
type work struct {
	Type, Queue, Entity string
}

// ledger reads the outbox work and audit actions a tenant's requests add.
type ledger struct {
	tn           *tenant
	rows, events int
}

func newLedger(tn *tenant) *ledger { return &ledger{tn: tn} }

// since returns the outbox work and audit actions added since the last call.
func (l *ledger) since() ([]work, []string) {
	rows, evs := l.tn.outbox(), l.tn.audit()
	var ws []work
	for _, r := range rows[l.rows:] {
		var p struct{ DirectoryUserID, DirectoryGroupID, OrgID string }
		if err := json.Unmarshal(r.Payload, &p); err != nil {
			l.tn.h.t.Fatalf("outbox payload: %v", err)
		}
		if p.OrgID != l.tn.org.ID || r.OrgID != l.tn.org.ID {
			l.tn.h.t.Errorf("outbox row of org %q/%q, want %q", r.OrgID, p.OrgID, l.tn.org.ID)
		}
		ws = append(ws, work{Type: r.TaskType, Queue: r.Queue, Entity: p.DirectoryUserID + p.DirectoryGroupID})
	}
	var acts []string
	for _, e := range evs[l.events:] {
		acts = append(acts, e.Action+" "+e.EntityID)
		if !strings.HasPrefix(e.Actor, "scim:token:") {
			l.tn.h.t.Errorf("audit actor %q", e.Actor)
		}
	}
	l.rows, l.events = len(rows), len(evs)
	return ws, acts
}

func TestWritesCommitOutboxAndAudit(t *testing.T) {
	eachBackend(t, func(t *testing.T, h *harness) {
		tn := h.tenant()
		l := newLedger(tn)
		const (
			cu = task.TypeConvergeUser
			cg = task.TypeConvergeGroup
			qd = task.QueueDefault
			qc = task.QueueCritical
		)
		var uid, gid string
		steps := []struct {
			name    string
			do      func() reply
			status  int
			work    func() []work
			actions func() []string
		}{
			{
				"create user", func() reply { return tn.do("POST", "/Users", user("ada@example.com")) }, 201,
				func() []work { return []work{{cu, qd, uid}} }, func() []string { return []string{"user.create " + uid} },
			},
			{
				"rename user", func() reply { return tn.do("PATCH", "/Users/"+uid, patchOp(op("replace", "displayName", "Ada"))) }, 200,
				func() []work { return []work{{cu, qd, uid}} }, func() []string { return []string{"user.patch " + uid} },
			},
			{
				"deactivate by PATCH", func() reply {
					return tn.do("PATCH", "/Users/"+uid, patchOp(op("replace", "", map[string]any{"active": false})))
				}, 200,
				func() []work { return []work{{cu, qc, uid}} }, func() []string { return []string{"user.patch " + uid} },
			},
			{
				"reactivate by PUT", func() reply {
					return tn.do("PUT", "/Users/"+uid, map[string]any{"userName": "ada@example.com", "active": true})
				}, 200,
				func() []work { return []work{{cu, qd, uid}} }, func() []string { return []string{"user.replace " + uid} },
			},
			{
				"deactivate by PUT", func() reply {
					return tn.do("PUT", "/Users/"+uid, map[string]any{"userName": "ada@example.com", "active": "False"})
				}, 200,
				func() []work { return []work{{cu, qc, uid}} }, func() []string { return []string{"user.replace " + uid} },
			},
			{
				"unchanged PUT writes nothing", func() reply {
					return tn.do("PUT", "/Users/"+uid, map[string]any{"userName": "ada@example.com", "active": false})
				}, 200,
				func() []work { return nil }, func() []string { return nil },
			},
			{
				"duplicate user fails cleanly", func() reply { return tn.do("POST", "/Users", user("ADA@example.com")) }, 409,
				func() []work { return nil }, func() []string { return nil },
			},
			{
				"bad PATCH fails cleanly", func() reply { return tn.do("PATCH", "/Users/"+uid, patchOp(op("replace", "nope", "x"))) }, 400,
				func() []work { return nil }, func() []string { return nil },
			},
			{
				"create group", func() reply {
					return tn.do("POST", "/Groups", map[string]any{"displayName": "Eng", "members": []any{map[string]any{"value": uid}}})
				}, 201,
				func() []work { return []work{{cg, qd, gid}} }, func() []string { return []string{"group.create " + gid} },
			},
			{
				"group members", func() reply { return tn.do("PATCH", "/Groups/"+gid, patchOp(op("remove", "members", nil))) }, 204,
				func() []work { return []work{{cg, qd, gid}} }, func() []string { return []string{"group.patch " + gid} },
			},
			{
				"duplicate group fails cleanly", func() reply { return tn.do("POST", "/Groups", map[string]any{"displayName": "eng"}) }, 409,
				func() []work { return nil }, func() []string { return nil },
			},
			{
				"delete group", func() reply { return tn.do("DELETE", "/Groups/"+gid, nil) }, 204,
				func() []work { return []work{{cg, qd, gid}} }, func() []string { return []string{"group.delete " + gid} },
			},
			{
				"delete user", func() reply { return tn.do("DELETE", "/Users/"+uid, nil) }, 204,
				func() []work { return []work{{cu, qc, uid}} }, func() []string { return []string{"user.delete " + uid} },
			},
			{
				"delete again is 404 and writes nothing", func() reply { return tn.do("DELETE", "/Users/"+uid, nil) }, 404,
				func() []work { return nil }, func() []string { return nil },
			},
		}
		for _, s := range steps {
			r := s.do()
			if r.Status != s.status {
				t.Fatalf("%s: status %d, want %d: %s", s.name, r.Status, s.status, r.Raw)
			}
			if s.status == 201 {
				if strings.Contains(r.Header.Get("Location"), "/Users/") {
					uid = r.id()
				} else {
					gid = r.id()
				}
			}
			// Read right after the answer: the work is already committed.
			ws, acts := l.since()
			if diff := cmp.Diff(s.work(), ws, cmpEmptyNil); diff != "" {
				t.Errorf("%s: outbox (-want +got):\n%s", s.name, diff)
			}
			if diff := cmp.Diff(s.actions(), acts, cmpEmptyNil); diff != "" {
				t.Errorf("%s: audit (-want +got):\n%s", s.name, diff)
			}
		}
		t.Run("created inactive goes to the critical queue", func(t *testing.T) {
			id := tn.createUser(map[string]any{"userName": "off@example.com", "active": false})
			ws, _ := l.since()
			if diff := cmp.Diff([]work{{cu, qc, id}}, ws); diff != "" {
				t.Errorf("outbox (-want +got):\n%s", diff)
			}
		})
	})
}

// TestWriteIsOneTransaction makes the outbox insert fail and checks that
// the directory row and the audit event are rolled back with it.
func TestWriteIsOneTransaction(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			u := storetest.DatabaseURL(t, b)
			st, err := store.Open(ctx, u, store.Options{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			if _, err := st.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
			raw := rawDB(t, u)
			h := newHarness(t, st)
			tn := h.tenant()
			existing := tn.createUser(user("before@example.com"))

			exec(t, raw, "ALTER TABLE outbox RENAME TO outbox_away")
			tn.do("POST", "/Users", user("lost@example.com")).wantError(t, http.StatusInternalServerError, "")
			tn.do("PATCH", "/Users/"+existing, patchOp(op("replace", "displayName", "Changed"))).wantError(t, http.StatusInternalServerError, "")
			tn.do("POST", "/Groups", map[string]any{"displayName": "Lost"}).wantError(t, http.StatusInternalServerError, "")
			exec(t, raw, "ALTER TABLE outbox_away RENAME TO outbox")

			r := tn.do("GET", "/Users", nil).want(t, http.StatusOK)
			if diff := cmp.Diff([]string{"before@example.com"}, pluck(r.resources(), "userName")); diff != "" {
				t.Errorf("users after failed writes (-want +got):\n%s", diff)
			}
			if got := tn.dirUser(existing); got.Version != 1 || got.DisplayName != "" {
				t.Errorf("failed PATCH changed the row: %+v", got)
			}
			if n := tn.do("GET", "/Groups", nil).Body["totalResults"]; n != 0.0 {
				t.Errorf("groups after failed write: %v", n)
			}
			if evs := tn.audit(); len(evs) != 1 {
				t.Errorf("audit events %d, want 1 (the first create)", len(evs))
			}
			if !strings.Contains(h.logs.String(), "scim request failed") {
				t.Errorf("the 500 was not logged")
			}
			tn.createUser(user("after@example.com"))
		})
	}
}

// rawDB opens a plain connection to a storetest database.
func rawDB(t *testing.T, databaseURL string) *sql.DB {
	t.Helper()
	driver, dsn := "pgx", databaseURL
	if p, ok := strings.CutPrefix(databaseURL, "sqlite://"); ok {
		driver, dsn = "sqlite", "file:"+p+"?_pragma=busy_timeout(10000)"
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func exec(t *testing.T, db *sql.DB, q string) {
	t.Helper()
	if _, err := db.Exec(q); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

// TestNoRedis: the SCIM layer answers writes with no Redis configured, and
// the package does not import a queue client at all.
func TestNoRedis(t *testing.T) {
	eachBackend(t, func(t *testing.T, h *harness) {
		tn := h.tenant()
		id := tn.createUser(user("noredis@example.com"))
		tn.do("PATCH", "/Users/"+id, patchOp(op("replace", "active", false))).want(t, http.StatusOK)
		tn.do("DELETE", "/Users/"+id, nil).want(t, http.StatusNoContent)
	})
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		af, err := parser.ParseFile(fset, f, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range af.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			for _, banned := range []string{"redis", "asynq", "scimsync/broker", "scimsync/jobs\""} {
				if strings.Contains(p+"\"", banned) {
					t.Errorf("%s imports %s", f, p)
				}
			}
		}
	}
}

func TestTokenLastUsedIsCoarse(t *testing.T) {
	eachBackend(t, func(t *testing.T, h *harness) {
		ctx := context.Background()
		tn := h.tenant()
		lastUsed := func() *time.Time {
			toks, err := h.st.SCIMTokens(ctx, tn.org.ID)
			if err != nil {
				t.Fatal(err)
			}
			for _, tok := range toks {
				if tok.ID == tn.tokenID {
					return tok.LastUsedAt
				}
			}
			t.Fatalf("token %s not listed", tn.tokenID)
			return nil
		}
		if lu := lastUsed(); lu != nil {
			t.Fatalf("lastUsedAt before use = %v", lu)
		}
		start := h.clock.Now()
		tn.do("GET", "/Users", nil).want(t, http.StatusOK)
		first := lastUsed()
		if first == nil || !first.Equal(start.UTC().Truncate(time.Second)) {
			t.Fatalf("lastUsedAt = %v, want %v", first, start.UTC().Truncate(time.Second))
		}
		h.clock.Advance(30 * time.Second)
		tn.do("GET", "/Users", nil).want(t, http.StatusOK)
		if got := lastUsed(); !got.Equal(*first) {
			t.Errorf("a second request within a minute wrote lastUsedAt = %v", got)
		}
		h.clock.Advance(31 * time.Second)
		tn.do("GET", "/Users", nil).want(t, http.StatusOK)
		want := h.clock.Now().UTC().Truncate(time.Second)
		if got := lastUsed(); got == nil || !got.Equal(want) {
			t.Errorf("after a minute lastUsedAt = %v, want %v", got, want)
		}
		// A refused request is no use.
		other, otherID := h.newToken(tn.org.ID, nil)
		if err := h.st.RevokeSCIMToken(ctx, tn.org.ID, otherID); err != nil {
			t.Fatal(err)
		}
		tn.send(request{method: "GET", path: "/Users", header: map[string]string{"Authorization": "Bearer " + other}}).want(t, http.StatusUnauthorized)
		toks, _ := h.st.SCIMTokens(ctx, tn.org.ID)
		for _, tok := range toks {
			if tok.ID == otherID && tok.LastUsedAt != nil {
				t.Errorf("revoked token marked used")
			}
		}
	})
}

func TestConcurrentPatches(t *testing.T) {
	eachBackend(t, func(t *testing.T, h *harness) {
		tn := h.tenant()
		id := tn.createUser(user("busy@example.com"))
		gid := tn.createGroup(map[string]any{"displayName": "Busy"})
		const n = 20
		members := make([]string, n)
		for i := range members {
			members[i] = tn.createUser(user(fmt.Sprintf("m%d@example.com", i)))
		}
		var wg sync.WaitGroup
		errs := make(chan string, 2*n)
		for i := range n {
			wg.Add(2)
			go func() {
				defer wg.Done()
				r := tn.send(request{method: "PATCH", path: "/Users/" + id, body: patchOp(
					op("add", "emails", []any{map[string]any{"type": "other", "value": fmt.Sprintf("e%02d@example.com", i)}}),
				)})
				if r.Status != http.StatusOK {
					errs <- fmt.Sprintf("user PATCH %d: %d %s", i, r.Status, r.Raw)
				}
			}()
			go func() {
				defer wg.Done()
				r := tn.send(request{method: "PATCH", path: "/Groups/" + gid, body: patchOp(
					op("add", "members", []any{map[string]any{"value": members[i]}}),
				)})
				if r.Status != http.StatusNoContent {
					errs <- fmt.Sprintf("group PATCH %d: %d %s", i, r.Status, r.Raw)
				}
			}()
		}
		wg.Wait()
		close(errs)
		for e := range errs {
			t.Error(e)
		}
		r := tn.do("GET", "/Users/"+id, nil).want(t, http.StatusOK)
		var got []string
		for _, e := range r.Body["emails"].([]any) {
			got = append(got, e.(map[string]any)["value"].(string))
		}
		slices.Sort(got)
		var want []string
		for i := range n {
			want = append(want, fmt.Sprintf("e%02d@example.com", i))
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("emails after concurrent adds (-want +got):\n%s", diff)
		}
		if v := r.Body["meta"].(map[string]any)["version"]; v != fmt.Sprintf(`W/"%d"`, n+1) {
			t.Errorf("version %v, want %d writes", v, n+1)
		}
		if row := tn.dirUser(id); row.Email != "e00@example.com" && !strings.HasPrefix(row.Email, "e") {
			t.Errorf("row email %q", row.Email)
		}
		g := tn.do("GET", "/Groups/"+gid, nil).want(t, http.StatusOK)
		if got := len(g.Body["members"].([]any)); got != n {
			t.Errorf("group has %d members after concurrent adds, want %d", got, n)
		}
	})
}

// TestDatabaseDown takes Postgres away from a running server: requests
// get 503 with Retry-After, never a 500 or a hang, nothing half-written
// shows up, and the server serves again once the database is back. Tokens
// are cached, so that requests reach the handlers; a token not yet cached
// meets the outage in the token lookup.
func TestDatabaseDown(t *testing.T) {
	st, px := storetest.OpenBehindProxy(t)
	h := newHarness(t, st, func(s *inbound.Server) { s.AuthCacheTTL = time.Hour })
	tn := h.tenant()
	tn.createUser(user("before@example.com"))
	uncached, _ := h.newToken(tn.org.ID, nil)

	px.Down()
	for _, rq := range []request{
		{method: "POST", path: "/Users", body: user("lost@example.com")},
		{method: "GET", path: "/Users?filter=" + url.QueryEscape(`userName eq "before@example.com"`)},
		{method: "POST", path: "/Groups", body: map[string]any{"displayName": "Lost"}},
		{method: "GET", path: "/Users", header: map[string]string{"Authorization": "Bearer " + uncached}},
	} {
		r := tn.send(rq)
		r.wantError(t, http.StatusServiceUnavailable, "")
		if got := r.Header.Get("Retry-After"); got != "5" {
			t.Errorf("%s %s: Retry-After %q, want 5", rq.method, rq.path, got)
		}
		if !strings.Contains(r.Body["detail"].(string), "database") {
			t.Errorf("%s %s: detail %q does not say what is wrong", rq.method, rq.path, r.Body["detail"])
		}
	}
	logs := h.logs.String()
	for _, want := range []string{`"path":"/scim/v2/Users"`, `"path":"/scim/v2/Groups"`, "create directory user", "get SCIM token"} {
		if !strings.Contains(logs, want) {
			t.Errorf("the 503s' warnings do not mention %s:\n%s", want, logs)
		}
	}

	px.Up()
	// Each pooled connection the outage cut fails the one request that
	// finds it (within a second of its last use, before the driver pings
	// idle ones), so a few may get 503 first.
	r := tn.do("GET", "/Users", nil)
	for attempt := 1; r.Status == http.StatusServiceUnavailable && attempt < 5; attempt++ {
		r = tn.do("GET", "/Users", nil)
	}
	r.want(t, http.StatusOK)
	if diff := cmp.Diff([]string{"before@example.com"}, pluck(r.resources(), "userName")); diff != "" {
		t.Errorf("users after the outage (-want +got):\n%s", diff)
	}
	tn.createUser(user("after@example.com"))
}
