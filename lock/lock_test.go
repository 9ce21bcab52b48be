package lock

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// memStore is an in-memory Store with DirStore's semantics, keeping time by
// its own clock: the lock machine's, which need not agree with any
// deployer's.
type memStore struct {
	mu    sync.Mutex
	clock *clock
	locks map[string]*memRecord
	// beforeOp, if set, runs before each operation (outside the store's
	// lock): another deployer acting between two of the caller's steps.
	beforeOp func(op string)
	// renewErr, if set, fails every renewal.
	renewErr error
}

type memRecord struct {
	info           Info
	since, renewed time.Time
}

func newMemStore(c *clock) *memStore { return &memStore{clock: c, locks: map[string]*memRecord{}} }

func (m *memStore) before(op string) {
	if m.beforeOp != nil {
		m.beforeOp(op)
	}
}

func (m *memStore) holder(name string) *Holder {
	r, ok := m.locks[name]
	if !ok {
		return nil
	}
	return &Holder{Info: r.info, Since: r.since, Renewed: r.renewed, Age: m.clock.Now().Sub(r.renewed).Truncate(time.Second)}
}

func (m *memStore) Take(_ context.Context, name string, info Info, replace *Takeover) (*Holder, bool, error) {
	m.before("take")
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.clock.Now()
	cur, held := m.locks[name]
	switch {
	case !held:
	case replace != nil && cur.info.ID == replace.ID && (replace.IfExpired == 0 || now.Sub(cur.renewed) > replace.IfExpired):
	default:
		return m.holder(name), false, nil
	}
	m.locks[name] = &memRecord{info: info, since: now, renewed: now}
	return m.holder(name), true, nil
}

func (m *memStore) Renew(_ context.Context, name, id string) (*Holder, bool, error) {
	m.before("renew")
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.renewErr != nil {
		return nil, false, m.renewErr
	}
	r, ok := m.locks[name]
	if !ok || r.info.ID != id {
		return m.holder(name), false, nil
	}
	r.renewed = m.clock.Now()
	return m.holder(name), true, nil
}

func (m *memStore) Read(_ context.Context, name string) (*Holder, error) {
	m.before("read")
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.holder(name), nil
}

func (m *memStore) Remove(_ context.Context, name, id string) (*Holder, bool, error) {
	m.before("remove")
	m.mu.Lock()
	defer m.mu.Unlock()
	h := m.holder(name)
	if h == nil || h.ID != id {
		return h, false, nil
	}
	delete(m.locks, name)
	return h, true, nil
}

// clock is a fake time source; Sleep advances it.
type clock struct {
	mu  sync.Mutex
	now time.Time
	// onSleep runs after each sleep (e.g. another deployer releasing).
	onSleep func()
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}
func (c *clock) Sleep(_ context.Context, d time.Duration) error {
	c.Add(d)
	if c.onSleep != nil {
		c.onSleep()
	}
	return nil
}

// fixture is one lock machine and the deployers using it, each with its own
// clock: the deployers' clocks are hours off the lock machine's, so any
// age judged by a deployer's clock shows.
type fixture struct {
	machine  *clock // the lock machine's
	deployer *clock // every deployer's
	store    *memStore
}

func newFixture() *fixture {
	machine := &clock{now: time.Unix(2e9, 0)}
	deployer := &clock{now: time.Unix(2e9, 0).Add(-3 * time.Hour)}
	return &fixture{machine: machine, deployer: deployer, store: newMemStore(machine)}
}

// elapse moves both clocks on by d.
func (f *fixture) elapse(d time.Duration) { f.machine.Add(d); f.deployer.Add(d) }

// locker is a deployer on machine ("ci-1", ...) with process pid; gone lists
// the PIDs of that machine that have ended.
func (f *fixture) locker(machine string, pid int, gone ...int) *Locker {
	return &Locker{
		Store: f.store, TTL: time.Minute, Now: f.deployer.Now, Sleep: f.deployer.Sleep,
		Self: Process{Machine: machine, Boot: machine + "-boot", PID: pid},
		Gone: func(p Process) bool {
			for _, g := range gone {
				if p.PID == g {
					return true
				}
			}
			return false
		},
	}
}

var ctx = context.Background()

func TestAcquireFreeLockAndRelease(t *testing.T) {
	f := newFixture()
	l := f.locker("ci-1", 100)
	lk, err := l.Acquire(ctx, Request{Name: "lab--www", Target: "www@abc1234", Message: "release 42"})
	if err != nil {
		t.Fatal(err)
	}
	h, _ := f.store.Read(ctx, "lab--www")
	if h == nil || h.Target != "www@abc1234" || h.Message != "release 42" || h.Who == "" || h.PID != 100 || h.Machine != "ci-1" || h.TTL != time.Minute || h.Manual {
		t.Errorf("lock record = %+v, want target, message, who, process and the deploy TTL", h)
	}
	if !h.Since.Equal(f.machine.Now()) {
		t.Errorf("since = %s, want the lock machine's time %s", h.Since, f.machine.Now())
	}
	if err := l.Release(ctx, lk); err != nil {
		t.Fatal(err)
	}
	if h, _ := f.store.Read(ctx, "lab--www"); h != nil {
		t.Error("lock still held after Release")
	}
}

func TestHeldLockRefusedWithHolder(t *testing.T) {
	f := newFixture()
	a, b := f.locker("ci-1", 100), f.locker("ci-2", 200)
	if _, err := a.Acquire(ctx, Request{Name: "lab--www", Target: "www@aaa1111", Message: "first"}); err != nil {
		t.Fatal(err)
	}
	f.elapse(20 * time.Second)
	_, err := b.Acquire(ctx, Request{Name: "lab--www", Target: "www@bbb2222"})
	var held *HeldError
	if !errors.As(err, &held) || !errors.Is(err, ErrHeld) {
		t.Fatalf("second acquire: %v, want a HeldError", err)
	}
	since := f.machine.Now().Add(-20 * time.Second).Local().Format("15:04:05")
	for _, want := range []string{"www@aaa1111", `"first"`, "pid 100", since, "last renewed 20s ago", "TTL 1m0s", "--lock-wait"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("refusal %q does not mention %q", err, want)
		}
	}
	// A live deploy's lock is not taken over by --force.
	if _, err := b.Acquire(ctx, Request{Name: "lab--www", Force: true}); !errors.Is(err, ErrHeld) || !strings.Contains(err.Error(), "only takes over a lock taken by hand") {
		t.Errorf("--force on a live deploy's lock: %v, want refused saying why", err)
	}
	// Another service's lock is independent.
	if _, err := b.Acquire(ctx, Request{Name: "lab--api"}); err != nil {
		t.Errorf("lock of another service: %v", err)
	}
}

func TestWaitForRelease(t *testing.T) {
	f := newFixture()
	a, b := f.locker("ci-1", 100), f.locker("ci-2", 200)
	first, _ := a.Acquire(ctx, Request{Name: "n"})
	sleeps := 0
	f.deployer.onSleep = func() {
		sleeps++
		if sleeps == 3 {
			_ = a.Release(ctx, first)
		}
	}
	if _, err := b.Acquire(ctx, Request{Name: "n", Wait: 30 * time.Second}); err != nil {
		t.Fatalf("waiting acquire: %v", err)
	}
	if sleeps != 3 {
		t.Errorf("slept %d times, want 3 (released then)", sleeps)
	}
	// Waiting is bounded: a lock never released is refused after the wait
	// (the holder's lease is younger than its TTL throughout).
	start := f.deployer.Now()
	f.deployer.onSleep = nil
	_, err := a.Acquire(ctx, Request{Name: "n", Wait: 10 * time.Second})
	if !errors.Is(err, ErrHeld) {
		t.Fatalf("acquire of a held lock after waiting: %v", err)
	}
	if waited := f.deployer.Now().Sub(start); waited < 10*time.Second || waited > 11*time.Second {
		t.Errorf("waited %s, want about 10s", waited)
	}
}

// TestExpiryByLockMachineClock: a lock's age is the lock machine's time
// since its last renewal; the deployers' clocks (hours off) play no part.
func TestExpiryByLockMachineClock(t *testing.T) {
	for _, skew := range []time.Duration{-3 * time.Hour, 3 * time.Hour} {
		t.Run(fmt.Sprint(skew), func(t *testing.T) {
			f := newFixture()
			f.deployer.now = f.machine.now.Add(skew)
			a, b := f.locker("laptop", 100), f.locker("ci-2", 200)
			if _, err := a.Acquire(ctx, Request{Name: "n", Target: "www@aaa1111", Message: "release 41"}); err != nil {
				t.Fatal(err)
			}
			// The deployer's clock races ahead; the lock machine's does not.
			f.deployer.Add(2 * time.Hour)
			f.machine.Add(30 * time.Second)
			if _, err := b.Acquire(ctx, Request{Name: "n"}); !errors.Is(err, ErrHeld) {
				t.Fatalf("acquire of a lock renewed 30s ago (TTL 1m) by the lock machine's clock: %v, want refused", err)
			}
			// Expired by the lock machine's clock: taken over, no --force.
			f.machine.Add(31 * time.Second)
			lk, err := b.Acquire(ctx, Request{Name: "n", Target: "www@bbb2222"})
			if err != nil {
				t.Fatalf("acquire of a lock renewed 61s ago (TTL 1m): %v, want it taken over", err)
			}
			if lk.TookOver == nil || lk.TookOver.Target != "www@aaa1111" || lk.TookOver.Message != "release 41" || !strings.Contains(lk.Why, "expired") {
				t.Errorf("TookOver = %+v, why %q; want the expired holder and \"expired\"", lk.TookOver, lk.Why)
			}
			if h, _ := f.store.Read(ctx, "n"); h == nil || h.ID != lk.Holder.ID {
				t.Errorf("holder after takeover = %+v, want b's run %s", h, lk.Holder.ID)
			}
		})
	}
}

// TestTakeoverOfDeadLocalProcess: a holder on this very machine whose
// process is gone is taken over at once; one on another machine, or alive,
// is not.
func TestTakeoverOfDeadLocalProcess(t *testing.T) {
	f := newFixture()
	if _, err := f.locker("ci-1", 100).Acquire(ctx, Request{Name: "n", Target: "www@aaa1111"}); err != nil {
		t.Fatal(err)
	}
	// Same PID dead, but on another machine: its PID means nothing here.
	if _, err := f.locker("ci-2", 200, 100).Acquire(ctx, Request{Name: "n"}); !errors.Is(err, ErrHeld) {
		t.Errorf("holder pid 100 on another machine: %v, want refused", err)
	}
	// Same machine, another boot or PID namespace: no way to tell either.
	other := f.locker("ci-1", 200, 100)
	other.Self.Boot = "ci-1-container"
	if _, err := other.Acquire(ctx, Request{Name: "n"}); !errors.Is(err, ErrHeld) {
		t.Errorf("holder in another PID namespace of the machine: %v, want refused", err)
	}
	// Same machine, process alive.
	if _, err := f.locker("ci-1", 200).Acquire(ctx, Request{Name: "n"}); !errors.Is(err, ErrHeld) {
		t.Errorf("holder alive on this machine: %v, want refused", err)
	}
	// Same machine, process gone: at once, well within the TTL.
	lk, err := f.locker("ci-1", 200, 100).Acquire(ctx, Request{Name: "n"})
	if err != nil {
		t.Fatalf("holder's process gone on this machine: %v, want it taken over", err)
	}
	if lk.TookOver == nil || lk.TookOver.PID != 100 || !strings.Contains(lk.Why, "process 100 on this machine is gone") {
		t.Errorf("TookOver = %+v, why %q", lk.TookOver, lk.Why)
	}
}

// TestTakeoverIsCompareAndSwap: what a deployer read is what it replaces.
// A renewal or another takeover between its read and its swap wins.
func TestTakeoverIsCompareAndSwap(t *testing.T) {
	f := newFixture()
	a := f.locker("ci-1", 100)
	held, _ := a.Acquire(ctx, Request{Name: "n", Target: "www@aaa1111"})
	f.elapse(61 * time.Second)
	// b reads an expired lock; a renews it before b's swap.
	takes := 0
	f.store.beforeOp = func(op string) {
		if op == "take" {
			if takes++; takes == 2 {
				if _, ok, _ := f.store.Renew(ctx, "n", held.Holder.ID); !ok {
					t.Error("a's renewal failed")
				}
			}
		}
	}
	b := f.locker("ci-2", 200)
	if _, err := b.Acquire(ctx, Request{Name: "n"}); !errors.Is(err, ErrHeld) {
		t.Errorf("takeover after the holder renewed: %v, want refused", err)
	}
	if h, _ := f.store.Read(ctx, "n"); h == nil || h.ID != held.Holder.ID {
		t.Errorf("holder = %+v, want still a's", h)
	}
	// Many deployers take over one expired lock at once: one wins.
	f.store.beforeOp = nil
	f.elapse(61 * time.Second)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var won []*Lock
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if lk, err := f.locker(fmt.Sprintf("ci-%d", 10+i), 300).Acquire(ctx, Request{Name: "n"}); err == nil {
				mu.Lock()
				won = append(won, lk)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(won) != 1 {
		t.Fatalf("%d deployers took the expired lock over, want 1", len(won))
	}
	if won[0].TookOver == nil || won[0].TookOver.ID != held.Holder.ID {
		t.Errorf("the winner took over %+v, want a's run", won[0].TookOver)
	}
	// a's late release does not free the winner's lock.
	_ = a.Release(ctx, held)
	if h, _ := f.store.Read(ctx, "n"); h == nil || h.ID != won[0].Holder.ID {
		t.Errorf("after the old holder's release the lock is %+v, want still the winner's", h)
	}
}

// TestManualLock: a lock taken by hand lives for its own, long TTL without
// renewals; deploys are refused until it is released, expires, or is taken
// over with --force.
func TestManualLock(t *testing.T) {
	f := newFixture()
	hand, err := f.locker("laptop", 100).Acquire(ctx, Request{Name: "n", Message: "db migration", Manual: true})
	if err != nil {
		t.Fatal(err)
	}
	if !hand.Holder.Manual || hand.Holder.TTL != DefaultManualTTL {
		t.Errorf("hand lock = %+v, want manual with TTL %s", hand.Holder, DefaultManualTTL)
	}
	f.elapse(3 * time.Hour)
	// `gantry lock acquire` has exited: its PID is gone, the lock stays.
	d := f.locker("laptop", 200, 100)
	_, err = d.Acquire(ctx, Request{Name: "n", Target: "www@bbb2222"})
	if !errors.Is(err, ErrHeld) || !strings.Contains(err.Error(), "taken by hand") || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("deploy during a 3h-old hand lock: %v, want refused, naming the hand lock and --force", err)
	}
	lk, err := d.Acquire(ctx, Request{Name: "n", Target: "www@bbb2222", Force: true})
	if err != nil || lk.TookOver == nil || lk.TookOver.Message != "db migration" {
		t.Fatalf("deploy --force over a hand lock = %+v, %v; want it taken over", lk, err)
	}
	_ = d.Release(ctx, lk)
	// A short hand TTL expires like any other.
	if _, err := f.locker("laptop", 100).Acquire(ctx, Request{Name: "n", Manual: true, TTL: 10 * time.Minute}); err != nil {
		t.Fatal(err)
	}
	f.elapse(11 * time.Minute)
	if lk, err := d.Acquire(ctx, Request{Name: "n"}); err != nil || lk.TookOver == nil {
		t.Errorf("deploy after a 10m hand lock expired = %+v, %v; want it taken over", lk, err)
	}
}

// TestRunIDsAndRelease: every acquisition has its own run ID; a lock is
// released by its run ID, not by its holder's identity.
func TestRunIDsAndRelease(t *testing.T) {
	f := newFixture()
	ids := map[string]bool{}
	for range 50 {
		// Same user, same machine, same PID: still distinct runs.
		lk, err := f.locker("ci-1", 100).Acquire(ctx, Request{Name: "n"})
		if err != nil {
			t.Fatal(err)
		}
		if ids[lk.Holder.ID] {
			t.Fatalf("run ID %s given twice", lk.Holder.ID)
		}
		ids[lk.Holder.ID] = true
		_ = f.locker("ci-1", 100).Release(ctx, lk)
	}
	// Job A holds the lock; job B has the same user@host identity.
	a, b := f.locker("ci-1", 100), f.locker("ci-1", 200)
	held, _ := a.Acquire(ctx, Request{Name: "n", Target: "www@aaa1111"})
	if _, err := b.ReleaseOther(ctx, "n", "", false); !errors.Is(err, ErrHeld) || !strings.Contains(err.Error(), "--id") {
		t.Errorf("release by the same identity with no run ID: %v, want refused, pointing at --id", err)
	}
	if _, err := b.ReleaseOther(ctx, "n", "0123456789abcdef", false); !errors.Is(err, ErrHeld) {
		t.Errorf("release with another run's ID: %v, want refused", err)
	}
	if h, _ := f.store.Read(ctx, "n"); h == nil || h.ID != held.Holder.ID {
		t.Fatalf("after refused releases the lock is %+v, want a's", h)
	}
	if h, err := b.ReleaseOther(ctx, "n", held.Holder.ID, false); err != nil || h == nil || h.ID != held.Holder.ID {
		t.Errorf("release --id %s = %+v, %v", held.Holder.ID, h, err)
	}
	if h, _ := f.store.Read(ctx, "n"); h != nil {
		t.Error("still held after release --id")
	}
	if h, err := b.ReleaseOther(ctx, "n", "", true); h != nil || err != nil {
		t.Errorf("releasing a free lock = %+v, %v; want nothing", h, err)
	}
}

// TestForceReleaseIsCompareAndSwap: release --force removes the holder it
// read; one that changed in between stays.
func TestForceReleaseIsCompareAndSwap(t *testing.T) {
	f := newFixture()
	a, c := f.locker("ci-1", 100), f.locker("ci-3", 300)
	first, _ := a.Acquire(ctx, Request{Name: "n", Target: "www@aaa1111"})
	var second *Lock
	raced := false
	f.store.beforeOp = func(op string) {
		if op == "remove" && !raced {
			raced = true
			// Between the read and the removal, a releases and c takes it.
			_, _, _ = f.store.Remove(ctx, "n", first.Holder.ID)
			second, _ = c.Acquire(ctx, Request{Name: "n", Target: "www@ccc3333"})
		}
	}
	_, err := f.locker("laptop", 400).ReleaseOther(ctx, "n", "", true)
	if !errors.Is(err, ErrHeld) || !strings.Contains(err.Error(), "changed hands") {
		t.Errorf("release --force racing a new holder: %v, want refused (changed hands)", err)
	}
	if h, _ := f.store.Read(ctx, "n"); h == nil || second == nil || h.ID != second.Holder.ID {
		t.Errorf("holder = %+v, want c's (taken after the read)", h)
	}
	f.store.beforeOp = nil
	if h, err := f.locker("laptop", 400).ReleaseOther(ctx, "n", "", true); err != nil || h == nil || h.Target != "www@ccc3333" {
		t.Errorf("release --force = %+v, %v; want c's lock released", h, err)
	}
}

func TestConcurrentAcquireOneWins(t *testing.T) {
	f := newFixture()
	var wg sync.WaitGroup
	wins := make(chan string, 20)
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if lk, err := f.locker(fmt.Sprintf("ci-%d", i), 100).Acquire(ctx, Request{Name: "n"}); err == nil {
				wins <- lk.Holder.ID
			}
		}()
	}
	wg.Wait()
	close(wins)
	if n := len(wins); n != 1 {
		t.Errorf("%d deployers got the lock at once, want 1", n)
	}
}
