package clock_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/scimsync/scimsync/internal/clock"
)

var start = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// recv is what ch holds now, without waiting.
func recv(ch <-chan time.Time) (time.Time, bool) {
	select {
	case t := <-ch:
		return t, true
	default:
		return time.Time{}, false
	}
}

func TestFakeTimersFireInDeadlineOrder(t *testing.T) {
	tests := []struct {
		name     string
		timers   []time.Duration
		advances []time.Duration
		// fired[i] are the timers that fired during advances[i].
		fired [][]int
	}{
		{"not before its deadline", []time.Duration{2 * time.Second}, []time.Duration{time.Second, time.Second}, [][]int{nil, {0}}},
		{"one per step, by deadline", []time.Duration{time.Second, 3 * time.Second, 2 * time.Second},
			[]time.Duration{time.Second, time.Second, time.Second}, [][]int{{0}, {2}, {1}}},
		{"all due in one step", []time.Duration{3 * time.Second, time.Second}, []time.Duration{5 * time.Second}, [][]int{{0, 1}}},
		{"equal deadlines fire together", []time.Duration{time.Second, time.Second}, []time.Duration{time.Second}, [][]int{{0, 1}}},
		{"zero advance fires nothing", []time.Duration{time.Nanosecond}, []time.Duration{0, time.Nanosecond}, [][]int{nil, {0}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := clock.NewFake(start)
			var timers []clock.Timer
			for _, d := range tt.timers {
				timers = append(timers, f.NewTimer(d))
			}
			if got := f.Pending(); got != len(tt.timers) {
				t.Fatalf("Pending = %d, want %d", got, len(tt.timers))
			}
			for step, d := range tt.advances {
				f.Advance(d)
				var fired []int
				for i, tm := range timers {
					if at, ok := recv(tm.C()); ok {
						fired = append(fired, i)
						if want := start.Add(tt.timers[i]); !at.Equal(want) {
							t.Errorf("timer %d sent %v, want its deadline %v", i, at, want)
						}
					}
				}
				if diff := cmp.Diff(tt.fired[step], fired); diff != "" {
					t.Errorf("step %d fired (-want +got):\n%s", step, diff)
				}
			}
			if got := f.Pending(); got != 0 {
				t.Errorf("Pending = %d after all fired", got)
			}
		})
	}
}

func TestFakeTimerAtOnce(t *testing.T) {
	for _, d := range []time.Duration{0, -time.Second} {
		f := clock.NewFake(start)
		tm := f.NewTimer(d)
		if at, ok := recv(tm.C()); !ok || !at.Equal(start) {
			t.Errorf("NewTimer(%v) sent %v, %v; want %v at once", d, at, ok, start)
		}
		if f.Pending() != 0 {
			t.Errorf("NewTimer(%v) left a pending timer", d)
		}
	}
}

func TestFakeTimerStopAndReset(t *testing.T) {
	tests := []struct {
		name        string
		do          func(f *clock.Fake, tm clock.Timer) bool
		wantPending bool          // what Stop or Reset returned
		thenAdvance time.Duration // after do
		wantFire    bool          // within thenAdvance
	}{
		{"stop before it fires", func(_ *clock.Fake, tm clock.Timer) bool { return tm.Stop() }, true, time.Hour, false},
		{"stop after it fired drops the unread time", func(f *clock.Fake, tm clock.Timer) bool {
			f.Advance(time.Second)
			return tm.Stop()
		}, false, time.Hour, false},
		{"reset pushes the deadline back", func(_ *clock.Fake, tm clock.Timer) bool { return tm.Reset(5 * time.Second) }, true, 4 * time.Second, false},
		{"reset keeps it pending", func(_ *clock.Fake, tm clock.Timer) bool { return tm.Reset(5 * time.Second) }, true, 5 * time.Second, true},
		{"reset after it fired rearms it", func(f *clock.Fake, tm clock.Timer) bool {
			f.Advance(time.Second)
			return tm.Reset(time.Second)
		}, false, time.Second, true},
		{"reset to zero fires at once", func(_ *clock.Fake, tm clock.Timer) bool { return tm.Reset(0) }, true, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := clock.NewFake(start)
			tm := f.NewTimer(time.Second)
			if got := tt.do(f, tm); got != tt.wantPending {
				t.Errorf("returned %v, want %v", got, tt.wantPending)
			}
			_, fired := recv(tm.C()) // a stale time counts as a fire
			f.Advance(tt.thenAdvance)
			if _, ok := recv(tm.C()); ok {
				fired = true
			}
			if fired != tt.wantFire {
				t.Errorf("fired = %v, want %v", fired, tt.wantFire)
			}
		})
	}
}

func TestFakeTicker(t *testing.T) {
	f := clock.NewFake(start)
	tk := f.NewTicker(time.Second)
	next := func(want time.Duration) {
		t.Helper()
		at, ok := recv(tk.C())
		switch {
		case want < 0 && ok:
			t.Errorf("ticked at %v, want no tick", at.Sub(start))
		case want >= 0 && !ok:
			t.Errorf("no tick, want one at %v", want)
		case want >= 0 && !at.Equal(start.Add(want)):
			t.Errorf("ticked at %v, want %v", at.Sub(start), want)
		}
	}
	f.Advance(999 * time.Millisecond)
	next(-1)
	f.Advance(time.Millisecond)
	next(time.Second)
	f.Advance(time.Second)
	next(2 * time.Second)
	// Unread ticks are dropped, as time.Ticker drops them for a slow
	// reader: the channel holds the first.
	f.Advance(3 * time.Second)
	next(3 * time.Second)
	next(-1)
	// It keeps its phase.
	f.Advance(500 * time.Millisecond)
	next(-1)
	f.Advance(500 * time.Millisecond)
	next(6 * time.Second)

	f.Advance(500 * time.Millisecond) // 6.5s
	tk.Reset(2 * time.Second)
	f.Advance(time.Second + 500*time.Millisecond)
	next(-1)
	f.Advance(500 * time.Millisecond)
	next(8500 * time.Millisecond)

	f.Advance(2 * time.Second) // a tick left unread
	tk.Stop()
	next(-1)
	if f.Pending() != 0 {
		t.Errorf("Pending = %d after Stop", f.Pending())
	}
	f.Advance(time.Hour)
	next(-1)
}

func TestFakeTickerRejectsNonPositive(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("NewTicker(0) did not panic")
		}
	}()
	clock.NewFake(start).NewTicker(0)
}

func TestFakeSleep(t *testing.T) {
	f := clock.NewFake(start)
	done := make(chan error, 1)
	go func() { done <- f.Sleep(context.Background(), 5*time.Second) }()
	f.BlockUntil(1)
	f.Advance(4 * time.Second)
	if f.Pending() != 1 {
		t.Fatal("the sleep ended before its deadline")
	}
	f.Advance(time.Second)
	if err := <-done; err != nil {
		t.Fatalf("Sleep = %v", err)
	}
	if slept, n := f.Slept(); slept != 5*time.Second || n != 1 {
		t.Errorf("Slept = %v, %d; want 5s, 1", slept, n)
	}
}

func TestFakeSleepCancelled(t *testing.T) {
	f := clock.NewFake(start)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Sleep(ctx, time.Hour) }()
	f.BlockUntil(1)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Sleep = %v, want context.Canceled", err)
	}
	if f.Pending() != 0 {
		t.Error("a cancelled sleep stayed pending")
	}
	// Already done: no wait at all.
	if err := f.Sleep(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Errorf("Sleep on a done context = %v", err)
	}
	if _, n := f.Slept(); n != 0 {
		t.Errorf("%d sleeps counted, want none", n)
	}
	if !f.Now().Equal(start) {
		t.Errorf("the clock moved to %v", f.Now())
	}
}

func TestFakeSleepAdvances(t *testing.T) {
	f := clock.NewFake(start, clock.SleepAdvances)
	tm := f.NewTimer(3 * time.Second)
	if err := f.Sleep(context.Background(), 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := f.Sleep(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	if got := f.Now(); !got.Equal(start.Add(5 * time.Second)) {
		t.Errorf("Now = %v, want start+5s", got)
	}
	if at, ok := recv(tm.C()); !ok || !at.Equal(start.Add(3*time.Second)) {
		t.Errorf("timer passed by the sleep: %v, %v", at, ok)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := f.Sleep(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Errorf("Sleep on a done context = %v", err)
	}
	if slept, n := f.Slept(); slept != 5*time.Second || n != 2 {
		t.Errorf("Slept = %v, %d; want 5s, 2", slept, n)
	}
}

func TestFakeAdvanceTo(t *testing.T) {
	f := clock.NewFake(start.In(time.FixedZone("east", 9*3600)))
	tm := f.NewTimer(time.Minute)
	f.AdvanceTo(start.Add(time.Hour))
	if got := f.Now(); !got.Equal(start.Add(time.Hour)) || got.Location().String() != "east" {
		t.Errorf("Now = %v, want start+1h in the start's zone", got)
	}
	if _, ok := recv(tm.C()); !ok {
		t.Error("the timer passed did not fire")
	}
	defer func() {
		if recover() == nil {
			t.Error("going back did not panic")
		}
	}()
	f.AdvanceTo(start)
}

func TestFakeNext(t *testing.T) {
	f := clock.NewFake(start)
	if _, ok := f.Next(); ok {
		t.Error("Next reported a waiter on a new clock")
	}
	f.NewTicker(3 * time.Second)
	f.NewTimer(2 * time.Second)
	f.Advance(time.Second)
	if d, ok := f.Next(); !ok || d != time.Second {
		t.Errorf("Next = %v, %v; want 1s", d, ok)
	}
}

// Many goroutines wait on one clock while the test advances it: run with
// -race.
func TestFakeConcurrent(t *testing.T) {
	f := clock.NewFake(start)
	const n = 20
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			d := time.Duration(i+1) * time.Second
			if i%2 == 0 {
				if err := f.Sleep(context.Background(), d); err != nil {
					t.Error(err)
				}
				return
			}
			tm := f.NewTimer(d)
			if at := <-tm.C(); !at.Equal(start.Add(d)) {
				t.Errorf("timer of %v fired at %v", d, at.Sub(start))
			}
		})
	}
	f.BlockUntil(n)
	for range n {
		f.Advance(time.Second)
		_ = f.Now()
	}
	wg.Wait()
	if slept, sleeps := f.Slept(); sleeps != n/2 || slept != 100*time.Second {
		t.Errorf("Slept = %v, %d; want 100s (1+3+…+19), %d", slept, sleeps, n/2)
	}
}

func TestReal(t *testing.T) {
	c := clock.OrReal(nil)
	if _, ok := c.(clock.Real); !ok {
		t.Fatalf("OrReal(nil) = %T, want Real", c)
	}
	f := clock.NewFake(start)
	if clock.OrReal(f) != f {
		t.Error("OrReal replaced a clock")
	}
	if err := c.Sleep(context.Background(), time.Millisecond); err != nil {
		t.Errorf("Sleep = %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	began := time.Now()
	if err := c.Sleep(ctx, time.Hour); !errors.Is(err, context.Canceled) || time.Since(began) > time.Second {
		t.Errorf("Sleep on a done context = %v after %v", err, time.Since(began))
	}
	tm := c.NewTimer(time.Millisecond)
	<-tm.C()
	if tm.Stop() {
		t.Error("Stop of a fired timer reported it pending")
	}
	tk := c.NewTicker(time.Millisecond)
	<-tk.C()
	tk.Stop()
}
