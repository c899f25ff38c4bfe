package halosim

import (
	"context"
	"sync"
	"time"
)

// Clock is a settable clock for deterministic tests: pass its Now as Options.Clock. The
// zero value reads as the zero time; use NewClock.
//
// It is also a virtual clock for whatever waits on the tenant: Sleep moves it on at once
// instead of waiting, so a client given it (a haloapi.Clock) spends simulated minutes of
// budget waits, backoff and Retry-After in no real time, and the tenant's rate window
// rolls on by the same clock.
type Clock struct {
	mu    sync.Mutex
	t     time.Time
	slept time.Duration
}

// NewClock returns a clock standing at start.
func NewClock(start time.Time) *Clock { return &Clock{t: start} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward by d (backward when d is negative) and returns the new time.
func (c *Clock) Advance(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
	return c.t
}

// Set puts the clock at t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// Sleep moves the clock forward by d and returns at once; it returns ctx's error, without
// moving the clock, when ctx has ended.
func (c *Clock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d > 0 {
		c.mu.Lock()
		c.t = c.t.Add(d)
		c.slept += d
		c.mu.Unlock()
	}
	return nil
}

// Slept is how far Sleep has moved the clock in all: the time spent waiting.
func (c *Clock) Slept() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.slept
}
