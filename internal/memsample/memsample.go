// Package memsample measures a benchmark's peak memory: the heap in use
// above a baseline, sampled every few milliseconds, and the process's peak
// resident set.
package memsample

import (
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Sampler samples the heap until Stop.
type Sampler struct {
	base runtime.MemStats
	done chan struct{}
	wg   sync.WaitGroup

	mu   sync.Mutex
	peak uint64
}

// Start collects garbage, resets the peak resident set (Linux), records the
// baseline and starts sampling.
func Start() *Sampler {
	runtime.GC()
	_ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) // resets VmHWM
	s := &Sampler{done: make(chan struct{})}
	runtime.ReadMemStats(&s.base)
	s.wg.Go(func() {
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-s.done:
				return
			case <-tick.C:
				s.sample()
			}
		}
	})
	return s
}

func (s *Sampler) sample() {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	s.mu.Lock()
	s.peak = max(s.peak, ms.HeapInuse)
	s.mu.Unlock()
}

// Base is the heap as Start found it.
func (s *Sampler) Base() runtime.MemStats { return s.base }

// Stop ends sampling and returns the peak heap in use above the baseline
// and the process's peak resident set (0 where the OS does not tell), in
// bytes.
func (s *Sampler) Stop() (heap, rss uint64) {
	close(s.done)
	s.wg.Wait()
	s.sample() // a run shorter than one tick is still seen
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.peak - min(s.peak, s.base.HeapInuse), peakRSS()
}

// peakRSS is the process's peak resident set (VmHWM), in bytes.
func peakRSS() uint64 {
	raw, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}
