package main

import (
	"strings"
	"testing"
)

func TestParseMetricsAndSum(t *testing.T) {
	text := `# HELP scimsync_jobs_total Task runs.
# TYPE scimsync_jobs_total counter
scimsync_jobs_total{outcome="created",type="converge:user"} 5
scimsync_jobs_total{outcome="error",type="converge:user"} 2
scimsync_jobs_total{outcome="sent",type="invite:send"} 3
go_goroutines 12
`
	s, err := ParseMetrics(strings.NewReader(text), "scimsync_")
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Sum("scimsync_jobs_total"); got != 10 {
		t.Errorf("Sum = %v, want 10", got)
	}
	if got := s.Sum("scimsync_jobs_total", `outcome="error"`); got != 2 {
		t.Errorf("Sum(error) = %v, want 2", got)
	}
	if _, ok := s["go_goroutines"]; ok {
		t.Error("kept a series without the prefix")
	}
}

func TestCountersSurviveRestart(t *testing.T) {
	var c Counters
	k := `scimsync_jobs_total{type="x"}`
	c.Observe(Sample{k: 5})
	c.Observe(Sample{k: 7})
	c.Observe(Sample{k: 2}) // restarted: 7 before, 2 since
	if got := c.Total()[k]; got != 9 {
		t.Errorf("total = %v, want 9", got)
	}
	c.Observe(Sample{`scimsync_other{}`: 1}) // restarted again, series not yet seen
	c.Observe(Sample{k: 1})
	if got := c.Total()[k]; got != 10 {
		t.Errorf("total = %v, want 10", got)
	}
}
