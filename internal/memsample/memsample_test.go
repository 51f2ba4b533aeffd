package memsample

import (
	"runtime"
	"testing"
)

func TestSamplerSeesAnAllocation(t *testing.T) {
	s := Start()
	buf := make([]byte, 64<<20)
	for i := range buf {
		buf[i] = byte(i)
	}
	heap, rss := s.Stop()
	runtime.KeepAlive(buf)
	if heap < 60<<20 {
		t.Errorf("peak heap above baseline = %d, want ≥ 60 MiB", heap)
	}
	if runtime.GOOS == "linux" && rss < 60<<20 {
		t.Errorf("peak RSS = %d, want ≥ 60 MiB", rss)
	}
}
