package lock

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/user"
	"time"
)

// ErrHeld is returned (wrapped in *HeldError) when someone else holds the lock.
var ErrHeld = errors.New("deploy lock held")

// Info is the record kept with a lock.
type Info struct {
	// ID identifies one acquisition; only it may release the lock.
	ID      string    `json:"id"`
	Who     string    `json:"who"` // user@machine
	PID     int       `json:"pid"`
	Since   time.Time `json:"since"`
	Target  string    `json:"target,omitempty"`
	Message string    `json:"message,omitempty"`
}

func (i Info) String() string {
	s := fmt.Sprintf("%s (pid %d) since %s", i.Who, i.PID, i.Since.Local().Format("2006-01-02 15:04:05 MST"))
	if i.Target != "" {
		s += ", deploying " + i.Target
	}
	if i.Message != "" {
		s += fmt.Sprintf(", message %q", i.Message)
	}
	return s
}

// HeldError says who holds the lock.
type HeldError struct {
	Name   string
	Holder Info
	Age    time.Duration
	TTL    time.Duration
}

func (e *HeldError) Error() string {
	hint := fmt.Sprintf("wait for it, or pass --lock-wait; it can be broken with --force once older than %s", e.TTL)
	if e.Age > e.TTL {
		hint = fmt.Sprintf("it is older than its TTL (%s): pass --force to break it", e.TTL)
	}
	return fmt.Sprintf("%s is held by %s (%s ago): %s", e.Name, e.Holder, e.Age.Round(time.Second), hint)
}

// Unwrap makes errors.Is(err, ErrHeld) true.
func (e *HeldError) Unwrap() error { return ErrHeld }

// Store keeps locks by name. Create must be atomic: of two concurrent
// creators, one wins.
type Store interface {
	// Create makes the lock with info unless it exists; then it returns
	// created=false and the current holder.
	Create(ctx context.Context, name string, info Info) (created bool, holder Info, err error)
	// Read returns the holder, or ok=false when the lock is free.
	Read(ctx context.Context, name string) (holder Info, ok bool, err error)
	// Remove deletes the lock if its ID is id (any ID when id is "").
	Remove(ctx context.Context, name, id string) error
}

// Locker acquires and releases locks in a Store.
type Locker struct {
	Store Store
	TTL   time.Duration
	// Now and Sleep are replaceable in tests.
	Now   func() time.Time
	Sleep func(ctx context.Context, d time.Duration) error
}

// Request is one acquisition.
type Request struct {
	Name    string
	Target  string
	Message string
	// Wait is how long to wait for a held lock (0: refuse at once).
	Wait time.Duration
	// Force breaks a lock older than the TTL.
	Force bool
}

// Lock is a held lock.
type Lock struct {
	Name string
	Info Info
	// Broke is the holder whose stale lock was broken to get this one.
	Broke *Info
}

// Name returns the lock name of a service in an environment.
func Name(env, service string) string { return env + "--" + service }

func (l *Locker) now() time.Time {
	if l.Now != nil {
		return l.Now()
	}
	return time.Now()
}

func (l *Locker) sleep(ctx context.Context, d time.Duration) error {
	if l.Sleep != nil {
		return l.Sleep(ctx, d)
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

// pollInterval is how often a waiting deployer looks at a held lock.
const pollInterval = time.Second

// Acquire takes the lock, waiting up to r.Wait for a holder to release it,
// and breaking a lock older than the TTL when r.Force is set.
func (l *Locker) Acquire(ctx context.Context, r Request) (*Lock, error) {
	info := Info{ID: newID(), Who: Whoami(), PID: os.Getpid(), Target: r.Target, Message: r.Message}
	deadline := l.now().Add(r.Wait)
	var broke *Info
	for {
		info.Since = l.now().UTC()
		created, holder, err := l.Store.Create(ctx, r.Name, info)
		if err != nil {
			return nil, fmt.Errorf("deploy lock %s: %w", r.Name, err)
		}
		if created {
			return &Lock{Name: r.Name, Info: info, Broke: broke}, nil
		}
		age := l.now().Sub(holder.Since)
		if r.Force && age > l.TTL {
			if err := l.Store.Remove(ctx, r.Name, holder.ID); err != nil {
				return nil, fmt.Errorf("breaking deploy lock %s: %w", r.Name, err)
			}
			h := holder
			broke = &h
			continue
		}
		if !l.now().Before(deadline) {
			return nil, &HeldError{Name: "deploy lock " + r.Name, Holder: holder, Age: age, TTL: l.TTL}
		}
		if err := l.sleep(ctx, min(pollInterval, deadline.Sub(l.now()))); err != nil {
			return nil, fmt.Errorf("waiting for deploy lock %s: %w", r.Name, err)
		}
	}
}

// Release frees a lock this process holds.
func (l *Locker) Release(ctx context.Context, lk *Lock) error {
	return l.Store.Remove(ctx, lk.Name, lk.Info.ID)
}

// ReleaseOther frees a lock whoever holds it. Without force it refuses
// to, naming the holder.
func (l *Locker) ReleaseOther(ctx context.Context, name string, force bool) (*Info, error) {
	holder, ok, err := l.Store.Read(ctx, name)
	if err != nil || !ok {
		return nil, err
	}
	if !force {
		return &holder, &HeldError{Name: "deploy lock " + name, Holder: holder, Age: l.now().Sub(holder.Since), TTL: l.TTL}
	}
	return &holder, l.Store.Remove(ctx, name, "")
}

// Whoami names this deployer: user@machine.
func Whoami() string {
	name := os.Getenv("USER")
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	host, _ := os.Hostname()
	return name + "@" + host
}

func newID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
