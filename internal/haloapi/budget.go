package haloapi

import (
	"context"
	"sync"
	"time"
)

// Default request budget of a connection: Halo allows about 300 requests per rolling five
// minutes for the whole tenant, shared with every other integration (docs/HALO.md, "The
// REST API"); 250 leaves headroom. config.Budget carries the same defaults.
const (
	DefaultBudgetRequests = 250
	DefaultBudgetWindow   = 5 * time.Minute
	// TenantLimit is Halo's own limit for the whole tenant per DefaultBudgetWindow: what
	// the poller's share (poll.share) is a share of.
	TenantLimit = 300
)

// Clock is the client's and the budget's source of time. Tests inject a fake one so that
// backoff and budget waits cost no real time.
type Clock interface {
	Now() time.Time
	// Sleep waits for d, or until ctx ends (returning ctx's error).
	Sleep(ctx context.Context, d time.Duration) error
}

// SystemClock is the real clock.
var SystemClock Clock = systemClock{}

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

func (systemClock) Sleep(ctx context.Context, d time.Duration) error {
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

// Budget is a connection's request budget: at most N requests in any rolling window. Every
// HTTP request the client makes to Halo (API calls, retries, token requests and the
// authinfo lookup) takes one unit first.
//
// A Budget is safe for concurrent use and is meant to be shared by everything in this
// process that calls the API of one connection: build one Client (or one Budget passed to
// every Client) per connection and share it.
//
// The budget only sees its own process. Halo's limit (about 300 requests per rolling five
// minutes) is per tenant, so where several processes call one tenant at once, each gets a
// share: in AWS every Lambda instance holds its own Budget, and the number of instances is
// capped (the worker's SQS event source has MaximumConcurrency, and the poller runs one
// instance per schedule), so size each instance's budget as the connection's total divided
// by the instances that may run at once (see InstanceShare): with a total of 250 per five
// minutes, five workers and one poller get 41 each, 246 in all. A fresh instance starts with
// a full budget, so an instance replaced within a window can briefly overspend its share;
// the client's 429 handling (backoff, Retry-After, and Pause of the whole budget) absorbs
// that. The local server runs everything in one process and uses the whole budget.
type Budget struct {
	limit  int
	window time.Duration
	clock  Clock

	mu    sync.Mutex
	taken []time.Time // the times of the requests still in the window, oldest first
	hold  time.Time   // no request goes before this (after a 429)
	spent int64       // every unit ever taken
}

// NewBudget returns a budget of requests per rolling window. requests and window at or
// below zero take the defaults (250 per five minutes); a nil clock is the system clock.
func NewBudget(requests int, window time.Duration, clock Clock) *Budget {
	if requests <= 0 {
		requests = DefaultBudgetRequests
	}
	if window <= 0 {
		window = DefaultBudgetWindow
	}
	if clock == nil {
		clock = SystemClock
	}
	return &Budget{limit: requests, window: window, clock: clock, taken: make([]time.Time, 0, min(requests, 1024))}
}

// InstanceShare divides a connection's total budget among the processes that may call the
// tenant at once (for example the worker's maximum concurrency plus the poller), never
// below one request per window.
func InstanceShare(total, instances int) int {
	if total <= 0 {
		total = DefaultBudgetRequests
	}
	if instances <= 1 {
		return total
	}
	return max(total/instances, 1)
}

// Limit returns the budget's size and window.
func (b *Budget) Limit() (requests int, window time.Duration) { return b.limit, b.window }

// expire drops the entries that have left the window. b.mu is held.
func (b *Budget) expire(now time.Time) {
	i := 0
	for i < len(b.taken) && !b.taken[i].Add(b.window).After(now) {
		i++
	}
	if i > 0 {
		b.taken = append(b.taken[:0], b.taken[i:]...)
	}
}

// take records a request at now if one may go, else says how long until one may. b.mu is
// held.
func (b *Budget) take(now time.Time) (time.Duration, bool) {
	b.expire(now)
	var wait time.Duration
	if now.Before(b.hold) {
		wait = b.hold.Sub(now)
	}
	if len(b.taken) >= b.limit {
		wait = max(wait, b.taken[len(b.taken)-b.limit].Add(b.window).Sub(now))
	}
	if wait > 0 {
		return wait, false
	}
	b.taken = append(b.taken, now)
	b.spent++
	return 0, true
}

// Wait blocks until a request may go and takes one unit for it, or returns ctx's error.
func (b *Budget) Wait(ctx context.Context) error {
	if b == nil {
		return ctx.Err()
	}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		b.mu.Lock()
		wait, ok := b.take(b.clock.Now())
		b.mu.Unlock()
		if ok {
			return nil
		}
		if err := b.clock.Sleep(ctx, wait); err != nil {
			return err
		}
	}
}

// TryTake takes one unit if a request may go now.
func (b *Budget) TryTake() bool {
	if b == nil {
		return true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	_, ok := b.take(b.clock.Now())
	return ok
}

// Remaining is the number of requests that may go now without waiting.
func (b *Budget) Remaining() int {
	if b == nil {
		return 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.clock.Now()
	if now.Before(b.hold) {
		return 0
	}
	b.expire(now)
	return max(b.limit-len(b.taken), 0)
}

// Spent is the number of units taken since the budget was made, by everything sharing it:
// the requests made between two readings are their difference.
func (b *Budget) Spent() int64 {
	if b == nil {
		return 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.spent
}

// Pause stops every request for d from now (it never shortens an earlier pause). The
// client calls it when Halo answers 429: the tenant's limit is spent, so every caller
// sharing the budget holds off, not only the one that was refused.
func (b *Budget) Pause(d time.Duration) {
	if b == nil || d <= 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if until := b.clock.Now().Add(d); until.After(b.hold) {
		b.hold = until
	}
}

// Part returns a new budget of requests per this budget's window, on its clock: the
// share of one caller (the poller), taken in addition to this budget (WithBudget).
func (b *Budget) Part(requests int) *Budget {
	return NewBudget(max(requests, 1), b.window, b.clock)
}

type budgetKey struct{}

// WithBudget returns a context under which every request also takes a unit of b, before
// the client's own budget: a caller's share of the connection's budget, enforced over the
// same rolling window (the poller's part of the tenant's limit).
func WithBudget(ctx context.Context, b *Budget) context.Context {
	if b == nil {
		return ctx
	}
	return context.WithValue(ctx, budgetKey{}, b)
}

// BudgetOf returns the share WithBudget put in ctx, or nil.
func BudgetOf(ctx context.Context) *Budget {
	b, _ := ctx.Value(budgetKey{}).(*Budget)
	return b
}
