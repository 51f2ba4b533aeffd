package main

import (
	"bufio"
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/scimsync/scimsync/connectors/okta/oktafake"
	"github.com/scimsync/scimsync/jobs/mail/mailtest"
)

// Labels of the two organizations in the report.
const (
	orgSCIM = "scim" // written through SCIM by both api processes
	orgOkta = "okta" // pulled from the Okta fake by the reconciler
)

// cluster is everything a run starts.
type cluster struct {
	dir        string
	pg         *Postgres
	redis      *Redis
	sink       *mailtest.Server
	okta       *oktafake.Server
	apis       []*Proc
	workers    []*Proc
	schedulers []*Proc
	counters   map[string]*Counters // per worker and scheduler
	queues     *Queues
	admin      *Admin

	mu     sync.Mutex
	losses []time.Time // when Redis lost its data
}

// lost records a moment Redis was without its data.
func (c *cluster) lost(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.losses = append(c.losses, t)
}

// redisLosses are the moments Redis was without its data: each flush,
// and each restart's kill and return. No enqueue succeeds while it is
// down, so a second enqueue after a loss always has one of these between
// it and the first.
func (c *cluster) redisLosses() []time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.losses)
}

func (c *cluster) roles() []*Proc {
	return append(append(append([]*Proc{}, c.apis...), c.workers...), c.schedulers...)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = crand.Read(b)
	return hex.EncodeToString(b)
}

// run carries out one chaos run and returns its report; an error means
// the run could not be carried out (not that it found a divergence).
func run(ctx context.Context, o options, logw io.Writer) (*Report, error) {
	logf := func(format string, args ...any) {
		fmt.Fprintf(logw, "%s chaos: %s\n", time.Now().UTC().Format("15:04:05.000"), fmt.Sprintf(format, args...))
	}
	rep := newReport(o)
	dir, err := os.MkdirTemp("", "scimsync-chaos-")
	if err != nil {
		return nil, err
	}
	rep.Logs = dir
	keepDir := o.keep
	defer func() {
		if !keepDir {
			os.RemoveAll(dir)
		}
	}()

	bin := o.scimsync
	if bin == "" {
		logf("building scimsync")
		if bin, err = buildScimsync(ctx, dir); err != nil {
			return nil, err
		}
	}

	c := &cluster{dir: dir, counters: map[string]*Counters{}}
	c.pg, err = NewPostgres(o.databaseURL, fmt.Sprintf("scimsync_chaos_%d", os.Getpid()))
	if err != nil {
		return nil, err
	}
	rep.Database = c.pg.Name
	if err := c.pg.Create(ctx); err != nil {
		return nil, err
	}
	defer func() {
		if !o.keep {
			if err := c.pg.Drop(context.WithoutCancel(ctx)); err != nil {
				logf("%v", err)
			}
		}
	}()

	redisAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	_, redisPort, _ := net.SplitHostPort(redisAddr)
	c.redis = &Redis{Addr: redisAddr, Proc: &Proc{
		Name: "redis", Path: o.redisServer, Addr: redisAddr, LogPath: filepath.Join(dir, "redis.log"),
		Args: []string{"--port", redisPort, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir},
	}}
	if err := c.redis.Proc.Start(ctx); err != nil {
		return nil, err
	}
	defer c.redis.Proc.Stop()
	c.queues = NewQueues(redisAddr)
	defer c.queues.Close()

	sink, closeSink, err := mailtest.Serve(mailtest.Options{})
	if err != nil {
		return nil, err
	}
	defer closeSink()
	c.sink = sink
	c.okta = oktafake.Start()
	defer c.okta.Close()

	adminToken := "chaos-admin-" + randomHex(16)
	env := []string{
		"DATABASE_URL=" + c.pg.URL, "REDIS_URL=" + c.redis.URL(),
		"SCIMSYNC_ADMIN_TOKEN=" + adminToken, "SCIMSYNC_SECRET_KEY=" + randomHex(32),
		"SMTP_URL=smtp://" + sink.Addr, "SCIMSYNC_SHUTDOWN_TIMEOUT=5s",
		// Re-sends within the run, so that send numbers above 1 are tried.
		"SCIMSYNC_INVITE_RESEND_AFTER=40s", "SCIMSYNC_INVITE_MAX_SENDS=3",
		// A run whose worker was killed holds its organization's run slot
		// until it is taken for abandoned; the 2m default is long for a
		// short run.
		"SCIMSYNC_RECONCILE_STALE_AFTER=30s",
	}
	var bases []string
	for i := range 2 {
		addr, err := freeAddr()
		if err != nil {
			return nil, err
		}
		bases = append(bases, "http://"+addr)
		c.apis = append(c.apis, &Proc{Name: fmt.Sprintf("api-%d", i+1), Path: bin, Args: []string{"api"}, Addr: addr, ReadyPath: "/readyz",
			LogPath: filepath.Join(dir, fmt.Sprintf("api-%d.log", i+1))})
	}
	public := bases[0]
	for _, p := range c.apis {
		p.Env = append(append([]string{}, env...), "SCIMSYNC_HTTP_ADDR="+p.Addr, "SCIMSYNC_PUBLIC_URL="+public)
	}
	for i := range 2 {
		for _, role := range []string{"worker", "scheduler"} {
			addr, err := freeAddr()
			if err != nil {
				return nil, err
			}
			level := "info"
			if role == "scheduler" {
				level = "debug" // it logs each enqueue at debug
			}
			p := &Proc{Name: fmt.Sprintf("%s-%d", role, i+1), Path: bin, Args: []string{role}, Addr: addr, ReadyPath: "/healthz",
				LogPath: filepath.Join(dir, fmt.Sprintf("%s-%d.log", role, i+1)),
				Env:     append(append([]string{}, env...), "SCIMSYNC_METRICS_ADDR="+addr, "SCIMSYNC_PUBLIC_URL="+public, "SCIMSYNC_LOG_LEVEL="+level)}
			c.counters[p.Name] = &Counters{}
			if role == "worker" {
				c.workers = append(c.workers, p)
			} else {
				c.schedulers = append(c.schedulers, p)
			}
		}
	}
	logf("database %s, redis %s, smtp %s, okta %s, logs in %s", c.pg.Name, redisAddr, sink.Addr, c.okta.URL(), dir)
	for _, p := range c.roles() {
		if err := p.Start(ctx); err != nil {
			keepDir = true
			return nil, err
		}
		defer p.Stop()
	}
	logf("started %d api, %d worker and %d scheduler processes", len(c.apis), len(c.workers), len(c.schedulers))

	c.admin = &Admin{Bases: bases, Token: adminToken}
	rng := rand.New(rand.NewPCG(o.seed, 1))

	// An application following the change feed by webhook, from before the
	// organizations exist, so that it gets every event. It fails one
	// delivery in five hundred on purpose: a failure holds its
	// organization's ordered stream until the retry (1 s, then 5 s, …).
	hooks, err := StartWebhookSink(o.seed, 0.002)
	if err != nil {
		return nil, err
	}
	defer hooks.Close()
	whSecret, err := c.admin.CreateWebhook(ctx, hooks.URL)
	if err != nil {
		return nil, err
	}
	if err := hooks.Secure(whSecret); err != nil {
		return nil, err
	}

	// The SCIM organization: pushed to by both api processes.
	orgA, err := c.admin.CreateOrg(ctx, "Chaos SCIM")
	if err != nil {
		return nil, err
	}
	if err := c.admin.PatchOrg(ctx, orgA, map[string]any{"scimEnabled": true, "reconcileSchedule": "@every 10s"}); err != nil {
		return nil, err
	}
	tokenA, err := c.admin.SCIMToken(ctx, orgA)
	if err != nil {
		return nil, err
	}
	scim := &SCIM{Bases: bases, Token: tokenA}
	scimGroups := []string{"scim-eng", "scim-ops", "scim-all"}
	gids := map[string]string{}
	for _, g := range scimGroups {
		if gids[g], err = scim.EnsureGroup(ctx, g); err != nil {
			return nil, err
		}
	}
	// The Okta organization: pulled by the reconciler on its schedule.
	orgB, err := c.admin.CreateOrg(ctx, "Chaos Okta")
	if err != nil {
		return nil, err
	}
	watch := NewDeprovisionWatch()
	okta := newOktaDriver(orgOkta, c.okta, watch, []string{"okta-eng", "okta-ops", "okta-all"})
	okta.Seed(rng, 30)
	if err := c.admin.PutConnector(ctx, orgB, map[string]any{"type": "okta", "settings": map[string]any{"orgUrl": c.okta.URL()},
		"credentials": map[string]any{"apiToken": c.okta.Token()}}); err != nil {
		return nil, err
	}
	if err := c.admin.PatchOrg(ctx, orgB, map[string]any{"reconcileSchedule": "@every 10s"}); err != nil {
		return nil, err
	}
	orgIDs := map[string]string{orgSCIM: orgA, orgOkta: orgB}
	rep.Orgs = orgIDs

	model := NewModel()
	sd := newSCIMDriver(orgSCIM, scim, model, watch, scimGroups, gids, fmt.Sprintf("u%d", o.seed))

	// Chaos: writes, IdP changes, faults, and samples, until the duration
	// or the write budget ends.
	logf("chaos for %s (seed %d)", o.duration, o.seed)
	chaosCtx, endChaos := context.WithTimeout(ctx, o.duration)
	defer endChaos()
	var wg, restarts sync.WaitGroup
	var divMu sync.Mutex
	addDiv := func(ds ...Divergence) {
		divMu.Lock()
		rep.Divergences = append(rep.Divergences, ds...)
		divMu.Unlock()
	}
	for i := range o.writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(o.seed, uint64(10+i)))
			for chaosCtx.Err() == nil && sd.ops.Load()+okta.ops.Load() < o.ops {
				sd.step(chaosCtx, r, bases)
				pace(chaosCtx, r, 40*time.Millisecond)
			}
			if chaosCtx.Err() == nil {
				endChaos() // the write budget is spent
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		r := rand.New(rand.NewPCG(o.seed, 2))
		for pace(chaosCtx, r, 800*time.Millisecond) {
			okta.Step(r)
		}
	}()
	plan := PlanFaults(rand.New(rand.NewPCG(o.seed, 3)), o.duration)
	start := time.Now()
	wg.Add(1)
	go func() {
		defer wg.Done()
		r := rand.New(rand.NewPCG(o.seed, 4))
		for _, f := range plan {
			select {
			case <-chaosCtx.Done():
				return
			case <-time.After(time.Until(start.Add(f.At))):
			}
			if err := c.inject(ctx, r, f.Kind, &restarts, logf); err != nil {
				logf("fault %s: %v", f.Kind, err)
				continue
			}
			rep.fault(f.Kind)
		}
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(time.Second)
		defer t.Stop()
		n := 0
		for {
			select {
			case <-chaosCtx.Done():
				return
			case <-t.C:
			}
			c.scrapeAll(ctx)
			if n++; n%2 == 0 {
				for label, org := range orgIDs {
					if ms, err := c.admin.Members(chaosCtx, org); err == nil {
						addDiv(watch.Observe(label, memberStatuses(ms))...)
					}
				}
			}
		}
	}()
	wg.Wait()
	restarts.Wait()
	if ctx.Err() != nil {
		return rep, ctx.Err()
	}
	rep.Elapsed = time.Since(start).Round(time.Millisecond).String()

	// Heal: every process up, faults off, queues drained; then reconcile.
	logf("healing")
	c.sink.ClearFailures()
	c.okta.ClearFaults()
	for _, p := range append(c.roles(), c.redis.Proc) {
		if !p.Running() {
			if err := p.Restart(ctx); err != nil {
				keepDir = true
				return rep, err
			}
		}
	}
	if err := c.drain(ctx, o.drainTimeout, logf); err != nil {
		addDiv(Divergence{Check: "heal", Subject: "queues", Detail: err.Error()})
	}
	for _, label := range []string{orgSCIM, orgOkta} {
		attempts, err := c.finalReconcile(ctx, orgIDs[label], logf)
		rep.Retries.FinalReconcileAttempts += attempts
		if err != nil {
			addDiv(Divergence{Check: "heal", Org: label, Subject: "reconcile", Detail: err.Error()})
		}
	}
	if err := c.drain(ctx, o.drainTimeout, logf); err != nil {
		addDiv(Divergence{Check: "heal", Subject: "queues", Detail: err.Error()})
	}
	c.scrapeAll(ctx)

	// Check.
	logf("checking")
	dirA, err := scim.Directory(ctx)
	if err != nil {
		return rep, err
	}
	addDiv(CheckWrites(orgSCIM, model.Users(), dirA)...)
	dirB := okta.Directory()
	for label, dir := range map[string]map[string]State{orgSCIM: dirA, orgOkta: dirB} {
		local, err := c.admin.LocalState(ctx, orgIDs[label])
		if err != nil {
			return rep, err
		}
		ms, err := c.admin.Members(ctx, orgIDs[label])
		if err != nil {
			return rep, err
		}
		addDiv(watch.Observe(label, memberStatuses(ms))...)
		addDiv(CheckLocal(label, dir, local, watch.EverMember(label))...)
		gs, err := c.admin.Groups(ctx, orgIDs[label])
		if err != nil {
			return rep, err
		}
		evs, err := c.admin.Events(ctx, orgIDs[label])
		if err != nil {
			return rep, err
		}
		logf("%s: %d events in the change feed, rebuilding %d members and %d groups from it", label, len(evs), len(ms), len(gs))
		addDiv(CheckFeed(label, evs, ms, gs)...)
		hooked := hooks.Await(ctx, orgIDs[label], int64(len(evs)), 2*time.Minute)
		logf("%s: %d of %d events received by webhook", label, len(hooked), len(evs))
		addDiv(CheckFeed(label+" by webhook", hooked, ms, gs)...)
		rep.members(label, ms, dir)
	}
	rep.Samples = watch.Samples

	msgs, err := sinkMessages(c.sink)
	if err != nil {
		return rep, err
	}
	claims, byStatus, err := c.pg.MailClaims(ctx)
	if err != nil {
		return rep, err
	}
	addDiv(CheckMail(msgs, claims)...)
	addDiv(hooks.Disorder()...)
	hooks.mu.Lock()
	logf("webhooks: %d events kept, %d repeats, %d failed on purpose, %d refused", hooks.Delivered, hooks.Repeats, hooks.Failed, hooks.Refused)
	hooks.mu.Unlock()
	rep.Mail.Delivered, rep.Mail.MailLog = len(msgs), byStatus

	enq, err := c.schedulerEnqueues()
	if err != nil {
		return rep, err
	}
	perSched, slots, explained, divs := CheckSchedule(enq, c.redisLosses())
	addDiv(divs...)
	rep.scaleOut(c, perSched, slots)
	rep.ScaleOut.RedisLossDuplicates = explained
	for label, org := range orgIDs {
		runs, err := c.admin.SyncRuns(ctx, org)
		if err != nil {
			return rep, err
		}
		rep.runs(label, runs)
	}
	for _, w := range c.workers {
		if rep.ScaleOut.Workers[w.Name].Tasks == 0 {
			addDiv(Divergence{Check: "scale-out", Subject: w.Name, Detail: "processed no tasks: the workers did not share the work"})
		}
	}
	rep.Operations.SCIM = sd.counts()
	rep.Operations.SCIMAcked, rep.Operations.SCIMUnknown, rep.Operations.SCIMRejected = model.Counts()
	rep.Operations.IdP = okta.byOp
	rep.Operations.Total = sd.ops.Load() + okta.ops.Load()
	rep.Archived = c.queues.ArchivedSummary()
	for _, p := range append(c.roles(), c.redis.Proc) {
		rep.Processes = append(rep.Processes, ProcReport{Name: p.Name, Starts: p.Starts, Kills: p.Kills})
	}
	if len(rep.Divergences) > 0 {
		keepDir = true
	}
	return rep, nil
}

func memberStatuses(ms []Member) map[string]string {
	out := make(map[string]string, len(ms))
	for _, m := range ms {
		out[strings.ToLower(m.Email)] = m.Status
	}
	return out
}

// inject carries out one fault. Kills restart their process after a short
// outage in the background (tracked by restarts).
func (c *cluster) inject(ctx context.Context, rng *rand.Rand, kind string, restarts *sync.WaitGroup, logf func(string, ...any)) error {
	outage := func() time.Duration { return time.Second + time.Duration(rng.Int64N(int64(3*time.Second))) }
	kill := func(procs []*Proc) error {
		var up []*Proc
		for _, p := range procs {
			if p.Running() {
				up = append(up, p)
			}
		}
		if len(up) == 0 {
			return fmt.Errorf("none running")
		}
		p := up[rng.IntN(len(up))]
		c.scrape(ctx, p) // its counts up to the kill
		p.Kill()
		d := outage()
		logf("fault %s: killed %s for %s", kind, p.Name, d)
		restarts.Add(1)
		go func() {
			defer restarts.Done()
			time.Sleep(d)
			if err := p.Restart(ctx); err != nil {
				logf("restart %s: %v", p.Name, err)
			}
		}()
		return nil
	}
	switch kind {
	case FaultKillWorker:
		return kill(c.workers)
	case FaultKillAPI:
		return kill(c.apis)
	case FaultRedisRestart:
		d := outage()
		logf("fault %s: redis down for %s", kind, d)
		c.lost(time.Now())
		c.redis.Proc.Kill()
		restarts.Add(1)
		go func() {
			defer restarts.Done()
			time.Sleep(d)
			if err := c.redis.Proc.Restart(ctx); err != nil {
				logf("restart redis: %v", err)
			}
			c.lost(time.Now()) // back, and empty
		}()
		return nil
	case FaultRedisFlushAll:
		logf("fault %s", kind)
		c.lost(time.Now())
		err := c.redis.FlushAll(ctx)
		c.lost(time.Now())
		return err
	case FaultPGTerminate:
		n, err := c.pg.TerminateBackends(ctx)
		logf("fault %s: %d connections cut", kind, n)
		return err
	case FaultIdP429:
		// An IdP outage replaces one still waiting for requests: faults
		// left over between pulls would otherwise pile up into one run of
		// 429s longer than any real outage and than the rate-limit budget.
		c.okta.ClearFaults()
		n := 2 + rng.IntN(4)
		for _, r := range []string{oktafake.RouteUsers, oktafake.RouteGroups, oktafake.RouteGroupUsers} {
			c.okta.FailNext(r, 429, n)
		}
		logf("fault %s: next %d requests per route", kind, n)
		return nil
	case FaultIdP500:
		c.okta.ClearFaults() // as for 429s
		n := 1 + rng.IntN(4)
		route := []string{oktafake.RouteUsers, oktafake.RouteGroups, oktafake.RouteGroupUsers}[rng.IntN(3)]
		c.okta.FailNext(route, 500, n)
		logf("fault %s: next %d requests to %s", kind, n, route)
		return nil
	case FaultSMTP:
		n := 2 + rng.IntN(5)
		var fs []mailtest.Failure
		for range n {
			fs = append(fs, mailtest.Failure{Reply: &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "chaos: try again later"}})
		}
		if rng.IntN(3) == 0 {
			// A connection lost after the data: the sender cannot know.
			fs = append(fs, mailtest.Failure{Drop: true})
		}
		c.sink.FailNext(fs...)
		logf("fault %s: next %d deliveries", kind, len(fs))
		return nil
	}
	return fmt.Errorf("unknown fault %q", kind)
}

// scrape reads the counters of a worker or scheduler (api processes'
// counters are not needed).
func (c *cluster) scrape(ctx context.Context, p *Proc) {
	cs, ok := c.counters[p.Name]
	if !ok {
		return
	}
	if s, err := scrape(ctx, p.Addr); err == nil {
		cs.Observe(s)
	}
}

func (c *cluster) scrapeAll(ctx context.Context) {
	for _, p := range append(append([]*Proc{}, c.workers...), c.schedulers...) {
		if p.Running() {
			c.scrape(ctx, p)
		}
	}
}

// drain waits until the outbox is relayed and no task is pending, active,
// scheduled or waiting to retry, twice in a row; retries are run early.
func (c *cluster) drain(ctx context.Context, timeout time.Duration, logf func(string, ...any)) error {
	deadline := time.Now().Add(timeout)
	quiet := 0
	var last string
	for i := 0; time.Now().Before(deadline); i++ {
		if i%10 == 0 {
			c.queues.Hurry()
		}
		outbox, err1 := c.pg.PendingOutbox(ctx)
		busy, _, err2 := c.queues.Busy()
		switch {
		case err1 != nil || err2 != nil:
			quiet, last = 0, fmt.Sprintf("outbox: %v, queues: %v", err1, err2)
		case outbox == 0 && busy == 0:
			if quiet++; quiet >= 3 {
				return nil
			}
		default:
			quiet, last = 0, fmt.Sprintf("%d outbox rows unrelayed, %d tasks unfinished", outbox, busy)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
	return fmt.Errorf("not drained after %s: %s", timeout, last)
}

// finalReconcile runs reconciliations of an organization until one
// succeeds (injected IdP faults left over fail the first ones), confirming
// mass deprovisions as an operator would after the outage. Each pulls in
// full: the heal checks everything, not only what changed since a cursor.
func (c *cluster) finalReconcile(ctx context.Context, org string, logf func(string, ...any)) (int, error) {
	var last SyncRun
	for attempt := 1; attempt <= 10; attempt++ {
		id, err := c.admin.Reconcile(ctx, org, true, true)
		if err != nil {
			return attempt, err
		}
		deadline := time.Now().Add(90 * time.Second)
		for time.Now().Before(deadline) {
			if last, err = c.admin.SyncRun(ctx, org, id); err != nil {
				return attempt, err
			}
			if last.Status != "queued" && last.Status != "running" {
				break
			}
			c.queues.Hurry()
			time.Sleep(300 * time.Millisecond)
		}
		logf("final reconcile of %s: %s %s", org, last.Status, last.Error)
		if last.Status == "succeeded" {
			return attempt, nil
		}
	}
	return 10, fmt.Errorf("no reconciliation succeeded in 10 attempts; last %s: %s", last.Status, last.Error)
}

var linkRE = regexp.MustCompile(`https?://[^\s"<>]+/invite/accept\?token=[^\s"<>]+`)

func sinkMessages(s *mailtest.Server) ([]SentMail, error) {
	var out []SentMail
	for _, m := range s.Messages() {
		body, err := m.TextBody()
		if err != nil {
			return nil, fmt.Errorf("read an e-mail at the sink: %w", err)
		}
		to := ""
		if len(m.To) > 0 {
			to = m.To[0]
		}
		out = append(out, SentMail{To: to, Link: linkRE.FindString(body)})
	}
	return out, nil
}

var enqueueRE = regexp.MustCompile(`^time=(\S+) .*msg="scheduled reconciliation enqueued".*\borg=(\S+).*\bslot=(\S+)`)

// schedulerEnqueues reads each scheduler's log for the runs it enqueued.
func (c *cluster) schedulerEnqueues() ([]Enqueue, error) {
	var out []Enqueue
	for _, p := range c.schedulers {
		f, err := os.Open(p.LogPath)
		if err != nil {
			return nil, err
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		for sc.Scan() {
			if m := enqueueRE.FindStringSubmatch(sc.Text()); m != nil {
				at, err := time.Parse(time.RFC3339Nano, m[1])
				if err != nil {
					return nil, fmt.Errorf("%s: bad time in %q", p.LogPath, sc.Text())
				}
				out = append(out, Enqueue{Scheduler: p.Name, Org: m[2], Slot: m[3], At: at})
			}
		}
		f.Close()
		if err := sc.Err(); err != nil {
			return nil, err
		}
	}
	return out, nil
}
