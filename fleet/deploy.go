package fleet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/hashicorp/go-multierror"
	"golang.org/x/sync/errgroup"

	"github.com/gantry-dev/gantry/config"
	"github.com/gantry-dev/gantry/discovery"
	"github.com/gantry-dev/gantry/inventory"
	"github.com/gantry-dev/gantry/lb"
	"github.com/gantry-dev/gantry/rollout"
)

// CleanupTimeout bounds putting a host back after a failure or interrupt.
const CleanupTimeout = 2 * time.Minute

// ErrRefused marks errors found before anything on the fleet changed.
var ErrRefused = errors.New("refused before any change")

// DeployOptions are the inputs of one deploy.
type DeployOptions struct {
	Config          *config.Config
	Env             string
	Target          string
	AllowMutableTag bool
	// DryRun plans and prints, changing nothing.
	DryRun bool
	// Out receives the plan, one line per step per host, and the summary.
	Out io.Writer
}

// Deploy rolls target out to the environment's hosts of its service. The
// returned report says what each host ended on; a nil report comes with an
// error wrapping ErrRefused when nothing was changed.
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
	env, err := cfg.Environment(o.Env)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrRefused, err)
	}
	all, err := discovery.Static{List: env.Hosts}.Hosts(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: discovery: %w", ErrRefused, err)
	}
	hosts := discovery.ForService(all, svcName)
	if len(hosts) == 0 {
		return nil, fmt.Errorf("%w: no host of environment %s runs service %s (add it to a host's services: in %s)", ErrRefused, o.Env, svcName, cfg.Path)
	}

	conns, err := Connect(ctx, cfg, env, hosts)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrRefused, err)
	}
	defer conns.Close()

	snap, err := snapshot(ctx, conns, hosts, svc.ContainerName)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrRefused, err)
	}
	plan := rollout.PlanDeploy(target, snap, svc.BatchSize)
	fmt.Fprint(o.Out, plan.String())
	if o.DryRun {
		return nil, nil
	}

	exec := &rollout.Executor{
		Hosts:           map[string]rollout.Host{},
		Service:         serviceSpec(svcName, svc),
		PullConcurrency: cfg.Registry.PullConcurrency,
		PullTimeout:     cfg.Registry.PullTimeout.D(),
		CleanupTimeout:  CleanupTimeout,
		Observe:         progressPrinter(o.Out),
	}
	for name, h := range conns.Hosts {
		exec.Hosts[name] = h
	}
	servers := make([]lb.Server, len(hosts))
	for i, h := range hosts {
		servers[i] = lb.Server{Host: h.Name, Addr: config.HostPort(h.Address, svc.Port)}
	}
	for _, lc := range env.LoadBalancers {
		n := &lb.Nginx{
			Name:          lc.Name,
			Runner:        conns.LBs[lc.Name],
			UpstreamsDir:  lc.UpstreamsDir,
			TestCommand:   lc.TestCommand,
			ReloadCommand: lc.ReloadCommand,
			PidFile:       lc.PidFile,
			DrainTimeout:  lc.DrainTimeout.D(),
			Warn:          func(s string) { fmt.Fprintln(o.Out, "warning: "+s) },
		}
		n.SetUpstream(svcName, servers)
		exec.Balancers = append(exec.Balancers, n)
	}
	rep := exec.Run(ctx, plan)
	fmt.Fprint(o.Out, "\n"+rep.String())
	return rep, nil
}

// snapshot inspects the service's container on every host.
func snapshot(ctx context.Context, conns *Connections, hosts []inventory.Host, container string) ([]rollout.HostSnapshot, error) {
	snap := make([]rollout.HostSnapshot, len(hosts))
	errs := make([]error, len(hosts))
	var g errgroup.Group
	g.SetLimit(DialConcurrency)
	for i, h := range hosts {
		g.Go(func() error {
			snap[i].Host = h
			c, ok, err := conns.Hosts[h.Name].Inspect(ctx, container)
			if err != nil {
				errs[i] = err
			} else if ok {
				snap[i].Current = &c
			}
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

func serviceSpec(name string, s config.Service) rollout.ServiceSpec {
	return rollout.ServiceSpec{
		Name:          name,
		ContainerName: s.ContainerName,
		Port:          s.Port,
		Env: func(h inventory.Host) []string {
			return s.ExpandEnv(config.Host{Name: h.Name, Address: h.Address, Zone: h.Zone})
		},
		Health: rollout.HealthCheck{
			Path:      s.Health.Path,
			Status:    s.Health.ExpectedStatus,
			Interval:  s.Health.Interval.D(),
			Timeout:   s.Health.Timeout.D(),
			Threshold: s.Health.HealthyThreshold,
			Deadline:  s.Health.Deadline.D(),
		},
		StopTimeout: s.StopTimeout.D(),
		LogMaxSize:  s.Log.MaxSize,
		LogMaxFile:  s.Log.MaxFile,
	}
}

// progressPrinter prints one line per finished step per host.
func progressPrinter(w io.Writer) func(rollout.Event) {
	start := time.Now()
	return func(ev rollout.Event) {
		if !ev.Done {
			return
		}
		status := "ok"
		detail := ev.Detail
		if ev.Err != nil {
			status, detail = "FAILED", ev.Err.Error()
		}
		fmt.Fprintf(w, "[%6.2fs] %-10s %-8s %-6s %6.3fs  %s\n", ev.Time.Sub(start).Seconds(), ev.Host, ev.Step, status, ev.Duration.Seconds(), detail)
	}
}
