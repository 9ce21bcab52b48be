package lock

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

// memStore is an in-memory Store with the same atomicity as DirStore.
type memStore struct {
	mu    sync.Mutex
	locks map[string]Info
}

func (m *memStore) Create(_ context.Context, name string, info Info) (bool, Info, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.locks == nil {
		m.locks = map[string]Info{}
	}
	if h, ok := m.locks[name]; ok {
		return false, h, nil
	}
	m.locks[name] = info
	return true, info, nil
}

func (m *memStore) Read(_ context.Context, name string) (Info, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	h, ok := m.locks[name]
	return h, ok, nil
}

func (m *memStore) Remove(_ context.Context, name, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if h, ok := m.locks[name]; ok && (id == "" || h.ID == id) {
		delete(m.locks, name)
	}
	return nil
}

// clock is a fake time source; Sleep advances it.
type clock struct {
	mu  sync.Mutex
	now time.Time
	// onSleep runs after each sleep (e.g. another deployer releasing).
	onSleep func()
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Sleep(_ context.Context, d time.Duration) error {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
	if c.onSleep != nil {
		c.onSleep()
	}
	return nil
}

func newLocker(st *memStore, c *clock) *Locker {
	return &Locker{Store: st, TTL: time.Hour, Now: c.Now, Sleep: c.Sleep}
}

func TestAcquireFreeLockAndRelease(t *testing.T) {
	st, c := &memStore{}, &clock{now: time.Unix(1e9, 0)}
	l := newLocker(st, c)
	lk, err := l.Acquire(context.Background(), Request{Name: "lab--www", Target: "www@abc1234", Message: "release 42"})
	if err != nil {
		t.Fatal(err)
	}
	h, ok, _ := st.Read(context.Background(), "lab--www")
	if !ok || h.Target != "www@abc1234" || h.Message != "release 42" || h.Who == "" || h.PID == 0 {
		t.Errorf("lock record = %+v, want target, message, who and pid", h)
	}
	if err := l.Release(context.Background(), lk); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := st.Read(context.Background(), "lab--www"); ok {
		t.Error("lock still held after Release")
	}
}

func TestHeldLockRefusedWithHolder(t *testing.T) {
	st, c := &memStore{}, &clock{now: time.Unix(1e9, 0)}
	a, b := newLocker(st, c), newLocker(st, c)
	if _, err := a.Acquire(context.Background(), Request{Name: "lab--www", Target: "www@aaa1111", Message: "first"}); err != nil {
		t.Fatal(err)
	}
	c.now = c.now.Add(5 * time.Minute)
	_, err := b.Acquire(context.Background(), Request{Name: "lab--www", Target: "www@bbb2222"})
	var held *HeldError
	if !errors.As(err, &held) || !errors.Is(err, ErrHeld) {
		t.Fatalf("second acquire: %v, want a HeldError", err)
	}
	for _, want := range []string{"www@aaa1111", `"first"`, "5m0s ago", "--lock-wait"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("refusal %q does not mention %q", err, want)
		}
	}
	// A young lock is not broken by --force.
	if _, err := b.Acquire(context.Background(), Request{Name: "lab--www", Force: true}); !errors.Is(err, ErrHeld) {
		t.Errorf("--force on a 5-minute-old lock (TTL 1h): %v, want refused", err)
	}
	// Another service's lock is independent.
	if _, err := b.Acquire(context.Background(), Request{Name: "lab--api"}); err != nil {
		t.Errorf("lock of another service: %v", err)
	}
}

func TestWaitForRelease(t *testing.T) {
	st, c := &memStore{}, &clock{now: time.Unix(1e9, 0)}
	a, b := newLocker(st, c), newLocker(st, c)
	first, _ := a.Acquire(context.Background(), Request{Name: "n"})
	sleeps := 0
	c.onSleep = func() {
		sleeps++
		if sleeps == 3 {
			_ = a.Release(context.Background(), first)
		}
	}
	if _, err := b.Acquire(context.Background(), Request{Name: "n", Wait: time.Minute}); err != nil {
		t.Fatalf("waiting acquire: %v", err)
	}
	if sleeps != 3 {
		t.Errorf("slept %d times, want 3 (released then)", sleeps)
	}
	// Waiting is bounded: a lock never released is refused after the wait.
	start := c.Now()
	c.onSleep = nil
	_, err := a.Acquire(context.Background(), Request{Name: "n", Wait: 10 * time.Second})
	if !errors.Is(err, ErrHeld) {
		t.Fatalf("acquire of a held lock after waiting: %v", err)
	}
	if waited := c.Now().Sub(start); waited < 10*time.Second || waited > 11*time.Second {
		t.Errorf("waited %s, want about 10s", waited)
	}
}

func TestForceBreaksOnlyStaleLocks(t *testing.T) {
	st, c := &memStore{}, &clock{now: time.Unix(1e9, 0)}
	a, b := newLocker(st, c), newLocker(st, c)
	old, _ := a.Acquire(context.Background(), Request{Name: "n", Target: "www@old0000"})
	c.now = c.now.Add(2 * time.Hour)
	_, err := b.Acquire(context.Background(), Request{Name: "n"})
	if err == nil || !strings.Contains(err.Error(), "pass --force") {
		t.Errorf("stale lock without --force: %v, want a hint to use --force", err)
	}
	lk, err := b.Acquire(context.Background(), Request{Name: "n", Force: true})
	if err != nil {
		t.Fatalf("--force on a 2h-old lock: %v", err)
	}
	if lk.Broke == nil || lk.Broke.Target != "www@old0000" {
		t.Errorf("Broke = %+v, want the stale holder", lk.Broke)
	}
	// The broken holder's late release must not free the new holder's lock.
	_ = a.Release(context.Background(), old)
	if h, ok, _ := st.Read(context.Background(), "n"); !ok || h.ID != lk.Info.ID {
		t.Errorf("after the old holder's release the lock is %+v (held=%v), want still the new holder's", h, ok)
	}
}

func TestReleaseOther(t *testing.T) {
	st, c := &memStore{}, &clock{now: time.Unix(1e9, 0)}
	a := newLocker(st, c)
	_, _ = a.Acquire(context.Background(), Request{Name: "n", Message: "maintenance"})
	if _, err := a.ReleaseOther(context.Background(), "n", false); !errors.Is(err, ErrHeld) {
		t.Errorf("release without --force: %v, want refused", err)
	}
	holder, err := a.ReleaseOther(context.Background(), "n", true)
	if err != nil || holder == nil || holder.Message != "maintenance" {
		t.Errorf("release --force = %+v, %v", holder, err)
	}
	if _, ok, _ := st.Read(context.Background(), "n"); ok {
		t.Error("still held after release --force")
	}
	if holder, err := a.ReleaseOther(context.Background(), "n", true); holder != nil || err != nil {
		t.Errorf("releasing a free lock = %+v, %v; want nothing", holder, err)
	}
}

func TestConcurrentAcquireOneWins(t *testing.T) {
	st := &memStore{}
	var wg sync.WaitGroup
	wins := make(chan string, 20)
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l := &Locker{Store: st, TTL: time.Hour}
			if lk, err := l.Acquire(context.Background(), Request{Name: "n"}); err == nil {
				wins <- lk.Info.ID
			}
		}()
	}
	wg.Wait()
	close(wins)
	if n := len(wins); n != 1 {
		t.Errorf("%d deployers got the lock at once, want 1", n)
	}
}
