// Package clock is the one source of time, timers and sleeps that code
// takes by injection, so that tests can run it on a Fake.
package clock

import (
	"context"
	"time"
)

// Clock tells the time and waits. Real is the production clock; a nil
// Clock field means Real (see OrReal).
type Clock interface {
	Now() time.Time
	NewTimer(d time.Duration) Timer
	NewTicker(d time.Duration) Ticker
	// Sleep waits for d, or until ctx is done and then returns ctx.Err().
	// A d of zero or less returns ctx.Err() at once.
	Sleep(ctx context.Context, d time.Duration) error
}

// Timer is a time.Timer behind an interface.
type Timer interface {
	C() <-chan time.Time
	// Stop and Reset report whether the timer was pending, as
	// time.Timer's do; after either, no stale time is received.
	Stop() bool
	Reset(d time.Duration) bool
}

// Ticker is a time.Ticker behind an interface.
type Ticker interface {
	C() <-chan time.Time
	Stop()
	Reset(d time.Duration)
}

// OrReal returns c, or Real when c is nil, so that zero-value configs keep
// the real clock.
func OrReal(c Clock) Clock {
	if c == nil {
		return Real{}
	}
	return c
}

// Real is the system clock.
type Real struct{}

func (Real) Now() time.Time                   { return time.Now() }
func (Real) NewTimer(d time.Duration) Timer   { return realTimer{time.NewTimer(d)} }
func (Real) NewTicker(d time.Duration) Ticker { return realTicker{time.NewTicker(d)} }

func (Real) Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

type realTimer struct{ t *time.Timer }

func (r realTimer) C() <-chan time.Time        { return r.t.C }
func (r realTimer) Stop() bool                 { return r.t.Stop() }
func (r realTimer) Reset(d time.Duration) bool { return r.t.Reset(d) }

type realTicker struct{ t *time.Ticker }

func (r realTicker) C() <-chan time.Time   { return r.t.C }
func (r realTicker) Stop()                 { r.t.Stop() }
func (r realTicker) Reset(d time.Duration) { r.t.Reset(d) }
