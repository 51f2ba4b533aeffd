package reconciler

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the reconciler's and scheduler's Prometheus metrics.
type Metrics struct {
	runs      *prometheus.CounterVec
	duration  *prometheus.HistogramVec
	planned   *prometheus.CounterVec
	planSize  prometheus.Histogram
	pages     prometheus.Counter
	scheduled *prometheus.CounterVec
}

// NewMetrics registers the metrics on reg. Calling it again with the same
// registry (a process running both the worker and the scheduler role)
// returns metrics backed by the collectors already registered.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	return &Metrics{
		runs: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "scimsync_reconcile_runs_total",
			Help: "Reconciliation runs by trigger and final status (succeeded, failed, blocked).",
		}, []string{"trigger", "status"})),
		duration: register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "scimsync_reconcile_duration_seconds",
			Help:    "Time a reconciliation run took, by final status.",
			Buckets: []float64{.05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600},
		}, []string{"status"})),
		planned: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "scimsync_reconcile_planned_changes_total",
			Help: "Changes planned by reconciliation runs, by kind (provision, update, deprovision, remove, resendInvite, group…, skip, keep).",
		}, []string{"action"})),
		planSize: register(reg, prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "scimsync_reconcile_plan_size",
			Help:    "Changes in one reconciliation plan.",
			Buckets: []float64{0, 1, 5, 10, 50, 100, 500, 1000, 5000, 10000, 50000, 100000},
		})),
		pages: register(reg, prometheus.NewCounter(prometheus.CounterOpts{
			Name: "scimsync_reconcile_idp_pages_total",
			Help: "Pages fetched from identity providers by reconciliation pulls.",
		})),
		scheduled: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "scimsync_reconcile_scheduled_total",
			Help: "Scheduled reconciliations by result: enqueued, duplicate (another scheduler enqueued it), error.",
		}, []string{"result"})),
	}
}

func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		panic(err)
	}
	return c
}

// The methods below accept a nil *Metrics, which records nothing.

func (m *Metrics) run(trigger, status string, seconds float64) {
	if m == nil {
		return
	}
	m.runs.WithLabelValues(trigger, status).Inc()
	m.duration.WithLabelValues(status).Observe(seconds)
}

func (m *Metrics) plan(counts map[string]int) {
	if m == nil {
		return
	}
	for action, n := range counts {
		m.planned.WithLabelValues(action).Add(float64(n))
	}
	m.planSize.Observe(float64(total(counts)))
}

func (m *Metrics) page() {
	if m != nil {
		m.pages.Inc()
	}
}

func (m *Metrics) schedule(result string) {
	if m != nil {
		m.scheduled.WithLabelValues(result).Inc()
	}
}
