package clock_test

import (
	"context"
	"fmt"
	"time"

	"github.com/scimsync/scimsync/internal/clock"
)

// A test waits until the code under test sleeps, then advances the clock
// past its deadline: no real time passes.
func ExampleFake() {
	f := clock.NewFake(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	done := make(chan error)
	go func() { done <- f.Sleep(context.Background(), time.Minute) }() // the code under test
	f.BlockUntil(1)
	f.Advance(time.Minute)
	fmt.Println(<-done, f.Now().Format(time.TimeOnly))
	// Output: <nil> 00:01:00
}
