package main

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"
)

// Report is what a run did and found.
type Report struct {
	Seed     uint64            `json:"seed"`
	Duration string            `json:"duration"`
	Elapsed  string            `json:"elapsed"`
	Database string            `json:"database"`
	Orgs     map[string]string `json:"orgs"`
	Logs     string            `json:"logs"`

	Operations struct {
		Total int64 `json:"total"`
		// SCIM is writes by kind: [acknowledged, unknown, rejected].
		SCIM         map[string][3]int64 `json:"scim"`
		SCIMAcked    int                 `json:"scimAcked"`
		SCIMUnknown  int                 `json:"scimUnknown"`
		SCIMRejected int                 `json:"scimRejected"`
		IdP          map[string]int64    `json:"idp"`
	} `json:"operations"`

	mu     sync.Mutex
	Faults map[string]int `json:"faults"`

	Retries struct {
		// JobRetries are task runs that failed and were retried, over all
		// workers; JobsFailed were archived.
		JobRetries             int `json:"jobRetries"`
		JobsFailed             int `json:"jobsFailed"`
		FinalReconcileAttempts int `json:"finalReconcileAttempts"`
	} `json:"retries"`

	Runs     map[string]map[string]int `json:"syncRuns"` // org → "trigger/status" → n
	Members  map[string]map[string]int `json:"members"`  // org → status → n (and directory counts)
	Mail     MailReport                `json:"mail"`
	ScaleOut ScaleOut                  `json:"scaleOut"`
	Samples  int                       `json:"samples"`

	Processes   []ProcReport `json:"processes"`
	Archived    []string     `json:"archivedTasks,omitempty"`
	Divergences []Divergence `json:"divergences"`
}

type MailReport struct {
	Delivered int            `json:"delivered"`
	MailLog   map[string]int `json:"mailLog"` // status → n
}

type ProcReport struct {
	Name   string `json:"name"`
	Starts int    `json:"starts"`
	Kills  int    `json:"kills"`
}

// ScaleOut shows the replicas sharing the work.
type ScaleOut struct {
	Workers    map[string]WorkerShare    `json:"workers"`
	Schedulers map[string]SchedulerShare `json:"schedulers"`
	// Slots is the scheduled (organization, slot) pairs enqueued, each of
	// which must have been enqueued by exactly one scheduler.
	Slots int `json:"slots"`
	// RedisLossDuplicates are second enqueues of a slot after Redis lost
	// the task ids that deduplicate them (not divergences: the slot still
	// runs once; see README).
	RedisLossDuplicates []string `json:"redisLossDuplicates,omitempty"`
}

type WorkerShare struct {
	Tasks      int            `json:"tasks"`
	ByType     map[string]int `json:"byType"`
	Reconciles int            `json:"reconciles"`
}

type SchedulerShare struct {
	Enqueued   int `json:"enqueued"`   // from its log, one line per enqueue
	Metric     int `json:"metric"`     // scimsync_reconcile_scheduled_total{result="enqueued"}
	Duplicates int `json:"duplicates"` // slots another scheduler had enqueued
}

func newReport(o options) *Report {
	return &Report{Seed: o.seed, Duration: o.duration.String(), Faults: map[string]int{},
		Runs: map[string]map[string]int{}, Members: map[string]map[string]int{}}
}

func (r *Report) fault(kind string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.Faults[kind]++
}

func (r *Report) members(label string, ms []Member, dir map[string]State) {
	m := map[string]int{}
	for _, x := range ms {
		m[x.Status]++
	}
	for _, s := range dir {
		switch {
		case !s.Exists:
			m["directory:absent"]++
		case s.Active:
			m["directory:active"]++
		default:
			m["directory:inactive"]++
		}
	}
	r.Members[label] = m
}

func (r *Report) runs(label string, runs []SyncRun) {
	m := map[string]int{}
	for _, x := range runs {
		m[x.Trigger+"/"+x.Status]++
	}
	r.Runs[label] = m
}

func (r *Report) scaleOut(c *cluster, perSched map[string]int, slots int) {
	r.ScaleOut = ScaleOut{Workers: map[string]WorkerShare{}, Schedulers: map[string]SchedulerShare{}, Slots: slots}
	for _, w := range c.workers {
		t := c.counters[w.Name].Total()
		ws := WorkerShare{ByType: map[string]int{}, Reconciles: int(t.Sum("scimsync_reconcile_runs_total"))}
		for k, v := range t {
			if name, labels, _ := strings.Cut(k, "{"); name == "scimsync_jobs_total" {
				typ := labelValue(labels, "type")
				ws.ByType[typ] += int(v)
				ws.Tasks += int(v)
			}
		}
		r.ScaleOut.Workers[w.Name] = ws
		r.Retries.JobRetries += int(t.Sum("scimsync_jobs_total", `outcome="error"`))
		r.Retries.JobsFailed += int(t.Sum("scimsync_jobs_total", `outcome="failed"`))
	}
	for _, s := range c.schedulers {
		t := c.counters[s.Name].Total()
		r.ScaleOut.Schedulers[s.Name] = SchedulerShare{Enqueued: perSched[s.Name],
			Metric:     int(t.Sum("scimsync_reconcile_scheduled_total", `result="enqueued"`)),
			Duplicates: int(t.Sum("scimsync_reconcile_scheduled_total", `result="duplicate"`))}
	}
}

func labelValue(labels, name string) string {
	_, rest, ok := strings.Cut(labels, name+`="`)
	if !ok {
		return ""
	}
	v, _, _ := strings.Cut(rest, `"`)
	return v
}

func sortedPairs[V any](m map[string]V) string {
	var b strings.Builder
	for i, k := range slices.Sorted(maps.Keys(m)) {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s %v", k, m[k])
	}
	return b.String()
}

// Print writes the report for people.
func (r *Report) Print(w io.Writer) {
	fmt.Fprintf(w, "scimsync chaos run: seed %d, chaos %s (elapsed %s), database %s\n", r.Seed, r.Duration, r.Elapsed, r.Database)
	fmt.Fprintf(w, "operations: %d (SCIM %d acknowledged, %d unknown, %d rejected; IdP %d)\n",
		r.Operations.Total, r.Operations.SCIMAcked, r.Operations.SCIMUnknown, r.Operations.SCIMRejected, sum(r.Operations.IdP))
	fmt.Fprintf(w, "  SCIM by kind [acked unknown rejected]: %s\n", sortedPairs(r.Operations.SCIM))
	fmt.Fprintf(w, "  IdP by kind: %s\n", sortedPairs(r.Operations.IdP))
	fmt.Fprintf(w, "faults: %d (%s)\n", sum(r.Faults), sortedPairs(r.Faults))
	fmt.Fprintf(w, "retries: %d job retries, %d jobs archived, %d final reconcile attempts\n",
		r.Retries.JobRetries, r.Retries.JobsFailed, r.Retries.FinalReconcileAttempts)
	for _, org := range slices.Sorted(maps.Keys(r.Runs)) {
		fmt.Fprintf(w, "sync runs %s: %s\n", org, sortedPairs(r.Runs[org]))
	}
	for _, org := range slices.Sorted(maps.Keys(r.Members)) {
		fmt.Fprintf(w, "final %s: %s\n", org, sortedPairs(r.Members[org]))
	}
	fmt.Fprintf(w, "mail: %d delivered at the sink; mail log %s\n", r.Mail.Delivered, sortedPairs(r.Mail.MailLog))
	fmt.Fprintf(w, "scale-out: %d scheduled slots enqueued; %d enqueued again after Redis lost its data\n", r.ScaleOut.Slots, len(r.ScaleOut.RedisLossDuplicates))
	for _, d := range r.ScaleOut.RedisLossDuplicates {
		fmt.Fprintf(w, "  %s\n", d)
	}
	for _, n := range slices.Sorted(maps.Keys(r.ScaleOut.Schedulers)) {
		s := r.ScaleOut.Schedulers[n]
		fmt.Fprintf(w, "  %s: enqueued %d (metric %d), found already enqueued %d\n", n, s.Enqueued, s.Metric, s.Duplicates)
	}
	for _, n := range slices.Sorted(maps.Keys(r.ScaleOut.Workers)) {
		s := r.ScaleOut.Workers[n]
		fmt.Fprintf(w, "  %s: %d tasks (%s; reconcile runs %d)\n", n, s.Tasks, sortedPairs(s.ByType), s.Reconciles)
	}
	var procs []string
	for _, p := range r.Processes {
		procs = append(procs, fmt.Sprintf("%s %d starts/%d kills", p.Name, p.Starts, p.Kills))
	}
	fmt.Fprintf(w, "processes: %s\n", strings.Join(procs, ", "))
	fmt.Fprintf(w, "member samples: %d\n", r.Samples)
	if len(r.Archived) > 0 {
		fmt.Fprintf(w, "archived tasks: %d\n", len(r.Archived))
		for _, a := range r.Archived {
			fmt.Fprintf(w, "  %s\n", a)
		}
	}
	fmt.Fprintf(w, "divergences: %d\n", len(r.Divergences))
	for _, d := range r.Divergences {
		fmt.Fprintf(w, "  %s\n", d)
	}
	if len(r.Divergences) > 0 {
		fmt.Fprintf(w, "logs kept in %s\n", r.Logs)
	}
}

func sum[V int | int64](m map[string]V) V {
	var t V
	for _, v := range m {
		t += v
	}
	return t
}
