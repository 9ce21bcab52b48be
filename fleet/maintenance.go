package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/gantry-dev/gantry/config"
	"github.com/gantry-dev/gantry/discovery"
	"github.com/gantry-dev/gantry/internal/names"
	"github.com/gantry-dev/gantry/inventory"
	"github.com/gantry-dev/gantry/lb"
	"github.com/gantry-dev/gantry/lock"
	"github.com/gantry-dev/gantry/rollout"
)

// MaintenanceOptions name the host to take out of, or put back into, every
// load balancer of its environment.
type MaintenanceOptions struct {
	Config *config.Config
	Env    string
	Host   string
	// Message says why, recorded with the maintenance (on).
	Message string
	// Force takes the host out even when a service would be left with
	// fewer hosts in rotation than its min_in_service (at least one).
	Force bool
	// LockWait is how long to wait for each service's deploy lock.
	LockWait time.Duration
	// JSON prints the list as JSON (MaintenanceList).
	JSON bool
	Out  io.Writer
}

// maintenanceHost is what maintenance on/off need: the host, its
// environment's hosts, the session (open connections, the lock of each of
// the host's services) and the records. Close releases everything.
type maintenanceHost struct {
	env     config.Environment
	all     []inventory.Host
	target  inventory.Host
	conns   *Connections
	records inventory.Maintenances
	current map[string]inventory.Maintenance
	session *Session
}

func (m *maintenanceHost) Close() { m.session.Done() }

// openMaintenance finds the host, connects to it and to every load balancer
// (and, for the refusal rules, to the other hosts of its services), reads
// the maintenance records and takes the deploy lock of each of the host's
// services, so that no deploy runs while its load balancer entries change.
func openMaintenance(ctx context.Context, o MaintenanceOptions, what string) (context.Context, *maintenanceHost, error) {
	if _, err := o.Config.Environment(o.Env); err != nil {
		return ctx, nil, fmt.Errorf("%w: %w", ErrRefused, err)
	}
	// Discovery names hosts up to names.MaxSafeLen (a Name tag and an
	// instance id): any of them can be put in maintenance.
	if !names.Safe(o.Host) {
		return ctx, nil, fmt.Errorf("%w: host %q: not a host name (%s, at most %d characters)", ErrRefused, o.Host, names.Allowed, names.MaxSafeLen)
	}
	m := &maintenanceHost{}
	s, err := Open(ctx, o.Config, o.Env, o.Out, Needs{Discover: true, Dial: DialEach,
		Select: func(all []inventory.Host) ([]inventory.Host, error) {
			found := false
			var hostNames []string
			for _, h := range all {
				hostNames = append(hostNames, h.Name)
				if h.Name == o.Host {
					m.target, found = h, true
				}
			}
			if !found {
				return nil, fmt.Errorf("%w: %s has no host %q (hosts: %s)", ErrRefused, o.Env, o.Host, strings.Join(hostNames, ", "))
			}
			// The host and the other hosts of its services (for the
			// health of what stays in rotation).
			var hosts []inventory.Host
			for _, h := range all {
				for _, s := range m.target.Services {
					if h.Runs(s) {
						hosts = append(hosts, h)
						break
					}
				}
			}
			return hosts, nil
		}})
	if err != nil {
		return ctx, nil, err
	}
	m.session, m.env, m.all, m.conns = s, s.Env, s.All, s.Conns
	fail := func(err error) (context.Context, *maintenanceHost, error) {
		s.Done()
		return ctx, nil, fmt.Errorf("%w: %w", rollout.ErrPreflight, err)
	}
	if err := s.Failed[o.Host]; err != nil {
		return fail(err)
	}
	for _, lc := range s.Env.LoadBalancers {
		if err := s.Failed[lc.Name]; err != nil {
			return fail(err)
		}
	}
	runner, err := s.Conns.lockMachine(ctx, o.Config, s.Env)
	if err != nil {
		return fail(err)
	}
	s.records = runner
	m.records = s.maintenances()
	services := append([]string(nil), m.target.Services...)
	sort.Strings(services)
	ctx, err = s.HoldLocks(ctx, services, lock.Request{Target: what + " " + o.Host, Message: o.Message, Wait: o.LockWait})
	if err != nil {
		s.Done()
		return ctx, nil, err
	}
	// Read under the locks: what every deployer sees from now on.
	if m.current, err = m.records.List(ctx); err != nil {
		m.Close()
		return ctx, nil, fmt.Errorf("%w: %w", rollout.ErrPreflight, err)
	}
	return ctx, m, nil
}

// balancers returns service's balancer on each of the environment's load
// balancers, starting from its upstream as each lists it now, so that a change rewrites only
// the host's own line (hosts marked down by hand stay so).
func (m *maintenanceHost) balancers(ctx context.Context, service string, out io.Writer) ([]*lb.Nginx, []map[string]lb.Entry, error) {
	lbs := nginxOptions(m.env, m.conns, out)
	found, errs := readEntries(ctx, lbs, service)
	if err := errors.Join(errs...); err != nil {
		return nil, nil, err
	}
	var list []*lb.Nginx
	for i, o := range lbs {
		var servers []lb.Server
		var down, hand []string
		for host, e := range found[i] {
			servers = append(servers, lb.Server{Host: host, Addr: e.Addr})
			if e.Down {
				down = append(down, host)
			}
			if e.ByHand {
				hand = append(hand, host)
			}
		}
		n, err := lb.New(o, lb.Upstream{Service: service, Servers: servers, Down: down, ByHand: hand})
		if err != nil {
			return nil, nil, err
		}
		list = append(list, n)
	}
	return list, found, nil
}

// RotationProblem says why taking a host out of rotation would leave a
// service short, or "": inRotation is how many of the service's other
// hosts serve now (healthy, up in every load balancer, not kept out),
// others how many other hosts it has, min its min_in_service (unset: 0,
// and at least one host must stay in rotation whatever it says).
func RotationProblem(service string, inRotation, others int, min config.Count) string {
	want := 1
	if min.IsSet() {
		want = max(1, min.Of(others+1))
	}
	if inRotation >= want {
		return ""
	}
	return fmt.Sprintf("service %s would keep %d host(s) in rotation, below %d (min_in_service, and never none)", service, inRotation, want)
}

// MaintenanceOn takes the host out of every load balancer of each of its
// services (drained: requests in flight finish) and records it as in
// maintenance on the lock machine: deploys and rollbacks keep moving it to
// their version and health-checking it, but leave it down until
// MaintenanceOff. It refuses, unless forced, when a service would be left
// with fewer hosts in rotation than its min_in_service, or none.
func MaintenanceOn(ctx context.Context, o MaintenanceOptions) error {
	ctx, m, err := openMaintenance(ctx, o, "maintenance on")
	if err != nil {
		return err
	}
	defer m.Close()
	rec, already := m.current[o.Host]
	if already {
		fmt.Fprintf(o.Out, "%s is already %s; making sure it is down in every load balancer\n", o.Host, rec)
	}

	var work []serviceBalancers
	var refusals []string
	for _, svcName := range m.target.Services {
		svc, ok := o.Config.Services[svcName]
		if !ok || svc.Worker() {
			continue // a worker is in no load balancer
		}
		list, entries, err := m.balancers(ctx, svcName, o.Out)
		if err != nil {
			return fmt.Errorf("%w: %w", rollout.ErrPreflight, err)
		}
		work = append(work, serviceBalancers{name: svcName, balancers: list})
		if already {
			continue
		}
		inRotation, others := 0, 0
		for _, h := range discovery.ForService(m.all, svcName) {
			if h.Name == o.Host {
				continue
			}
			others++
			if _, out := m.current[h.Name]; out {
				continue
			}
			up := true
			for _, found := range entries {
				e, listed := found[h.Name]
				up = up && listed && !e.Down
			}
			hc, reachable := m.conns.Hosts[h.Name]
			if !up || !reachable {
				continue
			}
			if port, known := hc.ServingPort(ctx, svc); known && hc.ServesHealthy(ctx, h, svc, port) {
				inRotation++
			}
		}
		if why := RotationProblem(svcName, inRotation, others, svc.MinInService); why != "" {
			refusals = append(refusals, why)
		}
	}
	if len(refusals) > 0 {
		if !o.Force {
			return fmt.Errorf("%w: maintenance on %s: %s (pass --force to do it anyway)", rollout.ErrPreflight, o.Host, strings.Join(refusals, "; "))
		}
		fmt.Fprintf(o.Out, "WARNING: --force: taking %s out although %s\n", o.Host, strings.Join(refusals, "; "))
	}

	// Recorded first: a run cut off while draining leaves a host that every
	// deploy drains and keeps out, not one it puts back.
	if !already {
		rec = inventory.Maintenance{Host: o.Host, Who: lock.Whoami(), Since: time.Now().UTC(), Message: o.Message}
		if err := m.records.Add(ctx, rec); err != nil {
			return fmt.Errorf("%w: %w", rollout.ErrPreflight, err)
		}
	}
	done, errs := eachBalancer(work, func(n *lb.Nginx, w serviceBalancers) error { return n.Drain(ctx, w.name, o.Host) })
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%s is recorded in maintenance, but draining it failed (the next deploy, or gantry maintenance on again, drains it): %w", o.Host, err)
	}
	fmt.Fprintf(o.Out, "%s is in maintenance: drained and down in %s. Deploys and rollbacks still move it and health-check it, and leave it down until: gantry maintenance off %s --env %s\n",
		o.Host, orNothing(done), o.Host, o.Env)
	return nil
}

// MaintenanceOff health-checks the host's running container of each of its
// services and, when every one passes, forgets its maintenance and puts it
// back into every load balancer, on the port its container serves on. A
// host marked down by hand is put back the same way. An unhealthy host is
// refused and stays out.
func MaintenanceOff(ctx context.Context, o MaintenanceOptions) error {
	ctx, m, err := openMaintenance(ctx, o, "maintenance off")
	if err != nil {
		return err
	}
	defer m.Close()
	rec, was := m.current[o.Host]
	host := m.conns.Hosts[o.Host]

	var work []serviceBalancers
	var sick []string
	for _, svcName := range m.target.Services {
		svc, ok := o.Config.Services[svcName]
		if !ok || svc.Worker() {
			continue // a worker is in no load balancer
		}
		c, ok, err := host.Inspect(ctx, svc.ContainerName)
		if err != nil {
			return fmt.Errorf("%w: %w", rollout.ErrPreflight, err)
		}
		if !ok || !c.Running {
			sick = append(sick, fmt.Sprintf("%s: no running %s container", svcName, svc.ContainerName))
			continue
		}
		port := c.Port(svc.Port)
		healthy := false
		// A single failed probe is not proof: ask up to three times.
		for try := 0; try < 3 && !healthy && ctx.Err() == nil; try++ {
			healthy = host.ServesHealthy(ctx, m.target, svc, port)
		}
		if !healthy {
			sick = append(sick, fmt.Sprintf("%s: %s does not pass its health check (%s)", svcName, c.Version(), healthCheck(svc.Health).Describe(config.HostPort(m.target.Address, port))))
			continue
		}
		list, _, err := m.balancers(ctx, svcName, o.Out)
		if err != nil {
			return fmt.Errorf("%w: %w", rollout.ErrPreflight, err)
		}
		addr := config.HostPort(m.target.Address, port)
		for _, n := range list {
			n.AddServer(svcName, lb.Server{Host: o.Host, Addr: addr})
		}
		work = append(work, serviceBalancers{name: svcName, addr: addr, balancers: list})
	}
	if len(sick) > 0 {
		state := "it stays out of the load balancers"
		if was {
			state = "it stays in maintenance"
		}
		return fmt.Errorf("%w: %s is not healthy: %s; %s (fix it, or deploy a version that passes, then run gantry maintenance off %s --env %s again)",
			rollout.ErrPreflight, o.Host, strings.Join(sick, "; "), state, o.Host, o.Env)
	}
	// Forgotten before it goes back: a run cut off in between leaves a
	// healthy host down, which the next deploy checks and puts back.
	if was {
		if err := m.records.Remove(ctx, o.Host); err != nil {
			return fmt.Errorf("%w: %w", rollout.ErrPreflight, err)
		}
	}
	done, errs := eachBalancer(work, func(n *lb.Nginx, w serviceBalancers) error { return n.Switch(ctx, w.name, o.Host, w.addr) })
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%s is out of maintenance, but putting it back failed (the next deploy checks it and puts it back): %w", o.Host, err)
	}
	how := "was not in maintenance"
	if was {
		how = "was " + rec.String()
	}
	fmt.Fprintf(o.Out, "%s is back: healthy and up in %s (it %s)\n", o.Host, orNothing(done), how)
	return nil
}

// MaintenanceList prints the environment's hosts in maintenance: since
// when, by whom, and why.
func MaintenanceList(ctx context.Context, o MaintenanceOptions) error {
	s, err := Open(ctx, o.Config, o.Env, o.Out, Needs{Records: true})
	if err != nil {
		return err
	}
	defer s.Done()
	list, err := s.maintenances().List(ctx)
	if err != nil {
		return err
	}
	recs := make([]inventory.Maintenance, 0, len(list))
	for _, r := range list {
		recs = append(recs, r)
	}
	sort.Slice(recs, func(i, j int) bool { return names.Less(recs[i].Host, recs[j].Host) })
	if o.JSON {
		enc := json.NewEncoder(o.Out)
		enc.SetIndent("", "  ")
		return enc.Encode(recs)
	}
	if len(recs) == 0 {
		fmt.Fprintf(o.Out, "no host of %s is in maintenance\n", o.Env)
		return nil
	}
	tw := tabwriter.NewWriter(o.Out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "HOST\tSINCE\tBY\tMESSAGE")
	for _, r := range recs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.Host, r.Since.UTC().Format("2006-01-02 15:04 MST"), r.Who, r.Message)
	}
	return tw.Flush()
}

// serviceBalancers is one service's load balancers for a maintenance
// change of a host, and (putting it back) the address it goes back on.
type serviceBalancers struct {
	name      string
	addr      string
	balancers []*lb.Nginx
}

// eachBalancer runs op on every load balancer of each service, the load
// balancers of one service at once, and returns what was done ("www on
// lb1") and every failure.
func eachBalancer(work []serviceBalancers, op func(*lb.Nginx, serviceBalancers) error) (done []string, errs []error) {
	for _, w := range work {
		var g errgroup.Group
		lbErrs := make([]error, len(w.balancers))
		for i, n := range w.balancers {
			g.Go(func() error {
				lbErrs[i] = op(n, w)
				return nil
			})
		}
		_ = g.Wait()
		for i, n := range w.balancers {
			if lbErrs[i] != nil {
				errs = append(errs, lbErrs[i])
			} else {
				done = append(done, w.name+" on "+n.Name)
			}
		}
	}
	return done, errs
}
