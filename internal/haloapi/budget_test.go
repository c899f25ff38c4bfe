package haloapi

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// fakeClock is a Clock for tests. In auto mode Sleep moves the clock on and returns at
// once (backoff costs nothing); otherwise Sleep blocks until Advance passes its deadline or
// its context ends, and waitSleepers lets a test wait for goroutines to be asleep.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	auto    bool
	sleeps  []time.Duration
	waiters map[*fakeWaiter]bool
	changed chan struct{}
}

type fakeWaiter struct {
	until time.Time
	ch    chan struct{}
}

func newFakeClock(auto bool) *fakeClock {
	return &fakeClock{
		now:     time.Date(2026, 8, 1, 6, 30, 0, 0, time.UTC),
		auto:    auto,
		waiters: map[*fakeWaiter]bool{},
		changed: make(chan struct{}),
	}
}

func (f *fakeClock) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

// notify wakes waitSleepers. f.mu is held.
func (f *fakeClock) notify() {
	close(f.changed)
	f.changed = make(chan struct{})
}

func (f *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	f.mu.Lock()
	f.sleeps = append(f.sleeps, d)
	if f.auto || d <= 0 {
		if d > 0 {
			f.now = f.now.Add(d)
		}
		f.mu.Unlock()
		return ctx.Err()
	}
	w := &fakeWaiter{until: f.now.Add(d), ch: make(chan struct{})}
	f.waiters[w] = true
	f.notify()
	f.mu.Unlock()
	select {
	case <-w.ch:
		return nil
	case <-ctx.Done():
		f.mu.Lock()
		delete(f.waiters, w)
		f.notify()
		f.mu.Unlock()
		return ctx.Err()
	}
}

func (f *fakeClock) Advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = f.now.Add(d)
	for w := range f.waiters {
		if !w.until.After(f.now) {
			close(w.ch)
			delete(f.waiters, w)
		}
	}
	f.notify()
}

func (f *fakeClock) Sleeps() []time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Duration(nil), f.sleeps...)
}

// waitSleepers waits until at least n goroutines sleep on the clock.
func (f *fakeClock) waitSleepers(t *testing.T, n int) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		f.mu.Lock()
		got, ch := len(f.waiters), f.changed
		f.mu.Unlock()
		if got >= n {
			return
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("%d goroutines asleep, want %d", got, n)
		}
	}
}

func TestBudgetTryTakeAndRemaining(t *testing.T) {
	clk := newFakeClock(false)
	b := NewBudget(3, time.Minute, clk)
	if n, w := b.Limit(); n != 3 || w != time.Minute {
		t.Fatalf("Limit() = %d, %v", n, w)
	}
	for i := range 3 {
		if b.Remaining() != 3-i {
			t.Fatalf("Remaining() = %d before take %d", b.Remaining(), i)
		}
		if !b.TryTake() {
			t.Fatalf("TryTake %d refused", i)
		}
	}
	if b.TryTake() || b.Remaining() != 0 {
		t.Fatalf("a fourth request went within the window")
	}
	clk.Advance(time.Minute - time.Nanosecond)
	if b.TryTake() {
		t.Fatal("a request went before the window rolled")
	}
	clk.Advance(time.Nanosecond)
	if b.Remaining() != 3 || !b.TryTake() {
		t.Fatalf("the window rolled but Remaining() = %d", b.Remaining())
	}
}

func TestBudgetWindowRolls(t *testing.T) {
	clk := newFakeClock(false)
	b := NewBudget(2, time.Minute, clk)
	b.TryTake() // t0
	clk.Advance(30 * time.Second)
	b.TryTake() // t0+30s
	if b.Remaining() != 0 {
		t.Fatal("budget not spent")
	}
	clk.Advance(30 * time.Second) // t0+60s: the first has left the window
	if b.Remaining() != 1 {
		t.Fatalf("Remaining() = %d at t0+60s, want 1 (a rolling window, not a fixed one)", b.Remaining())
	}
	clk.Advance(30 * time.Second)
	if b.Remaining() != 2 {
		t.Fatalf("Remaining() = %d at t0+90s, want 2", b.Remaining())
	}
}

// TestBudgetSpentCountsEveryUnit: Spent keeps counting after the window rolls, and a
// refused take is not counted.
func TestBudgetSpentCountsEveryUnit(t *testing.T) {
	clk := newFakeClock(false)
	b := NewBudget(2, time.Minute, clk)
	b.TryTake()
	b.TryTake()
	if b.TryTake() || b.Spent() != 2 {
		t.Fatalf("Spent() = %d with the window full, want 2", b.Spent())
	}
	clk.Advance(time.Minute)
	if err := b.Wait(t.Context()); err != nil {
		t.Fatal(err)
	}
	if b.Spent() != 3 || b.Remaining() != 1 {
		t.Fatalf("Spent() = %d, Remaining() = %d after the window rolled, want 3 and 1", b.Spent(), b.Remaining())
	}
	if (*Budget)(nil).Spent() != 0 {
		t.Fatal("a nil budget spent something")
	}
}

func TestBudgetDefaultsAndShare(t *testing.T) {
	b := NewBudget(0, 0, nil)
	if n, w := b.Limit(); n != 250 || w != 5*time.Minute {
		t.Fatalf("defaults %d per %v", n, w)
	}
	for _, c := range []struct{ total, inst, want int }{{250, 6, 41}, {250, 1, 250}, {250, 0, 250}, {3, 10, 1}, {0, 5, 50}} {
		if got := InstanceShare(c.total, c.inst); got != c.want {
			t.Errorf("InstanceShare(%d, %d) = %d, want %d", c.total, c.inst, got, c.want)
		}
	}
	var nilBudget *Budget
	if err := nilBudget.Wait(context.Background()); err != nil || !nilBudget.TryTake() {
		t.Fatal("a nil budget limits nothing")
	}
}

func TestBudgetPause(t *testing.T) {
	clk := newFakeClock(false)
	b := NewBudget(10, time.Minute, clk)
	b.Pause(5 * time.Second)
	b.Pause(time.Second) // never shortens
	if b.TryTake() || b.Remaining() != 0 {
		t.Fatal("a request went during a pause")
	}
	done := make(chan error, 1)
	go func() { done <- b.Wait(context.Background()) }()
	clk.waitSleepers(t, 1)
	clk.Advance(4 * time.Second)
	select {
	case <-done:
		t.Fatal("Wait returned during the pause")
	default:
	}
	clk.Advance(time.Second)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if b.Remaining() != 9 {
		t.Fatalf("Remaining() = %d after the pause", b.Remaining())
	}
}

// Concurrent callers share the budget: two of five pass, the rest wait for the window.
func TestBudgetWaitBlocksAndShares(t *testing.T) {
	clk := newFakeClock(false)
	b := NewBudget(2, time.Minute, clk)
	passed := make(chan int, 5)
	var wg sync.WaitGroup
	for i := range 5 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := b.Wait(context.Background()); err != nil {
				t.Error(err)
			}
			passed <- i
		}()
	}
	receive := func(n int) {
		t.Helper()
		for range n {
			select {
			case <-passed:
			case <-time.After(10 * time.Second):
				t.Fatal("a caller did not pass")
			}
		}
	}
	receive(2)
	clk.waitSleepers(t, 3)
	if len(passed) != 0 {
		t.Fatal("more than the budget passed")
	}
	clk.Advance(time.Minute)
	receive(2)
	clk.waitSleepers(t, 1)
	if len(passed) != 0 {
		t.Fatal("more than the budget passed in the second window")
	}
	clk.Advance(time.Minute)
	receive(1)
	wg.Wait()
}

func TestBudgetWaitHonoursContext(t *testing.T) {
	clk := newFakeClock(false)
	b := NewBudget(1, time.Minute, clk)
	b.TryTake()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Wait(ctx) }()
	clk.waitSleepers(t, 1)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait = %v, want context.Canceled", err)
	}
	if b.Remaining() != 0 {
		t.Fatal("a cancelled wait must not take or free a unit")
	}
}

func TestBudgetConcurrentTryTake(t *testing.T) {
	b := NewBudget(100, time.Hour, nil)
	var mu sync.Mutex
	took := 0
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 20 {
				if b.TryTake() {
					mu.Lock()
					took++
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if took != 100 {
		t.Fatalf("%d requests went on a budget of 100", took)
	}
}
