package rollout

import (
	"context"
	"fmt"

	"golang.org/x/sync/errgroup"
)

// RevertPlan is the plan that undoes plan's moves after a host failed:
// every host rep says was moved (Deployed) goes back to the version it ran
// before, batch by batch as the hosts were moved, with the steps a move
// takes under plan's strategy. A host that ran nothing before stays as it
// is. It is a pure function of the plan and the results.
func RevertPlan(plan Plan, rep *Report) Plan {
	back := Plan{Kind: RunRevert, Target: plan.Target, Strategy: plan.Strategy}
	for _, b := range plan.Batches {
		var hosts []HostPlan
		for _, hp := range b.Hosts {
			res, ok := rep.byName[hp.Host.Name]
			if !ok || res.Outcome != HostDeployed || hp.FromImage == "" {
				continue // never moved, or nothing ran here before to go back to
			}
			bp := HostPlan{
				Host: hp.Host, To: Target{Service: hp.To.Service, Tag: hp.From, Image: hp.FromImage},
				From: hp.To.Tag, FromRunning: true, FromImage: hp.To.Image,
				Port: hp.FromPort, FromPort: hp.Port, StartFirst: hp.StartFirst, KeepOut: hp.KeepOut,
				// The new container records the version before From as its
				// previous one, as the host did before the run.
				MovingBack: true, Previous: hp.FromPrevious,
			}
			// A host kept out was left out by its move: nothing to drain.
			bp.Steps = hostSteps(bp, plan.Strategy.Worker, false)
			hosts = append(hosts, bp)
		}
		if len(hosts) > 0 {
			back.Batches = append(back.Batches, Batch{Hosts: hosts})
		}
	}
	return back
}

// revertMoved carries out RevertPlan(plan, rep) and records on each host's
// result where it ended.
func (e *Executor) revertMoved(ctx context.Context, plan Plan, rep *Report) {
	for _, batch := range RevertPlan(plan, rep).Batches {
		var g errgroup.Group
		for _, bp := range batch.Hosts {
			res := rep.host(bp.Host.Name)
			g.Go(func() error {
				// It serves (it was moved) until its move back changes that.
				r := HostResult{InService: res.InService}
				guardHost(bp.Host.Name, &r, func() { e.moveHost(ctx, bp, &r) })
				res.Ended = r.Ended
				res.InService = r.InService
				res.OutOfRotation += r.OutOfRotation
				res.Boot, res.Waits, res.InFlight = res.Boot+r.Boot, res.Waits+r.Waits, res.InFlight+r.InFlight
				res.Docker, res.Nginx = res.Docker+r.Docker, res.Nginx+r.Nginx
				if r.Outcome == HostDeployed {
					res.Outcome = HostMovedBack
				} else {
					res.Outcome = HostRevertFailed
					res.RevertErr = fmt.Errorf("moving back to %s: %w", bp.To.Tag, r.Err)
					if r.RevertErr != nil {
						res.RevertErr = fmt.Errorf("%w; then: %v", res.RevertErr, r.RevertErr)
					}
					if r.Ended == "" {
						res.Ended = bp.From
					}
				}
				return nil
			})
		}
		_ = g.Wait()
	}
}
