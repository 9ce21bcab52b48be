package fleet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/gantry-dev/gantry/config"
	"github.com/gantry-dev/gantry/discovery"
	"github.com/gantry-dev/gantry/inventory"
	"github.com/gantry-dev/gantry/lock"
	"github.com/gantry-dev/gantry/rollout"
)

// DecommissionOptions name the host to take out for good.
type DecommissionOptions struct {
	Config *config.Config
	Env    string
	Host   string
	// Force overrides the min_in_service refusal.
	Force bool
	Out   io.Writer
}

// Decommission takes a host out for good: it shows what runs there,
// refuses when a service would keep fewer healthy hosts than its
// min_in_service (unless forced), removes the host from every load
// balancer's upstreams (drained first, then deleted, not just down), stops
// its gantry-managed containers gracefully, and records the host as
// decommissioned on the fleet so later deploys skip it.
func Decommission(ctx context.Context, o DecommissionOptions) error {
	cfg := o.Config
	var target *inventory.Host
	s, err := Open(ctx, cfg, o.Env, o.Out, Needs{Discover: true, Dial: DialEach, Records: true, Classify: asPreflight,
		Select: func(all []inventory.Host) ([]inventory.Host, error) {
			for i := range all {
				if all[i].Name == o.Host {
					target = &all[i]
				}
			}
			if target == nil {
				names := make([]string, len(all))
				for i, h := range all {
					names[i] = h.Name
				}
				return nil, fmt.Errorf("%w: %s has no host %q (hosts: %s)", ErrRefused, o.Env, o.Host, strings.Join(names, ", "))
			}
			return all, nil
		}})
	if err != nil {
		return err
	}
	// The locks taken below are released, and their release failures
	// printed, when the session closes.
	defer s.Done()
	env, all, conns, failed := s.Env, s.All, s.Conns, s.Failed
	if err := failed[o.Host]; err != nil {
		return fmt.Errorf("%w: %w", rollout.ErrPreflight, err)
	}
	for _, lc := range env.LoadBalancers {
		if err := failed[lc.Name]; err != nil {
			return fmt.Errorf("%w: %w", rollout.ErrPreflight, err)
		}
	}
	decoms := s.decommissions()
	gone, err := decoms.List(ctx)
	if err != nil {
		return fmt.Errorf("%w: %w", rollout.ErrPreflight, err)
	}
	if rec, ok := gone[o.Host]; ok {
		fmt.Fprintf(o.Out, "%s is already decommissioned (by %s on %s)\n", o.Host, rec.Who, rec.Since.Format("2006-01-02 15:04"))
		return nil
	}

	// What runs there.
	host := conns.Hosts[o.Host]
	list, err := host.ListContainers(ctx)
	if err != nil {
		return fmt.Errorf("%w: %w", rollout.ErrPreflight, err)
	}
	fmt.Fprintf(o.Out, "%s (%s, zone %s) runs:\n", o.Host, target.Address, target.Zone)
	for _, c := range list {
		who := "unmanaged"
		if c.Labels[inventory.LabelManaged] == "true" {
			who = "service " + c.Labels[inventory.LabelService] + " " + c.Version()
		}
		fmt.Fprintf(o.Out, "  %-20s %-10s %s\n", c.Name, c.State, who)
	}
	if len(list) == 0 {
		fmt.Fprintln(o.Out, "  (no containers)")
	}

	// Lock every service of the host, then check the minimums.
	ctx, err = s.HoldLocks(ctx, target.Services, lock.Request{Target: "decommission " + o.Host})
	if err != nil {
		return err
	}
	var standings []inventory.ServiceStanding
	for _, svcName := range target.Services {
		svc, ok := cfg.Services[svcName]
		if !ok {
			continue
		}
		st := inventory.ServiceStanding{Service: svcName}
		if svc.MinInService.IsSet() {
			st.MinInService = svc.MinInService.Of
		}
		for _, h := range discovery.ForService(all, svcName) {
			if _, out := gone[h.Name]; out || h.Name == o.Host {
				continue
			}
			st.Staying++
			hc, ok := conns.Hosts[h.Name]
			port, known := 0, false
			if ok {
				port, known = hc.ServingPort(ctx, svc)
			}
			if !known && svc.StartFirst() {
				// Its upstream entry is rewritten below: with the wrong one
				// of the two ports it would point at nothing.
				st.PortUnknown = append(st.PortUnknown, h.Name)
			}
			if ok && hc.ServesHealthy(ctx, h, svc, port) {
				st.Healthy++
			}
		}
		standings = append(standings, st)
	}
	refusals := inventory.DecommissionRefusals(standings)
	if len(refusals) > 0 {
		if !o.Force {
			return fmt.Errorf("%w: decommissioning %s: %s (pass --force to do it anyway)", rollout.ErrPreflight, o.Host, strings.Join(refusals, "; "))
		}
		fmt.Fprintf(o.Out, "WARNING: --force: decommissioning %s although %s\n", o.Host, strings.Join(refusals, "; "))
	}

	// Every load balancer must be able to take the host out (its config
	// test passes, it has a master whose workers can be waited for) before
	// the host leaves any of them.
	for _, n := range nginxOptions(env, conns, o.Out) {
		if err := n.Check(ctx); err != nil {
			return fmt.Errorf("%w: decommissioning %s: %w", rollout.ErrPreflight, o.Host, err)
		}
	}

	// Out of every load balancer, for good.
	for _, svcName := range target.Services {
		svc, ok := cfg.Services[svcName]
		if !ok || svc.Worker() {
			continue // a worker is in no load balancer
		}
		var members []inventory.Host
		ports := map[string]int{} // the others keep the port they serve on
		for _, h := range discovery.ForService(all, svcName) {
			if _, out := gone[h.Name]; !out {
				members = append(members, h)
				if hc, ok := conns.Hosts[h.Name]; ok {
					ports[h.Name], _ = hc.ServingPort(ctx, svc)
				}
			}
		}
		balancers, err := nginxBalancers(env, conns, svcName, svc.Port, ports, members, o.Out)
		if err != nil {
			return fmt.Errorf("removing %s from the load balancers (nothing was stopped): %w", o.Host, err)
		}
		var errs []error
		for _, n := range balancers {
			if err := n.Remove(ctx, svcName, o.Host); err != nil {
				errs = append(errs, err)
				continue
			}
			fmt.Fprintf(o.Out, "removed %s from upstream %s on %s\n", o.Host, svcName, n.Name)
		}
		if err := errors.Join(errs...); err != nil {
			return fmt.Errorf("removing %s from the load balancers (nothing was stopped): %w", o.Host, err)
		}
	}

	// Stop what gantry manages there.
	rec := inventory.Decommission{Host: o.Host, Who: lock.Whoami(), Since: time.Now().UTC()}
	var left []string
	for _, c := range list {
		if c.Labels[inventory.LabelManaged] != "true" {
			left = append(left, c.Name+" (unmanaged)")
			continue
		}
		if !c.Running {
			left = append(left, c.Name+" (already stopped)")
			continue
		}
		timeout := config.DefaultStopTimeout
		if svc, ok := cfg.Services[c.Labels[inventory.LabelService]]; ok {
			timeout = svc.StopTimeout.D()
		}
		if err := host.Stop(ctx, c.ID, timeout); err != nil {
			return fmt.Errorf("%s is out of the load balancers but stopping %s failed: %w", o.Host, c.Name, err)
		}
		rec.Stopped = append(rec.Stopped, c.Name)
	}
	if err := decoms.Add(ctx, rec); err != nil {
		return fmt.Errorf("%s is out of the load balancers and stopped, but recording it failed (later deploys may bring it back): %w", o.Host, err)
	}
	fmt.Fprintf(o.Out, "decommissioned %s: stopped %s", o.Host, orNothing(rec.Stopped))
	fmt.Fprintf(o.Out, "; left %s\n", orNothing(left))
	return nil
}

// Recommission forgets that a host was decommissioned: the next deploy of
// its services brings its containers back and adds it to the load
// balancers once healthy.
func Recommission(ctx context.Context, o DecommissionOptions) error {
	env, err := o.Config.Environment(o.Env)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrRefused, err)
	}
	if _, _, ok := env.Machine(o.Host); !ok && env.Discovery.EC2 == nil {
		return fmt.Errorf("%w: %s has no host %q", ErrRefused, o.Env, o.Host)
	}
	s, err := Open(ctx, o.Config, o.Env, o.Out, Needs{Records: true})
	if err != nil {
		return err
	}
	defer s.Done()
	if err := s.decommissions().Remove(ctx, o.Host); err != nil {
		return err
	}
	fmt.Fprintf(o.Out, "%s is back in %s: the next deploy of its services brings it into service\n", o.Host, o.Env)
	return nil
}

func orNothing(s []string) string {
	if len(s) == 0 {
		return "nothing"
	}
	return strings.Join(s, ", ")
}
