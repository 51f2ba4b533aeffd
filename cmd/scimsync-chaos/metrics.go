package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Sample is one scrape of Prometheus text: series (name{labels}) → value.
type Sample map[string]float64

// ParseMetrics reads the Prometheus text format, keeping series whose
// name starts with prefix.
func ParseMetrics(r io.Reader, prefix string) (Sample, error) {
	out := Sample{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' || !strings.HasPrefix(line, prefix) {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		out[line[:i]] = v
	}
	return out, sc.Err()
}

// Sum adds the series of metric name whose labels include every one of
// match (each like `outcome="error"`).
func (s Sample) Sum(name string, match ...string) float64 {
	var t float64
	for k, v := range s {
		n, labels, _ := strings.Cut(k, "{")
		if n != name {
			continue
		}
		ok := true
		for _, m := range match {
			if !strings.Contains(labels, m) {
				ok = false
				break
			}
		}
		if ok {
			t += v
		}
	}
	return t
}

// Counters accumulates one process's counters across its restarts: a
// value lower than the last scrape means a new process, whose count adds
// to what the old one had reached.
type Counters struct {
	mu   sync.Mutex
	last Sample
	base Sample
}

func (c *Counters) Observe(s Sample) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.last == nil {
		c.last, c.base = Sample{}, Sample{}
	}
	for k, v := range s {
		if v < c.last[k] {
			c.base[k] += c.last[k]
		}
		c.last[k] = v
	}
	for k, v := range c.last {
		if _, ok := s[k]; !ok && len(s) > 0 {
			// A restarted process has not yet seen this series.
			c.base[k] += v
			c.last[k] = 0
		}
	}
}

// Total is the accumulated sample.
func (c *Counters) Total() Sample {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := Sample{}
	for k, v := range c.last {
		out[k] = v + c.base[k]
	}
	for k, v := range c.base {
		if _, ok := out[k]; !ok {
			out[k] = v
		}
	}
	return out
}

// scrape reads a process's /metrics.
func scrape(ctx context.Context, addr string) (Sample, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+addr+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return ParseMetrics(resp.Body, "scimsync_")
}
