package clock_test

import (
	"context"
	"fmt"
	"time"

	"github.com/dsync-go/dsync/clock"
)

// A test drives code that waits on a Clock with a Fake: it waits until the
// code sleeps (BlockUntil), then moves the time on (Advance), and never
// sleeps itself.
func ExampleFake() {
	clk := clock.NewFake(time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC))
	slept := make(chan bool)
	go func() { slept <- clock.Sleep(context.Background(), clk, time.Minute) }()

	clk.BlockUntil(nil, 1) // the sleeper's timer is pending
	clk.Advance(time.Minute)
	fmt.Println("slept a minute:", <-slept, "at", clk.Now().Format(time.TimeOnly))
	// Output:
	// slept a minute: true at 12:01:00
}
