package fleet

import (
	"context"
	"fmt"
	"net"
	"sync"

	"github.com/hashicorp/go-multierror"
	"golang.org/x/sync/errgroup"

	"github.com/gantry-dev/gantry/canary"
	"github.com/gantry-dev/gantry/config"
	"github.com/gantry-dev/gantry/internal/panics"
	"github.com/gantry-dev/gantry/lb"
	"github.com/gantry-dev/gantry/rollout"
)

// preflight gathers what the checks need — free disk and current health on
// every host, each load balancer's config test, the image in the registry —
// in parallel, then lets rollout.CheckPreflight judge the plan. Every
// problem is returned, one per host or load balancer.
func preflight(ctx context.Context, cfg *config.Config, envName string, env config.Environment, svc config.Service, conns *Connections, plan rollout.Plan, snap []rollout.HostSnapshot, balancers []*lb.Nginx) error {
	var mu sync.Mutex
	var errs *multierror.Error
	fail := func(err error) {
		mu.Lock()
		errs = multierror.Append(errs, err)
		mu.Unlock()
	}
	facts := make([]rollout.HostFacts, len(snap))
	var g errgroup.Group
	g.SetLimit(DialConcurrency)
	if len(plan.Pull) > 0 {
		first := conns.Hosts[plan.Pull[0].Name]
		g.Go(func() error {
			defer panics.Recover(fail)
			if err := first.ImageInRegistry(ctx, plan.Target.Image, first.auth); err != nil {
				fail(err)
			}
			return nil
		})
	}
	if plan.Canary != nil {
		// nginx logs the addresses it resolved: the canary and baseline
		// hosts are matched in the logs by IP address.
		for _, s := range snap {
			if net.ParseIP(s.Host.Address) == nil {
				fail(fmt.Errorf("%s: address %q is not an IP address: the canary is matched in the load balancers' logs by the addresses nginx resolved; list the host by its IP address, or deploy with --no-canary", s.Host.Name, s.Host.Address))
			}
		}
		// The canary is judged from every load balancer's access log.
		for i, lc := range env.LoadBalancers {
			if lc.AccessLog == "" {
				fail(fmt.Errorf("%s: no access log to judge the canary from: set environments.%s.load_balancers[%d].access_log in %s to a log written with: %s", lc.Name, envName, i, cfg.Path, canary.LogFormatLine))
				continue
			}
			for _, b := range balancers {
				if b.Name == lc.Name {
					g.Go(func() error {
						defer panics.Recover(func(err error) { fail(fmt.Errorf("%s: %w", b.Name, err)) })
						if err := b.CheckAccessLog(ctx, lc.AccessLog); err != nil {
							fail(err)
						}
						return nil
					})
				}
			}
		}
	}
	if plan.Kind == rollout.RunRollback {
		// A rollback uses the image cached on each host: no registry.
		for _, b := range plan.Batches {
			for _, hp := range b.Hosts {
				g.Go(func() error {
					defer panics.Recover(func(err error) { fail(fmt.Errorf("%s: %w", hp.Host.Name, err)) })
					ok, err := conns.Hosts[hp.Host.Name].HasImage(ctx, hp.To.Image)
					if err == nil && !ok {
						err = fmt.Errorf("%s: version %s is not cached on the host (image %s): roll back to a version it ran, or deploy it", hp.Host.Name, hp.To.Tag, hp.To.Image)
					}
					if err != nil {
						fail(err)
					}
					return nil
				})
			}
		}
	}
	for _, b := range balancers {
		g.Go(func() error {
			defer panics.Recover(func(err error) { fail(fmt.Errorf("%s: %w", b.Name, err)) })
			if err := b.Check(ctx); err != nil {
				fail(err)
			}
			return nil
		})
	}
	for i, s := range snap {
		g.Go(func() error {
			defer panics.Recover(func(err error) { fail(fmt.Errorf("%s: %w", s.Host.Name, err)) })
			h := conns.Hosts[s.Host.Name]
			f := rollout.HostFacts{Host: s.Host.Name, KeptOut: s.Held != ""}
			root, free, err := h.FreeDisk(ctx)
			if err != nil {
				fail(err)
				free = -1
			}
			f.DataRoot, f.FreeDisk = root, free
			if s.Current != nil && s.Current.Running {
				f.Running = true
				f.Healthy = h.ServesHealthy(ctx, s.Host, svc, s.Current.Port(svc.Port))
			}
			facts[i] = f
			return nil
		})
	}
	_ = g.Wait()
	if err := rollout.CheckPreflight(plan, facts, rollout.PreflightRules{MinFreeDisk: int64(env.MinFreeDisk), MinInService: svc.MinInServiceOf(len(snap))}); err != nil {
		if me, ok := err.(*multierror.Error); ok {
			for _, e := range me.Errors {
				fail(e)
			}
		} else {
			fail(err)
		}
	}
	if err := errs.ErrorOrNil(); err != nil {
		errs.ErrorFormat = listErrors
		return errs
	}
	return nil
}

// listErrors prints one problem per line.
func listErrors(es []error) string {
	s := ""
	for i, e := range es {
		if i > 0 {
			s += "\n"
		}
		s += fmt.Sprintf("  - %v", e)
	}
	return s
}
