package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gantry-dev/gantry/inventory"
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

// simContainer is one container on a fake host: just enough state.
type simContainer struct {
	id, name, image string
	labels          map[string]string
	running         bool
	readyAt         time.Time     // when the app answers, once started
	boot            time.Duration // drawn boot time of the last start
}

// simHost is an in-memory container host whose every call sleeps a drawn
// latency. It records, per host, the drawn latencies (sim) and the time
// really slept (act), pull apart from the rest.
//
// The health step is accounted apart (see healthStep): its probes and
// container checks are how the engine chooses to wait for the app, so what
// goes on the host's path is the ideal check instead: the app's boot time,
// Threshold answered probes and the configured waits between them.
type simHost struct {
	w            *world
	name, addr   string
	mu           sync.Mutex
	rng          *rand.Rand
	ctrs         []*simContainer
	images       []string
	nextID       int
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

func newSimHost(w *world, i int, seed uint64, oldImage, oldTag string) *simHost {
	h := &simHost{
		w: w, name: fmt.Sprintf("host%05d", i), addr: fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255),
		rng: rand.New(rand.NewPCG(seed, uint64(i))), images: []string{oldImage}, nextID: 1,
	}
	h.ctrs = []*simContainer{{
		id: h.name + "-c1", name: "www", image: oldImage, running: true,
		labels: map[string]string{
			inventory.LabelManaged: "true", inventory.LabelService: "www",
			inventory.LabelVersion: oldTag, inventory.LabelImage: oldImage,
		},
	}}
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

// find returns the container with that id or name; callers hold h.mu.
func (h *simHost) find(idOrName string) *simContainer {
	for _, c := range h.ctrs {
		if c.id == idOrName || c.name == idOrName {
			return c
		}
	}
	return nil
}

func (h *simHost) Pull(ctx context.Context, ref string) error {
	if err := h.op(ctx, h.w.lat.Pull, true); err != nil {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, i := range h.images {
		if i == ref {
			return nil
		}
	}
	h.images = append(h.images, ref)
	return nil
}

func (h *simHost) Inspect(ctx context.Context, name string) (inventory.Container, bool, error) {
	if err := h.op(ctx, h.w.lat.Inspect, false); err != nil {
		return inventory.Container{}, false, err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	c := h.find(name)
	if c == nil {
		return inventory.Container{}, false, nil
	}
	state := "exited"
	if c.running {
		state = "running"
	}
	// Labels are never changed after creation: shared, not copied.
	return inventory.Container{ID: c.id, Name: c.name, Image: c.image, Running: c.running, State: state, Labels: c.labels}, true, nil
}

func (h *simHost) Create(ctx context.Context, spec inventory.ContainerSpec) (string, error) {
	if err := h.op(ctx, h.w.lat.Create, false); err != nil {
		return "", err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.find(spec.Name) != nil {
		return "", fmt.Errorf("conflict: container name %q is already in use", spec.Name)
	}
	have := false
	for _, i := range h.images {
		have = have || i == spec.Image
	}
	if !have {
		return "", fmt.Errorf("no such image: %s", spec.Image)
	}
	h.nextID++
	c := &simContainer{id: fmt.Sprintf("%s-c%d", h.name, h.nextID), name: spec.Name, image: spec.Image, labels: spec.Labels}
	h.ctrs = append(h.ctrs, c)
	return c.id, nil
}

func (h *simHost) Start(ctx context.Context, id string) error {
	if err := h.op(ctx, h.w.lat.Start, false); err != nil {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	c := h.find(id)
	if c == nil {
		return fmt.Errorf("no such container: %s", id)
	}
	if !c.running {
		c.boot = h.w.draw(h.rng, h.w.lat.Boot)
		c.running, c.readyAt = true, time.Now().Add(c.boot)
		h.lastBoot = c.boot
	}
	return nil
}

func (h *simHost) Stop(ctx context.Context, id string, _ time.Duration) error {
	if err := h.op(ctx, h.w.lat.Stop, false); err != nil {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	c := h.find(id)
	if c == nil {
		return fmt.Errorf("no such container: %s", id)
	}
	c.running = false
	return nil
}

func (h *simHost) Rename(ctx context.Context, id, name string) error {
	if err := h.op(ctx, h.w.lat.Rename, false); err != nil {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	c := h.find(id)
	if c == nil {
		return fmt.Errorf("no such container: %s", id)
	}
	if c.name == name {
		return errors.New("renaming a container with the same name as its current name")
	}
	if o := h.find(name); o != nil {
		return fmt.Errorf("conflict: container name %q is already in use", name)
	}
	c.name = name
	return nil
}

func (h *simHost) Remove(ctx context.Context, id string) error {
	if err := h.op(ctx, h.w.lat.Remove, false); err != nil {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for i, c := range h.ctrs {
		if c.id == id || c.name == id {
			h.ctrs = append(h.ctrs[:i], h.ctrs[i+1:]...)
			return nil
		}
	}
	return nil
}

// ProbeTCP is not simulated: the simulated fleets use HTTP checks.
func (h *simHost) ProbeTCP(context.Context, string, time.Duration) error {
	return fmt.Errorf("tcp health checks are not simulated")
}

// ExecCheck is not simulated: the simulated fleets use HTTP checks.
func (h *simHost) ExecCheck(context.Context, string, []string, time.Duration) (int, string, error) {
	return 0, "", fmt.Errorf("command health checks are not simulated")
}

// RunOnce is not simulated: the simulated fleets have no release command.
func (h *simHost) RunOnce(context.Context, inventory.ContainerSpec, io.Writer, io.Writer) (int, error) {
	return 0, fmt.Errorf("release commands are not simulated")
}

// ProbeHTTP answers 200 when the probe reaches a running container whose app
// has booted (Latencies.Boot after it started), connection refused before.
func (h *simHost) ProbeHTTP(ctx context.Context, addr, _, _ string, _ time.Duration) (int, error) {
	arrived := time.Now()
	h.mu.Lock()
	up := false
	for _, c := range h.ctrs {
		up = up || (c.running && !arrived.Before(c.readyAt))
	}
	h.mu.Unlock()
	if err := h.op(ctx, h.w.lat.Probe, false); err != nil {
		return 0, err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if !up {
		h.passSim, h.passAct = 0, 0
		return 0, fmt.Errorf("dial %s: connection refused", addr)
	}
	h.passSim += h.lastOpSim
	h.passAct += h.lastOpAct
	return 200, nil
}

// simBalancer tracks drained hosts per service. Like the nginx balancer it
// serialises its updates on one mutex (how much of an update is under the
// lock depends on the world's lock mode).
type simBalancer struct {
	w    *world
	name string

	mu      sync.Mutex // the "reload" lock
	rngMu   sync.Mutex
	rng     *rand.Rand
	stateMu sync.Mutex
	drained map[string]map[string]bool
}

func newSimBalancer(w *world, i int, seed uint64) *simBalancer {
	return &simBalancer{
		w: w, name: fmt.Sprintf("lb%d", i+1),
		rng: rand.New(rand.NewPCG(seed^0x5eed, uint64(1_000_000+i))), drained: map[string]map[string]bool{},
	}
}

func (b *simBalancer) LoadBalancerName() string { return b.name }

func (b *simBalancer) Drain(ctx context.Context, service, host string) error {
	return b.set(ctx, "drain", service, host, true)
}

func (b *simBalancer) Restore(ctx context.Context, service, host string) error {
	return b.set(ctx, "restore", service, host, false)
}

// Switch (start-first) costs what a drain costs: a reload, then the wait
// for the workers that may still proxy to the old address.
func (b *simBalancer) Switch(ctx context.Context, service, host, _ string) error {
	return b.set(ctx, "drain", service, host, false)
}

func (b *simBalancer) set(ctx context.Context, kind, service, host string, down bool) error {
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
		if err == nil && !fail {
			b.record(service, host, down)
		}
		b.mu.Unlock()
	} else if !fail {
		b.record(service, host, down)
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
		return fmt.Errorf("%s: %w", b.name, err)
	}
	if fail {
		return fmt.Errorf("%s: %w", b.name, errInjected)
	}
	return nil
}

func (b *simBalancer) record(service, host string, down bool) {
	b.stateMu.Lock()
	defer b.stateMu.Unlock()
	if b.drained[service] == nil {
		b.drained[service] = map[string]bool{}
	}
	if down {
		b.drained[service][host] = true
	} else {
		delete(b.drained[service], host)
	}
}

func (b *simBalancer) drainedCount() int {
	b.stateMu.Lock()
	defer b.stateMu.Unlock()
	n := 0
	for _, hs := range b.drained {
		n += len(hs)
	}
	return n
}
