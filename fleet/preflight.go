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
	"github.com/gantry-dev/gantry/inventory"
	"github.com/gantry-dev/gantry/lb"
	"github.com/gantry-dev/gantry/rollout"
)

// earlyChecks are the pre-flight facts that need no plan: each host's free
// disk, each load balancer's config test, the image a deploy pulls in the
// registry. They start as soon as the machines answer, while the lock is
// taken and the hosts observed (all of it only reads), and the pre-flight
// waits for them.
type earlyChecks struct {
	stop context.CancelFunc
	done chan struct{}

	mu   sync.Mutex
	disk map[string]diskFact
	// lb holds each load balancer's test result, for those checked early.
	lb map[string]error
	// image is the image checked in the registry ("" none), registry the
	// answer.
	image    string
	registry error
}

// diskFact is one host's Docker data root and the bytes free there.
type diskFact struct {
	root string
	free int64
	err  error
}

// startEarlyChecks starts the checks; image is the image a deploy would
// pull ("": none to check early). A load balancer without a pid file in
// the config is checked by the pre-flight on its balancer, which keeps the
// pid file it finds.
//
// roots are the hosts' Docker data roots where observing them told
// (inventory.Container.DataRoot): their free disk needs no daemon info.
// What first read already (each host's free disk, the registry, as the
// hosts answered) is taken from it.
func startEarlyChecks(ctx context.Context, conns *Connections, hosts []inventory.Host, lbs []lb.Options, image string, roots map[string]string, first *firstReads) *earlyChecks {
	ctx, stop := context.WithCancel(ctx)
	c := &earlyChecks{stop: stop, done: make(chan struct{}), disk: map[string]diskFact{}, lb: map[string]error{}}
	var g errgroup.Group
	g.SetLimit(DialConcurrency)
	if image != "" && len(hosts) > 0 {
		if dh := conns.Hosts[hosts[0].Name]; dh != nil {
			// One check: the one the hosts' first reads started, or
			// started now the same way.
			first.checkRegistry(hosts[0].Name, dh, image)
			read := first.registryRead(hosts)
			c.image = image
			g.Go(func() error {
				defer panics.Recover(func(err error) { c.set(func() { c.registry = err }) })
				_, err, ok := read.take(ctx)
				if !ok {
					err = dh.ImageInRegistry(ctx, image, dh.auth)
				}
				c.set(func() { c.registry = err })
				return nil
			})
		}
	}
	for _, o := range lbs {
		if o.PidFile == "" {
			continue
		}
		g.Go(func() error {
			defer panics.Recover(func(err error) { c.set(func() { c.lb[o.Name] = fmt.Errorf("%s: %w", o.Name, err) }) })
			err := o.Check(ctx)
			c.set(func() { c.lb[o.Name] = err })
			return nil
		})
	}
	for _, h := range hosts {
		dh := conns.Hosts[h.Name]
		if dh == nil {
			continue
		}
		// Read here, not in the goroutine: a run that observes again
		// writes roots meanwhile.
		root := roots[h.Name]
		read := first.hostDisk(h.Name)
		g.Go(func() error {
			defer panics.Recover(func(err error) {
				c.set(func() { c.disk[h.Name] = diskFact{err: fmt.Errorf("%s: %w", h.Name, err), free: -1} })
			})
			d, err, ok := read.take(ctx)
			if !ok || err != nil || d.root != root && root != "" {
				d = diskOf(ctx, dh, root)
			}
			c.set(func() { c.disk[h.Name] = d })
			return nil
		})
	}
	go func() {
		_ = g.Wait()
		close(c.done)
	}()
	return c
}

// diskOf is host h's Docker data root and the bytes free there; root is
// the data root when known already ("": asked of the daemon).
func diskOf(ctx context.Context, h *Host, root string) diskFact {
	if root == "" {
		var d diskFact
		d.root, d.free, d.err = h.FreeDisk(ctx)
		return d
	}
	free, err := h.FreeDiskAt(ctx, root)
	return diskFact{root: root, free: free, err: err}
}

func (c *earlyChecks) set(f func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f()
}

// wait waits for every check to answer.
func (c *earlyChecks) wait() { <-c.done }

// cancel stops the checks still running and waits for them: a run that
// ends without its pre-flight (refused, or nothing to change).
func (c *earlyChecks) cancel() {
	c.stop()
	<-c.done
}

// preflight gathers what the checks need — free disk and current health on
// every host, each load balancer's config test, the image in the registry —
// in parallel, then lets rollout.CheckPreflight judge the plan. Every
// problem is returned, one per host or load balancer.
func preflight(ctx context.Context, cfg *config.Config, envName string, env config.Environment, svc config.Service, conns *Connections, plan rollout.Plan, snap []rollout.HostSnapshot, balancers []*lb.Nginx, early *earlyChecks) error {
	early.wait()
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
	if len(plan.Pull) > 0 && early.image == plan.Target.Image {
		if early.registry != nil {
			fail(early.registry)
		}
	} else if len(plan.Pull) > 0 {
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
		if err, checked := early.lb[b.Name]; checked {
			if err != nil {
				fail(err)
			}
			continue
		}
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
			d, checked := early.disk[s.Host.Name]
			if !checked {
				d = diskOf(ctx, h, "")
			}
			root, free, err := d.root, d.free, d.err
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
