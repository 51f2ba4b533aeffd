package clock

import (
	"context"
	"sync"
	"time"
)

// Fake is a Clock that moves only when told to. Advance fires the timers and
// tickers it passes, in the order of their deadlines; Sleep blocks until
// Advance passes its deadline (or, with SleepAdvances, advances the clock
// itself). It is safe for concurrent use.
type Fake struct {
	mu            sync.Mutex
	now           time.Time
	seq           uint64
	waiters       []*waiter     // pending timers, tickers and sleeps
	changed       chan struct{} // closed when waiters change; see BlockUntil
	sleepAdvances bool
	slept         time.Duration
	sleeps        int
}

var _ Clock = (*Fake)(nil)

// Option configures a Fake.
type Option func(*Fake)

// SleepAdvances makes Sleep advance the clock by its duration and return at
// once, for code that sleeps on the goroutine that the test itself waits on
// (a retry loop), where nothing else could call Advance.
func SleepAdvances(f *Fake) { f.sleepAdvances = true }

// NewFake returns a Fake reading start.
func NewFake(start time.Time, opts ...Option) *Fake {
	f := &Fake{now: start}
	for _, o := range opts {
		o(f)
	}
	return f
}

// waiter is a pending timer, ticker (period > 0) or sleep.
type waiter struct {
	f      *Fake
	at     time.Time
	seq    uint64 // breaks ties between equal deadlines: first made fires first
	period time.Duration
	ch     chan time.Time
}

// Now reads the clock.
func (f *Fake) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

// Advance moves the clock forward by d, firing what falls due on the way.
// A ticker passed several times fires each time, and its channel, like
// time.Ticker's, holds one tick: the rest are dropped for a slow reader.
// Each tick is a step, so keep tickers' periods within reason of d.
func (f *Fake) Advance(d time.Duration) {
	if d < 0 {
		panic("clock: Fake cannot go back")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.advanceLocked(f.now.Add(d))
}

// AdvanceTo moves the clock forward to t, as Advance does.
func (f *Fake) AdvanceTo(t time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if t.Before(f.now) {
		panic("clock: Fake cannot go back")
	}
	f.advanceLocked(t)
}

func (f *Fake) advanceLocked(to time.Time) {
	for {
		w := f.nextLocked()
		if w == nil || w.at.After(to) {
			break
		}
		f.now = w.at
		f.fireLocked(w)
	}
	f.now = f.now.Add(to.Sub(f.now)) // in the start's zone
}

// nextLocked is the waiter due first, or nil.
func (f *Fake) nextLocked() *waiter {
	var next *waiter
	for _, w := range f.waiters {
		if next == nil || w.at.Before(next.at) || w.at.Equal(next.at) && w.seq < next.seq {
			next = w
		}
	}
	return next
}

func (f *Fake) fireLocked(w *waiter) {
	select {
	case w.ch <- w.at:
	default: // a tick nobody has read yet
	}
	if w.period > 0 {
		w.at = w.at.Add(w.period)
		return
	}
	f.removeLocked(w)
}

func (f *Fake) addLocked(w *waiter) {
	f.seq++
	w.seq = f.seq
	f.waiters = append(f.waiters, w)
	f.changedLocked()
}

// removeLocked drops w and reports whether it was pending.
func (f *Fake) removeLocked(w *waiter) bool {
	for i, x := range f.waiters {
		if x == w {
			f.waiters = append(f.waiters[:i], f.waiters[i+1:]...)
			f.changedLocked()
			return true
		}
	}
	return false
}

func (f *Fake) changedLocked() {
	if f.changed != nil {
		close(f.changed)
		f.changed = nil
	}
}

// BlockUntil waits until at least n timers, tickers and sleeps are pending,
// so that a test advances the clock only once the code under test waits
// on it.
func (f *Fake) BlockUntil(n int) {
	for {
		f.mu.Lock()
		if len(f.waiters) >= n {
			f.mu.Unlock()
			return
		}
		if f.changed == nil {
			f.changed = make(chan struct{})
		}
		ch := f.changed
		f.mu.Unlock()
		<-ch
	}
}

// Pending is how many timers, tickers and sleeps are pending.
func (f *Fake) Pending() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.waiters)
}

// Next is how long until the first pending timer, ticker or sleep is due;
// ok is false when none is pending.
func (f *Fake) Next() (d time.Duration, ok bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	w := f.nextLocked()
	if w == nil {
		return 0, false
	}
	return w.at.Sub(f.now), true
}

// Slept is the total duration of the sleeps that completed, and how many
// there were.
func (f *Fake) Slept() (time.Duration, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.slept, f.sleeps
}

// Sleep waits until the clock has advanced by d, or until ctx is done.
func (f *Fake) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	d = max(d, 0)
	f.mu.Lock()
	if f.sleepAdvances || d == 0 {
		f.advanceLocked(f.now.Add(d))
		f.slept += d
		f.sleeps++
		f.mu.Unlock()
		return nil
	}
	w := &waiter{f: f, at: f.now.Add(d), ch: make(chan time.Time, 1)}
	f.addLocked(w)
	f.mu.Unlock()
	select {
	case <-w.ch:
		f.mu.Lock()
		f.slept += d
		f.sleeps++
		f.mu.Unlock()
		return nil
	case <-ctx.Done():
		f.mu.Lock()
		f.removeLocked(w)
		f.mu.Unlock()
		return ctx.Err()
	}
}

// NewTimer returns a timer that fires once Advance reaches d from now; a d
// of zero or less fires at once.
func (f *Fake) NewTimer(d time.Duration) Timer {
	t := &fakeTimer{waiter{f: f, ch: make(chan time.Time, 1)}}
	t.Reset(d)
	return t
}

// NewTicker returns a ticker that fires every d of Advance. It panics if d
// is not positive, as time.NewTicker does.
func (f *Fake) NewTicker(d time.Duration) Ticker {
	t := &fakeTicker{waiter{f: f, ch: make(chan time.Time, 1)}}
	t.Reset(d)
	return t
}

// drain drops a fired value not yet received, so that none is stale after
// Stop or Reset (the guarantee time.Timer gives since Go 1.23).
func drain(ch chan time.Time) {
	select {
	case <-ch:
	default:
	}
}

type fakeTimer struct{ w waiter }

func (t *fakeTimer) C() <-chan time.Time { return t.w.ch }

func (t *fakeTimer) Stop() bool {
	f := t.w.f
	f.mu.Lock()
	defer f.mu.Unlock()
	drain(t.w.ch)
	return f.removeLocked(&t.w)
}

func (t *fakeTimer) Reset(d time.Duration) bool {
	f := t.w.f
	f.mu.Lock()
	defer f.mu.Unlock()
	drain(t.w.ch)
	pending := f.removeLocked(&t.w)
	if d <= 0 {
		t.w.at = f.now
		t.w.ch <- t.w.at
		return pending
	}
	t.w.at = f.now.Add(d)
	f.addLocked(&t.w)
	return pending
}

type fakeTicker struct{ w waiter }

func (t *fakeTicker) C() <-chan time.Time { return t.w.ch }

func (t *fakeTicker) Stop() {
	f := t.w.f
	f.mu.Lock()
	defer f.mu.Unlock()
	drain(t.w.ch)
	f.removeLocked(&t.w)
}

func (t *fakeTicker) Reset(d time.Duration) {
	if d <= 0 {
		panic("clock: non-positive ticker interval")
	}
	f := t.w.f
	f.mu.Lock()
	defer f.mu.Unlock()
	drain(t.w.ch)
	f.removeLocked(&t.w)
	t.w.period = d
	t.w.at = f.now.Add(d)
	f.addLocked(&t.w)
}
