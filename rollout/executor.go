package rollout

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/go-multierror"
	"golang.org/x/sync/errgroup"

	"github.com/gantry-dev/gantry/internal/hurry"
	"github.com/gantry-dev/gantry/internal/names"
	"github.com/gantry-dev/gantry/internal/panics"
	"github.com/gantry-dev/gantry/inventory"
)

// Failure policies (Executor.OnFailure).
const (
	OnFailureRevert = "revert"
	OnFailureHalt   = "halt"
)

// ErrHealthCheck is returned (wrapped) when a new container does not pass
// its health check before the deadline, or exits while being checked.
var ErrHealthCheck = errors.New("health check failed")

// Host is what the executor needs of one host's container runtime.
type Host interface {
	// Pull fetches an image into the host's cache.
	Pull(ctx context.Context, ref string) error
	// Inspect returns the container called name; ok is false if none.
	Inspect(ctx context.Context, name string) (c inventory.Container, ok bool, err error)
	// Create creates a container (not started) and returns its id.
	Create(ctx context.Context, spec inventory.ContainerSpec) (string, error)
	Start(ctx context.Context, id string) error
	// Stop sends SIGTERM and waits up to timeout before killing.
	Stop(ctx context.Context, id string, timeout time.Duration) error
	Rename(ctx context.Context, id, name string) error
	// Remove removes a container but never its image.
	Remove(ctx context.Context, id string) error
	// ProbeHTTP GETs http://addr+path from the host's side and returns the
	// status, without following redirects; hostHeader, when set, is the
	// request's Host header.
	ProbeHTTP(ctx context.Context, addr, path, hostHeader string, timeout time.Duration) (int, error)
	// ProbeTCP opens a TCP connection to addr from the host's side.
	ProbeTCP(ctx context.Context, addr string, timeout time.Duration) error
	// ExecCheck runs cmd (an argv, no shell) in the running container id
	// and returns its exit code and the tail of its output.
	ExecCheck(ctx context.Context, id string, cmd []string, timeout time.Duration) (exitCode int, output string, err error)
	// RunOnce creates a container from spec with no restart policy,
	// starts it, copies its output to stdout and stderr until it exits,
	// removes it and returns its exit code. When ctx ends first, the
	// container is killed and removed and ctx's error returned.
	RunOnce(ctx context.Context, spec inventory.ContainerSpec, stdout, stderr io.Writer) (exitCode int, err error)
}

// Balancer is one load balancer that can take a host out of a service's
// upstream and put it back.
type Balancer interface {
	LoadBalancerName() string
	// Drain takes host out and returns once in-flight requests to it ended.
	Drain(ctx context.Context, service, host string) error
	// Restore puts host back, on the address it had.
	Restore(ctx context.Context, service, host string) error
	// Switch points host's entry at addr (host:port) and puts it in
	// service, with one reload, and returns once the requests in flight
	// to its previous address ended.
	Switch(ctx context.Context, service, host, addr string) error
}

// HealthCheck is the check a new container must pass: Threshold
// consecutive passes of Kind's probe, spaced by Interval, within Deadline.
type HealthCheck struct {
	// Kind is the probe: HealthHTTP (the zero value), HealthTCP,
	// HealthCommand, HealthDocker or HealthRunning.
	Kind HealthKind
	// Path, Status and HostHeader are the HTTP probe's.
	Path       string
	Status     int
	HostHeader string
	// Command is the command probe's argv, run inside the container.
	Command []string
	// MinRunning is how long the running probe wants the container up
	// without a restart.
	MinRunning time.Duration
	Interval   time.Duration
	Timeout    time.Duration
	Threshold  int // consecutive passes needed
	Deadline   time.Duration
}

// ServiceSpec is what the executor needs to know of the service.
type ServiceSpec struct {
	Name          string
	ContainerName string
	// Port is where the app listens unless a HostPlan says otherwise.
	Port int
	// Env returns the container environment for one host, for a container
	// listening on port.
	Env         func(h inventory.Host, port int) []string
	Health      HealthCheck
	StopTimeout time.Duration
	// Options are the container options every container of the service
	// is created with.
	Options inventory.ContainerOptions
	// Labels are the service's own labels, put on its containers beside
	// gantry's (which win).
	Labels map[string]string
}

// Executor carries out a Plan. Hosts are looked up by host name.
type Executor struct {
	Hosts           map[string]Host
	Balancers       []Balancer
	Service         ServiceSpec
	PullConcurrency int
	PullTimeout     time.Duration
	// CleanupTimeout bounds the work that puts a host back after a failure
	// or an interrupt; it runs even when ctx is cancelled.
	CleanupTimeout time.Duration
	// OnFailure is what happens to hosts already moved when a host fails:
	// OnFailureRevert (the default) moves them back, so the fleet ends on
	// one version; OnFailureHalt leaves them on the new version.
	OnFailure string
	// Observe receives progress events; it may be nil. It is called from
	// several goroutines, one at a time.
	Observe func(Event)
	// RunID identifies the run (its deploy lock's ID): it labels the
	// release container, so a leftover can be told from whose run it is.
	RunID string
	// Canary judges a plan's canary stage (nil: a plan with one fails).
	Canary CanaryJudge

	mu     sync.Mutex
	report *Report // the run in progress, for per-phase timings
	// deploying is set while a deploy (not a rollback) runs: the version
	// it brings must meet the health check as configured (see probeOnce).
	deploying bool
}

// Event is one step on one host starting or ending.
type Event struct {
	Time     time.Time
	Host     string
	Step     string
	Done     bool // false: started; true: ended (Err says how)
	Duration time.Duration
	Detail   string
	Err      error
	// Stream is "stdout" or "stderr" for a line of output of the step's
	// command (the release command's), or StreamFigures for the running
	// figures of a canary's bake, Output being the line: such an event
	// neither starts nor ends the step. "" for every other event.
	Stream string
	Output string
	// Canary is set on a bake's figures events (nil on one saying a read
	// failed).
	Canary *CanaryProgress
}

// StreamFigures is Event.Stream of a canary bake's figures.
const StreamFigures = "figures"

func (e *Executor) emit(ev Event) {
	ev.Time = time.Now()
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, inReport := e.reportHost(ev.Host); ev.Done && inReport {
		// Where time goes: each host's time per phase.
		h := e.report.host(ev.Host)
		if h.Phases == nil {
			h.Phases = map[string]time.Duration{}
		}
		h.Phases[ev.Step] += ev.Duration
	}
	if e.Observe != nil {
		// A panicking observer (progress output) must not fail a host
		// half-way through a step: it costs the host a warning.
		if err := panics.Catch(func() error { e.Observe(ev); return nil }); err != nil {
			h, ok := e.reportHost(ev.Host)
			if !ok {
				return
			}
			h.Warnings = append(h.Warnings, "progress observer: "+err.Error())
		}
	}
}

// reportHost is the host's result in the run in progress, if it has one.
// The caller holds e.mu.
func (e *Executor) reportHost(name string) (*HostResult, bool) {
	if e.report == nil {
		return nil, false
	}
	h, ok := e.report.byName[name]
	return h, ok
}

// step runs fn as a named step on host, reporting start and end. A panic
// in fn (in gantry or in an adapter it calls) is the step's error, so the
// host is put back like after any other failure.
func (e *Executor) step(host, name string, fn func() (string, error)) error {
	e.emit(Event{Host: host, Step: name})
	start := time.Now()
	var detail string
	err := panics.Catch(func() (err error) {
		detail, err = fn()
		return err
	})
	if panics.Is(err) {
		err = fmt.Errorf("%s on %s: %w", name, host, err)
	}
	e.emit(Event{Host: host, Step: name, Done: true, Duration: time.Since(start), Detail: detail, Err: err})
	return err
}

// Run executes plan and reports what each host ended on. It never returns
// with a host drained: failures put the old container back and the host
// back into every load balancer.
func (e *Executor) Run(ctx context.Context, plan Plan) *Report {
	start := time.Now()
	rep := newReport(plan)
	e.mu.Lock()
	e.report = rep
	e.deploying = plan.RunKind() == RunDeploy
	e.mu.Unlock()
	defer func() {
		e.mu.Lock()
		e.report = nil
		e.mu.Unlock()
		// The one place the interruption is recorded: a context cancelled
		// (by the user's signal) — not one that ended with another cause,
		// such as a lost deploy lock, or a deadline.
		rep.Interrupted = errors.Is(context.Cause(ctx), context.Canceled)
	}()
	if len(plan.Batches) > 0 {
		// Pulling changes nothing that serves: it goes first, so that the
		// release command runs on the new image before anything changes.
		pullStart := time.Now()
		err := e.pullAll(ctx, plan, rep)
		rep.PullDuration = time.Since(pullStart)
		if err != nil {
			rep.Err = fmt.Errorf("pull failed, nothing was changed: %w", err)
			rep.Total = time.Since(start)
			return rep
		}
	}
	if plan.Release != nil {
		// Before any repair or drain: a failed release command leaves the
		// fleet as it found it.
		if err := e.release(ctx, plan, rep); err != nil {
			rep.Err = err
			rep.Total = time.Since(start)
			return rep
		}
	}
	if len(plan.Repairs) > 0 {
		// What a cut-off run left is put right next; a host that cannot
		// be is a failure, and nothing else changes until it is.
		if err := e.repairAll(ctx, plan, rep); err != nil {
			rep.Err = fmt.Errorf("repairing what a cut-off run left (nothing else was changed): %w", err)
			rep.Total = time.Since(start)
			return rep
		}
	}
	if len(plan.Batches) == 0 {
		rep.Total = time.Since(start)
		return rep
	}

	var errs *multierror.Error
	for bi, batch := range plan.Batches {
		if ctx.Err() != nil {
			errs = multierror.Append(errs, fmt.Errorf("interrupted before batch %d: %w", bi+1, ctx.Err()))
			break
		}
		var g errgroup.Group
		for _, hp := range batch.Hosts {
			res := rep.host(hp.Host.Name)
			g.Go(func() error {
				guardHost(hp.Host.Name, res, func() { e.moveHost(ctx, hp, res) })
				return nil
			})
		}
		_ = g.Wait()
		failed := false
		for _, hp := range batch.Hosts {
			if r := rep.host(hp.Host.Name); r.Err != nil {
				failed = true
				errs = multierror.Append(errs, fmt.Errorf("%s: %w", r.Host, r.Err))
			}
		}
		canaryFailed := false
		if !failed && plan.Canary != nil && bi == plan.Canary.Batch {
			if err := e.bake(ctx, plan, rep); err != nil {
				errs = multierror.Append(errs, err)
				failed, canaryFailed = true, errors.Is(err, ErrCanaryFailed)
			}
		}
		if failed {
			if bi+1 < len(plan.Batches) {
				errs = multierror.Append(errs, fmt.Errorf("deploy halted after batch %d of %d", bi+1, len(plan.Batches)))
			}
			// A failed canary goes back as a failed health check would,
			// on_failure: halt or not: it must not keep serving.
			if (e.OnFailure != OnFailureHalt || canaryFailed) && ctx.Err() == nil {
				e.revertMoved(ctx, plan, rep)
			}
			break
		}
	}
	rep.Err = errs.ErrorOrNil()
	rep.Total = time.Since(start)
	return rep
}

// pullAll pulls the target on every host of the plan, bounded, collecting
// every failure.
func (e *Executor) pullAll(ctx context.Context, plan Plan, rep *Report) error {
	var g errgroup.Group
	g.SetLimit(max(1, e.PullConcurrency))
	var mu sync.Mutex
	var errs *multierror.Error
	for _, h := range plan.Pull {
		g.Go(func() error {
			err := panics.Catch(func() error {
				return e.step(h.Name, "pull", func() (string, error) {
					pctx, cancel := context.WithTimeout(ctx, e.PullTimeout)
					defer cancel()
					return plan.Target.Tag, e.Hosts[h.Name].Pull(pctx, plan.Target.Image)
				})
			})
			if err != nil {
				mu.Lock()
				errs = multierror.Append(errs, fmt.Errorf("%s: pull: %w", h.Name, err))
				rep.PullFailed = append(rep.PullFailed, h.Name)
				mu.Unlock()
			}
			return nil
		})
	}
	_ = g.Wait()
	names.Sort(rep.PullFailed)
	return errs.ErrorOrNil()
}

// guardHost runs one host's work in its own goroutine. Every call to a
// host or a balancer runs in a step, which turns a panic into the host's
// failure and puts the host back; a panic that escapes the steps (a bug in
// the executor itself) fails the host here, so the run still ends with a
// report and the deploy lock is released. The host is then left as a run
// cut off at that point would leave it, which the next run repairs. It
// returns the panic as an error, nil if there was none.
func guardHost(host string, res *HostResult, work func()) error {
	err := panics.Catch(func() error { work(); return nil })
	if err == nil {
		return nil
	}
	err = fmt.Errorf("%s: %w", host, err)
	if res.Err == nil {
		res.Err = err
	} else {
		res.RevertErr = errors.Join(res.RevertErr, err)
	}
	// Where it stands is not known: the report does not claim it serves.
	res.InService = false
	res.failed(false)
	return err
}

// oldName and newName are what a swap calls the old and the new container
// while both exist.
func (e *Executor) oldName() string { return oldNameOf(e.Service.ContainerName) }
func (e *Executor) newName() string { return newNameOf(e.Service.ContainerName) }

// createNew finds the service's current container on the host (sw.old)
// and creates the new one, not started (sw.newID). Start-first, the new one
// is created under the -gantry-new name: the old one keeps the service's
// name while both run. Stop-first, the old one gives up the service's name
// first (renamed -gantry-old; a rename changes nothing that serves) and the
// new one is created under it, so that the window out of rotation holds
// one Docker call to stop and one to start, no rename. A -gantry-new
// leftover of a run cut off before it started it is removed; with
// refuseRunning, one that runs is refused instead (start-first: the load
// balancers may be sending it traffic).
func (e *Executor) createNew(ctx context.Context, host Host, hp HostPlan, port int, sw *swap) error {
	refuseRunning := hp.StartFirst
	svc := e.Service
	newName := e.newName()
	old, err := e.findCurrent(ctx, host, e.oldName())
	if err != nil {
		return err
	}
	sw.old = old
	if left, ok, err := host.Inspect(ctx, newName); err != nil {
		return err
	} else if ok {
		if refuseRunning && left.Running {
			return fmt.Errorf("%s is running, left by an earlier deploy that was cut off: it may be serving; check with gantry inventory and remove it or rename it to %s by hand", newName, svc.ContainerName)
		}
		if err := host.Remove(ctx, left.ID); err != nil {
			return err
		}
	}
	if !hp.StartFirst {
		if old != nil && old.Name != e.oldName() {
			// Killed from here on, the next run's repair finds the old
			// container (running, or in the load balancers) as
			// -gantry-old, perhaps beside a new one never started, and
			// gives it its name back (planRepair).
			if err := host.Rename(ctx, old.ID, e.oldName()); err != nil {
				return fmt.Errorf("renaming %s to %s: %w", old.Name, e.oldName(), err)
			}
			sw.oldRenamed = true
		}
		newName = svc.ContainerName
	}
	spec := e.containerSpec(hp.To, hp.Host, newName, old, port)
	if hp.MovingBack {
		// A move back keeps the history the host had before the deploy.
		spec.Labels[inventory.LabelPreviousImage] = hp.Previous
	}
	id, err := host.Create(ctx, spec)
	sw.newID = id
	if err == nil && !hp.StartFirst {
		sw.newNamed = true
	}
	return err
}

// findCurrent returns the service's container on the host: the one with
// the service's name or, after a run cut off mid-swap, the one it renamed.
// A stopped leftover of an earlier run is removed.
func (e *Executor) findCurrent(ctx context.Context, host Host, oldName string) (*inventory.Container, error) {
	cur, ok, err := host.Inspect(ctx, e.Service.ContainerName)
	if err != nil {
		return nil, err
	}
	left, lok, err := host.Inspect(ctx, oldName)
	if err != nil {
		return nil, err
	}
	switch {
	case ok && lok:
		if left.Running {
			return nil, fmt.Errorf("both %s and %s are running: stop one by hand", e.Service.ContainerName, oldName)
		}
		if err := host.Remove(ctx, left.ID); err != nil {
			return nil, err
		}
		return &cur, nil
	case ok:
		return &cur, nil
	case lok:
		return &left, nil
	}
	return nil, nil
}

func (e *Executor) containerSpec(target Target, h inventory.Host, name string, old *inventory.Container, port int) inventory.ContainerSpec {
	svc := e.Service
	prevImage := ""
	if old != nil {
		prevImage = old.Labels[inventory.LabelImage]
		if prevImage == "" {
			prevImage = old.Image
		}
	}
	labels := map[string]string{}
	for k, v := range svc.Labels {
		labels[k] = v
	}
	for k, v := range map[string]string{
		inventory.LabelManaged:       "true",
		inventory.LabelService:       svc.Name,
		inventory.LabelVersion:       target.Tag,
		inventory.LabelImage:         target.Image,
		inventory.LabelPreviousImage: prevImage,
		inventory.LabelDeployedAt:    time.Now().UTC().Format(time.RFC3339),
		inventory.LabelPort:          strconv.Itoa(port),
	} {
		labels[k] = v
	}
	return inventory.ContainerSpec{
		Name:        name,
		Image:       target.Image,
		Env:         svc.Env(h, port),
		Labels:      labels,
		StopTimeout: svc.StopTimeout,
		Options:     svc.Options,
	}
}

// cleanupContext is for work that puts a host back: it survives an
// interrupt of ctx, bounded by CleanupTimeout.
func (e *Executor) cleanupContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), e.CleanupTimeout)
}

// switchTo points h's entry in every balancer at port, in service.
func (e *Executor) switchTo(ctx context.Context, h inventory.Host, port int) error {
	addr := addrOf(h, port)
	return e.step(h.Name, string(StepSwitch), func() (string, error) {
		return addr, e.eachBalancer(ctx, h.Name, func(b Balancer, ctx context.Context, service, host string) error {
			return b.Switch(ctx, service, host, addr)
		})
	})
}

// restore puts host back into every balancer.
func (e *Executor) restore(ctx context.Context, host string) error {
	return e.step(host, "restore", func() (string, error) { return "", e.eachBalancer(ctx, host, Balancer.Restore) })
}

// eachBalancer runs op on every balancer in parallel and collects failures.
func (e *Executor) eachBalancer(ctx context.Context, host string, op func(Balancer, context.Context, string, string) error) error {
	var g errgroup.Group
	errs := make([]error, len(e.Balancers))
	for i, b := range e.Balancers {
		g.Go(func() error {
			if err := panics.Catch(func() error { return op(b, ctx, e.Service.Name, host) }); err != nil {
				errs[i] = fmt.Errorf("%s: %w", b.LoadBalancerName(), err)
			}
			return nil
		})
	}
	_ = g.Wait()
	return multierror.Append(nil, errs...).ErrorOrNil() // nils are skipped
}

// Until its first pass a new container is booting: the check probes again
// after bootProbe, backing off to at most bootProbeMax (or the interval, if
// shorter). A container that becomes ready is noticed at most that late;
// backing off all the way to the interval would add up to an interval to
// every host's time out of rotation. Once it passes, passes are spaced by
// the configured interval.
const (
	bootProbe    = 10 * time.Millisecond
	bootProbeMax = 25 * time.Millisecond
)

// isDeploying reports whether the run in progress is a deploy.
func (e *Executor) isDeploying() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.deploying
}

// waitHealthy polls the container's health endpoint from the host's side
// until Threshold consecutive passes, the container stops running, or the
// deadline passes.
//
// strict is set for the version a deploy brings; the versions put back
// (reverts, rollbacks, repairs) ran before and may predate the check (see
// probeOnce).
//
// firstPass, when not nil, is set to when the first passing probe was sent:
// the end of the app's boot.
func (e *Executor) waitHealthy(ctx context.Context, host Host, h inventory.Host, id string, port int, strict bool, firstPass *time.Time) (string, error) {
	hc := e.Service.Health
	addr := addrOf(h, port)
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, hc.Deadline)
	defer cancel()
	passes, probes := 0, 0
	restarts := -1             // the container's restart count when first seen
	var runningSince time.Time // when the checks began: the running probe's clock
	var last string
	tick := time.NewTimer(0)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			if parent.Err() != nil {
				// The deploy was interrupted: not the new version's fault.
				return "", fmt.Errorf("health check interrupted after %d probes: %w", probes, parent.Err())
			}
			if last == "" {
				last = "no answer yet"
			}
			return "", fmt.Errorf("%w: %s not healthy within %s after %d probes (last: %s)", ErrHealthCheck, hc.Describe(addr), hc.Deadline, probes, last)
		case <-tick.C:
		}
		probes++
		probeStart := time.Now()
		if runningSince.IsZero() {
			runningSince = probeStart
		}
		pass, why, fatal := probeOnce(ctx, host, id, addr, hc, runningSince, strict)
		switch {
		case fatal != nil:
			return "", fmt.Errorf("%w: %v", ErrHealthCheck, fatal)
		case !pass && ctx.Err() != nil:
			// Cut off by the deadline or an interrupt: keep the last real answer.
			passes = 0
		case !pass:
			passes, last = 0, why
		default:
			passes++
			if passes == 1 && firstPass != nil {
				*firstPass = probeStart
			}
		}
		if passes >= hc.Threshold || (passes > 0 && hurry.Now(ctx)) {
			// Interrupted twice: one pass puts the host back at once.
			return fmt.Sprintf("%d/%d passes after %d probes", passes, hc.Threshold, probes), nil
		}
		// Passes are spaced by the interval from one answer to the next
		// probe; while booting, probes keep a cadence from when each was
		// sent. The container check below runs inside that wait rather
		// than adding to it.
		next := hc.Interval
		if passes == 0 {
			next = min(hc.Interval, bootProbeMax, bootProbe<<min(probes-1, 8)) - time.Since(probeStart)
		}
		tick.Reset(max(0, next))
		if ctx.Err() == nil {
			// A container that exits or restarts fails at once rather than
			// at the deadline.
			if c, ok, ierr := host.Inspect(ctx, id); ierr == nil && ok {
				switch {
				case !c.Running || c.Restarting:
					return "", fmt.Errorf("%w: container exited (code %d) during the health check", ErrHealthCheck, c.ExitCode)
				case restarts >= 0 && c.RestartCount > restarts:
					return "", fmt.Errorf("%w: container restarted %d time(s) during the health check", ErrHealthCheck, c.RestartCount-restarts)
				}
				if restarts < 0 {
					restarts = c.RestartCount
				}
			}
		}
	}
}
