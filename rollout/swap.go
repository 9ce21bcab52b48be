package rollout

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/gantry-dev/gantry/inventory"
)

// swap is one host's move in progress: what its steps have done so far,
// for the steps that follow and for undoing them.
type swap struct {
	hp   HostPlan
	res  *HostResult
	host Host

	old        *inventory.Container // the container that served before, if any
	oldStopped bool                 // gantry stopped it
	oldRenamed bool                 // gantry renamed it to the -gantry-old name
	newID      string               // the new container, once created
	// newNamed: the new container holds the service's name (stop-first:
	// from its creation; start-first: from the cleanup).
	newNamed bool
	// drained is set once a drain step began: undoing the move puts the
	// host back into every load balancer.
	drained bool
	// outSince is when the host stopped serving: when the first load
	// balancer confirmed its drain (a stop-first move; the drain step's
	// beginning with balancers that cannot say, the stop step's without
	// balancers); zero while it serves, and after a drain that took effect
	// on no balancer.
	outSince time.Time
	// startedAt is when the new container was started.
	startedAt time.Time
}

// InFlightWaiter is a Balancer that says how long its last drain of a
// host waited for the requests in flight to end (nginx's old workers):
// part of the host's time out of rotation that is the app's, not gantry's.
type InFlightWaiter interface {
	InFlightWait(service, host string) time.Duration
}

// ReloadTimer is a Balancer that says how long its own work took in the
// last change applied with a host's (nginx's test, reload and new workers,
// measured on the load balancer): part of the host's time out of rotation
// that is the load balancer's, not gantry's. Hosts whose changes were
// applied together (a group commit) each get that one change's time.
type ReloadTimer interface {
	ReloadTime(service, host string) time.Duration
}

// DrainConfirmer is a Balancer that says when its last drain of a host
// took effect (nginx's new workers run without it): until then the host
// got new requests, so its time out of rotation starts there.
type DrainConfirmer interface {
	DrainTookEffect(service, host string) time.Time
}

// drainTookEffect is when the host's drain that began at began first took
// effect on a balancer: the earliest of the balancers that confirmed it.
// known is false when no balancer can say (the drain step's beginning
// stands); a zero time with known set: the balancers all can say, and none
// took the drain (the host never left rotation).
func (e *Executor) drainTookEffect(host string, began time.Time) (at time.Time, known bool) {
	confirmers := 0
	for _, b := range e.Balancers {
		c, ok := b.(DrainConfirmer)
		if !ok {
			continue
		}
		confirmers++
		t := c.DrainTookEffect(e.Service.Name, host)
		if t.Before(began) {
			continue // an earlier drain's, or none
		}
		if at.IsZero() || t.Before(at) {
			at = t
		}
	}
	return at, !at.IsZero() || (confirmers > 0 && confirmers == len(e.Balancers))
}

// reloadTime is the longest time of the host's last change on the
// balancers that say: they apply it concurrently, so the host waits for
// the longest.
func (e *Executor) reloadTime(host string) time.Duration {
	return longestOf(e.Balancers, func(t ReloadTimer) time.Duration { return t.ReloadTime(e.Service.Name, host) })
}

// longestOf is the longest figure f gives of the balancers that are a T
// (the others say nothing): they act concurrently, so a host waits for
// the longest.
func longestOf[T any](balancers []Balancer, f func(T) time.Duration) time.Duration {
	var longest time.Duration
	for _, b := range balancers {
		if t, ok := b.(T); ok {
			longest = max(longest, f(t))
		}
	}
	return longest
}

// balancerChange runs change (a restore or switch of the host on every
// balancer); while the host is out of rotation, the balancers' own time
// counts as its Nginx part. A drain's is not: the host leaves rotation
// when the drain took effect, its apply done.
func (e *Executor) balancerChange(sw *swap, change func() error) error {
	err := change()
	if !sw.outSince.IsZero() {
		sw.res.Nginx += e.reloadTime(sw.hp.Host.Name)
	}
	return err
}

// docker runs call, a call to the host's Docker daemon; while the host is
// out of rotation, its time counts as the host's Docker part.
func (sw *swap) docker(call func() error) error {
	start := time.Now()
	err := call()
	if !sw.outSince.IsZero() {
		sw.res.Docker += time.Since(start)
	}
	return err
}

// inFlightWait is the longest wait for requests in flight of the host's
// last drain on the balancers that say (the drain ends with the last).
func (e *Executor) inFlightWait(host string) time.Duration {
	return longestOf(e.Balancers, func(w InFlightWaiter) time.Duration { return w.InFlightWait(e.Service.Name, host) })
}

// commitStep is the index of the step from whose success on the host
// serves the new version: the last of health, restore and switch. A step
// that fails before it is undone; one that fails after it costs a warning.
func commitStep(steps []Step) int {
	at := len(steps) - 1
	for i, s := range steps {
		switch s.Kind {
		case StepHealth, StepRestore, StepSwitch:
			at = i
		}
	}
	return at
}

// moveHost runs hp's planned steps on its host, in order, and fills res.
// The executor adds nothing to the plan but its reactions to a failure: a
// step that fails before the commit step is undone (undo), so the host is
// left as it was; a failure after it is a warning.
func (e *Executor) moveHost(ctx context.Context, hp HostPlan, res *HostResult) {
	res.Outcome = HostMoving
	begin := time.Now()
	defer func() { res.Duration = time.Since(begin) }()
	sw := &swap{hp: hp, res: res, host: e.Hosts[hp.Host.Name]}
	commit := commitStep(hp.Steps)
	for i, s := range hp.Steps {
		if !hp.StartFirst && s.Kind != StepCreate && sw.outSince.IsZero() {
			sw.outSince = time.Now()
		}
		err := e.step(hp.Host.Name, string(s.Kind), func() (string, error) { return e.runStep(ctx, sw, s, i <= commit) })
		if i == commit && !sw.outSince.IsZero() {
			res.OutOfRotation = time.Since(sw.outSince)
		}
		var refused *notBegun
		switch {
		case err != nil && i < commit, err != nil && i == commit && (s.Kind == StepHealth || errors.As(err, &refused)):
			// A commit step refused on an interrupt never began: nothing
			// it would change was changed.
			e.undo(ctx, sw, s, err)
			return
		case err != nil && i == commit:
			e.undoCommit(ctx, sw, s, err)
			return
		case err != nil:
			warning := err.Error()
			if s.Kind == StepStop {
				warning = "old container not stopped: " + warning
			}
			res.Warnings = append(res.Warnings, warning)
			if s.Kind == StepCleanup {
				return
			}
		case i == commit:
			res.Outcome, res.InService = HostDeployed, hp.KeepOut == ""
		}
	}
}

// runStep carries out step s of sw's host; beforeCommit is set up to and
// including the commit step. An interrupt (ctx ended) is seen between steps:
// a step that has begun to change the host runs to its end on a context
// that survives the interrupt (cleanupContext), and the next step that
// would change more is refused, so the host is put back.
func (e *Executor) runStep(ctx context.Context, sw *swap, s Step, beforeCommit bool) (string, error) {
	hp, host, svc := sw.hp, sw.host, e.Service
	port := e.portOr(s.Port)
	if beforeCommit && e.refusedOnInterrupt(sw, s) {
		if err := ctx.Err(); err != nil {
			return "", &notBegun{fmt.Errorf("interrupted before the %s step: %w", s.Kind, err)}
		}
	}
	cctx, cancel := e.cleanupContext(ctx)
	defer cancel()
	onPort := func(tag string) string {
		if hp.StartFirst {
			return fmt.Sprintf("%s on port %d", tag, port)
		}
		return tag
	}
	switch s.Kind {
	case StepCreate:
		// Creating binds no port: the host still serves.
		return onPort(s.Tag), e.createNew(ctx, host, hp, port, sw)
	case StepDrain:
		sw.drained = true
		began := time.Now()
		err := e.eachBalancer(ctx, hp.Host.Name, Balancer.Drain)
		sw.res.InFlight = e.inFlightWait(hp.Host.Name)
		if at, known := e.drainTookEffect(hp.Host.Name, began); known {
			// Out of rotation from the first balancer's confirmed drain.
			sw.outSince = at
		}
		return "", err
	case StepStop:
		return e.stopOld(cctx, sw)
	case StepStart:
		// Stop-first, the new container was created under the service's
		// name: starting it is the one call.
		err := sw.docker(func() error { return host.Start(cctx, sw.newID) })
		sw.startedAt = time.Now()
		return onPort(s.Tag), err
	case StepHealth:
		var firstPass time.Time
		detail, err := e.waitHealthy(ctx, host, hp.Host, sw.newID, port, e.isDeploying() && !hp.MovingBack, &firstPass)
		if err == nil {
			sw.res.Ended = hp.To.Tag
			if !sw.outSince.IsZero() && !sw.startedAt.IsZero() {
				// Out of rotation meanwhile: the app's boot, then the
				// configured passes.
				sw.res.Boot, sw.res.Waits = firstPass.Sub(sw.startedAt), time.Since(firstPass)
			}
		}
		return detail, err
	case StepSwitch:
		addr := addrOf(hp.Host, port)
		return addr, e.balancerChange(sw, func() error {
			return e.eachBalancer(cctx, hp.Host.Name, func(b Balancer, ctx context.Context, service, host string) error {
				return b.Switch(ctx, service, host, addr)
			})
		})
	case StepRestore:
		return "", e.balancerChange(sw, func() error { return e.eachBalancer(cctx, hp.Host.Name, Balancer.Restore) })
	case StepCleanup:
		if !sw.newNamed {
			// Start-first: the new container was created under the
			// -gantry-new name while the old one held the service's.
			if err := host.Rename(cctx, sw.newID, svc.ContainerName); err != nil {
				return "", fmt.Errorf("new container serves but is still called %s: %w", e.newName(), err)
			}
			sw.newNamed = true
		}
		if sw.old == nil {
			return "", nil
		}
		// The old image stays cached: rollback needs it.
		if err := host.Remove(cctx, sw.old.ID); err != nil {
			return "", fmt.Errorf("old container not removed: %w", err)
		}
		return sw.old.Version(), nil
	}
	return "", fmt.Errorf("unknown step %q", s.Kind)
}

// notBegun is the error of a step refused on an interrupt before it began.
type notBegun struct{ error }

func (e *notBegun) Unwrap() error { return e.error }

// refusedOnInterrupt says whether step s is not begun once the run is
// interrupted: the container steps that take the host further from where
// it was, and a start-first switch (nothing has changed yet, so nothing is
// cheaper than to drop the new container). A drain is cut short by the
// interrupt itself; a stop-first host that passed its check goes back
// into the load balancers on the new version.
func (e *Executor) refusedOnInterrupt(sw *swap, s Step) bool {
	switch s.Kind {
	case StepCreate, StepStop, StepStart:
		return true
	case StepSwitch:
		return !sw.drained && !sw.oldStopped
	}
	return false
}

// stopOld stops the container that served before (kept until the new one
// is healthy). Stop-first, it gave up its name in the create step already;
// start-first, after the switch, it gives up its name first.
func (e *Executor) stopOld(ctx context.Context, sw *swap) (string, error) {
	old, host := sw.old, sw.host
	if old == nil {
		return "no container to stop", nil
	}
	oldName := e.oldName()
	rename := func() error {
		if old.Name == oldName {
			return nil
		}
		if err := sw.docker(func() error { return host.Rename(ctx, old.ID, oldName) }); err != nil {
			return err
		}
		sw.oldRenamed = true
		return nil
	}
	if sw.hp.StartFirst {
		if err := rename(); err != nil {
			return "", err
		}
	}
	if old.Running {
		// Counted as stopped even if the call fails: the daemon may have
		// stopped it anyway, and the undo checks.
		sw.oldStopped = true
		if err := sw.docker(func() error { return host.Stop(ctx, old.ID, e.Service.StopTimeout) }); err != nil {
			return "", err
		}
	}
	return old.Version(), nil
}

// undo reacts to step s failing with err before the host serves the new
// version: whatever the steps changed is undone (failHost).
func (e *Executor) undo(ctx context.Context, sw *swap, s Step, err error) {
	switch s.Kind {
	case StepStart, StepHealth:
		// Their errors say what failed.
	default:
		err = fmt.Errorf("%s: %w", s.Kind, err)
	}
	e.failHost(ctx, sw, err)
}

// undoCommit reacts to the step that puts the host (back) into rotation
// failing with err. A start-first switch, the host's first change, is
// switched back and the new container dropped; after a stop-first swap the
// new container passed its check and stays, and the host stays out of
// every load balancer until the next run: the report says so.
func (e *Executor) undoCommit(ctx context.Context, sw *swap, s Step, err error) {
	err = fmt.Errorf("%s: %w", s.Kind, err)
	if s.Kind == StepSwitch && !sw.drained && !sw.oldStopped {
		cctx, cancel := e.cleanupContext(ctx)
		defer cancel()
		e.switchBack(cctx, sw, err)
		return
	}
	sw.res.Err = err
	sw.res.InService = false
	sw.res.Outcome = HostFailedOut
}

// failHost undoes a move that went wrong: the new container goes, the old
// one gets its name back and runs again if it ran before, and the host
// returns to every load balancer if it was drained.
func (e *Executor) failHost(ctx context.Context, sw *swap, cause error) {
	hp, res, host := sw.hp, sw.res, sw.host
	name := hp.Host.Name
	res.Err = cause
	cctx, cancel := e.cleanupContext(ctx)
	defer cancel()
	reverted := false
	defer func() { res.failed(reverted) }()
	revertErr := e.step(name, "revert", func() (string, error) {
		if sw.newID != "" {
			if err := sw.docker(func() error { return host.Remove(cctx, sw.newID) }); err != nil {
				return "", err
			}
		}
		old := sw.old
		if old == nil {
			res.Ended = ""
			return "new container removed; nothing ran here before", nil
		}
		// Started before it gets its name back: cut off between the two,
		// it is a running -gantry-old, which the next run keeps; the other
		// way round it would be a stopped container under the service's
		// name, like one stopped by hand.
		giveName := func() error {
			if sw.oldRenamed || old.Name != e.Service.ContainerName {
				return sw.docker(func() error { return host.Rename(cctx, old.ID, e.Service.ContainerName) })
			}
			return nil
		}
		if !old.Running {
			if err := giveName(); err != nil {
				return "", err
			}
			res.Ended = ""
			return old.Version() + " left stopped, as found", nil
		}
		if now, ok, err := host.Inspect(cctx, old.ID); err == nil && ok && now.Running {
			sw.oldStopped = false // still running: a failed stop call did not stop it
		}
		if sw.oldStopped {
			if err := sw.docker(func() error { return host.Start(cctx, old.ID) }); err != nil {
				res.Ended = ""
				return "", err
			}
		}
		if err := giveName(); err != nil {
			return "", err
		}
		res.Ended = old.Version()
		if !sw.oldStopped {
			return "new container removed; " + old.Version() + " kept serving", nil
		}
		if _, err := e.waitHealthy(cctx, host, hp.Host, old.ID, e.portOr(hp.FromPort), false, nil); err != nil {
			res.Ended = ""
			return "", fmt.Errorf("%s restarted but unhealthy: %w", old.Version(), err)
		}
		return old.Version(), nil
	})
	// Reverted means the old version was put back; a host whose old
	// container never stopped serving simply failed (a stop-first rename
	// in the create step changes nothing that serves).
	touched := sw.oldStopped || (!hp.StartFirst && !sw.startedAt.IsZero())
	reverted = revertErr == nil && touched
	res.RevertErr = revertErr
	if sw.outSince.IsZero() && !sw.drained {
		return // it never stopped serving
	}
	// A drain that took effect on no balancer left the host serving
	// (outSince zero): no time out of rotation, but the restore still
	// puts back whatever the failed drain may have left.
	out := func() {
		if !sw.outSince.IsZero() {
			res.OutOfRotation = time.Since(sw.outSince)
		}
	}
	if hp.KeepOut != "" {
		res.InService = false // it stays out whatever ran
		return
	}
	out()
	if revertErr != nil || res.Ended == "" {
		// Only a container that serves goes back into the load
		// balancers: with nothing running (or a revert that failed) the
		// host stays out, and the report says so.
		res.InService = false
		return
	}
	if sw.drained {
		res.InService = e.balancerChange(sw, func() error { return e.restore(cctx, name) }) == nil
	}
	out()
}

// switchBack undoes a start-first switch that failed on some balancer:
// every balancer points back at the old container (or, if none ran, takes
// the host out), then the new container goes.
func (e *Executor) switchBack(ctx context.Context, sw *swap, cause error) {
	hp, res := sw.hp, sw.res
	res.Err = cause
	fromPort := e.portOr(hp.FromPort)
	oldRuns := sw.old != nil && sw.old.Running
	var err error
	if oldRuns {
		err = e.switchTo(ctx, hp.Host, fromPort)
	} else {
		start := time.Now()
		err = e.step(hp.Host.Name, string(StepDrain), func() (string, error) {
			return "", e.eachBalancer(ctx, hp.Host.Name, Balancer.Drain)
		})
		res.OutOfRotation = time.Since(start)
	}
	if err != nil {
		res.InService = false
		res.RevertErr = fmt.Errorf("pointing the load balancers back at port %d: %w", fromPort, err)
		res.Ended = hp.To.Tag // the new container stays: it may be serving
		res.Outcome = HostRevertFailed
		return
	}
	e.failHost(ctx, sw, cause)
	res.InService = oldRuns
	res.failed(res.RevertErr == nil && oldRuns)
}

// portOr is port, or the service's port when port is 0 (a plan made with
// no port, as the tests make them).
func (e *Executor) portOr(port int) int {
	if port == 0 {
		return e.Service.Port
	}
	return port
}

// addrOf is host:port of h's app on port.
func addrOf(h inventory.Host, port int) string {
	return net.JoinHostPort(h.Address, strconv.Itoa(port))
}
