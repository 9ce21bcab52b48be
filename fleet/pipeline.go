package fleet

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/hashicorp/go-multierror"

	"github.com/gantry-dev/gantry/config"
	"github.com/gantry-dev/gantry/history"
	"github.com/gantry-dev/gantry/internal/panics"
	"github.com/gantry-dev/gantry/inventory"
	"github.com/gantry-dev/gantry/lock"
	"github.com/gantry-dev/gantry/notify"
	"github.com/gantry-dev/gantry/rollout"
)

// Pipeline is one service's run (a deploy, a rollback, one service of an
// app's run, an app's revert), in the order every run follows:
//
//	lock → observe → policy checks → plan → pre-flight → pre-hook →
//	notify "started" → execute → re-observe → record history →
//	notify the outcome → post-hook → prune (after a success only)
//
// It holds the order and the decisions between the steps; every step that
// reaches a machine is one of Deps, so the whole run is unit-tested
// without SSH (as nomad's deployment watcher and drainer take theirs in a
// config struct).
type Pipeline struct {
	// Options are the run's inputs; Options.Target names what the lock and
	// the history record.
	Options DeployOptions
	// Service is the service's name, Spec its configuration.
	Service string
	Spec    config.Service
	// Env is the environment's configuration (production, hooks, where the
	// records are kept).
	Env config.Environment
	// Deps are the steps that reach the fleet.
	Deps RunDeps
	// Connect is how long opening what the run needs took (the session),
	// reported as the run's first phase; 0 when not measured.
	Connect time.Duration
	// Began is when the run's first reading of the fleet began, when it
	// began before Run (Deps reads started while connecting); zero: when
	// Run starts.
	Began time.Time
}

// phaseClock times the run's own phases, one after the other.
type phaseClock struct {
	mark   time.Time
	phases []rollout.RunPhase
}

// done ends the phase name, started when the previous one ended.
func (c *phaseClock) done(name string) {
	now := time.Now()
	c.phases = append(c.phases, rollout.RunPhase{Name: name, Duration: now.Sub(c.mark)})
	c.mark = now
}

// RunDeps are what a Pipeline needs of the fleet, each a small role.
type RunDeps struct {
	// Locker takes the service's deploy lock. It is not used when the
	// caller holds the lock already (an app's run).
	Locker *lock.Locker
	// ReadLock reads who holds the lock before the run plans; nil:
	// Locker.Read.
	ReadLock func(ctx context.Context, name string) (*lock.Holder, error)
	// Observe reads the service's hosts as they are: their containers,
	// what an earlier run cut off left there, how every load balancer
	// lists them.
	Observe func(ctx context.Context) ([]rollout.HostSnapshot, error)
	// Maintenance lists the environment's hosts in maintenance; nil when
	// the service is in no load balancer (maintenance is about those).
	Maintenance func(ctx context.Context) (map[string]inventory.Maintenance, error)
	// Plan plans the run from the hosts as the repairs leave them; resume
	// is, by host, the image a rollback cut off earlier was sending it to.
	Plan func(snap []rollout.HostSnapshot, resume map[string]string) (rollout.Plan, error)
	// StartChecks, if set, starts the pre-flight checks that need no plan
	// while the lock is taken (Preflight then waits for them); the
	// returned func stops those still running.
	StartChecks func(ctx context.Context) (stop func())
	// Preflight checks the plan against the fleet (disk, health, the
	// registry, the load balancers' config tests).
	Preflight func(ctx context.Context, plan rollout.Plan, snap []rollout.HostSnapshot) error
	// RunHook runs one of the environment's hook commands; nil:
	// notify.RunHook with the environment's hook timeout.
	RunHook func(ctx context.Context, name, command string, run notify.Run) error
	// Notifier returns what tells the environment's webhooks; it is asked
	// for only when the plan changes something. Nil: no webhooks.
	Notifier func() Notifier
	// Execute carries the plan out and reports how each host ended.
	Execute func(ctx context.Context, plan rollout.Plan, runID string, observe func(rollout.Event)) *rollout.Report
	// Verify re-observes the hosts once the run is over and makes the
	// report say what is true. Nil: the report stands as executed.
	Verify func(ctx context.Context, rep *rollout.Report)
	// Records runs commands on the machine keeping the environment's
	// records (history, a rollback's intent).
	Records inventory.Runner
	// Prune clears the hosts' image caches after a run that succeeded.
	// Nil: nothing is pruned.
	Prune func(ctx context.Context) error
}

// Notifier tells webhooks how a run goes, in the background.
type Notifier interface {
	// Notify sends run without waiting.
	Notify(ctx context.Context, run notify.Run)
	// Wait waits for every notification in flight.
	Wait()
}

// Run carries out the pipeline. The returned report says what each host
// ended on (nil for a dry run). Errors before any change wrap
// rollout.ErrPreflight (a check failed) or lock.ErrHeld.
func (p *Pipeline) Run(ctx context.Context) (*rollout.Report, error) {
	o, env, d := p.Options, p.Env, p.Deps
	clock := &phaseClock{mark: time.Now()}
	if p.Connect > 0 {
		clock.phases = append(clock.phases, rollout.RunPhase{Name: "connect", Duration: p.Connect})
	}

	// Observe and plan while the lock is read; then take the lock, unless
	// the run changes nothing and nobody holds it (nothing to serialise).
	// What was read before the lock was taken stands when nobody held the
	// lock from the moment the reading began (lock.Lock.FreeSince); else
	// the hosts are read and the run planned again under the lock.
	var held *lock.Lock
	lockName := lock.Name(o.Env, p.Service)
	began := p.Began
	if began.IsZero() {
		began = time.Now()
	}
	var holder *lock.Holder
	var readErr error
	read := make(chan struct{})
	if o.locksHeld || d.Locker == nil {
		close(read)
	} else {
		go func() {
			defer close(read)
			if d.ReadLock != nil {
				holder, readErr = d.ReadLock(ctx, lockName)
			} else {
				holder, readErr = d.Locker.Read(ctx, lockName)
			}
		}()
	}
	var out bytes.Buffer // what planning says, shown once the plan stands
	obs := p.observe(ctx)
	<-read
	clock.done("observe")
	plan, snap, err := p.plan(ctx, obs, &out)
	if err != nil {
		_, _ = o.Out.Write(out.Bytes())
		return nil, err
	}
	clock.done("plan")
	stopChecks := func() {}
	defer func() { stopChecks() }()
	switch {
	case o.DryRun:
		if holder != nil {
			fmt.Fprintf(o.Out, "note: deploy lock %s is held by %s\n", lockName, holder)
		}
	case o.locksHeld:
		// An app's run holds (and renews) every one of its services' locks.
	case !plan.Changes() && readErr == nil && holder == nil:
		// Nothing to change, and no run in progress when the hosts were
		// read: the run reports so without taking the lock.
	default:
		if d.StartChecks != nil {
			// The checks that need no lock go on while it is taken.
			stopChecks = d.StartChecks(ctx)
		}
		var release func() error
		ctx, held, release, err = holdLock(ctx, d.Locker, lock.Request{Name: lockName, Target: o.Target, Message: o.Message, Wait: o.LockWait, Force: o.ForceLock}, o.Env, p.Service, o.Out)
		if err != nil {
			return nil, err
		}
		taken := time.Now()
		// Released on every path, interrupts included, once renewals stop
		// (a lock taken by someone else meanwhile is left alone).
		defer func() {
			if err := release(); err != nil {
				fmt.Fprintf(o.Out, "warning: %v\n", err)
			}
		}()
		clock.done("lock")
		if !held.FreeSince(began, taken) {
			// Someone held the lock since the reading began: what was
			// read may be stale, the pre-flight facts read meanwhile too
			// (free disk before another run's pull): all read again.
			stopChecks()
			stopChecks = func() {}
			out.Reset()
			obs = p.observe(ctx)
			clock.done("observe")
			if plan, snap, err = p.plan(ctx, obs, &out); err != nil {
				_, _ = o.Out.Write(out.Bytes())
				return nil, err
			}
			clock.done("plan")
			if d.StartChecks != nil {
				stopChecks = d.StartChecks(ctx)
			}
		}
	}
	_, _ = o.Out.Write(out.Bytes())
	runID := ""
	if held != nil {
		runID = held.Holder.ID
	}

	// Pre-flight: the checks are about the changes; a run with none (every
	// host on the target, nothing to repair) has nothing to check.
	show := o.Progress
	if show == nil {
		show = planPrinter{o.Out}
	}
	noop := !plan.Changes()
	if !noop {
		if err := d.Preflight(ctx, plan, snap); err != nil {
			show.Plan(plan)
			return nil, fmt.Errorf("%w:\n%w", rollout.ErrPreflight, err)
		}
	}
	show.Plan(plan)
	clock.done("preflight")
	if o.DryRun {
		if noop {
			fmt.Fprintln(o.Out, "dry run: nothing to change")
		} else {
			fmt.Fprintln(o.Out, "dry run: pre-flight checks passed; nothing was changed")
		}
		return nil, nil
	}

	// Hooks and notifications around the run; nothing to change: neither.
	run := notify.Run{Kind: string(plan.RunKind()), Event: "started", Env: o.Env, Service: p.Service, Version: versionsOf(plan),
		Image: plan.Target.Image, Who: lock.Whoami(), Hosts: hostsOf(plan), Message: o.Message}
	pre, post := env.Hooks.PreDeploy, env.Hooks.PostDeploy
	if run.Kind == string(rollout.RunRollback) {
		pre, post = env.Hooks.PreRollback, env.Hooks.PostRollback
	}
	changes := len(plan.Batches) > 0
	if !changes {
		pre, post = "", ""
	}
	runHook := d.RunHook
	if runHook == nil {
		runHook = func(ctx context.Context, name, command string, run notify.Run) error {
			return notify.RunHook(ctx, name, command, run, env.Hooks.Timeout.D(), o.Out)
		}
	}
	if pre != "" {
		fmt.Fprintf(o.Out, "running the pre_%s hook\n", run.Kind)
		if err := runHook(ctx, "pre_"+run.Kind, pre, run); err != nil {
			return nil, fmt.Errorf("%w: %w (environments.%s.hooks.pre_%s in %s); nothing was changed", rollout.ErrPreflight, err, o.Env, run.Kind, p.configPath())
		}
	}
	var notifier Notifier = (*notify.Notifier)(nil)
	if changes && d.Notifier != nil {
		notifier = d.Notifier()
	}
	defer notifier.Wait()
	notifier.Notify(ctx, run)

	// Execute.
	if plan.Kind == rollout.RunRollback {
		if err := writeIntent(ctx, d.Records, env.Lock.Dir, o.Env, p.Service, lock.Whoami(), plan); err != nil {
			return nil, fmt.Errorf("%w: %w; nothing was changed", rollout.ErrPreflight, err)
		}
	}
	clock.done("hooks")
	rep := d.Execute(ctx, plan, runID, func(ev rollout.Event) {
		show.Step(ev)
		if o.OnEvent != nil {
			o.OnEvent(ev)
		}
	})
	if errors.Is(context.Cause(ctx), lock.ErrLost) {
		rep.Err = multierror.Append(rep.Err, context.Cause(ctx))
	} else if held == nil && !o.locksHeld {
		// A run that changed nothing without the lock leaves the records
		// to the runs that hold it.
	} else if err := clearIntent(context.WithoutCancel(ctx), d.Records, env.Lock.Dir, o.Env, p.Service); err != nil {
		// The run ended (however): a rollback recorded earlier is done
		// with, unless the lock is someone else's now.
		fmt.Fprintf(o.Out, "warning: %v\n", err)
	}

	clock.done("execute")

	if noop {
		// Nothing changed: the observation stands, and there is nothing
		// to record, tell or prune (the history is of changes; a run that
		// had none to make is in no one's way).
		rep.RunPhases = clock.phases
		return rep, nil
	}

	// Re-observe, then record, notify and prune: the prune (after a
	// success only) runs while the history is recorded and the outcome
	// told; the post hook runs once the history has the run.
	if d.Verify != nil {
		d.Verify(ctx, rep)
	}
	clock.done("verify")
	pruned := make(chan error, 1)
	pruning := rep.OK() && ctx.Err() == nil && d.Prune != nil
	if pruning {
		go func() {
			defer panics.Recover(func(err error) { pruned <- err })
			pruned <- d.Prune(ctx)
		}()
	}
	if err := p.recordHistory(ctx, plan, rep); err != nil {
		fmt.Fprintf(o.Out, "warning: could not record the deploy history on %s: %v\n", p.Env.Lock.Host, err)
	}
	run.Event, run.Duration, run.FailedHosts = string(rep.Outcome()), rep.Total, rep.FailedHosts()
	run.Release = rep.Release.String()
	run.Canary = rep.Canary.String()
	notifier.Wait() // "started" arrives before how it ended
	notifier.Notify(ctx, run)
	if post != "" {
		// Runs after an interrupt too: the hook may be what pages someone.
		fmt.Fprintf(o.Out, "running the post_%s hook\n", run.Kind)
		if err := runHook(context.WithoutCancel(ctx), "post_"+run.Kind, post, run); err != nil {
			fmt.Fprintf(o.Out, "warning: %v (the %s itself %s)\n", err, run.Kind, run.Event)
		}
	}
	if pruning {
		if err := <-pruned; err != nil {
			fmt.Fprintf(o.Out, "warning: %v (run gantry prune --env %s)\n", err, o.Env)
		}
	}
	clock.done("finish")
	rep.RunPhases = clock.phases
	return rep, nil
}

// plan plans the run from what obs read: the hosts to keep out, what a
// cut-off run left to repair, the single-point-of-failure policy, then the
// plan itself (a rollback resumes one cut off earlier). Warnings go to out.
func (p *Pipeline) plan(ctx context.Context, obs observation, out io.Writer) (rollout.Plan, []rollout.HostSnapshot, error) {
	o, env, svc, d := p.Options, p.Env, p.Spec, p.Deps
	if obs.err != nil {
		return rollout.Plan{}, nil, obs.err
	}
	for _, w := range markHeld(obs.hosts, obs.maintenance, o.Env) {
		fmt.Fprintf(out, "warning: %s\n", w)
	}
	// What a run cut off earlier left behind is repaired first; the rest
	// is planned from the state the repairs leave.
	repairs, snap := rollout.PlanRepairs(obs.hosts, svc.ContainerName, svc.Port)
	if svc.Worker() {
		repairs = rollout.WithoutBalancers(repairs)
	}
	if why, refuse := rollout.CheckSinglePointOfFailure(snap, rollout.SinglePointOfFailureRules{MinZones: svc.MinZones, Production: env.Production, Allowed: svc.AllowSinglePointOfFailure}); refuse {
		return rollout.Plan{}, nil, fmt.Errorf("%w: %s is a production environment and %s: add hosts in other zones, or set services.%s.allow_single_point_of_failure: true in %s", rollout.ErrPreflight, o.Env, why, p.Service, p.configPath())
	} else if why != "" {
		fmt.Fprintf(out, "warning: single point of failure: %s\n", why)
	}
	var resume map[string]string
	if o.resumesRollback {
		in, err := readIntent(ctx, d.Records, env.Lock.Dir, o.Env, p.Service)
		if err != nil {
			return rollout.Plan{}, nil, fmt.Errorf("%w: %w", rollout.ErrPreflight, err)
		}
		if in != nil {
			fmt.Fprintf(out, "resuming the rollback %s started at %s, which was cut off: each host goes to the version recorded then\n", in.RunBy, in.Since.Format(time.RFC3339))
			resume = in.Hosts
		}
	}
	plan, err := d.Plan(snap, resume)
	if err != nil {
		return rollout.Plan{}, nil, fmt.Errorf("%w:\n%w", rollout.ErrPreflight, err)
	}
	plan.Repairs = repairs
	return plan, snap, nil
}

// configPath is the config file's path, for messages ("" when unknown).
func (p *Pipeline) configPath() string {
	if p.Options.Config == nil {
		return ""
	}
	return p.Options.Config.Path
}

// observation is what a run reads of its hosts before planning.
type observation struct {
	hosts       []rollout.HostSnapshot
	maintenance map[string]inventory.Maintenance
	err         error
}

// observe reads the service's hosts and, for a service in load balancers,
// the environment's maintenance records, both at once.
func (p *Pipeline) observe(ctx context.Context) observation {
	d := p.Deps
	var obs observation
	var maintErr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		if d.Maintenance != nil {
			obs.maintenance, maintErr = d.Maintenance(ctx)
		}
	}()
	hosts, err := d.Observe(ctx)
	<-done
	switch {
	case err != nil:
		obs.err = fmt.Errorf("%w: %w", rollout.ErrPreflight, err)
	case maintErr != nil:
		obs.err = fmt.Errorf("%w: %s: %w", rollout.ErrPreflight, p.Env.Lock.Host, maintErr)
	}
	obs.hosts = hosts
	return obs
}

// recordHistory appends the run to the environment's audit trail on the
// fleet. A failure to record is a warning: the fleet's state is what it is.
func (p *Pipeline) recordHistory(ctx context.Context, plan rollout.Plan, rep *rollout.Report) error {
	o := p.Options
	e := history.Entry{
		Time: time.Now().UTC().Add(-rep.Total), Who: lock.Whoami(), Kind: string(plan.RunKind()), Env: o.Env,
		Service: plan.Target.Service, Target: o.Target, DurationS: rep.Total.Seconds(), Message: o.Message,
	}
	if plan.Kind == rollout.RunRollback && len(plan.Batches) > 0 {
		// Record where the rollback went, not just "previous".
		e.Target = plan.Target.Service + "@" + versionsOf(plan)
	}
	e.Outcome = string(rep.Outcome())
	e.Release = rep.Release.String()
	e.Canary = rep.Canary.String()
	for _, h := range rep.Hosts {
		e.Hosts = append(e.Hosts, history.HostEntry{Host: h.Host, From: h.From, To: h.To, Ended: h.Ended, Outcome: string(h.Outcome)})
	}
	hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	return (history.Store{Runner: p.Deps.Records, Dir: p.Env.Lock.Dir}).Append(hctx, e)
}

// markHeld marks the hosts to keep out of every load balancer
// (rollout.MarkKeptOut) and returns a warning for each host marked down by
// hand, saying how to keep a host out instead.
func markHeld(snap []rollout.HostSnapshot, maint map[string]inventory.Maintenance, envName string) []string {
	var warnings []string
	for _, h := range rollout.MarkKeptOut(snap, maint) {
		lbs := strings.Join(h.LBs, ", ")
		warnings = append(warnings, fmt.Sprintf("%s is marked down by hand in %s, not by gantry: this run deploys to it and leaves it down in every load balancer; to keep a host out, use: gantry maintenance on %s --env %s (and gantry maintenance off %s --env %s to put it back)",
			h.Host, lbs, h.Host, envName, h.Host, envName))
	}
	return warnings
}

// holdLock takes the lock r asks for and keeps it renewed. The returned
// context ends when the lease is lost; release stops the renewals and frees
// the lock, saying how to free it by hand when that fails. env and service
// name the lock in that hint.
func holdLock(ctx context.Context, locker *lock.Locker, r lock.Request, env, service string, out io.Writer) (context.Context, *lock.Lock, func() error, error) {
	held, err := locker.Acquire(ctx, r)
	if err != nil {
		return ctx, nil, nil, err
	}
	if held.TookOver != nil {
		fmt.Fprintf(out, "warning: took over deploy lock %s (%s): it was held by %s\n", r.Name, held.Why, held.TookOver)
	}
	ctx, stopLease := holdLease(ctx, locker, held, out)
	release := func() error {
		stopLease()
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if err := locker.Release(rctx, held); err != nil {
			return fmt.Errorf("could not release deploy lock %s: %w (it expires %s after its last renewal; or release it with: gantry lock release %s --env %s --id %s)", r.Name, err, held.Holder.TTL, service, env, held.Holder.ID)
		}
		return nil
	}
	return ctx, held, release, nil
}
