package rollout

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-multierror"
	"golang.org/x/sync/errgroup"

	"github.com/gantry-dev/gantry/inventory"
)

// The steps that only repairs use (the others are shared with swaps).
const (
	// StepRemove removes a container left by a run that was cut off.
	StepRemove StepKind = "remove"
	// StepRename gives a container the service's name back.
	StepRename StepKind = "rename"
)

// Entry is a host's line in one load balancer's upstream, as observed.
type Entry struct {
	// Addr is host:port the line sends requests to.
	Addr string
	// Down is true when the line is marked down (drained).
	Down bool
	// ByHand is true for a down line gantry did not mark down.
	ByHand bool
}

// Repair puts one host back into a clean state after a run that was cut
// off on it (killed, or its connection lost): exactly one container under
// the service's name, no -gantry-old/-gantry-new leftovers, and in every
// load balancer on the port of a running, healthy container, or out of all
// of them when none runs. Repairs run after the pull and the release
// command, before any batch.
type Repair struct {
	Host inventory.Host
	// Why says what was found.
	Why string
	// Keep is the container that ends under the service's name (nil: none).
	Keep *inventory.Container
	// KeepPort is the port Keep serves on.
	KeepPort int
	// Steps run in order.
	Steps []RepairStep
	// Fallback runs instead of the remaining steps when Keep fails its
	// health check: it goes back to the container that served before.
	Fallback []RepairStep
}

// RepairStep is one step of a repair, with its operands.
type RepairStep struct {
	Kind StepKind
	// Container is the container the step acts on (drain/switch: none).
	Container *inventory.Container
	// Name is the name a rename gives.
	Name string
	// Port is where a health check probes, or where a switch points the
	// host's entries.
	Port int
	// Reason says why, for the plan.
	Reason string
}

func (s RepairStep) String() string {
	switch s.Kind {
	case StepRemove, StepStop, StepStart:
		return fmt.Sprintf("%s %s (%s)", s.Kind, s.Container.Name, s.Container.Version())
	case StepRename:
		return fmt.Sprintf("rename %s to %s", s.Container.Name, s.Name)
	case StepHealth:
		return fmt.Sprintf("health %s on port %d", s.Container.Version(), s.Port)
	case StepSwitch:
		return fmt.Sprintf("restore on port %d", s.Port)
	}
	return string(s.Kind)
}

// Names of a service's containers while a swap is under way.
func oldNameOf(container string) string { return container + "-gantry-old" }
func newNameOf(container string) string { return container + "-gantry-new" }

// PlanRepairs looks at what each host runs and how every load balancer
// lists it, and returns the repairs of the hosts a cut-off run left
// unclean, and the snapshot as it will be once they are done (what the
// deploy or rollback is then planned from). container is the service's
// container name and port its default port. Snapshots without Entries
// (load balancers not observed) are judged on their containers alone.
func PlanRepairs(hosts []HostSnapshot, container string, port int) ([]Repair, []HostSnapshot) {
	var repairs []Repair
	healed := make([]HostSnapshot, len(hosts))
	for i, h := range hosts {
		r, after := planRepair(h, container, port)
		healed[i] = after
		if len(r.Steps) > 0 {
			repairs = append(repairs, r)
		}
	}
	return repairs, healed
}

func portOfAddr(addr string) int {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(p)
	return n
}

func planRepair(h HostSnapshot, container string, port int) (Repair, HostSnapshot) {
	cur, old, nw := h.Current, h.Old, h.New
	r := Repair{Host: h.Host}
	var why []string
	running := func(c *inventory.Container) bool { return c != nil && c.Running }
	// servedBy: some load balancer sends the host's requests to c's port.
	servedBy := func(c *inventory.Container) bool {
		for _, e := range h.Entries {
			if !e.Down && portOfAddr(e.Addr) == c.Port(port) {
				return true
			}
		}
		return false
	}

	// Which container ends under the service's name.
	keep := cur
	switch {
	case running(nw) && servedBy(nw) && !(running(cur) && cur.Port(port) == nw.Port(port)):
		// A start-first swap cut off after its switch began: the new
		// container (health-checked before any switch) serves.
		keep = nw
		why = append(why, nw.Name+" serves in some load balancer")
	case running(cur):
	case old != nil:
		// Nothing runs under the service's name: a stop-first swap, or a
		// revert's move back, cut off before the new container served
		// (whatever its labels say it replaces): the old one is what
		// served, and may still serve.
		keep = old
		why = append(why, old.Name+" is what served before a cut-off swap")
	}

	add := func(s RepairStep) { r.Steps = append(r.Steps, s) }
	// Nothing may stay in a load balancer on a port where nothing runs.
	if live := liveEntries(h, []*inventory.Container{cur, old, nw}, port); live {
		add(RepairStep{Kind: StepDrain, Reason: "a load balancer sends requests to a port where nothing runs"})
		why = append(why, "in a load balancer on a port where nothing runs")
	}
	remove := func(c *inventory.Container, reason string) {
		if c == nil || c == keep {
			return
		}
		if c.Running {
			// Gracefully: it may still finish requests it was sent.
			add(RepairStep{Kind: StepStop, Container: c, Reason: reason})
		}
		add(RepairStep{Kind: StepRemove, Container: c, Reason: reason})
		why = append(why, "leftover "+c.Name)
	}

	keepPort := port
	if keep != nil {
		keepPort = keep.Port(port)
	}
	inLBs := len(h.Entries) > 0
	for _, e := range h.Entries {
		inLBs = inLBs && !e.Down && portOfAddr(e.Addr) == keepPort
	}
	if h.Entries == nil || h.Held != "" {
		inLBs = true // not observed, or meant to be out
	}

	switch {
	case keep == nw && keep != nil:
		// Finish the switch: health, every entry to the new port, the
		// old container goes and the new one takes the service's name.
		add(RepairStep{Kind: StepHealth, Container: nw, Port: keepPort, Reason: "health-checked before it gets all the traffic"})
		add(RepairStep{Kind: StepSwitch, Port: keepPort, Reason: "every load balancer to " + nw.Version()})
		remove(cur, "replaced by "+nw.Version())
		remove(old, "a leftover of the cut-off run")
		add(RepairStep{Kind: StepRename, Container: nw, Name: container, Reason: "the service's name"})
		if running(cur) {
			r.Fallback = []RepairStep{
				{Kind: StepSwitch, Port: cur.Port(port), Reason: "every load balancer back to " + cur.Version()},
				{Kind: StepStop, Container: nw, Reason: "unhealthy"},
				{Kind: StepRemove, Container: nw, Reason: "unhealthy"},
			}
		}
	case keep == old && keep != nil:
		if nw != nil {
			remove(nw, "never started by the cut-off run")
		}
		remove(cur, "started by the cut-off run, never put in service")
		// Started before it gets its name back: cut off between the two,
		// it is still a running -gantry-old, which the next run keeps.
		if !old.Running {
			add(RepairStep{Kind: StepStart, Container: old, Reason: "it served before the cut-off swap"})
		}
		add(RepairStep{Kind: StepRename, Container: old, Name: container, Reason: "the service's name back"})
		add(RepairStep{Kind: StepHealth, Container: old, Port: keepPort, Reason: "traffic only after the health check passes"})
		add(RepairStep{Kind: StepSwitch, Port: keepPort, Reason: "back into every load balancer"})
	default:
		// keep is cur (or nothing runs): leftovers go, and a running
		// container that is not in every load balancer is checked and put
		// back. The old one goes last: it is the way back if the check fails.
		remove(nw, "never put in service by the cut-off run")
		drained := false
		for _, e := range h.Entries {
			drained = drained || e.Down
		}
		if cur != nil && !cur.Running && nw != nil && drained {
			// A stop-first swap cut off after stopping it, before the
			// rename: it is what served.
			why = append(why, cur.Name+" was stopped by a cut-off swap")
			add(RepairStep{Kind: StepStart, Container: cur, Reason: "it served before the cut-off swap"})
			add(RepairStep{Kind: StepHealth, Container: cur, Port: keepPort, Reason: "traffic only after the health check passes"})
			add(RepairStep{Kind: StepSwitch, Port: keepPort, Reason: "back into every load balancer"})
			cur.Running = true // for the snapshot the plan is made from
		} else if running(cur) && (!inLBs || old != nil) {
			if !inLBs {
				why = append(why, "out of some load balancer")
			}
			add(RepairStep{Kind: StepHealth, Container: cur, Port: keepPort, Reason: "traffic only after the health check passes"})
			if !inLBs {
				add(RepairStep{Kind: StepSwitch, Port: keepPort, Reason: "back into every load balancer"})
			}
			if old != nil {
				r.Fallback = []RepairStep{
					{Kind: StepDrain, Reason: cur.Version() + " is unhealthy"},
					{Kind: StepStop, Container: cur, Reason: "unhealthy"},
					{Kind: StepRemove, Container: cur, Reason: "unhealthy"},
					{Kind: StepStart, Container: old, Reason: "it served before"},
					{Kind: StepRename, Container: old, Name: container, Reason: "the service's name back"},
					{Kind: StepHealth, Container: old, Port: old.Port(port), Reason: "traffic only after the health check passes"},
					{Kind: StepSwitch, Port: old.Port(port), Reason: "back into every load balancer"},
				}
			}
		}
		remove(old, "a leftover of a cut-off run")
	}
	if h.Held != "" {
		// It stays out: nothing puts it back, and a load balancer that
		// lists it up has it drained first.
		r.Steps, r.Fallback = withoutSwitch(r.Steps), withoutSwitch(r.Fallback)
		if !inEveryLBDown(h) && (len(r.Steps) == 0 || r.Steps[0].Kind != StepDrain) {
			r.Steps = append([]RepairStep{{Kind: StepDrain, Reason: "it is to stay out (" + h.Held + ")"}}, r.Steps...)
			why = append(why, "up in some load balancer although it is to stay out")
		}
	}
	if len(r.Steps) == 0 {
		return r, h
	}
	r.Keep, r.KeepPort, r.Why = keep, keepPort, strings.Join(why, "; ")

	// A release container a cut-off run left is the release step's to remove.
	after := HostSnapshot{Host: h.Host, Held: h.Held, Release: h.Release}
	if h.Held != "" && h.Entries != nil {
		// Every load balancer lists it down once repaired.
		after.Entries = map[string]Entry{}
		for lb, e := range h.Entries {
			e.Down = true
			after.Entries[lb] = e
		}
	}
	if keep != nil {
		c := *keep
		c.Name = container
		if keep == old {
			c.Running = true
		}
		after.Current = &c
	}
	return r, after
}

// withoutSwitch drops the steps that put a host back into the load
// balancers, for a host that stays out.
func withoutSwitch(steps []RepairStep) []RepairStep {
	var out []RepairStep
	for _, s := range steps {
		if s.Kind != StepSwitch {
			out = append(out, s)
		}
	}
	return out
}

// liveEntries reports whether some load balancer lists the host up on a
// port no running container of the host listens on.
func liveEntries(h HostSnapshot, cs []*inventory.Container, port int) bool {
	for _, e := range h.Entries {
		if e.Down {
			continue
		}
		p, served := portOfAddr(e.Addr), false
		for _, c := range cs {
			served = served || (c != nil && c.Running && c.Port(port) == p)
		}
		if !served {
			return true
		}
	}
	return false
}

// repairAll carries out the plan's repairs, several hosts at once, and
// returns every failure.
func (e *Executor) repairAll(ctx context.Context, plan Plan, rep *Report) error {
	errs := make([]error, len(plan.Repairs))
	var g errgroup.Group
	g.SetLimit(max(1, e.PullConcurrency))
	for i, r := range plan.Repairs {
		g.Go(func() error {
			res := rep.host(r.Host.Name)
			var err error
			if perr := guardHost(r.Host.Name, res, func() { err = e.repairHost(ctx, r, res) }); perr != nil {
				err = perr
			}
			if err != nil {
				errs[i] = fmt.Errorf("%s: repair: %w", r.Host.Name, err)
			}
			return nil
		})
	}
	_ = g.Wait()
	return multierror.Append(nil, errs...).ErrorOrNil() // nils are skipped
}

// repairHost carries out one host's repair. It runs to its end even on an
// interrupt: it only ever puts a host back.
func (e *Executor) repairHost(ctx context.Context, r Repair, res *HostResult) error {
	cctx, cancel := e.cleanupContext(ctx)
	defer cancel()
	res.Repaired = append(res.Repaired, r.Why)
	for _, s := range r.Steps {
		err := e.repairStep(cctx, r, s)
		if err == nil {
			continue
		}
		if s.Kind == StepHealth && len(r.Fallback) > 0 {
			for _, f := range r.Fallback {
				if ferr := e.repairStep(cctx, r, f); ferr != nil {
					res.Err, res.RevertErr, res.InService = err, ferr, false
					res.failed(false)
					return fmt.Errorf("%w; going back failed: %v", err, ferr)
				}
			}
			res.Repaired = append(res.Repaired, "went back to the container that served before: "+err.Error())
			res.Err = err
			res.failed(false)
			return err
		}
		res.Err, res.InService = err, false
		res.failed(false)
		return err
	}
	return nil
}

func (e *Executor) repairStep(ctx context.Context, r Repair, s RepairStep) error {
	name := r.Host.Name
	host := e.Hosts[name]
	return e.step(name, string(s.Kind), func() (string, error) {
		switch s.Kind {
		case StepDrain:
			return "left by a cut-off run", e.eachBalancer(ctx, name, Balancer.Drain)
		case StepSwitch:
			addr := addrOf(r.Host, s.Port)
			return addr, e.eachBalancer(ctx, name, func(b Balancer, ctx context.Context, service, host string) error {
				return b.Switch(ctx, service, host, addr)
			})
		case StepRemove:
			return s.Container.Name, host.Remove(ctx, s.Container.ID)
		case StepStop:
			return s.Container.Name, host.Stop(ctx, s.Container.ID, e.Service.StopTimeout)
		case StepStart:
			return s.Container.Version(), host.Start(ctx, s.Container.ID)
		case StepRename:
			return s.Name, host.Rename(ctx, s.Container.ID, s.Name)
		case StepHealth:
			hctx, cancel := context.WithTimeout(ctx, e.Service.Health.Deadline+time.Second)
			defer cancel()
			return e.waitHealthy(hctx, host, r.Host, s.Container.ID, s.Port, false, nil)
		}
		return "", fmt.Errorf("unknown repair step %q", s.Kind)
	})
}

// RepairsString renders the repairs for the plan.
func RepairsString(repairs []Repair) string {
	var b strings.Builder
	for _, r := range repairs {
		fmt.Fprintf(&b, "repair %s (%s):\n", r.Host.Name, r.Why)
		for _, s := range r.Steps {
			fmt.Fprintf(&b, "  %s: %s\n", s, s.Reason)
		}
		if len(r.Fallback) > 0 {
			kinds := make([]string, len(r.Fallback))
			for i, s := range r.Fallback {
				kinds[i] = string(s.Kind)
			}
			fmt.Fprintf(&b, "  if the health check fails: %s\n", strings.Join(kinds, ", "))
		}
	}
	return b.String()
}

// WithoutBalancers drops the load balancer steps (drain, switch) of
// repairs, for a worker service: no load balancer lists it. A repair left
// with no step goes.
func WithoutBalancers(repairs []Repair) []Repair {
	var out []Repair
	for _, r := range repairs {
		var steps, fallback []RepairStep
		for _, s := range r.Steps {
			if !balancerSteps[s.Kind] {
				steps = append(steps, s)
			}
		}
		for _, s := range r.Fallback {
			if !balancerSteps[s.Kind] {
				fallback = append(fallback, s)
			}
		}
		if len(steps) == 0 {
			continue
		}
		r.Steps, r.Fallback = steps, fallback
		out = append(out, r)
	}
	return out
}
