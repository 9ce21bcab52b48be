package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/gantry-dev/gantry/config"
	"github.com/gantry-dev/gantry/history"
	"github.com/gantry-dev/gantry/lock"
	"github.com/gantry-dev/gantry/remote"
)

// Locker returns the environment's deploy locker, reusing an open
// connection to the lock's machine when there is one.
func (c *Connections) Locker(ctx context.Context, cfg *config.Config, env config.Environment) (*lock.Locker, error) {
	runner, err := c.lockMachine(ctx, cfg, env)
	if err != nil {
		return nil, err
	}
	return newLocker(runner, env), nil
}

// newLocker is the environment's locker over a connection to its lock
// machine.
func newLocker(runner lock.Runner, env config.Environment) *lock.Locker {
	return &lock.Locker{Store: lock.DirStore{Runner: runner, Dir: env.Lock.Dir, Host: env.Lock.Host}, TTL: env.Lock.TTL.D()}
}

// lockMachine is the connection to the machine keeping the environment's
// locks and deploy history.
func (c *Connections) lockMachine(ctx context.Context, cfg *config.Config, env config.Environment) (*remote.Conn, error) {
	name := env.Lock.Host
	if conn, ok := c.LBs[name]; ok {
		return conn, nil
	}
	if h, ok := c.Hosts[name]; ok {
		return h.Conn, nil
	}
	for _, x := range c.extra {
		if x.Endpoint.Name == name {
			return x, nil
		}
	}
	conn, err := dialMachine(ctx, cfg, env, name)
	if err != nil {
		return nil, err
	}
	c.extra = append(c.extra, conn)
	return conn, nil
}

func dialMachine(ctx context.Context, cfg *config.Config, env config.Environment, name string) (*remote.Conn, error) {
	addr, port, ok := env.Machine(name)
	if !ok {
		return nil, fmt.Errorf("lock host %q is not a host or load balancer of the environment", name)
	}
	return remote.Dial(ctx, sshConfig(cfg, env), remote.Endpoint{Name: name, Addr: config.HostPort(addr, port)})
}

// holdLease keeps a held lock renewed until stop is called (call it before
// releasing the lock). The lock is a lease: when it is lost — not renewed
// in time, or taken from its holder — the returned context is cancelled
// with the loss (lock.ErrLost) as its cause, so the run starts no new step
// and puts the host in progress back, as on an interrupt.
func holdLease(ctx context.Context, locker *lock.Locker, held *lock.Lock, out io.Writer) (context.Context, func()) {
	renewer := *locker // its own Warn, whatever else uses locker
	renewer.Warn = func(s string) { fmt.Fprintln(out, "warning: "+s) }
	lease := renewer.KeepAlive(ctx, held)
	run, cancel := context.WithCancelCause(ctx)
	stop, watched := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(watched)
		select {
		case <-lease.Lost():
			fmt.Fprintf(out, "warning: %v; stopping: no new steps, the host in progress is put back\n", lease.Err())
			cancel(lease.Err())
		case <-stop:
		}
	}()
	return run, func() {
		close(stop)
		<-watched
		lease.Stop()
		cancel(nil)
	}
}

// holdServiceLocks takes the deploy lock of each service, in the order
// given (sorted by the callers, so two commands taking several locks never
// wait on each other in a circle), waiting up to req.Wait for each, and
// keeps them renewed. req names what the locks record; its Name is set per
// service. The returned context ends when any lease is lost; release stops
// the renewals and frees every lock (last taken first), returning what
// failed. On an error the locks already taken are freed before it returns,
// their failures printed to out as warnings.
func holdServiceLocks(ctx context.Context, locker *lock.Locker, envName string, services []string, req lock.Request, out io.Writer) (context.Context, func() error, error) {
	var releases []func() error
	release := func() error {
		var errs []error
		for i := len(releases) - 1; i >= 0; i-- {
			errs = append(errs, releases[i]())
		}
		return errors.Join(errs...)
	}
	for _, svc := range services {
		r := req
		r.Name = lock.Name(envName, svc)
		var free func() error
		var err error
		ctx, _, free, err = holdLock(ctx, locker, r, envName, svc, out)
		if err != nil {
			for _, e := range unjoin(release()) {
				fmt.Fprintf(out, "warning: %v\n", e)
			}
			return nil, nil, err
		}
		releases = append(releases, free)
	}
	return ctx, release, nil
}

// LockOptions select one deploy lock.
type LockOptions struct {
	Config  *config.Config
	Env     string
	Service string
	Message string
	// Force: acquire takes over a lock held by hand; release frees the lock
	// whoever holds it.
	Force bool
	// ID is the run ID of the lock to release (printed by LockAcquire).
	ID string
	// TTL is how long a lock taken by hand lasts unless released (0:
	// lock.DefaultManualTTL).
	TTL time.Duration
	Out io.Writer
}

// openLocker opens a session on the machine holding the environment's
// locks.
func openLocker(ctx context.Context, o LockOptions) (*lock.Locker, string, func(), error) {
	if _, err := o.Config.Environment(o.Env); err != nil {
		return nil, "", nil, fmt.Errorf("%w: %w", ErrRefused, err)
	}
	if _, err := o.Config.Service(o.Service); err != nil {
		return nil, "", nil, fmt.Errorf("%w: %w", ErrRefused, err)
	}
	s, err := Open(ctx, o.Config, o.Env, o.Out, Needs{Records: true})
	if err != nil {
		return nil, "", nil, err
	}
	return s.Locker(), lock.Name(o.Env, o.Service), s.Done, nil
}

// LockStatus prints who holds the deploy lock, or that it is free.
func LockStatus(ctx context.Context, o LockOptions) error {
	l, name, done, err := openLocker(ctx, o)
	if err != nil {
		return err
	}
	defer done()
	holder, err := l.Read(ctx, name)
	if err != nil {
		return err
	}
	if holder == nil {
		fmt.Fprintf(o.Out, "deploy lock %s: free\n", name)
		return nil
	}
	fmt.Fprintf(o.Out, "deploy lock %s: held by %s\n", name, holder)
	if holder.Expired() {
		fmt.Fprintf(o.Out, "it has expired: the next deploy takes it over\n")
	}
	return nil
}

// LockAcquire takes the deploy lock by hand (e.g. during maintenance). No
// process renews it: it stays held until released with its run ID, or
// until its own TTL (o.TTL, default a day) runs out.
func LockAcquire(ctx context.Context, o LockOptions) error {
	l, name, done, err := openLocker(ctx, o)
	if err != nil {
		return err
	}
	defer done()
	held, err := l.Acquire(ctx, lock.Request{Name: name, Message: o.Message, Force: o.Force, Manual: true, TTL: o.TTL})
	if err != nil {
		return err
	}
	if held.TookOver != nil {
		fmt.Fprintf(o.Out, "took over deploy lock %s (%s): it was held by %s\n", name, held.Why, held.TookOver)
	}
	fmt.Fprintf(o.Out, "deploy lock %s: acquired by hand, run ID %s; it expires in %s unless released with:\n  gantry lock release %s --env %s --id %s\n",
		name, held.Holder.ID, held.Holder.TTL, o.Service, o.Env, held.Holder.ID)
	return nil
}

// LockRelease frees the deploy lock with run ID o.ID, or with o.Force
// whoever holds it. Being the same user on the same machine is not enough:
// two CI jobs can share that identity.
func LockRelease(ctx context.Context, o LockOptions) error {
	l, name, done, err := openLocker(ctx, o)
	if err != nil {
		return err
	}
	defer done()
	holder, err := l.ReleaseOther(ctx, name, o.ID, o.Force)
	if err != nil {
		return err
	}
	if holder == nil {
		fmt.Fprintf(o.Out, "deploy lock %s: already free\n", name)
		return nil
	}
	fmt.Fprintf(o.Out, "deploy lock %s: released (was held by %s)\n", name, holder)
	if !holder.Manual && !holder.Expired() {
		fmt.Fprintf(o.Out, "warning: it was a running deploy's lock: that deploy stops at its next renewal, putting the host in progress back\n")
	}
	return nil
}

// HistoryOptions select a service's deploy history.
type HistoryOptions struct {
	Config  *config.Config
	Env     string
	Service string
	JSON    bool
	Out     io.Writer
}

// History prints the deploy audit trail of a service, read from the fleet.
func History(ctx context.Context, o HistoryOptions) error {
	if _, err := o.Config.Environment(o.Env); err != nil {
		return fmt.Errorf("%w: %w", ErrRefused, err)
	}
	if _, err := o.Config.Service(o.Service); err != nil {
		return fmt.Errorf("%w: %w", ErrRefused, err)
	}
	s, err := Open(ctx, o.Config, o.Env, o.Out, Needs{Records: true})
	if err != nil {
		return err
	}
	defer s.Done()
	entries, err := history.Store{Runner: s.Records(), Dir: s.Env.Lock.Dir}.Read(ctx, o.Env, o.Service)
	if err != nil {
		return fmt.Errorf("reading history from %s: %w", s.Env.Lock.Host, err)
	}
	if o.JSON {
		enc := json.NewEncoder(o.Out)
		enc.SetIndent("", "  ")
		if entries == nil {
			entries = []history.Entry{}
		}
		return enc.Encode(entries)
	}
	fmt.Fprint(o.Out, history.Format(entries))
	return nil
}
