package lock

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

// stepper is a lease's sleep that the test lets pass one at a time, moving
// every clock on by its length: no real time passes.
type stepper struct {
	f   *fixture
	req chan time.Duration
	ack chan struct{}
}

func newStepper(f *fixture) *stepper {
	return &stepper{f: f, req: make(chan time.Duration), ack: make(chan struct{})}
}

func (s *stepper) Sleep(ctx context.Context, d time.Duration) error {
	select {
	case s.req <- d:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-s.ack:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// step lets up to n sleeps of the lease pass; it stops early when the
// lease is lost, and says whether it was.
func (s *stepper) step(ls *Lease, n int) bool {
	for range n {
		select {
		case d := <-s.req:
			s.f.elapse(d)
			s.ack <- struct{}{}
		case <-ls.Lost():
			return true
		}
	}
	select {
	case <-ls.Lost():
		return true
	default:
		return false
	}
}

// holdWithLease has deployer "ci-1" take lock n and keep it alive with a
// stepped lease.
func holdWithLease(t *testing.T, f *fixture, c context.Context) (*Locker, *Lock, *Lease, *stepper, *[]string) {
	t.Helper()
	a := f.locker("ci-1", 100)
	lk, err := a.Acquire(ctx, Request{Name: "n", Target: "www@aaa1111"})
	if err != nil {
		t.Fatal(err)
	}
	st := newStepper(f)
	var mu sync.Mutex
	var warnings []string
	a.Sleep = st.Sleep
	a.Warn = func(s string) { mu.Lock(); warnings = append(warnings, s); mu.Unlock() }
	ls := a.KeepAlive(c, lk)
	t.Cleanup(ls.Stop)
	return a, lk, ls, st, &warnings
}

// TestRenewalKeepsLockAlive: a lock renewed every few seconds outlives its
// TTL many times over, also after the run's context is cancelled (an
// interrupted run still puts hosts back under its lock); once renewals
// stop it expires.
func TestRenewalKeepsLockAlive(t *testing.T) {
	f := newFixture()
	runCtx, interrupt := context.WithCancel(ctx)
	defer interrupt()
	_, lk, ls, st, _ := holdWithLease(t, f, runCtx)
	b := f.locker("ci-2", 200)
	for i := range 6 {
		if i == 3 {
			interrupt()
		}
		if st.step(ls, 6) { // 6 × 5s: half a TTL
			t.Fatalf("lease lost after %s: %v", f.machine.Now().Sub(lk.Holder.Since), ls.Err())
		}
		if _, err := b.Acquire(ctx, Request{Name: "n"}); !errors.Is(err, ErrHeld) {
			t.Fatalf("acquire %s after a renewed lock was taken: %v, want refused", f.machine.Now().Sub(lk.Holder.Since), err)
		}
	}
	if age := f.machine.Now().Sub(lk.Holder.Since); age < 3*time.Minute {
		t.Fatalf("held for %s, want over 3 TTLs", age)
	}
	ls.Stop()
	if err := ls.Err(); err != nil {
		t.Errorf("stopped lease says %v, want nil", err)
	}
	f.elapse(61 * time.Second)
	if lk2, err := b.Acquire(ctx, Request{Name: "n"}); err != nil || lk2.TookOver == nil {
		t.Errorf("acquire after renewals stopped for over a TTL = %+v, %v; want it taken over", lk2, err)
	}
}

// TestRenewalFailureLosesLease: a holder that cannot renew gives up before
// its lock expires on the lock machine, so it stops while the lock is
// still its own.
func TestRenewalFailureLosesLease(t *testing.T) {
	f := newFixture()
	_, _, ls, st, warnings := holdWithLease(t, f, ctx)
	f.store.mu.Lock()
	f.store.renewErr = errors.New("ssh: connection reset")
	f.store.mu.Unlock()
	if !st.step(ls, 100) {
		t.Fatal("lease not lost although no renewal succeeded")
	}
	err := ls.Err()
	if !errors.Is(err, ErrLost) || !strings.Contains(err.Error(), "could not be renewed") {
		t.Errorf("lost lease error = %v, want ErrLost saying it could not be renewed", err)
	}
	if len(*warnings) == 0 || !strings.Contains((*warnings)[0], "connection reset") {
		t.Errorf("warnings = %q, want the failed renewals", *warnings)
	}
	f.store.mu.Lock()
	h := f.store.holder("n")
	f.store.mu.Unlock()
	if h == nil || h.Expired() {
		t.Errorf("when the holder gave up the lock was %+v, want held and not yet expired", h)
	}
}

// TestLockTakenSignalsLost: a lock taken over or released by someone else
// ends the lease at the next renewal, saying by whom.
func TestLockTakenSignalsLost(t *testing.T) {
	f := newFixture()
	_, lk, ls, st, _ := holdWithLease(t, f, ctx)
	st.step(ls, 2)
	d := <-st.req // the lease sleeps: its renewal is done
	// Someone releases it with --force and takes it by hand.
	if _, err := f.locker("laptop", 300).ReleaseOther(ctx, "n", "", true); err != nil {
		t.Fatal(err)
	}
	if _, err := f.locker("laptop", 300).Acquire(ctx, Request{Name: "n", Message: "hotfix by hand", Manual: true}); err != nil {
		t.Fatal(err)
	}
	f.elapse(d)
	st.ack <- struct{}{}
	if !st.step(ls, 2) {
		t.Fatal("lease not lost after the lock was taken by someone else")
	}
	if err := ls.Err(); !errors.Is(err, ErrLost) || !strings.Contains(err.Error(), "hotfix by hand") {
		t.Errorf("lost lease error = %v, want ErrLost naming the new holder", err)
	}

	// Released and left free.
	f2 := newFixture()
	_, lk, ls, st, _ = holdWithLease(t, f2, ctx)
	if _, err := f2.locker("laptop", 300).ReleaseOther(ctx, "n", lk.Holder.ID, false); err != nil {
		t.Fatal(err)
	}
	if !st.step(ls, 2) {
		t.Fatal("lease not lost after the lock was released by someone else")
	}
	if err := ls.Err(); !errors.Is(err, ErrLost) || !strings.Contains(err.Error(), "released") {
		t.Errorf("lost lease error = %v, want ErrLost saying it was released", err)
	}
}

func TestRenewInterval(t *testing.T) {
	for ttl, want := range map[time.Duration]time.Duration{time.Minute: 5 * time.Second, 30 * time.Second: 5 * time.Second, 8 * time.Second: 2 * time.Second} {
		if got := RenewInterval(ttl); got != want {
			t.Errorf("RenewInterval(%s) = %s, want %s", ttl, got, want)
		}
	}
}
