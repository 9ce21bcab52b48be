package rollout

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/gantry-dev/gantry/internal/panics"
	"github.com/gantry-dev/gantry/inventory"
)

// swapStartFirst moves one host to the target without taking it out of
// rotation: the new container starts beside the old one on hp.Port, is
// health-checked there, every balancer's entry for the host is switched to
// that port (one reload; requests in flight finish on the old port), and
// only then is the old container stopped. Until the switch nothing the
// host serves has changed, so a failure before it only removes the new
// container.
func (e *Executor) swapStartFirst(ctx context.Context, target Target, hp HostPlan, res *HostResult) {
	name := hp.Host.Name
	host := e.Hosts[name]
	svc := e.Service
	res.Started = true
	begin := time.Now()
	defer func() { res.Duration = time.Since(begin) }()
	port, fromPort := e.ports(hp)
	oldName, newName := e.oldName(), e.newName()
	var sw swap

	err := e.step(name, string(StepCreate), func() (string, error) {
		if err := ctx.Err(); err != nil {
			return "", fmt.Errorf("interrupted before creating %s: %w", target.Tag, err)
		}
		return fmt.Sprintf("%s on port %d", target.Tag, port), e.createNew(ctx, host, target, hp, port, &sw, true)
	})
	if err == nil {
		err = e.step(name, string(StepStart), func() (string, error) {
			if err := ctx.Err(); err != nil {
				return "", fmt.Errorf("interrupted before starting %s: %w", target.Tag, err)
			}
			return fmt.Sprintf("%s on port %d", target.Tag, port), host.Start(ctx, sw.newID)
		})
	}
	if err == nil {
		err = e.step(name, string(StepHealth), func() (string, error) { return e.waitHealthy(ctx, host, hp.Host, sw.newID, port, e.isDeploying()) })
	}
	if err == nil {
		if err = ctx.Err(); err != nil {
			err = fmt.Errorf("interrupted before switching the load balancers: %w", err)
		}
	}
	if err != nil {
		e.dropNew(ctx, hp, res, &sw, err)
		return
	}

	// From here on the work is short and finishes even on an interrupt: a
	// half-switched host is worse than a finished one.
	cctx, cancel := e.cleanupContext(ctx)
	defer cancel()
	if err := e.switchTo(cctx, hp.Host, port); err != nil {
		e.switchBack(cctx, hp, res, &sw, fromPort, fmt.Errorf("switch: %w", err))
		return
	}
	res.Ended = target.Tag
	res.Deployed, res.InService = true, true

	// The old container gets no more requests: it gives up the service's
	// name to the new one and stops.
	if sw.old != nil {
		err := e.step(name, string(StepStop), func() (string, error) {
			if sw.old.Name != oldName {
				if err := host.Rename(cctx, sw.old.ID, oldName); err != nil {
					return "", err
				}
			}
			if sw.old.Running {
				if err := host.Stop(cctx, sw.old.ID, svc.StopTimeout); err != nil {
					return "", err
				}
			}
			return sw.old.Version(), nil
		})
		if err != nil {
			res.Warnings = append(res.Warnings, "old container not stopped: "+err.Error())
		}
	}
	if err := panics.Catch(func() error { return host.Rename(cctx, sw.newID, svc.ContainerName) }); err != nil {
		res.Warnings = append(res.Warnings, fmt.Sprintf("new container serves but is still called %s: %v", newName, err))
		return
	}
	if sw.old != nil {
		// The old image stays cached: rollback needs it.
		if err := e.step(name, string(StepCleanup), func() (string, error) { return sw.old.Version(), host.Remove(cctx, sw.old.ID) }); err != nil {
			res.Warnings = append(res.Warnings, "old container not removed: "+err.Error())
		}
	}
}

// dropNew undoes a start-first swap that failed before the switch: the new
// container goes. The old one was never touched and never stopped serving,
// and no balancer changed.
func (e *Executor) dropNew(ctx context.Context, hp HostPlan, res *HostResult, sw *swap, cause error) {
	res.Err = cause
	res.InService = true // no balancer changed
	cctx, cancel := e.cleanupContext(ctx)
	defer cancel()
	res.RevertErr = e.step(hp.Host.Name, "revert", func() (string, error) {
		if sw.newID != "" {
			if err := e.Hosts[hp.Host.Name].Remove(cctx, sw.newID); err != nil {
				return "", err
			}
		}
		if sw.old == nil || !sw.old.Running {
			res.Ended = ""
			return "new container removed; nothing ran here before", nil
		}
		res.Ended = sw.old.Version()
		return "new container removed; " + sw.old.Version() + " kept serving", nil
	})
}

// switchBack undoes a switch that failed on some balancer: every balancer
// points back at the old container (or, if none ran, keeps the host out),
// then the new container goes.
func (e *Executor) switchBack(ctx context.Context, hp HostPlan, res *HostResult, sw *swap, fromPort int, cause error) {
	res.Err = cause
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
		return
	}
	e.dropNew(ctx, hp, res, sw, cause)
	res.Reverted = res.RevertErr == nil && oldRuns
}

// addrOf is host:port of h's app on port.
func addrOf(h inventory.Host, port int) string {
	return net.JoinHostPort(h.Address, strconv.Itoa(port))
}
