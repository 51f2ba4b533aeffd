package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/scimsync/scimsync/connectors/okta/oktafake"
	"github.com/scimsync/scimsync/internal/secret"
	"github.com/scimsync/scimsync/jobs/task"
	"github.com/scimsync/scimsync/lifecycle"
	"github.com/scimsync/scimsync/store"
	"github.com/scimsync/scimsync/store/storetest"
)

func TestReconcileCommand(t *testing.T) {
	ctx := context.Background()
	key := bytes.Repeat([]byte{7}, 32)
	env := map[string]string{
		"DATABASE_URL":        "sqlite://" + filepath.Join(t.TempDir(), "scimsync.db"),
		"SCIMSYNC_SECRET_KEY": fmt.Sprintf("%x", key),
	}
	code, out, errOut := runCLI(t, env, "org", "create", "--name", "Acme")
	if code != exitOK {
		t.Fatalf("org create: %d %s", code, errOut)
	}
	var org struct{ ID string }
	json.Unmarshal([]byte(out), &org)

	st, err := store.Open(ctx, env["DATABASE_URL"], store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	idp := oktafake.New(t, oktafake.WithMaxLimit(20))
	var users []oktafake.User
	for i := range 50 {
		users = append(users, idp.AddUser(oktafake.User{Email: fmt.Sprintf("u%02d@example.com", i), FirstName: "U", LastName: fmt.Sprint(i)}))
	}
	box, _ := secret.NewBox(key)
	creds, _ := json.Marshal(map[string]string{"apiToken": idp.Token()})
	settings, _ := json.Marshal(map[string]string{"orgUrl": idp.URL()})
	if err := st.PutConnector(ctx, &store.Connector{OrgID: org.ID, Type: "okta", Settings: string(settings), Credentials: box.Seal(creds, []byte(org.ID))}); err != nil {
		t.Fatal(err)
	}
	// converges takes the outbox's rows and counts the directory users
	// they converge.
	converges := func() int {
		n := 0
		for _, r := range storetest.TakeOutbox(t, st) {
			var p task.ConvergeBatch
			if r.TaskType != task.TypeConvergeUsers || json.Unmarshal(r.Payload, &p) != nil {
				t.Errorf("outbox row %s %s", r.TaskType, r.Payload)
			}
			n += len(p.IDs)
		}
		return n
	}

	t.Run("usage", func(t *testing.T) {
		if code, _, errOut := runCLI(t, env, "reconcile", "--help"); code != exitOK || !strings.Contains(errOut, "Usage: scimsync reconcile --org ID") {
			t.Errorf("--help: %d %q", code, errOut)
		}
		if code, _, _ := runCLI(t, env, "reconcile"); code != exitUsage {
			t.Errorf("no --org: exit %d", code)
		}
		if code, _, errOut := runCLI(t, env, "reconcile", "--org", "nope"); code != exitError || !strings.Contains(errOut, "not found") {
			t.Errorf("unknown org: %d %q", code, errOut)
		}
	})

	code, out, errOut = runCLI(t, env, "reconcile", "--org", org.ID, "--dry-run")
	if code != exitOK {
		t.Fatalf("dry run: exit %d: %s", code, errOut)
	}
	for _, want := range []string{"succeeded (dry run: nothing was changed)", "Pulled from okta in full: 3 pages (", "requests), 50 users", "provision     50", "ACTION", "provision  directory_user", "u00@example.com"} {
		if !strings.Contains(out, want) {
			t.Errorf("dry run output lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(errOut, "pages fetched") {
		t.Errorf("no progress on stderr: %q", errOut)
	}
	if n := converges(); n != 0 {
		t.Fatalf("a dry run queued converges of %d users", n)
	}

	code, out, errOut = runCLI(t, env, "reconcile", "--org", org.ID, "--json")
	if code != exitOK {
		t.Fatalf("run: exit %d: %s", code, errOut)
	}
	var res struct {
		Run struct {
			Status string
			Plan   struct{ Provision int }
		}
		Items []struct{ Action, EntityType, EntityID, Detail string }
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("--json output %q: %v", out, err)
	}
	if res.Run.Status != store.RunSucceeded || res.Run.Plan.Provision != 50 || len(res.Items) != 50 {
		t.Errorf("--json: %+v with %d items", res.Run, len(res.Items))
	}
	if n := converges(); n != 50 {
		t.Errorf("outbox converges %d users, want 50", n)
	}

	// Members as converge would have made them; then the IdP empties.
	err = st.EachDirectoryUser(ctx, org.ID, func(d store.DirectoryUser) error {
		u, err := st.EnsureUser(ctx, d.Email)
		if err != nil {
			return err
		}
		return st.CreateMembership(ctx, &store.Membership{OrgID: org.ID, UserID: u.ID, DirectoryUserID: d.ID, Status: lifecycle.StatusActive,
			Email: d.Email, FirstName: d.GivenName, LastName: d.FamilyName, Source: d.Source, ExternalID: d.ExternalID})
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range users {
		idp.DeleteUser(u.ID)
	}
	code, out, errOut = runCLI(t, env, "reconcile", "--org", org.ID)
	if code != exitError || !strings.Contains(errOut, "blocked") || !strings.Contains(out, "remove        50") {
		t.Fatalf("mass removal: exit %d\nstdout %s\nstderr %s", code, out, errOut)
	}
	if code, _, errOut = runCLI(t, env, "reconcile", "--org", org.ID, "--confirmed-removals", "50"); code != exitUsage || !strings.Contains(errOut, "--allow-mass-deprovision") {
		t.Fatalf("a bound without the confirmation: exit %d: %s", code, errOut)
	}
	if code, _, errOut = runCLI(t, env, "reconcile", "--org", org.ID, "--allow-mass-deprovision", "--confirmed-removals", "49"); code != exitError || !strings.Contains(errOut, "more than the 49 confirmed") {
		t.Fatalf("confirmed fewer than planned: exit %d: %s", code, errOut)
	}
	code, out, errOut = runCLI(t, env, "reconcile", "--org", org.ID, "--dry-run", "--json")
	var reviewed struct {
		Run struct {
			Plan struct {
				Guard struct{ Losses string }
			}
		}
	}
	if err := json.Unmarshal([]byte(out), &reviewed); err != nil || len(reviewed.Run.Plan.Guard.Losses) != 64 {
		t.Fatalf("the dry run's JSON gives no losses digest (exit %d, %v): %s", code, err, out)
	}
	for _, tt := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"a digest that is not one", []string{"--allow-mass-deprovision", "--confirmed-losses", "xyz"}, exitUsage, "64 hex digits"},
		{"a digest without the confirmation", []string{"--confirmed-losses", reviewed.Run.Plan.Guard.Losses}, exitUsage, "--allow-mass-deprovision"},
		{"another plan's digest", []string{"--allow-mass-deprovision", "--confirmed-losses", strings.Repeat("0", 64)}, exitError, "other members or groups than the ones confirmed"},
	} {
		if code, _, errOut := runCLI(t, env, append([]string{"reconcile", "--org", org.ID}, tt.args...)...); code != tt.code || !strings.Contains(errOut, tt.want) {
			t.Fatalf("%s: exit %d, want %d with %q: %s", tt.name, code, tt.code, tt.want, errOut)
		}
	}
	if code, _, errOut = runCLI(t, env, "reconcile", "--org", org.ID, "--allow-mass-deprovision", "--confirmed-removals", "50", "--confirmed-losses", reviewed.Run.Plan.Guard.Losses); code != exitOK {
		t.Fatalf("confirmed: exit %d: %s", code, errOut)
	}
	if n := converges(); n != 50 {
		t.Errorf("outbox converges %d users, want the 50 removed", n)
	}

	// Runs after a full one read changes; --full pulls in full again (and
	// plans the removals again: no worker ran their converges).
	for _, c := range []struct {
		args []string
		want string
	}{{nil, "Pulled changes from okta in "}, {[]string{"--full", "--allow-mass-deprovision"}, "Pulled from okta in full: "}} {
		code, out, errOut = runCLI(t, env, append([]string{"reconcile", "--org", org.ID}, c.args...)...)
		if code != exitOK || !strings.Contains(out, c.want) {
			t.Errorf("reconcile %q: exit %d, output lacks %q:\n%s%s", c.args, code, c.want, out, errOut)
		}
	}

	// Refused credentials are not retried, so nothing sleeps.
	idp.FailNext(oktafake.RouteUsers, 401, 1)
	if code, _, errOut = runCLI(t, env, "reconcile", "--org", org.ID); code != exitError || !strings.Contains(errOut, "failed") {
		t.Errorf("failing IdP: exit %d: %s", code, errOut)
	}
}
