package fleet

import (
	"context"
	"errors"
	"io"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/internal/shell"
	"github.com/gantry-dev/gantry/lock"
)

// lockers returns two deployers' lockers over one lock directory, run by
// the local sh as sshd would on the lock machine.
func lockers(t *testing.T) (prune, deploy *lock.Locker) {
	st := lock.DirStore{Runner: &shell.LocalRunner{}, Dir: filepath.Join(t.TempDir(), "locks"), Host: "lb1"}
	mk := func(pid int) *lock.Locker {
		return &lock.Locker{Store: st, TTL: time.Minute, Self: lock.Process{Machine: "ci", Boot: "b", PID: pid}, Gone: func(lock.Process) bool { return false }}
	}
	return mk(1), mk(2)
}

func holder(t *testing.T, l *lock.Locker, name string) string {
	t.Helper()
	h, err := l.Read(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	if h == nil {
		return "free"
	}
	return h.Target
}

func TestHoldServiceLocksTakesEveryServicesLock(t *testing.T) {
	pl, _ := lockers(t)
	ctx := context.Background()
	_, release, err := holdServiceLocks(ctx, pl, "prod", []string{"api", "www"}, lock.Request{Target: "prune"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"prod--api", "prod--www"} {
		if got := holder(t, pl, n); got != "prune" {
			t.Errorf("%s held by %q while pruning, want prune", n, got)
		}
	}
	release()
	for _, n := range []string{"prod--api", "prod--www"} {
		if got := holder(t, pl, n); got != "free" {
			t.Errorf("%s held by %q after release, want free", n, got)
		}
	}
}

// A service being deployed is not pruned: without waiting, prune refuses
// and frees the locks it already took.
func TestHoldServiceLocksRefusesAServiceBeingDeployed(t *testing.T) {
	pl, dl := lockers(t)
	ctx := context.Background()
	if _, err := dl.Acquire(ctx, lock.Request{Name: "prod--www", Target: "www@new2"}); err != nil {
		t.Fatal(err)
	}
	_, _, err := holdServiceLocks(ctx, pl, "prod", []string{"api", "www"}, lock.Request{Target: "prune"}, io.Discard)
	var held *lock.HeldError
	if !errors.As(err, &held) {
		t.Fatalf("holdServiceLocks = %v, want a held lock error", err)
	}
	if got := holder(t, pl, "prod--api"); got != "free" {
		t.Errorf("prod--api held by %q after the refusal, want free", got)
	}
	if got := holder(t, pl, "prod--www"); got != "www@new2" {
		t.Errorf("prod--www held by %q, want the deploy's", got)
	}
}

// With a wait, prune takes the lock once the deploy releases it.
func TestHoldServiceLocksWaitsForADeploy(t *testing.T) {
	pl, dl := lockers(t)
	ctx := context.Background()
	deploy, err := dl.Acquire(ctx, lock.Request{Name: "prod--www", Target: "www@new2"})
	if err != nil {
		t.Fatal(err)
	}
	var first sync.Once
	var waited atomic.Bool
	pl.Sleep = func(ctx context.Context, d time.Duration) error {
		released := false
		first.Do(func() {
			// The deploy ends while prune waits for its lock.
			waited.Store(true)
			released = true
		})
		if released {
			return dl.Release(ctx, deploy)
		}
		// Later sleeps are the lease's renewals: real ones.
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			return nil
		}
	}
	_, release, err := holdServiceLocks(ctx, pl, "prod", []string{"www"}, lock.Request{Target: "prune", Wait: time.Hour}, io.Discard)
	if err != nil {
		t.Fatalf("holdServiceLocks with a wait = %v", err)
	}
	defer release()
	if !waited.Load() {
		t.Error("prune did not wait for the deploy's lock")
	}
	if got := holder(t, pl, "prod--www"); got != "prune" {
		t.Errorf("prod--www held by %q, want prune", got)
	}
}
