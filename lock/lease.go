package lock

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Lease keeps a held lock renewed until Stop. When the lock cannot be
// renewed in time, or is found taken over or released, the lease is lost:
// Lost is closed and Err says what happened.
type Lease struct {
	lost chan struct{}
	done chan struct{}
	stop context.CancelFunc

	mu  sync.Mutex
	err error
}

// Lost is closed when the lease is lost.
func (ls *Lease) Lost() <-chan struct{} { return ls.lost }

// Err says why the lease was lost (it wraps ErrLost), nil while it holds.
func (ls *Lease) Err() error {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	return ls.err
}

// Stop ends the renewals and waits for the renewer to return. Call it
// before releasing the lock.
func (ls *Lease) Stop() {
	ls.stop()
	<-ls.done
}

// RenewInterval is how often a lease of this TTL is renewed: every few
// seconds, and several times within the TTL.
func RenewInterval(ttl time.Duration) time.Duration {
	return min(5*time.Second, ttl/4)
}

// KeepAlive renews lk every RenewInterval until Stop is called, whatever
// happens to ctx meanwhile (a run that was interrupted still holds its lock
// while it puts hosts back); ctx only carries values. A renewal that fails
// is retried; once the lock has gone unrenewed for its TTL less one
// interval — so the holder stops while the lock is still its own — the
// lease is lost. It is lost at once when the lock holds another run's ID,
// or none.
func (l *Locker) KeepAlive(ctx context.Context, lk *Lock) *Lease {
	ctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	ls := &Lease{lost: make(chan struct{}), done: make(chan struct{}), stop: stop}
	go func() {
		defer close(ls.done)
		ls.renew(ctx, l, lk)
	}()
	return ls
}

func (ls *Lease) lose(err error) {
	ls.mu.Lock()
	ls.err = err
	ls.mu.Unlock()
	close(ls.lost)
}

func (ls *Lease) renew(ctx context.Context, l *Locker, lk *Lock) {
	ttl, taken := lk.Holder.TTL, lk.taken
	every := RenewInterval(ttl)
	// giveUp is when the holder stops counting on the lock: one interval
	// before the lock machine would let it be taken over. The lease runs
	// from when the last successful request was sent, which is before the
	// lock machine stamped it.
	giveUp := func() time.Time { return taken.Add(ttl - every) }
	wait := every
	for {
		if err := l.sleep(ctx, min(wait, max(giveUp().Sub(l.now()), 0))); err != nil {
			return // stopped
		}
		if !l.now().Before(giveUp()) {
			ls.lose(fmt.Errorf("%w: deploy lock %s could not be renewed for %s (TTL %s): another deployer may take it over", ErrLost, lk.Name, l.now().Sub(taken).Round(time.Second), ttl))
			return
		}
		sent := l.now()
		rctx, cancel := context.WithTimeout(ctx, giveUp().Sub(sent))
		cur, ok, err := l.Store.Renew(rctx, lk.Name, lk.Holder.ID)
		cancel()
		l.fill(cur)
		switch {
		case ctx.Err() != nil:
			return // stopped
		case err != nil:
			if l.Warn != nil {
				l.Warn(fmt.Sprintf("could not renew deploy lock %s: %v (retrying; it is given up %s from now)", lk.Name, err, giveUp().Sub(l.now()).Round(time.Second)))
			}
			wait = min(time.Second, every)
		case !ok && cur == nil:
			ls.lose(fmt.Errorf("%w: deploy lock %s was released by someone else (gantry lock release --force?)", ErrLost, lk.Name))
			return
		case !ok:
			ls.lose(fmt.Errorf("%w: deploy lock %s is now held by %s", ErrLost, lk.Name, cur))
			return
		default:
			taken = sent
			wait = every
		}
	}
}
