package fleet

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

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
	return &lock.Locker{Store: lock.DirStore{Runner: runner, Dir: env.Lock.Dir}, TTL: env.Lock.TTL.D()}, nil
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

// LockOptions select one deploy lock.
type LockOptions struct {
	Config  *config.Config
	Env     string
	Service string
	Message string
	Force   bool
	Out     io.Writer
}

// openLocker connects to the machine holding the environment's locks.
func openLocker(ctx context.Context, o LockOptions) (*lock.Locker, string, func(), error) {
	env, err := o.Config.Environment(o.Env)
	if err != nil {
		return nil, "", nil, fmt.Errorf("%w: %w", ErrRefused, err)
	}
	if _, err := o.Config.Service(o.Service); err != nil {
		return nil, "", nil, fmt.Errorf("%w: %w", ErrRefused, err)
	}
	conn, err := dialMachine(ctx, o.Config, env, env.Lock.Host)
	if err != nil {
		return nil, "", nil, err
	}
	l := &lock.Locker{Store: lock.DirStore{Runner: conn, Dir: env.Lock.Dir}, TTL: env.Lock.TTL.D()}
	return l, lock.Name(o.Env, o.Service), func() { conn.Close() }, nil
}

// LockStatus prints who holds the deploy lock, or that it is free.
func LockStatus(ctx context.Context, o LockOptions) error {
	l, name, done, err := openLocker(ctx, o)
	if err != nil {
		return err
	}
	defer done()
	holder, ok, err := l.Store.Read(ctx, name)
	if err != nil {
		return err
	}
	if !ok {
		fmt.Fprintf(o.Out, "deploy lock %s: free\n", name)
		return nil
	}
	fmt.Fprintf(o.Out, "deploy lock %s: held by %s\n", name, holder)
	return nil
}

// LockAcquire takes the deploy lock by hand (e.g. during maintenance); it
// stays held until `gantry lock release`.
func LockAcquire(ctx context.Context, o LockOptions) error {
	l, name, done, err := openLocker(ctx, o)
	if err != nil {
		return err
	}
	defer done()
	held, err := l.Acquire(ctx, lock.Request{Name: name, Message: o.Message, Force: o.Force})
	if err != nil {
		return err
	}
	fmt.Fprintf(o.Out, "deploy lock %s: acquired by %s; release it with: gantry lock release %s --env %s\n", name, held.Info, o.Service, o.Env)
	return nil
}

// LockRelease frees the deploy lock. Someone else's lock is only released
// with Force.
func LockRelease(ctx context.Context, o LockOptions) error {
	l, name, done, err := openLocker(ctx, o)
	if err != nil {
		return err
	}
	defer done()
	holder, err := l.ReleaseOther(ctx, name, o.Force || o.heldByMe(ctx, l, name))
	if err != nil {
		return err
	}
	if holder == nil {
		fmt.Fprintf(o.Out, "deploy lock %s: already free\n", name)
		return nil
	}
	fmt.Fprintf(o.Out, "deploy lock %s: released (was held by %s)\n", name, holder)
	return nil
}

// heldByMe reports whether the lock was taken by this user on this machine
// (a lock acquired by hand is released by the same person without --force).
func (o LockOptions) heldByMe(ctx context.Context, l *lock.Locker, name string) bool {
	holder, ok, err := l.Store.Read(ctx, name)
	return err == nil && ok && holder.Who == lock.Whoami()
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
	env, err := o.Config.Environment(o.Env)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrRefused, err)
	}
	if _, err := o.Config.Service(o.Service); err != nil {
		return fmt.Errorf("%w: %w", ErrRefused, err)
	}
	conn, err := dialMachine(ctx, o.Config, env, env.Lock.Host)
	if err != nil {
		return err
	}
	defer conn.Close()
	entries, err := history.Store{Runner: conn, Dir: env.Lock.Dir}.Read(ctx, o.Env, o.Service)
	if err != nil {
		return fmt.Errorf("reading history from %s: %w", env.Lock.Host, err)
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
