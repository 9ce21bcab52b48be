package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gantry-dev/gantry/internal/fakefleet"
	"github.com/gantry-dev/gantry/rollout"
)

// Latencies are the simulated durations of each remote operation.
type Latencies struct {
	Pull, Inspect, Create, Start, Stop, Rename, Remove, Probe time.Duration
	Drain, Restore                                            time.Duration
	// Boot is how long a started container's app takes to answer its
	// health endpoint, from the end of the start call.
	Boot time.Duration
	// Reload is the part of a drain spent under the balancer's lock in
	// lock mode "reload" (write + nginx -t + reload); the rest of the drain
	// (waiting for the old workers) runs outside the lock, as lb/nginx.go does.
	Reload time.Duration
}

// Lock modes of the fake balancers.
const (
	lockFull   = "full"   // the per-balancer mutex is held for the whole drain/restore
	lockReload = "reload" // held for the reload only; a drain's worker wait is outside (lb/nginx.go today)
	lockNone   = "none"   // no serialisation at all
)

var errInjected = errors.New("simulated failure")

// gauge counts operations in flight and keeps the maximum seen.
type gauge struct{ cur, peak atomic.Int64 }

func (g *gauge) inc() {
	n := g.cur.Add(1)
	for {
		p := g.peak.Load()
		if n <= p || g.peak.CompareAndSwap(p, n) {
			return
		}
	}
}

func (g *gauge) dec() { g.cur.Add(-1) }

// world is what the fakes of one simulated fleet share.
type world struct {
	lat      Latencies
	jitter   float64 // ±fraction
	failRate float64
	lockMode string
	nLB      int
	health   rollout.HealthCheck

	hostOps gauge // "SSH connections": host operations in flight
	lbOps   gauge // balancer operations in flight
	hosts   map[string]*simHost
}

// draw returns d with jitter, using r (the caller serialises r).
func (w *world) draw(r *rand.Rand, d time.Duration) time.Duration {
	if w.jitter <= 0 || d <= 0 {
		return d
	}
	f := 1 + w.jitter*(2*r.Float64()-1)
	return time.Duration(float64(d) * f)
}

// sleep waits d or until ctx ends, and returns how long it really slept.
func sleep(ctx context.Context, d time.Duration) (time.Duration, error) {
	start := time.Now()
	if d <= 0 {
		return 0, ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return time.Since(start), nil
	case <-ctx.Done():
		return time.Since(start), ctx.Err()
	}
}

// simHost is a fake host (internal/fakefleet: real container state) whose
// every call sleeps a drawn latency and may fail at the world's rate. It
// records, per host, the drawn latencies (sim) and the time really slept
// (act), pull apart from the rest.
//
// The health step is accounted apart (see healthStep): its probes and
// container checks are how the engine chooses to wait for the app, so what
// goes on the host's path is the ideal check instead: the app's boot time,
// Threshold answered probes and the configured waits between them.
type simHost struct {
	*fakefleet.Host
	w            *world
	mu           sync.Mutex
	rng          *rand.Rand
	pullSim      time.Duration
	pullAct      time.Duration
	sim, act     time.Duration // every other op, balancer waits included
	queue        time.Duration // part of sim spent queueing for a balancer lock
	lbKind       string        // balancer step being collected
	lbN          int
	lbSim, lbAct time.Duration // max over balancers of the current step
	lbWait       time.Duration // lock wait of the balancer that gave lbSim

	lastOpSim, lastOpAct time.Duration
	inHealth             bool          // the executor's health step is running
	passSim, passAct     time.Duration // latencies of the passing probes in a row
	lastBoot             time.Duration // drawn boot time of the container last started
	healthIdeal          time.Duration // Σ ideal health checks (drawn latencies)
	healthWall           time.Duration // Σ health steps as the executor timed them
	healthChecks         int
}

// newSimHost makes fake host i of the world a simulated one: its
// operations take the world's latencies and its apps its boot time.
func newSimHost(w *world, fh *fakefleet.Host, i int, seed uint64) *simHost {
	h := &simHost{Host: fh, w: w, rng: rand.New(rand.NewPCG(seed, uint64(i)))}
	lat := map[string]time.Duration{
		fakefleet.OpPull: w.lat.Pull, fakefleet.OpInspect: w.lat.Inspect, fakefleet.OpCreate: w.lat.Create,
		fakefleet.OpStart: w.lat.Start, fakefleet.OpStop: w.lat.Stop, fakefleet.OpRename: w.lat.Rename,
		fakefleet.OpRemove: w.lat.Remove, fakefleet.OpProbe: w.lat.Probe,
	}
	fh.Before = func(ctx context.Context, op, _ string) error {
		return h.op(ctx, lat[op], op == fakefleet.OpPull)
	}
	fh.Boot = func(string) time.Duration {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.lastBoot = h.w.draw(h.rng, h.w.lat.Boot)
		return h.lastBoot
	}
	return h
}

// op simulates the remote part of one operation: latency, maybe failure.
func (h *simHost) op(ctx context.Context, d time.Duration, pull bool) error {
	h.w.hostOps.inc()
	defer h.w.hostOps.dec()
	h.mu.Lock()
	d = h.w.draw(h.rng, d)
	fail := h.w.failRate > 0 && h.rng.Float64() < h.w.failRate
	h.mu.Unlock()
	act, err := sleep(ctx, d)
	h.mu.Lock()
	switch {
	case pull:
		h.pullSim += d
		h.pullAct += act
	case h.inHealth:
		// Accounted by healthStep; the last latency is kept for a probe.
		h.lastOpSim, h.lastOpAct = d, act
	default:
		h.sim += d
		h.act += act
	}
	h.mu.Unlock()
	if err != nil {
		return err
	}
	if fail {
		return errInjected
	}
	return nil
}

// lbDone attributes to the host the time it waited on one balancer for a
// drain or restore. The executor calls every balancer in parallel, so a
// step costs the host the slowest balancer's time.
func (h *simHost) lbDone(kind string, sim, wait, act time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.lbKind != kind {
		h.lbKind, h.lbN, h.lbSim, h.lbAct, h.lbWait = kind, 0, 0, 0, 0
	}
	if sim > h.lbSim {
		h.lbSim, h.lbWait = sim, wait
	}
	h.lbAct = max(h.lbAct, act)
	h.lbN++
	if h.lbN == h.w.nLB {
		h.sim += h.lbSim
		h.act += h.lbAct
		h.queue += h.lbWait
		h.lbKind, h.lbN, h.lbSim, h.lbAct, h.lbWait = "", 0, 0, 0, 0
	}
}

// healthStep is told by the executor's events when a health step starts and
// ends on the host. While it runs, the host's operations stay off its path;
// when it ends, the ideal check goes on instead: boot + Threshold probes (the
// latencies of the passing probes in a row) + (Threshold-1) x Interval, the
// waits the user configured between passes. What the executor spent beyond
// that (probes refused while booting, the delay before noticing the app is
// up, its container checks, its own timers' slack) is its overhead.
func (h *simHost) healthStep(done bool, took time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !done {
		h.inHealth, h.passSim, h.passAct = true, 0, 0
		return
	}
	h.inHealth = false
	configured := time.Duration(max(0, h.w.health.Threshold-1)) * h.w.health.Interval
	ideal := h.lastBoot + h.passSim + configured
	h.sim += ideal
	h.act += h.lastBoot + h.passAct + configured
	h.healthIdeal += ideal
	h.healthWall += took
	h.healthChecks++
}

// hostTotals is what one host's fakes recorded.
type hostTotals struct {
	pullSim, pullAct, sim, act, queue time.Duration
	healthIdeal, healthWall           time.Duration
	healthChecks                      int
}

func (h *simHost) totals() hostTotals {
	h.mu.Lock()
	defer h.mu.Unlock()
	return hostTotals{h.pullSim, h.pullAct, h.sim, h.act, h.queue, h.healthIdeal, h.healthWall, h.healthChecks}
}

// ProbeHTTP is the fake host's probe (refused until the app has booted),
// counting a passing probe's latency towards the ideal health check and
// starting the count again on a refused one.
func (h *simHost) ProbeHTTP(ctx context.Context, addr, path, hostHeader string, timeout time.Duration) (int, error) {
	status, err := h.Host.ProbeHTTP(ctx, addr, path, hostHeader, timeout)
	if errors.Is(err, errInjected) || ctx.Err() != nil {
		return status, err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if err != nil || status != 200 {
		h.passSim, h.passAct = 0, 0
		return status, err
	}
	h.passSim += h.lastOpSim
	h.passAct += h.lastOpAct
	return status, nil
}

// simBalancer makes a fake balancer a simulated one. Like the nginx
// balancer it serialises its updates on one mutex (how much of an update
// is under the lock depends on the world's lock mode).
type simBalancer struct {
	*fakefleet.Balancer
	w *world

	mu    sync.Mutex // the "reload" lock
	rngMu sync.Mutex
	rng   *rand.Rand
}

func newSimBalancer(w *world, fb *fakefleet.Balancer, i int, seed uint64) *simBalancer {
	b := &simBalancer{Balancer: fb, w: w, rng: rand.New(rand.NewPCG(seed^0x5eed, uint64(1_000_000+i)))}
	fb.Before = func(ctx context.Context, op, _, host string) error {
		// Switch (start-first) costs what a drain costs: a reload, then
		// the wait for the workers that may still proxy to the old address.
		kind := "drain"
		if op == fakefleet.OpRestore {
			kind = "restore"
		}
		return b.change(ctx, kind, host)
	}
	return b
}

// change is the latency of one change, and maybe its failure; the fake
// balancer records the change when it returns nil.
func (b *simBalancer) change(ctx context.Context, kind, host string) error {
	b.w.lbOps.inc()
	defer b.w.lbOps.dec()
	start := time.Now()
	base, locked := b.w.lat.Restore, b.w.lat.Restore
	if kind == "drain" {
		base, locked = b.w.lat.Drain, min(b.w.lat.Reload, b.w.lat.Drain)
	}
	b.rngMu.Lock()
	d := b.w.draw(b.rng, base)
	fail := b.w.failRate > 0 && b.rng.Float64() < b.w.failRate
	b.rngMu.Unlock()
	// The drawn latency split into the part under the lock and the rest.
	var under time.Duration
	switch b.w.lockMode {
	case lockFull:
		under = d
	case lockReload:
		under = time.Duration(float64(d) * float64(locked) / float64(max(base, 1)))
	}
	var wait time.Duration
	var err error
	if under > 0 {
		lockStart := time.Now()
		b.mu.Lock()
		wait = time.Since(lockStart)
		_, err = sleep(ctx, under)
		b.mu.Unlock()
	}
	if err == nil {
		_, err = sleep(ctx, d-under)
	}
	if h := b.w.hosts[host]; h != nil {
		// What the host waited: its own drawn latency plus the queue for
		// the lock (the real nginx balancer makes it wait just the same).
		h.lbDone(kind, d+wait, wait, time.Since(start))
	}
	if err != nil {
		return fmt.Errorf("%s: %w", b.LoadBalancerName(), err)
	}
	if fail {
		return fmt.Errorf("%s: %w", b.LoadBalancerName(), errInjected)
	}
	return nil
}
