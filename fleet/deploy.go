package fleet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-multierror"
	"golang.org/x/sync/errgroup"

	"github.com/gantry-dev/gantry/config"
	"github.com/gantry-dev/gantry/internal/panics"
	"github.com/gantry-dev/gantry/inventory"
	"github.com/gantry-dev/gantry/lb"
	"github.com/gantry-dev/gantry/lock"
	"github.com/gantry-dev/gantry/notify"
	"github.com/gantry-dev/gantry/rollout"
)

// CleanupTimeout bounds putting a host back after a failure or interrupt.
const CleanupTimeout = 2 * time.Minute

// ErrRefused marks bad input: nothing on the fleet was looked at or changed.
var ErrRefused = errors.New("refused before any change")

// ErrUnreachable marks machines that could not be reached or checked.
var ErrUnreachable = errors.New("unreachable")

// DeployOptions are the inputs of one deploy.
type DeployOptions struct {
	Config          *config.Config
	Env             string
	Target          string
	AllowMutableTag bool
	// DryRun runs the pre-flight checks, prints the plan and changes nothing.
	DryRun bool
	// OnFailure is rollout.OnFailureRevert (default) or OnFailureHalt.
	OnFailure string
	// LockWait is how long to wait for a deploy lock someone else holds.
	LockWait time.Duration
	// Message is recorded with the lock.
	Message string
	// ForceLock takes over a lock taken by hand (an expired one is taken
	// over anyway).
	ForceLock bool
	// Out receives notes and warnings, one per line, and the output of
	// hooks.
	Out io.Writer
	// Progress is shown the plan and every step as it happens; nil prints
	// the plan to Out and nothing per step. The report is the caller's to
	// show.
	Progress Progress
	// OnEvent, if set, also receives every progress event.
	OnEvent func(rollout.Event)
	// SkipRelease skips the service's release command (deploy and promote
	// run it; rollback never does).
	SkipRelease bool
	// Canary overrides the service's canary stage for this run: nil keeps
	// the config's, true (--canary) bakes one (the config's, or one host
	// with the default rules), false (--no-canary) skips it.
	Canary *bool
	// LookupEnv reads the deployer's environment for the service's
	// {from_env: NAME} values and env files' bare names; the command that
	// starts the run passes os.LookupEnv. Nil: no variable is set.
	LookupEnv config.LookupFunc

	// resumesRollback: the run is a rollback to each host's previous
	// version, which resumes one recorded by a run cut off midway.
	resumesRollback bool
	// locksHeld: the caller (an app's run) holds the service's deploy lock.
	locksHeld bool
}

// Progress is what a run shows while it happens.
type Progress interface {
	// Plan is called once, before any change (for a dry run, instead).
	Plan(rollout.Plan)
	// Step is called when a step on a host starts or ends, from several
	// goroutines, one at a time.
	Step(rollout.Event)
}

// planPrinter is the Progress of callers that give none.
type planPrinter struct{ out io.Writer }

func (p planPrinter) Plan(plan rollout.Plan) { fmt.Fprint(p.out, plan.String()) }
func (p planPrinter) Step(rollout.Event)     {}

// Deploy rolls target out to the environment's hosts of its service, under
// the environment's deploy lock. The returned report says what each host
// ended on. Errors before any change wrap ErrRefused (bad input),
// rollout.ErrPreflight (a check failed) or lock.ErrHeld.
func Deploy(ctx context.Context, o DeployOptions) (*rollout.Report, error) {
	cfg := o.Config
	svcName, _, _ := strings.Cut(o.Target, "@")
	svc, err := cfg.Service(svcName)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrRefused, err)
	}
	target, err := rollout.ParseTarget(o.Target, cfg.Registry.Address, svc.Image, o.AllowMutableTag)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrRefused, err)
	}
	var rc *rollout.ReleaseCommand
	if r := svc.Release; r != nil {
		rc = &rollout.ReleaseCommand{Command: r.Command, Timeout: r.Timeout.D(), Host: r.Host}
	}
	skip := ""
	if o.SkipRelease {
		skip = "--skip-release"
	}
	env, err := cfg.Environment(o.Env)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrRefused, err)
	}
	cn := canaryOf(svc, o.Canary)
	return execute(ctx, o, svcName, svc, target.Image, func(snap []rollout.HostSnapshot, _ map[string]string) (rollout.Plan, error) {
		rules := rollout.SpreadRules{BatchSize: svc.BatchSize, MinInService: svc.MinInServiceOf(len(snap)), Serving: len(snap)}
		if cn != nil {
			rules.Canary = max(1, cn.Hosts.Of(rollout.Serving(snap)))
		}
		p, err := rollout.PlanDeployWith(target, snap, rules, strategyOf(svc))
		if err != nil {
			return p, err
		}
		if p.Canary != nil {
			t := cn.Thresholds(env.Production)
			p.Canary.Bake, p.Canary.Inconclusive, p.Canary.MaxBake = cn.Bake.D(), string(t.Inconclusive), t.MaxBake
			p.Canary.Criteria = t.Criteria()
		}
		p, err = p.WithRelease(rc, skip, snap)
		if err != nil {
			return p, fmt.Errorf("services.%s.%w in %s", svcName, err, cfg.Path)
		}
		if rc != nil && o.SkipRelease {
			fmt.Fprintf(o.Out, "--skip-release: the release command (%s) is not run\n", strings.Join(rc.Command, " "))
		}
		return p, nil
	})
}

// execute is what deploy and rollback share: connect, lock, snapshot, plan,
// pre-flight, run, report. o.Target names what the lock records.
//
// image is the image the run pulls when it is known before planning (a
// deploy's target), checked in the registry while the lock is taken; ""
// for none.
func execute(ctx context.Context, o DeployOptions, svcName string, svc config.Service, image string, makePlan func(snap []rollout.HostSnapshot, resume map[string]string) (rollout.Plan, error)) (*rollout.Report, error) {
	cfg := o.Config
	if o.OnFailure != "" && o.OnFailure != rollout.OnFailureRevert && o.OnFailure != rollout.OnFailureHalt {
		return nil, fmt.Errorf("%w: --on-failure %q: use revert or halt", ErrRefused, o.OnFailure)
	}
	env, err := cfg.Environment(o.Env)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrRefused, err)
	}
	// Secrets first: a missing one stops the run before any machine is
	// even dialled.
	secrets, err := cfg.ResolveSecrets(svcName, o.LookupEnv)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", rollout.ErrPreflight, err)
	}
	opening := time.Now()
	// The first observation's reads on the load balancers start as each
	// answers, while the hosts are dialled.
	first := newFirstReads(ctx, env, o.Env, svcName, svc.Worker())
	defer first.close()
	s, err := Open(ctx, cfg, o.Env, o.Out, Needs{Service: svcName, Dial: DialAll, Records: true, Classify: asPreflight,
		OnLB: first.onLB(env, o.Env, svcName), OnHost: first.onHost(svc.ContainerName, image)})
	if err != nil {
		return nil, err
	}
	connect := time.Since(opening)
	defer s.Done()
	conns, hosts, records, locker := s.Conns, s.Hosts, s.Records(), s.Locker()
	// A worker has no load balancer entry: nothing to observe, drain,
	// restore or keep out (maintenance is about load balancers).
	var lbs []lb.Options
	var balancers []*lb.Nginx
	var maintenance func(context.Context) (map[string]inventory.Maintenance, error)
	if !svc.Worker() {
		lbs = nginxOptions(env, conns, o.Out)
		list := inventory.Maintenances{Runner: records, Dir: env.Lock.Dir, Env: o.Env}.List
		maintenance = func(ctx context.Context) (map[string]inventory.Maintenance, error) {
			if m, err, ok := first.maint.take(ctx); ok {
				return m, err
			}
			return list(ctx)
		}
	}
	// The checks that need no plan start while the lock is taken (if the
	// run takes it); else with the pre-flight.
	var early *earlyChecks
	roots := map[string]string{} // the hosts' Docker data roots, as observed
	startChecks := func(ctx context.Context) func() {
		early = startEarlyChecks(ctx, conns, hosts, lbs, image, roots, first)
		return early.cancel
	}
	observations := 0
	p := &Pipeline{Options: o, Service: svcName, Spec: svc, Env: env, Connect: connect, Began: first.began, Deps: RunDeps{
		Locker: locker,
		ReadLock: func(ctx context.Context, name string) (*lock.Holder, error) {
			if h, err, ok := first.lock.take(ctx); ok {
				return h, err
			}
			return locker.Read(ctx, name)
		},
		Observe: func(ctx context.Context) ([]rollout.HostSnapshot, error) {
			if observations++; observations > 1 {
				// Read again under the lock, after someone held it: a
				// host decommissioned meanwhile is left out.
				var err error
				if hosts, err = s.StillInService(ctx, records, svcName, hosts); err != nil {
					return nil, err
				}
			}
			observed, err := snapshotFirst(ctx, conns, hosts, svc.ContainerName, first)
			for _, h := range observed {
				if root := dataRoot(h); root != "" {
					roots[h.Host.Name] = root
				}
			}
			if err != nil {
				return nil, err
			}
			found, errs, ok := first.takeEntries(ctx, lbs)
			if !ok {
				found, errs = readEntries(ctx, lbs, svcName)
			}
			if err := applyEntries(lbs, found, errs, observed); err != nil {
				return nil, err
			}
			// Each load balancer's view starts as what it lists now: a
			// host is only put (back) in by a step that checked its
			// container first.
			balancers, err = modelUpstreams(lbs, svcName, svc.Port, observed)
			if err != nil {
				return nil, err
			}
			return observed, nil
		},
		Maintenance: maintenance,
		Plan:        makePlan,
		StartChecks: startChecks,
		Preflight: func(ctx context.Context, plan rollout.Plan, snap []rollout.HostSnapshot) error {
			if early == nil {
				startChecks(ctx)
			}
			return preflight(ctx, cfg, o.Env, env, svc, conns, plan, snap, balancers, early)
		},
		Notifier: func() Notifier {
			return &notify.Notifier{Webhooks: webhooksOf(env, o.Env, cfg.LookupEnv, o.Out), Warn: func(s string) { fmt.Fprintln(o.Out, "warning: "+s) }}
		},
		Execute: func(ctx context.Context, plan rollout.Plan, runID string, observe func(rollout.Event)) *rollout.Report {
			exec := &rollout.Executor{
				Hosts:           map[string]rollout.Host{},
				Service:         serviceSpec(svcName, svc, secrets),
				PullConcurrency: cfg.Registry.PullConcurrency,
				PullTimeout:     cfg.Registry.PullTimeout.D(),
				CleanupTimeout:  CleanupTimeout,
				OnFailure:       o.OnFailure,
				RunID:           runID,
				Observe:         observe,
			}
			for name, h := range conns.Hosts {
				exec.Hosts[name] = h
			}
			for _, b := range balancers {
				exec.Balancers = append(exec.Balancers, b)
			}
			if plan.Canary != nil {
				j := newLogJudge(accessLogs(env, lbs), svc, canaryOf(svc, o.Canary).Thresholds(env.Production), o.Out)
				exec.Canary = j
				defer j.reportReads(o.Out)
			}
			return exec.Run(ctx, plan)
		},
		Verify: func(ctx context.Context, rep *rollout.Report) {
			observeOutcome(ctx, conns, balancers, svcName, svc, hosts, rep)
		},
		Records: records,
		Prune: func(ctx context.Context) error {
			// Keep the host caches bounded; rollback's versions stay. Only
			// this service's: another service's swap in flight needs its
			// containers.
			return pruneHosts(ctx, cfg, conns, hosts, []string{svcName}, 0, io.Discard)
		},
	}}
	rep, err := p.Run(ctx)
	// The apply sessions the balancers keep open ahead end with the run.
	for _, b := range balancers {
		_ = b.Close()
	}
	return rep, err
}

// The executor splits a host's time out of rotation with the time nginx's
// old workers kept it waiting.
var _ rollout.InFlightWaiter = (*lb.Nginx)(nil)

// ... and with the time nginx itself took to reload.
var _ rollout.ReloadTimer = (*lb.Nginx)(nil)

// nginxBalancers returns the environment's load balancers with the
// service's upstream declared: every host of the service, on the port it
// serves on (ports, by host name; port when not listed).
func nginxBalancers(env config.Environment, conns *Connections, service string, port int, ports map[string]int, hosts []inventory.Host, out io.Writer) ([]*lb.Nginx, error) {
	servers := make([]lb.Server, len(hosts))
	for i, h := range hosts {
		p := port
		if hp, ok := ports[h.Name]; ok {
			p = hp
		}
		servers[i] = lb.Server{Host: h.Name, Addr: config.HostPort(h.Address, p)}
	}
	var list []*lb.Nginx
	for _, o := range nginxOptions(env, conns, out) {
		n, err := lb.New(o, lb.Upstream{Service: service, Servers: servers})
		if err != nil {
			return nil, err
		}
		list = append(list, n)
	}
	return list, nil
}

// nginxOptions describes the environment's load balancers: enough to read
// and check them, and to build each service's balancer (lb.New).
func nginxOptions(env config.Environment, conns *Connections, out io.Writer) []lb.Options {
	var list []lb.Options
	for _, lc := range env.LoadBalancers {
		list = append(list, lb.Options{
			Name:          lc.Name,
			Runner:        conns.LBs[lc.Name],
			UpstreamsDir:  lc.UpstreamsDir,
			TestCommand:   lc.TestCommand,
			ReloadCommand: lc.ReloadCommand,
			PidFile:       lc.PidFile,
			DrainTimeout:  lc.DrainTimeout.D(),
			ReloadTimeout: lc.ReloadTimeout.D(),
			Warn:          func(s string) { fmt.Fprintln(out, "warning: "+s) },
		})
	}
	return list
}

// observeEntries reads how every load balancer lists each host of the
// service now, into the snapshots. A load balancer whose file lists no host
// the way gantry writes it (never written by gantry) is left out.
func observeEntries(ctx context.Context, balancers []lb.Options, service string, snap []rollout.HostSnapshot) error {
	found, errs := readEntries(ctx, balancers, service)
	return applyEntries(balancers, found, errs, snap)
}

// applyEntries puts what each balancer listed (found, errs: read by
// readEntries) into the snapshots.
func applyEntries(balancers []lb.Options, found []map[string]lb.Entry, errs []error, snap []rollout.HostSnapshot) error {
	if len(balancers) == 0 {
		// No load balancer (a worker): nothing is observed, and Entries
		// stay nil, so no host counts as out of one.
		return nil
	}
	if err := multierror.Append(nil, errs...).ErrorOrNil(); err != nil {
		return err
	}
	for i := range snap {
		snap[i].Entries = map[string]rollout.Entry{}
	}
	for i, n := range balancers {
		if len(found[i]) == 0 {
			continue
		}
		for j := range snap {
			if e, ok := found[i][snap[j].Host.Name]; ok {
				snap[j].Entries[n.Name] = rollout.Entry{Addr: e.Addr, Down: e.Down, ByHand: e.ByHand}
			}
		}
	}
	return nil
}

// entriesReader is a load balancer whose upstream files can be read: its
// lb.Options, or a balancer built from them.
type entriesReader interface {
	LoadBalancerName() string
	Entries(ctx context.Context, service string) (map[string]lb.Entry, error)
}

// readEntries reads how every balancer lists the service's hosts now, all
// balancers at once; errs[i] is balancer i's failure.
func readEntries[B entriesReader](ctx context.Context, balancers []B, service string) (found []map[string]lb.Entry, errs []error) {
	found = make([]map[string]lb.Entry, len(balancers))
	errs = make([]error, len(balancers))
	var g errgroup.Group
	for i, n := range balancers {
		g.Go(func() error {
			defer panics.Recover(func(err error) { errs[i] = fmt.Errorf("%s: %w", n.LoadBalancerName(), err) })
			found[i], errs[i] = n.Entries(ctx, service)
			return nil
		})
	}
	_ = g.Wait()
	return found, errs
}

// modelUpstreams returns the service's balancer on every load balancer,
// starting from its upstream as it is now: each host on the address and in
// the state the balancer lists it with; a host it does not list, on the
// port its container serves on, down unless that container runs.
func modelUpstreams(lbs []lb.Options, service string, port int, snap []rollout.HostSnapshot) ([]*lb.Nginx, error) {
	var balancers []*lb.Nginx
	for _, n := range lbs {
		servers := make([]lb.Server, len(snap))
		var down, hand []string
		for i, h := range snap {
			p := port
			if h.Current != nil {
				p = h.Current.Port(port)
			}
			servers[i] = lb.Server{Host: h.Host.Name, Addr: config.HostPort(h.Host.Address, p)}
			e, listed := h.Entries[n.Name]
			switch {
			case listed:
				servers[i].Addr = e.Addr
				if e.Down {
					down = append(down, h.Host.Name)
				}
				if e.ByHand {
					hand = append(hand, h.Host.Name)
				}
			case h.Current == nil || !h.Current.Running:
				// First deploy, stopped by hand, back from decommission:
				// out until deployed and healthy.
				down = append(down, h.Host.Name)
			}
		}
		b, err := lb.New(n, lb.Upstream{Service: service, Servers: servers, Down: down, ByHand: hand})
		if err != nil {
			return nil, err
		}
		balancers = append(balancers, b)
	}
	return balancers, nil
}

// snapshot inspects the service's container on every host, and the
// -gantry-old/-gantry-new/-gantry-release containers a cut-off run may have
// left (a release one only when gantry's labels say it is one).
func snapshot(ctx context.Context, conns *Connections, hosts []inventory.Host, container string) ([]rollout.HostSnapshot, error) {
	return snapshotFirst(ctx, conns, hosts, container, nil)
}

// snapshotFirst is snapshot, taking each host's first read (started as it
// answered, firstReads.onHost) where there is one not taken yet.
func snapshotFirst(ctx context.Context, conns *Connections, hosts []inventory.Host, container string, first *firstReads) ([]rollout.HostSnapshot, error) {
	snap := make([]rollout.HostSnapshot, len(hosts))
	errs := make([]error, len(hosts))
	var g errgroup.Group
	g.SetLimit(DialConcurrency)
	for i, h := range hosts {
		g.Go(func() error {
			defer panics.Recover(func(err error) { errs[i] = fmt.Errorf("%s: %w", h.Name, err) })
			if s, err, ok := first.hostSnap(h.Name).take(ctx); ok {
				snap[i], errs[i] = s, err
				return nil
			}
			snap[i], errs[i] = snapshotHost(ctx, conns.Hosts[h.Name], h, container)
			return nil
		})
	}
	_ = g.Wait()
	var merr *multierror.Error
	for _, err := range errs {
		if err != nil {
			merr = multierror.Append(merr, err)
		}
	}
	return snap, merr.ErrorOrNil()
}

// snapshotHost reads host h's containers of the service (named after
// container, and the leftovers a cut-off run may have left), at once.
func snapshotHost(ctx context.Context, dh *Host, h inventory.Host, container string) (rollout.HostSnapshot, error) {
	snap := rollout.HostSnapshot{Host: h}
	names := []struct {
		name string
		into **inventory.Container
	}{{container, &snap.Current}, {container + "-gantry-old", &snap.Old}, {container + "-gantry-new", &snap.New}, {container + rollout.ReleaseSuffix, &snap.Release}}
	errs := make([]error, len(names))
	var wg sync.WaitGroup
	for i, f := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer panics.Recover(func(err error) { errs[i] = err })
			c, ok, err := dh.Inspect(ctx, f.name)
			if err != nil {
				errs[i] = err
				return
			}
			if ok {
				*f.into = &c
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return snap, err
		}
	}
	if r := snap.Release; r != nil && r.Labels[inventory.LabelRelease] != "true" {
		// Not gantry's: creating the release container will say the
		// name is taken.
		snap.Release = nil
	}
	return snap, nil
}

// dataRoot is the Docker data root a host's containers show ("": none
// shows it).
func dataRoot(h rollout.HostSnapshot) string {
	for _, c := range []*inventory.Container{h.Current, h.Old, h.New} {
		if c != nil && c.DataRoot != "" {
			return c.DataRoot
		}
	}
	return ""
}

// serviceSpec is what the executor creates the service's containers
// from; secrets are its resolved secret env values.
// strategyOf is how svc's containers are replaced.
func strategyOf(svc config.Service) rollout.Strategy {
	s := rollout.Strategy{StartFirst: svc.StartFirst(), Port: svc.Port, Worker: svc.Worker()}
	if len(svc.Ports) == 2 {
		s.Ports = [2]int{svc.Ports[0], svc.Ports[1]}
	}
	return s
}

func serviceSpec(name string, s config.Service, secrets map[string]string) rollout.ServiceSpec {
	return rollout.ServiceSpec{
		Name:          name,
		ContainerName: s.ContainerName,
		Port:          s.Port,
		Env: func(h inventory.Host, port int) []string {
			return s.ExpandEnvPort(config.Host{Name: h.Name, Address: h.Address, Zone: h.Zone}, port, secrets)
		},
		Health:      healthCheck(s.Health),
		StopTimeout: s.StopTimeout.D(),
		Options:     containerOptions(s),
		Labels:      s.Labels,
	}
}

// containerOptions are the service's container options as the executor
// passes them to every container it creates.
func containerOptions(s config.Service) inventory.ContainerOptions {
	return inventory.ContainerOptions{
		Command:    s.Command,
		Entrypoint: s.Entrypoint,
		WorkingDir: s.WorkingDir,
		User:       s.User,
		Volumes:    s.Volumes,
		Memory:     s.Memory,
		CPUs:       s.CPUs,
		PidsLimit:  s.PidsLimit,
		Ulimits:    s.Ulimits,
		CapAdd:     s.CapAdd,
		CapDrop:    s.CapDrop,
		Init:       s.Init,
		StopSignal: s.StopSignal,
		Tmpfs:      s.Tmpfs,
		ExtraHosts: s.ExtraHosts,
		LogDriver:  s.Log.Driver,
		LogMaxSize: s.Log.MaxSize,
		LogMaxFile: s.Log.MaxFile,
		LogOptions: s.Log.Options,
	}
}

// healthCheck is the service's health check as the executor runs it.
func healthCheck(h config.Health) rollout.HealthCheck {
	return rollout.HealthCheck{
		Kind:       rollout.HealthKind(h.Kind),
		Path:       h.Path,
		Status:     h.ExpectedStatus,
		HostHeader: h.Host,
		Command:    h.Command,
		MinRunning: h.MinRunning.D(),
		Interval:   h.Interval.D(),
		Timeout:    h.Timeout.D(),
		Threshold:  h.HealthyThreshold,
		Deadline:   h.Deadline.D(),
	}
}

// versionsOf names the versions the plan moves hosts to: the target's tag,
// or for a rollback every version gone back to, comma-separated.
func versionsOf(plan rollout.Plan) string {
	tags := map[string]bool{}
	for _, b := range plan.Batches {
		for _, hp := range b.Hosts {
			tags[hp.To.Tag] = true
		}
	}
	if len(tags) == 0 {
		return plan.Target.Tag
	}
	list := make([]string, 0, len(tags))
	for t := range tags {
		list = append(list, t)
	}
	sort.Strings(list)
	return strings.Join(list, ",")
}

// hostsOf lists the hosts the plan changes, batch by batch.
func hostsOf(plan rollout.Plan) []string {
	var out []string
	for _, b := range plan.Batches {
		for _, hp := range b.Hosts {
			out = append(out, hp.Host.Name)
		}
	}
	return out
}

// webhooksOf resolves the environment's webhooks; one whose url_env is
// unset is skipped with a warning.
func webhooksOf(env config.Environment, envName string, lookup config.LookupFunc, out io.Writer) []notify.Webhook {
	var list []notify.Webhook
	for i, w := range env.Notify.Webhooks {
		u := w.Endpoint(lookup)
		if u == "" {
			fmt.Fprintf(out, "warning: environments.%s.notify.webhooks[%d]: $%s is empty or unset: that webhook is not notified\n", envName, i, w.URLEnv)
			continue
		}
		list = append(list, notify.NewWebhook(i, u, w.Events, w.Timeout.D()))
	}
	return list
}

// observeOutcome re-observes every host of the report once the run is
// over, and makes the report say what is true rather than what the run
// meant to do: which version runs, whether it answers its health check,
// and whether every load balancer lists the host up on its port. A host is
// in service only when all three hold. A difference from what the run
// believed becomes a warning on the host.
func observeOutcome(ctx context.Context, conns *Connections, balancers []*lb.Nginx, svcName string, svc config.Service, hosts []inventory.Host, rep *rollout.Report) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	byName := map[string]inventory.Host{}
	for _, h := range hosts {
		byName[h.Name] = h
	}
	var entries []map[string]lb.Entry
	var lbErrs []error
	var g errgroup.Group
	g.SetLimit(DialConcurrency)
	g.Go(func() error {
		entries, lbErrs = readEntries(ctx, balancers, svcName)
		return nil
	})
	type seen struct {
		c       *inventory.Container
		err     error
		healthy bool
	}
	found := make([]seen, len(rep.Hosts))
	for i, r := range rep.Hosts {
		h, ok := conns.Hosts[r.Host]
		if !ok {
			continue
		}
		g.Go(func() error {
			defer panics.Recover(func(err error) { found[i].err = err })
			c, ok, err := h.Inspect(ctx, svc.ContainerName)
			if err != nil {
				found[i].err = err
				return nil
			}
			if !ok {
				return nil
			}
			found[i].c = &c
			if c.Running {
				// A single failed probe is not proof: ask up to three times.
				for try := 0; try < 3 && !found[i].healthy && ctx.Err() == nil; try++ {
					found[i].healthy = h.ServesHealthy(ctx, byName[r.Host], svc, c.Port(svc.Port))
				}
			}
			return nil
		})
	}
	_ = g.Wait()
	for i, r := range rep.Hosts {
		f := found[i]
		var why []string
		ended, port := "", svc.Port
		switch {
		case f.err != nil:
			ended = "?"
			why = append(why, "could not be re-observed: "+f.err.Error())
		case f.c != nil && f.c.Running:
			ended, port = f.c.Version(), f.c.Port(svc.Port)
			if !f.healthy {
				why = append(why, f.c.Version()+" does not pass its health check")
			}
		case f.c != nil:
			why = append(why, f.c.Version()+" is not running")
		default:
			why = append(why, "no "+svc.ContainerName+" container")
		}
		addr := config.HostPort(byName[r.Host].Address, port)
		for j, n := range balancers {
			e, listed := entries[j][r.Host]
			switch {
			case lbErrs[j] != nil:
				why = append(why, n.Name+" could not be read")
			case r.KeptOut != "":
				// Out of every load balancer is where it belongs.
				if listed && !e.Down {
					why = append(why, "up in "+n.Name+" although it is to stay out")
				}
			case !listed:
				why = append(why, "missing from "+n.Name)
			case e.Down:
				why = append(why, "down in "+n.Name)
			case e.Addr != addr:
				why = append(why, fmt.Sprintf("%s sends its requests to %s, not %s", n.Name, e.Addr, addr))
			}
		}
		inService := len(why) == 0
		if r.KeptOut != "" {
			// Kept out: never in service, and a problem only when some
			// load balancer lists it up.
			if ended != r.Ended || len(why) > 0 {
				r.Warnings = append(r.Warnings, fmt.Sprintf("observed after the run: runs %s, kept out (%s)%s", orDash(ended), r.KeptOut, whyWords(why)))
			}
			r.Ended, r.InService = ended, false
			continue
		}
		if ended != r.Ended || inService != r.InService {
			r.Warnings = append(r.Warnings, fmt.Sprintf("observed after the run: runs %s, %s (the run expected %s, in service: %t)",
				orDash(ended), inServiceWords(inService, why), orDash(r.Ended), r.InService))
		}
		r.Ended, r.InService = ended, inService
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func whyWords(why []string) string {
	if len(why) == 0 {
		return ""
	}
	return ": " + strings.Join(why, ", ")
}

func inServiceWords(in bool, why []string) string {
	if in {
		return "healthy and up in every load balancer"
	}
	return "NOT in service: " + strings.Join(why, ", ")
}
