package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx", to count members and mails

	"github.com/scimsync/scimsync/connectors"
	"github.com/scimsync/scimsync/connectors/okta"
	"github.com/scimsync/scimsync/connectors/okta/oktafake"
	"github.com/scimsync/scimsync/internal/clock"
)

// provisionResult is what a provision run measured. Times are seconds from
// the first reconcile's start on the server's clock (its sync run), except
// the bare listing, which this process times.
type provisionResult struct {
	Users     int     `json:"users"`
	PageDelay string  `json:"pageDelay"`
	ListS     float64 `json:"listS"`
	// PullS is the first run's pull, RunS the whole run (pull, plan and
	// apply, after which converges are queued).
	PullS float64 `json:"pullS"`
	RunS  float64 `json:"runS"`
	// PendingS is when every member was pending_setup; PerSecondAfterRun
	// the members per second from the run's end to then.
	PendingS          float64 `json:"pendingS"`
	PerSecondAfterRun float64 `json:"membersPerSecondAfterRun"`
	// InvitesS is when every member's invite e-mail was in the mail log;
	// InvitesAfterPendingS how long after PendingS that was.
	InvitesS             float64 `json:"invitesS"`
	InvitesAfterPendingS float64 `json:"invitesAfterPendingS"`
	// NoopS is a second, full reconcile once the queues drained, and
	// NoopRatio that over ListS.
	NoopS     float64 `json:"noopS"`
	NoopRatio float64 `json:"noopPerList"`
}

func (r provisionResult) String() string {
	return fmt.Sprintf("provision %d users, fake at %s a page:\n"+
		"  bare listing        %7.2f s\n"+
		"  first run           %7.2f s (pull %.2f s)\n"+
		"  all pending_setup   %7.2f s after the start: %.0f members/s after the run\n"+
		"  all invites         %7.2f s after the start: %.2f s after the last member\n"+
		"  no-op full run      %7.2f s: %.2fx the bare listing",
		r.Users, r.PageDelay, r.ListS, r.RunS, r.PullS, r.PendingS, r.PerSecondAfterRun,
		r.InvitesS, r.InvitesAfterPendingS, r.NoopS, r.NoopRatio)
}

// runProvision serves an Okta fake of c.users users at c.pageDelay a page,
// has the scimsync at c.url provision them through an organization with
// an Okta connector, and times it: the first reconcile, every member
// pending_setup, every invite recorded, then a no-op full reconcile against
// a bare listing of the fake. It counts members and e-mails in the
// server's database (c.dbURL), which a poll of the admin API's 100k
// members would load far more.
func runProvision(ctx context.Context, c config) (provisionResult, error) {
	base, err := checkURL(c.url)
	if err != nil {
		return provisionResult{}, err
	}
	if c.adminToken == "" || c.dbURL == "" || c.users < 1 {
		return provisionResult{}, errors.New("provision needs -admin-token, -db and a positive -users")
	}
	db, err := sql.Open("pgx", c.dbURL)
	if err != nil {
		return provisionResult{}, fmt.Errorf("open -db: %w", err)
	}
	defer db.Close()

	fake := oktafake.Start()
	defer fake.Close()
	for i := range c.users {
		fake.AddUser(oktafake.User{Email: fmt.Sprintf("user%06d@example.com", i), FirstName: fmt.Sprintf("Given%d", i), LastName: fmt.Sprintf("Family%d", i)})
	}
	fake.Latency(c.pageDelay)
	res := provisionResult{Users: c.users, PageDelay: c.pageDelay.String()}

	if res.ListS, err = bareListing(ctx, fake, c.users); err != nil {
		return res, err
	}
	logf("bare listing of %d users: %.2f s", c.users, res.ListS)

	a := &adminClient{base: base, token: c.adminToken, client: &http.Client{Timeout: 30 * time.Second}}
	var org struct {
		ID string `json:"id"`
	}
	if err := a.call(ctx, "POST", "/orgs", map[string]any{"name": "provision-" + c.runID}, &org); err != nil {
		return res, err
	}
	if err := a.call(ctx, "PUT", "/orgs/"+org.ID+"/connector", map[string]any{"type": "okta",
		"settings": map[string]any{"orgUrl": fake.URL()}, "credentials": map[string]any{"apiToken": fake.Token()}}, nil); err != nil {
		return res, err
	}

	first, err := a.reconcile(ctx, org.ID, false)
	if err != nil {
		return res, err
	}
	var (
		run                *syncRun
		pendingAt, mailsAt time.Time
		lastLog            time.Time
	)
	for pendingAt.IsZero() || mailsAt.IsZero() || run == nil {
		if err := sleep(ctx, time.Second); err != nil {
			return res, err
		}
		now := time.Now()
		if run == nil {
			r, err := a.run(ctx, org.ID, first)
			if err != nil {
				return res, err
			}
			if r.Status == "failed" {
				return res, fmt.Errorf("first run failed: %s", r.Error)
			}
			if r.FinishedAt != nil {
				run = &r
			}
		}
		pending, mails, err := counts(ctx, db, org.ID)
		if err != nil {
			return res, err
		}
		if pending >= c.users && pendingAt.IsZero() {
			pendingAt = now
		}
		if mails >= c.users && mailsAt.IsZero() {
			mailsAt = now
		}
		if now.Sub(lastLog) >= 5*time.Second {
			lastLog = now
			logf("pending_setup %d, invites recorded %d", pending, mails)
		}
		if run == nil && now.Sub(first.CreatedAt) > c.duration {
			return res, fmt.Errorf("the first run did not end within -duration %s", c.duration)
		}
		if run != nil && now.Sub(*run.StartedAt) > c.duration {
			return res, fmt.Errorf("within -duration %s: pending_setup %d, invites %d of %d", c.duration, pending, mails, c.users)
		}
	}
	start := *run.StartedAt
	res.RunS = run.FinishedAt.Sub(start).Seconds()
	res.PullS = float64(run.Plan.Timings.PullMS) / 1000
	res.PendingS = pendingAt.Sub(start).Seconds()
	res.PerSecondAfterRun = float64(c.users) / max(pendingAt.Sub(*run.FinishedAt).Seconds(), 0.2)
	res.InvitesS = mailsAt.Sub(start).Seconds()
	res.InvitesAfterPendingS = max(mailsAt.Sub(pendingAt).Seconds(), 0)

	// Whatever the invite tasks left (their outbox rows, a last batch)
	// settles before the no-op run is timed.
	if err := drained(ctx, db); err != nil {
		return res, err
	}
	second, err := a.reconcile(ctx, org.ID, true)
	if err != nil {
		return res, err
	}
	for {
		if err := sleep(ctx, 200*time.Millisecond); err != nil {
			return res, err
		}
		r, err := a.run(ctx, org.ID, second)
		if err != nil {
			return res, err
		}
		if r.FinishedAt == nil {
			continue
		}
		if r.Status != "succeeded" || r.Plan.Provision+r.Plan.Update+r.Plan.Deprovision != 0 {
			return res, fmt.Errorf("the no-op run ended %s with plan %+v: %s", r.Status, r.Plan, r.Error)
		}
		res.NoopS = r.FinishedAt.Sub(*r.StartedAt).Seconds()
		res.NoopRatio = res.NoopS / res.ListS
		return res, nil
	}
}

// bareListing pages through the fake's users with the Okta connector, the
// floor under any pull.
func bareListing(ctx context.Context, fake *oktafake.Server, want int) (float64, error) {
	d, err := okta.Config{OrgURL: fake.URL(), APIToken: connectors.Secret(fake.Token())}.Open(ctx, connectors.Options{})
	if err != nil {
		return 0, fmt.Errorf("open the okta connector: %w", err)
	}
	t0 := time.Now()
	n := 0
	if err := d.ListUsers(ctx, func(p []connectors.User) error { n += len(p); return nil }); err != nil {
		return 0, fmt.Errorf("list the fake: %w", err)
	}
	if n != want {
		return 0, fmt.Errorf("listed %d of %d users", n, want)
	}
	return time.Since(t0).Seconds(), nil
}

// counts reads how many of an organization's members are pending_setup
// and how many invite e-mails its mail log recorded.
func counts(ctx context.Context, db *sql.DB, orgID string) (pending, mails int, err error) {
	err = db.QueryRowContext(ctx, `SELECT
		(SELECT count(*) FROM org_memberships WHERE org_id = $1 AND status = 'pending_setup'),
		(SELECT count(*) FROM mail_log WHERE org_id = $1 AND status = 'recorded')`, orgID).Scan(&pending, &mails)
	if err != nil {
		return 0, 0, fmt.Errorf("count members and mails: %w", err)
	}
	return pending, mails, nil
}

// drained waits until the outbox holds no unsent row, then a second more
// for the tasks it queued last.
func drained(ctx context.Context, db *sql.DB) error {
	for {
		var n int
		if err := db.QueryRowContext(ctx, `SELECT count(*) FROM outbox WHERE sent_at IS NULL`).Scan(&n); err != nil {
			return fmt.Errorf("count the outbox: %w", err)
		}
		if n == 0 {
			return sleep(ctx, time.Second)
		}
		if err := sleep(ctx, 200*time.Millisecond); err != nil {
			return err
		}
	}
}

type syncRun struct {
	ID         string     `json:"id"`
	Status     string     `json:"status"`
	Error      string     `json:"error"`
	CreatedAt  time.Time  `json:"createdAt"`
	StartedAt  *time.Time `json:"startedAt"`
	FinishedAt *time.Time `json:"finishedAt"`
	Plan       struct {
		Provision   int `json:"provision"`
		Update      int `json:"update"`
		Deprovision int `json:"deprovision"`
		Timings     struct {
			PullMS int64 `json:"pullMs"`
		} `json:"timings"`
	} `json:"plan"`
}

// adminClient calls scimsync's admin API.
type adminClient struct {
	base, token string
	client      *http.Client
}

func (a *adminClient) reconcile(ctx context.Context, orgID string, full bool) (syncRun, error) {
	var r struct {
		RunID string `json:"runId"`
	}
	if err := a.call(ctx, "POST", "/orgs/"+orgID+"/reconcile", map[string]any{"full": full}, &r); err != nil {
		return syncRun{}, err
	}
	return a.run(ctx, orgID, syncRun{ID: r.RunID})
}

func (a *adminClient) run(ctx context.Context, orgID string, r syncRun) (syncRun, error) {
	var out syncRun
	err := a.call(ctx, "GET", "/orgs/"+orgID+"/sync-runs/"+r.ID, nil, &out)
	return out, err
}

func (a *adminClient) call(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("%s %s: %w", method, path, err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(a.base, "/")+"/api/v1"+path, rd)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	req.Header.Set("Authorization", "Bearer "+a.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := a.client.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, b)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("%s %s: read the answer: %w", method, path, err)
	}
	return nil
}

// sleep waits d or until ctx ends, on the real clock.
func sleep(ctx context.Context, d time.Duration) error { return clock.Real{}.Sleep(ctx, d) }
