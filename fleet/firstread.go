package fleet

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/gantry-dev/gantry/config"
	"github.com/gantry-dev/gantry/internal/panics"
	"github.com/gantry-dev/gantry/inventory"
	"github.com/gantry-dev/gantry/lb"
	"github.com/gantry-dev/gantry/lock"
	"github.com/gantry-dev/gantry/remote"
	"github.com/gantry-dev/gantry/rollout"
)

// firstReads are the reads of a run's first observation that need only a
// load balancer's connection: how each load balancer lists the service's
// hosts and, on the records machine, the maintenance records and the
// deploy lock. They start the moment that load balancer answers, while the
// hosts are still being dialled, so that the observation is done when the
// last host answers. Each is used once, by the first observation; a run
// that observes again (under the lock) reads again.
type firstReads struct {
	// began is when the first of them could start: the observation's
	// reading began then (lock.Lock.FreeSince).
	began time.Time

	ctx     context.Context
	stop    context.CancelFunc
	wg      sync.WaitGroup
	entries map[string]*firstRead[map[string]lb.Entry] // by load balancer
	maint   *firstRead[map[string]inventory.Maintenance]
	lock    *firstRead[*lock.Holder]

	// By host, as each answers: its containers (the observation), then
	// its free disk where they keep their data; and, once, the image in
	// the registry (a pre-flight fact). Guarded by mu.
	mu       sync.Mutex
	hosts    map[string]*firstRead[rollout.HostSnapshot]
	disks    map[string]*firstRead[diskFact]
	registry *firstRead[struct{}]
	// registryVia is the host the registry is checked from.
	registryVia string
}

// firstRead is one read started ahead, taken once.
type firstRead[T any] struct {
	mu      sync.Mutex
	started bool
	taken   bool
	done    chan struct{}
	v       T
	err     error
}

func (r *firstRead[T]) start(f *firstReads, read func(context.Context) (T, error)) {
	r.mu.Lock()
	r.started = true
	r.mu.Unlock()
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		defer close(r.done)
		defer panics.Recover(func(err error) { r.err = err })
		r.v, r.err = read(f.ctx)
	}()
}

// take returns the read's answer once (ok false when it never started or
// was taken already).
func (r *firstRead[T]) take(ctx context.Context) (v T, err error, ok bool) {
	if r == nil {
		return v, nil, false
	}
	r.mu.Lock()
	ok = r.started && !r.taken
	r.taken = true
	r.mu.Unlock()
	if !ok {
		return v, nil, false
	}
	select {
	case <-r.done:
		return r.v, r.err, true
	case <-ctx.Done():
		return v, ctx.Err(), true
	}
}

// newFirstReads prepares the reads of service svcName on env's load
// balancers (none for a worker) and records machine; onLB starts them.
func newFirstReads(ctx context.Context, env config.Environment, envName, svcName string, worker bool) *firstReads {
	ctx, stop := context.WithCancel(ctx)
	f := &firstReads{began: time.Now(), ctx: ctx, stop: stop, entries: map[string]*firstRead[map[string]lb.Entry]{},
		hosts: map[string]*firstRead[rollout.HostSnapshot]{}, disks: map[string]*firstRead[diskFact]{}}
	if !worker {
		for _, lc := range env.LoadBalancers {
			f.entries[lc.Name] = &firstRead[map[string]lb.Entry]{done: make(chan struct{})}
		}
		f.maint = &firstRead[map[string]inventory.Maintenance]{done: make(chan struct{})}
	}
	f.lock = &firstRead[*lock.Holder]{done: make(chan struct{})}
	return f
}

// firstReadsWait bounds how long a load balancer's first reads wait for
// each other to go in one session (remote.Batch): they are all asked for
// at once, and the batch runs as soon as the last is.
const firstReadsWait = 20 * time.Millisecond

// onLB starts the reads that load balancer name serves, through reads.
func (f *firstReads) onLB(env config.Environment, envName, svcName string) func(string, *remote.Batch) {
	return func(name string, reads *remote.Batch) {
		if r := f.entries[name]; r != nil {
			reads.Expect(1)
			for _, lc := range env.LoadBalancers {
				if lc.Name == name {
					o := lb.Options{Name: lc.Name, Runner: reads, UpstreamsDir: lc.UpstreamsDir}
					r.start(f, func(ctx context.Context) (map[string]lb.Entry, error) { return o.Entries(ctx, svcName) })
				}
			}
		}
		if name != env.Lock.Host {
			return
		}
		reads.Expect(1)
		if f.maint != nil {
			reads.Expect(1)
			m := inventory.Maintenances{Runner: reads, Dir: env.Lock.Dir, Env: envName}
			f.maint.start(f, m.List)
		}
		locker := newLocker(reads, env)
		f.lock.start(f, func(ctx context.Context) (*lock.Holder, error) { return locker.Read(ctx, lock.Name(envName, svcName)) })
	}
}

// onHost starts the reads on each host as it answers: its containers
// named after container; then, for a deploy of image to a host not on it
// already, the free disk where the containers keep their data and, once,
// whether image is in the registry (pre-flight facts a run with nothing to
// change does not need). All of it only reads: a host found decommissioned
// meanwhile is read for nothing.
func (f *firstReads) onHost(container, image string) func(inventory.Host, *Host) {
	return func(h inventory.Host, dh *Host) {
		snap := &firstRead[rollout.HostSnapshot]{done: make(chan struct{})}
		disk := &firstRead[diskFact]{done: make(chan struct{})}
		f.mu.Lock()
		f.hosts[h.Name], f.disks[h.Name] = snap, disk
		f.mu.Unlock()
		// What the disk read needs of the snapshot, taken before the
		// snapshot is handed over: the run's planning may change it.
		var needs bool
		var root string
		snap.start(f, func(ctx context.Context) (rollout.HostSnapshot, error) {
			v, err := snapshotHost(ctx, dh, h, container)
			needs, root = image != "" && err == nil && !onTarget(v, image), dataRoot(v)
			return v, err
		})
		disk.start(f, func(ctx context.Context) (diskFact, error) {
			select {
			case <-snap.done:
			case <-ctx.Done():
				return diskFact{}, ctx.Err()
			}
			if !needs {
				return diskFact{}, errNotReadAhead
			}
			f.checkRegistry(h.Name, dh, image)
			return diskOf(ctx, dh, root), nil
		})
	}
}

// errNotReadAhead says a read was not made ahead: the run makes it when it
// needs it.
var errNotReadAhead = errors.New("not read ahead")

// checkRegistry starts checking image in the registry through dh (host
// name's), unless it was started already (f nil: nothing to start; the
// caller checks).
func (f *firstReads) checkRegistry(name string, dh *Host, image string) {
	if f == nil {
		return
	}
	f.mu.Lock()
	if f.registry != nil {
		f.mu.Unlock()
		return
	}
	r := &firstRead[struct{}]{done: make(chan struct{})}
	f.registry, f.registryVia = r, name
	f.mu.Unlock()
	r.start(f, func(ctx context.Context) (struct{}, error) {
		return struct{}{}, dh.ImageInRegistry(ctx, image, dh.auth)
	})
}

// onTarget reports whether h runs image already, with nothing left over
// by a cut-off run.
func onTarget(h rollout.HostSnapshot, image string) bool {
	return h.Current != nil && h.Current.Running && h.Current.Image == image && h.Old == nil && h.New == nil && h.Release == nil
}

// hostSnap and hostDisk return host name's reads started by onHost (nil:
// none), and registryRead the registry's when it goes through one of
// hosts (nil otherwise: started from a host found decommissioned
// meanwhile, whose connection was closed under the check).
func (f *firstReads) hostSnap(name string) *firstRead[rollout.HostSnapshot] {
	if f == nil {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.hosts[name]
}

func (f *firstReads) hostDisk(name string) *firstRead[diskFact] {
	if f == nil {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.disks[name]
}

func (f *firstReads) registryRead(hosts []inventory.Host) *firstRead[struct{}] {
	if f == nil {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if !slices.ContainsFunc(hosts, func(h inventory.Host) bool { return h.Name == f.registryVia }) {
		return nil
	}
	return f.registry
}

// takeEntries returns every load balancer's first read, in the order of
// balancers, when each was started (ok false otherwise: read them anew).
func (f *firstReads) takeEntries(ctx context.Context, balancers []lb.Options) (found []map[string]lb.Entry, errs []error, ok bool) {
	for _, b := range balancers {
		r := f.entries[b.Name]
		if r == nil {
			return nil, nil, false
		}
		r.mu.Lock()
		started := r.started && !r.taken
		r.mu.Unlock()
		if !started {
			return nil, nil, false
		}
	}
	for _, b := range balancers {
		v, err, _ := f.entries[b.Name].take(ctx)
		found, errs = append(found, v), append(errs, err)
	}
	return found, errs, true
}

// close stops the reads still running and waits for them.
func (f *firstReads) close() {
	f.stop()
	f.wg.Wait()
}
