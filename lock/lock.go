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

// ErrLost is the cause given when a held lock's lease ends before its
// holder released it: it could not be renewed within its TTL, or someone
// took it over or released it.
var ErrLost = errors.New("deploy lock lost")

// Info is what a holder writes into a lock's record.
type Info struct {
	// ID identifies one acquisition (a run ID); only it may renew or
	// release the lock.
	ID  string `json:"id"`
	Who string `json:"who"` // user@machine
	// Process identifies the holder's process, so that a deployer on the
	// same machine can tell it is gone.
	Process
	Target  string `json:"target,omitempty"`
	Message string `json:"message,omitempty"`
	// Manual marks a lock taken by hand (gantry lock acquire): no process
	// renews it, its TTL is long, and --force takes it over.
	Manual bool `json:"manual,omitempty"`
	// TTL is how long the lock lives without being renewed.
	TTL time.Duration `json:"ttl"`
}

// Holder is a lock's record as the lock machine keeps it: the holder's Info
// and times read from the lock machine's clock only.
type Holder struct {
	Info
	// Since is when the lock was taken, Renewed when it was last renewed
	// (the lock machine's clock).
	Since, Renewed time.Time
	// Age is how long ago it was last renewed, by the lock machine's clock
	// when it was read.
	Age time.Duration
	// FreeFor is, for a record a Take just wrote on a free lock, how long
	// the lock had been free then, by the lock machine's clock (the last
	// release leaves a mark): NeverHeld when it was never taken there, 0
	// when not known. It tells whether something read before the lock
	// was taken was read while nobody held it (Lock.FreeSince).
	FreeFor time.Duration
}

// NeverHeld is Holder.FreeFor for a lock never taken on its machine.
const NeverHeld = time.Duration(1<<63 - 1)

// Expired says the lock was not renewed within its TTL.
func (h Holder) Expired() bool { return h.Age > h.TTL }

func (h Holder) String() string {
	s := h.Who
	if h.PID != 0 {
		s += fmt.Sprintf(" (pid %d)", h.PID)
	}
	if h.ID != "" {
		s += ", run " + h.ID
	}
	if !h.Since.IsZero() {
		s += ", since " + h.Since.Local().Format("2006-01-02 15:04:05 MST")
	}
	switch {
	case h.Manual:
		s += ", taken by hand"
	case h.Target != "":
		s += ", deploying " + h.Target
	}
	if h.Message != "" {
		s += fmt.Sprintf(", message %q", h.Message)
	}
	if h.Manual {
		return s + fmt.Sprintf(", expires in %s", max(h.TTL-h.Age, 0).Round(time.Second))
	}
	return s + fmt.Sprintf(", last renewed %s ago (TTL %s)", h.Age.Round(time.Second), h.TTL)
}

// HeldError says who holds the lock and what would free it.
type HeldError struct {
	Name   string
	Holder Holder
	// Hint says what the refused caller can do.
	Hint string
}

func (e *HeldError) Error() string {
	return fmt.Sprintf("%s is held by %s: %s", e.Name, e.Holder, e.Hint)
}

// Unwrap makes errors.Is(err, ErrHeld) true.
func (e *HeldError) Unwrap() error { return ErrHeld }

// Takeover names the record a Take may replace: compare-and-swap on its ID.
type Takeover struct {
	// ID is the holder replaced; a lock that holds another ID by then is
	// left alone.
	ID string
	// IfExpired, when set, also requires that the holder was not renewed
	// within it, by the lock machine's clock at the time of the swap.
	IfExpired time.Duration
}

// Store keeps locks by name. Every operation is atomic with respect to the
// others: of two concurrent Takes, one wins; a Take never replaces a record
// that changed since the caller read it.
type Store interface {
	// Take writes info as the lock's record when the lock is free, or
	// when replace names the current holder (and its condition holds). It
	// returns the record now held and whether it is the caller's.
	Take(ctx context.Context, name string, info Info, replace *Takeover) (cur *Holder, won bool, err error)
	// Renew restamps the lock's renewal time if id still holds it; else
	// ok is false and cur is the holder (nil when the lock is free).
	Renew(ctx context.Context, name, id string) (cur *Holder, ok bool, err error)
	// Read returns the holder, or nil when the lock is free.
	Read(ctx context.Context, name string) (*Holder, error)
	// Remove deletes the lock if id holds it. It returns the record
	// removed, or (removed false) the holder left in place, nil if free.
	Remove(ctx context.Context, name, id string) (cur *Holder, removed bool, err error)
}

// Default TTLs.
const (
	// DefaultTTL is how long a deploy's lock lives without renewal.
	DefaultTTL = time.Minute
	// DefaultManualTTL is how long a lock taken by hand lives.
	DefaultManualTTL = 24 * time.Hour
)

// Locker acquires, renews and releases locks in a Store.
type Locker struct {
	Store Store
	// TTL is the lease of a deploy's lock (default DefaultTTL).
	TTL time.Duration
	// Warn, if set, is told of renewals that failed and are retried.
	Warn func(string)
	// Now and Sleep measure the deployer's own waits (lock-wait, renewal
	// intervals), never a lock's age; replaceable in tests.
	Now   func() time.Time
	Sleep func(ctx context.Context, d time.Duration) error
	// Self is this deployer's process (default: this process); Gone says
	// whether a process of this machine has ended. Replaceable in tests.
	Self Process
	Gone func(Process) bool
}

// Request is one acquisition.
type Request struct {
	Name    string
	Target  string
	Message string
	// Wait is how long to wait for a held lock (0: refuse at once).
	Wait time.Duration
	// Force takes over a lock held by hand (Manual), which would otherwise
	// only be taken over once expired.
	Force bool
	// Manual takes the lock by hand, for TTL (0: DefaultManualTTL),
	// without renewing it.
	Manual bool
	TTL    time.Duration
}

// Lock is a held lock.
type Lock struct {
	Name string
	// Holder is the record written, with the lock machine's times.
	Holder Holder
	// TookOver is the holder whose lock was taken over to get this one,
	// and Why says why that was allowed.
	TookOver *Holder
	Why      string
	// taken is when (deployer's clock) the request that took or last
	// renewed the lock was sent: the lease runs from then.
	taken time.Time
}

// FreeSince reports whether the lock was free from start (the deployer's
// clock) until it was taken: nobody held it meanwhile, so what was read
// from start on was not being changed by a holder. It needs a lock taken
// when free (not over a holder) whose machine said how long it had been
// free: the release it saw came before start when that span exceeds the
// time from start to now (an upper bound of the time from start to the
// take, whichever clock the lock machine keeps).
func (lk *Lock) FreeSince(start, now time.Time) bool {
	if lk == nil || lk.TookOver != nil || lk.Holder.FreeFor <= 0 {
		return false
	}
	return lk.Holder.FreeFor == NeverHeld || lk.Holder.FreeFor > now.Sub(start)
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

func (l *Locker) ttl() time.Duration {
	if l.TTL > 0 {
		return l.TTL
	}
	return DefaultTTL
}

func (l *Locker) self() Process {
	if l.Self != (Process{}) {
		return l.Self
	}
	return Self()
}

func (l *Locker) gone(p Process) bool {
	if l.Gone != nil {
		return l.Gone(p)
	}
	return p.Gone()
}

// pollInterval is how often a waiting deployer looks at a held lock.
const pollInterval = time.Second

// Acquire takes the lock, waiting up to r.Wait for its holder to release it
// or for its lease to expire. An expired lock, or one whose holder's
// process on this machine is gone, is taken over at once (compare-and-swap
// on the holder's run ID, so two deployers never both hold it).
func (l *Locker) Acquire(ctx context.Context, r Request) (*Lock, error) {
	info := Info{ID: newID(), Who: Whoami(), Process: l.self(), Target: r.Target, Message: r.Message, Manual: r.Manual, TTL: l.ttl()}
	if r.Manual {
		info.TTL = r.TTL
		if info.TTL <= 0 {
			info.TTL = DefaultManualTTL
		}
	}
	deadline := l.now().Add(r.Wait)
	for {
		sent := l.now()
		cur, won, err := l.Store.Take(ctx, r.Name, info, nil)
		if err != nil {
			return nil, fmt.Errorf("deploy lock %s: %w", r.Name, err)
		}
		l.fill(cur)
		if won {
			return &Lock{Name: r.Name, Holder: *cur, taken: sent}, nil
		}
		if why, cond := l.takeover(*cur, r.Force); why != "" {
			sent = l.now()
			mine, won, err := l.Store.Take(ctx, r.Name, info, cond)
			if err != nil {
				return nil, fmt.Errorf("taking over deploy lock %s: %w", r.Name, err)
			}
			if won {
				old := *cur
				return &Lock{Name: r.Name, Holder: *mine, TookOver: &old, Why: why, taken: sent}, nil
			}
			// The record changed since it was read (renewed, released,
			// taken by someone else): look again.
			continue
		}
		if !l.now().Before(deadline) {
			return nil, &HeldError{Name: "deploy lock " + r.Name, Holder: *cur, Hint: l.hint(*cur, r.Force)}
		}
		if err := l.sleep(ctx, min(pollInterval, deadline.Sub(l.now()))); err != nil {
			return nil, fmt.Errorf("waiting for deploy lock %s: %w", r.Name, err)
		}
	}
}

// Read returns the lock's holder, or nil when it is free.
func (l *Locker) Read(ctx context.Context, name string) (*Holder, error) {
	h, err := l.Store.Read(ctx, name)
	return l.fill(h), err
}

// fill gives a record written without a TTL (by an older gantry, or not
// written at all) the deploy TTL.
func (l *Locker) fill(h *Holder) *Holder {
	if h != nil && h.TTL <= 0 {
		h.TTL = l.ttl()
	}
	return h
}

// takeover says why the holder's lock may be taken over, and on what
// condition the swap happens; "" when it may not. A lock taken by hand
// outlives the command that took it, so its PID says nothing.
func (l *Locker) takeover(h Holder, force bool) (string, *Takeover) {
	switch {
	case h.Expired():
		// The lock machine checks the expiry again at the swap: a renewal
		// in between keeps the lock its holder's.
		return fmt.Sprintf("it expired: last renewed %s ago, TTL %s", h.Age.Round(time.Second), h.TTL), &Takeover{ID: h.ID, IfExpired: h.TTL}
	case !h.Manual && h.PID != 0 && h.Process.SameMachine(l.self()) && h.PID != l.self().PID && l.gone(h.Process):
		return fmt.Sprintf("its process %d on this machine is gone", h.PID), &Takeover{ID: h.ID}
	case force && h.Manual:
		return "--force: it was taken by hand", &Takeover{ID: h.ID}
	}
	return "", nil
}

// hint says what someone refused the lock held by h can do.
func (l *Locker) hint(h Holder, force bool) string {
	if h.Manual {
		return "it was taken by hand: wait for it (--lock-wait), have it released (gantry lock release --id RUN_ID), or pass --force to take it over"
	}
	s := fmt.Sprintf("its holder renews it while it runs; it expires %s after its last renewal, and is then taken over by itself", h.TTL)
	if force {
		s += " (--force only takes over a lock taken by hand)"
	}
	return s + "; wait for it with --lock-wait"
}

// Release frees a lock this process holds (a lock taken over by someone
// else in the meantime is left alone).
func (l *Locker) Release(ctx context.Context, lk *Lock) error {
	_, _, err := l.Store.Remove(ctx, lk.Name, lk.Holder.ID)
	return err
}

// ReleaseOther frees a lock held by someone else, or by hand: the one with
// run ID id, or with force whoever holds it (compare-and-swap on the holder
// just read: a lock that changed hands meanwhile is left alone). Without
// either it refuses, naming the holder. It returns the holder released, or
// nil when the lock was free.
func (l *Locker) ReleaseOther(ctx context.Context, name, id string, force bool) (*Holder, error) {
	holder, err := l.Read(ctx, name)
	if err != nil || holder == nil {
		return nil, err
	}
	switch {
	case id != "" && holder.ID != id:
		return holder, &HeldError{Name: "deploy lock " + name, Holder: *holder, Hint: fmt.Sprintf("not run %s: it was released or taken over; nothing released", id)}
	case id == "" && !force:
		return holder, &HeldError{Name: "deploy lock " + name, Holder: *holder, Hint: "pass --id with the run ID that gantry lock acquire printed to release your own lock, or --force to release it whoever holds it"}
	}
	cur, removed, err := l.Store.Remove(ctx, name, holder.ID)
	if err != nil {
		return nil, err
	}
	l.fill(cur)
	if !removed {
		if cur == nil {
			return nil, nil // released meanwhile by someone else
		}
		return cur, &HeldError{Name: "deploy lock " + name, Holder: *cur, Hint: fmt.Sprintf("it changed hands while being released (it was %s); nothing released", holder.ID)}
	}
	return holder, nil
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
