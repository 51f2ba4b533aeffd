package metricstest

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestValue(t *testing.T) {
	reg := prometheus.NewRegistry()
	jobs := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "jobs_total"}, []string{"type", "outcome"})
	backlog := prometheus.NewGauge(prometheus.GaugeOpts{Name: "backlog"})
	reg.MustRegister(jobs, backlog)
	jobs.WithLabelValues("a", "ok").Add(2)
	jobs.WithLabelValues("a", "failed").Add(3)
	jobs.WithLabelValues("b", "ok").Add(5)
	backlog.Set(7)
	for _, tt := range []struct {
		name   string
		metric string
		labels map[string]string
		want   float64
	}{
		{"one series", "jobs_total", map[string]string{"type": "a", "outcome": "ok"}, 2},
		{"summed over the matching series", "jobs_total", map[string]string{"type": "a"}, 5},
		{"every series", "jobs_total", nil, 10},
		{"no series matches", "jobs_total", map[string]string{"type": "c"}, 0},
		{"a label the series lack", "jobs_total", map[string]string{"queue": "x"}, 0},
		{"a gauge", "backlog", nil, 7},
		{"no such metric", "nothing", nil, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := Value(t, reg, tt.metric, tt.labels); got != tt.want {
				t.Errorf("Value = %v, want %v", got, tt.want)
			}
		})
	}
}
