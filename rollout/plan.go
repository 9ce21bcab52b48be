package rollout

import (
	"fmt"
	"sort"
	"strings"

	"github.com/gantry-dev/gantry/internal/names"
	"github.com/gantry-dev/gantry/inventory"
)

// StepKind is one thing done to one host.
type StepKind string

// The per-host steps, in the order they run.
const (
	StepCreate  StepKind = "create"  // create the new container while the host still serves
	StepDrain   StepKind = "drain"   // take the host out of every load balancer
	StepStop    StepKind = "stop"    // stop the old container (kept, as -gantry-old)
	StepStart   StepKind = "start"   // create and start the new container
	StepHealth  StepKind = "health"  // wait for the new container's health check
	StepRestore StepKind = "restore" // put the host back in every load balancer
	StepCleanup StepKind = "cleanup" // remove the old container; its image stays cached
	// StepSwitch points the host's upstream entry at the new container's
	// port in every load balancer (start-first: the host stays in rotation).
	StepSwitch StepKind = "switch"
)

// balancerSteps are the steps that only change load balancers: a worker
// (no load balancer) has none.
var balancerSteps = map[StepKind]bool{StepDrain: true, StepRestore: true, StepSwitch: true}

// Step is a planned step, why it is there, and what it acts on. The
// executor runs a host's steps in order and nothing else, apart from its
// reactions to a failure (see Executor).
type Step struct {
	Kind   StepKind
	Reason string
	// Tag is the version the step acts on: the new one for create, start
	// and health, the one running before for stop and cleanup ("" for the
	// load balancer steps).
	Tag string
	// Port is the port the step acts on: the new container's for create,
	// start and health and the one switch points the host's entry at; the
	// old container's for stop and cleanup (0: the service's port).
	Port int
}

// HostSnapshot is what was observed on one host before planning.
type HostSnapshot struct {
	Host inventory.Host
	// Current is the service's container on the host, if it has one.
	Current *inventory.Container
	// Old and New are the -gantry-old and -gantry-new containers a run
	// cut off mid-swap left behind, if any.
	Old, New *inventory.Container
	// Entries are the host's lines in each load balancer's upstream, by
	// load balancer name (nil: not observed; a load balancer that does not
	// list the host has no entry).
	Entries map[string]Entry
	// Held says why the host is to stay out of every load balancer (in
	// maintenance, or marked down by hand); "" for a host that serves.
	Held string
	// Release is the release container (<container>-gantry-release) a
	// run cut off mid-release left on the host, if any.
	Release *inventory.Container
}

// HostPlan is what will happen on one host.
type HostPlan struct {
	Host inventory.Host
	// To is what the host moves to.
	To Target
	// From is the version running now ("" when the host runs nothing).
	From string
	// FromRunning says the container of From runs (it may have stopped).
	FromRunning bool
	// FromImage is the image of the version running now, cached on the
	// host: what a revert goes back to.
	FromImage string
	// FromPort is the port the current container serves on, as recorded
	// on it (0: none recorded, the service's port).
	FromPort int
	// FromPrevious is the previous version's image the current container
	// records: a move back to From records it again, so a rollback after
	// a failed deploy goes to the version before From, not to the one
	// that failed.
	FromPrevious string
	// MovingBack is set on a host moved back to the version it ran before
	// the run (another host failed): the new container records Previous as
	// its previous version's image, not the image of the one it replaces.
	MovingBack bool
	Previous   string
	// Port is the port the new container listens on (0: the service's).
	Port int
	// StartFirst: the new container starts beside the old one on Port and
	// the host's upstream entry is switched to it; the host stays in
	// rotation. Otherwise the host is drained and the old one stopped first.
	StartFirst bool
	Steps      []Step
	// Skip says why nothing is done on this host ("" when something is).
	Skip string
	// KeepOut says why the host stays out of every load balancer: it is
	// moved and health-checked, never put back ("" for a serving host).
	KeepOut string
}

// Batch is a set of hosts out of rotation at the same time.
type Batch struct {
	Hosts []HostPlan
}

// Plan is a whole deploy, computed without touching the fleet.
type Plan struct {
	// Kind is what the run does.
	Kind RunKind
	// Target is the headline target; each host's own is HostPlan.To.
	Target Target
	// Pull lists the hosts that pull the image before any host is drained.
	Pull    []inventory.Host
	Batches []Batch
	// Skipped are hosts already on the target version.
	Skipped []HostPlan
	// Repairs put hosts a cut-off run left unclean back into a clean
	// state; they run first, and the batches are planned from the state
	// they leave.
	Repairs []Repair
	// Release is the release step (nil: none): it runs after the pull,
	// before the repairs and any drain.
	Release *Release
	// Strategy is how the hosts' containers are replaced: the hosts'
	// steps were planned for it, and so is the revert plan (RevertPlan).
	Strategy Strategy
	// Canary is the canary stage (nil: none): the executor bakes after
	// the canary batch.
	Canary *Canary
	// Notes say what the planner chose that the operator should know.
	Notes []string
}

// RunKind is the plan's Kind, RunDeploy when unset (a plan built by hand).
func (p Plan) RunKind() RunKind {
	if p.Kind == "" {
		return RunDeploy
	}
	return p.Kind
}

// Changes says whether carrying the plan out changes anything on the
// fleet: a pull, a release command, a repair or a host to move. A plan
// without (every host on the target already) is a no-op.
func (p Plan) Changes() bool {
	return len(p.Pull) > 0 || p.Release != nil || len(p.Repairs) > 0 || len(p.Batches) > 0
}

// PlanDeploy plans moving every snapshot host to target, batchSize hosts at
// a time, stop-first on the service's port, hosts in name order, no batch
// taking a whole zone while the hosts span several. Hosts already running
// the target version are skipped.
func PlanDeploy(target Target, hosts []HostSnapshot, batchSize int) Plan {
	p, _ := PlanDeployWith(target, hosts, SpreadRules{BatchSize: batchSize}, Strategy{})
	return p
}

// PlanDeployWith is PlanDeploy under spread rules and a swap strategy; it
// refuses (ErrSpread) when no batching keeps the rules.
func PlanDeployWith(target Target, hosts []HostSnapshot, rules SpreadRules, strategy Strategy) (Plan, error) {
	hs := append([]HostSnapshot(nil), hosts...)
	sort.SliceStable(hs, func(i, j int) bool { return names.Less(hs[i].Host.Name, hs[j].Host.Name) })
	p := Plan{Kind: RunDeploy, Target: target, Strategy: strategy}
	var todo []HostPlan
	for _, h := range hs {
		hp := PlanHost(observed(h, target), h, strategy)
		if hp.Skip != "" {
			p.Skipped = append(p.Skipped, hp)
			continue
		}
		p.Pull = append(p.Pull, h.Host)
		todo = append(todo, hp)
	}
	if rules.Serving == 0 {
		rules.Serving = len(hosts)
	}
	// The hosts kept out serve nothing now.
	rules.Serving = max(0, rules.Serving-(len(hosts)-Serving(hosts)))
	var err error
	p.Batches, err = BatchKeptOut(todo, func(hs []HostPlan) ([]Batch, error) {
		if rules.Canary == 0 {
			return SpreadBatches(hs, rules)
		}
		if len(hs) <= rules.Canary {
			// Nothing left to compare a canary with (a deploy resumed
			// after its canary passed, or nothing to move): no stage.
			if len(hs) > 0 {
				p.Notes = append(p.Notes, fmt.Sprintf("no canary stage: %d serving host(s) left to move, none would stay on the old version to compare with", len(hs)))
			}
			return SpreadBatches(hs, rules)
		}
		canary, rest, err := canaryBatches(hs, rules.Canary, rules)
		if err != nil {
			return nil, err
		}
		p.Canary = &Canary{}
		for _, hp := range canary.Hosts {
			p.Canary.Hosts = append(p.Canary.Hosts, hp.Host.Name)
		}
		for _, b := range rest {
			for _, hp := range b.Hosts {
				p.Canary.Baseline = append(p.Canary.Baseline, hp.Host.Name)
			}
		}
		return append([]Batch{canary}, rest...), nil
	})
	if p.Canary != nil && len(p.Batches) > 0 && p.Batches[0].Hosts[0].KeepOut != "" {
		p.Canary.Batch = 1 // after the batch of the hosts kept out
	}
	return p, err
}

// observed is the host plan of moving h to target, with what h runs now;
// Skip is set when it already runs target.
func observed(h HostSnapshot, target Target) HostPlan {
	hp := HostPlan{Host: h.Host, To: target}
	cur := h.Current
	if cur == nil {
		return hp
	}
	hp.From, hp.FromRunning = cur.Version(), cur.Running
	hp.FromPort = cur.Port(0)
	hp.FromImage = cur.Labels[inventory.LabelImage]
	if hp.FromImage == "" {
		hp.FromImage = cur.Image
	}
	hp.FromPrevious = cur.Labels[inventory.LabelPreviousImage]
	if cur.Running && cur.Labels[inventory.LabelImage] == target.Image {
		hp.Skip = "already runs " + target.Tag
	}
	return hp
}

// PlanHost completes hp, the move of host h from what it runs (hp.From*)
// to hp.To, under strategy s: whether the host stays out of the load
// balancers, the port its new container listens on, and its steps. A host
// with Skip set gets no steps. Planners of every kind of run (deploy,
// rollback) call it, so a host moves the same way whoever planned it.
func PlanHost(hp HostPlan, h HostSnapshot, s Strategy) HostPlan {
	if h.Held != "" && !s.Worker {
		hp.KeepOut = h.Held
	}
	if hp.Skip != "" {
		return hp
	}
	if hp.FromPort == 0 {
		hp.FromPort = s.Port
	}
	hp.Port, hp.StartFirst = s.Port, s.StartFirst
	if s.StartFirst && !s.Worker {
		hp.Port = s.Ports[0]
		if hp.From != "" && hp.FromPort == s.Ports[0] {
			hp.Port = s.Ports[1]
		}
		if hp.KeepOut != "" {
			// Out of the load balancers, it has no traffic to keep:
			// stop-first, on the port it serves on.
			hp.StartFirst = false
			hp.Port = s.Ports[0]
			if hp.From != "" && hp.FromPort == s.Ports[1] {
				hp.Port = s.Ports[1]
			}
		}
	}
	// A host kept out needs no drain when every load balancer that lists
	// it lists it down already.
	drain := h.Entries == nil || !inEveryLBDown(h)
	hp.Steps = hostSteps(hp, s.Worker, drain)
	return hp
}

// hostSteps are the steps that move hp's host, with their operands:
// a worker's (no load balancer), a start-first swap's, or a stop-first
// swap's; a host kept out is drained only when drain is set and never put
// back.
func hostSteps(hp HostPlan, worker, drain bool) []Step {
	var steps []Step
	switch {
	case worker:
		steps = WorkerSteps(hp)
	case hp.StartFirst:
		steps = StartFirstSteps(hp)
	case hp.KeepOut != "":
		steps = KeptOutSteps(hp, drain)
	default:
		steps = SwapSteps(hp)
	}
	for i, s := range steps {
		switch s.Kind {
		case StepCreate, StepStart, StepHealth:
			steps[i].Tag, steps[i].Port = hp.To.Tag, hp.Port
		case StepSwitch:
			steps[i].Port = hp.Port
		case StepStop, StepCleanup:
			steps[i].Tag, steps[i].Port = hp.From, hp.FromPort
		}
	}
	return steps
}

// SwapSteps are the steps that move a host stop-first from what it runs
// (hp.From, "" for nothing) to hp.To: drained, old container stopped, new
// one started and checked, back into every load balancer (on the new
// container's port when it moves: a switch).
func SwapSteps(hp HostPlan) []Step {
	var steps []Step
	steps = append(steps, Step{Kind: StepCreate, Reason: "create " + hp.To.Tag + " under the service's name beside the old container, which serves on as -gantry-old; it binds nothing until started"})
	steps = append(steps, Step{Kind: StepDrain, Reason: "no traffic reaches the host while its container is swapped"})
	switch {
	case hp.From == "":
		// nothing to stop
	case hp.FromRunning:
		steps = append(steps, Step{Kind: StepStop, Reason: "stop " + hp.From + " gracefully, keep it until the new one is healthy"})
	default:
		steps = append(steps, Step{Kind: StepStop, Reason: "old container " + hp.From + " is not running; keep it for restore"})
	}
	steps = append(steps,
		Step{Kind: StepStart, Reason: "start " + hp.To.Tag + " under the service's name"},
		Step{Kind: StepHealth, Reason: "traffic only after the health check passes"},
	)
	if hp.Port != 0 && hp.FromPort != 0 && hp.Port != hp.FromPort {
		steps = append(steps, Step{Kind: StepSwitch, Reason: fmt.Sprintf("back into every load balancer, on port %d", hp.Port)})
	} else {
		steps = append(steps, Step{Kind: StepRestore, Reason: "back into every load balancer"})
	}
	if hp.From != "" {
		steps = append(steps, Step{Kind: StepCleanup, Reason: "remove the old container; its image stays cached for rollback"})
	}
	return steps
}

// Strategy is how a service's containers are replaced, from its config.
type Strategy struct {
	// StartFirst starts the new container beside the old one, on the one
	// of Ports the old one does not serve on.
	StartFirst bool
	// Port is the service's port: where a stop-first container listens,
	// and where a container with no recorded port serves.
	Port int
	// Ports are the two ports a start-first service alternates between.
	Ports [2]int
	// Worker is set for a service with no port and no load balancer:
	// nothing to drain, switch or restore.
	Worker bool
}

// WorkerSteps are the steps that move a worker (no port, no load
// balancer) on a host: stop-first, the old worker finishes the job in hand
// (within stop_timeout) before the new one starts; start-first, the new one
// starts and passes its check before the old one is stopped.
func WorkerSteps(hp HostPlan) []Step {
	if hp.StartFirst {
		steps := []Step{
			{Kind: StepCreate, Reason: "create " + hp.To.Tag + " beside the old worker"},
			{Kind: StepStart, Reason: "start " + hp.To.Tag + " while the old worker keeps working"},
			{Kind: StepHealth, Reason: "the new worker passes its check; on failure it goes and nothing else changed"},
		}
		if hp.From != "" {
			steps = append(steps, Step{Kind: StepStop, Reason: "stop " + hp.From + ": it finishes the job in hand (stop_timeout)"})
		}
		return append(steps, cleanupStartFirst(hp))
	}
	steps := []Step{{Kind: StepCreate, Reason: "create " + hp.To.Tag + " beside the old container; it starts nothing until started"}}
	if hp.From != "" {
		steps = append(steps, Step{Kind: StepStop, Reason: "stop " + hp.From + ": it finishes the job in hand (stop_timeout), keep it until the new one passes"})
	}
	steps = append(steps,
		Step{Kind: StepStart, Reason: "start " + hp.To.Tag + " under the service's name"},
		Step{Kind: StepHealth, Reason: "the new worker passes its check, or the old one is started again"})
	if hp.From != "" {
		steps = append(steps, Step{Kind: StepCleanup, Reason: "remove the old container; its image stays cached for rollback"})
	}
	return steps
}

// cleanupStartFirst is a start-first swap's last step: the new container,
// created under the -gantry-new name, takes the service's name, and the old
// one (if any) goes.
func cleanupStartFirst(hp HostPlan) Step {
	if hp.From == "" {
		return Step{Kind: StepCleanup, Reason: "give the new container the service's name"}
	}
	return Step{Kind: StepCleanup, Reason: "give the new container the service's name; remove the old one, its image stays cached for rollback"}
}

// StartFirstSteps are the steps that move a host start-first: the new
// container runs beside the old one until it is healthy and the load
// balancers send the host's traffic to it.
func StartFirstSteps(hp HostPlan) []Step {
	steps := []Step{
		{Kind: StepCreate, Reason: fmt.Sprintf("create %s beside the old container, to listen on port %d", hp.To.Tag, hp.Port)},
		{Kind: StepStart, Reason: fmt.Sprintf("start %s while the host keeps serving on port %d", hp.To.Tag, hp.FromPort)},
		{Kind: StepHealth, Reason: "traffic only after the health check passes; on failure the new container goes and nothing else changed"},
		{Kind: StepSwitch, Reason: fmt.Sprintf("point the host's entry in every load balancer at port %d (one reload; requests in flight finish on %d)", hp.Port, hp.FromPort)},
	}
	if hp.From != "" {
		steps = append(steps, Step{Kind: StepStop, Reason: "stop " + hp.From + " gracefully once no load balancer sends it requests"})
	}
	return append(steps, cleanupStartFirst(hp))
}

// String renders the plan for people and for tests.
func (p Plan) String() string {
	var b strings.Builder
	hosts := 0
	for _, bt := range p.Batches {
		hosts += len(bt.Hosts)
	}
	kind := p.RunKind()
	if kind == RunDeploy {
		fmt.Fprintf(&b, "deploy %s@%s (%s): %d host(s) in %d batch(es)\n", p.Target.Service, p.Target.Tag, p.Target.Image, hosts, len(p.Batches))
	} else {
		fmt.Fprintf(&b, "%s %s: %d host(s) in %d batch(es)\n", kind, p.Target.Service, hosts, len(p.Batches))
	}
	if len(p.Pull) > 0 {
		names := make([]string, len(p.Pull))
		for i, h := range p.Pull {
			names[i] = h.Name
		}
		fmt.Fprintf(&b, "pull first, on every host: %s\n", strings.Join(names, " "))
	}
	b.WriteString(p.Release.String())
	b.WriteString(RepairsString(p.Repairs))
	b.WriteString(p.Canary.String())
	for _, n := range p.Notes {
		fmt.Fprintf(&b, "note: %s\n", n)
	}
	for i, bt := range p.Batches {
		canary := ""
		if p.Canary != nil && i == p.Canary.Batch {
			canary = " (canary)"
		}
		fmt.Fprintf(&b, "batch %d%s:\n", i+1, canary)
		for _, hp := range bt.Hosts {
			from := hp.From
			if from == "" {
				from = "(none)"
			}
			kinds := make([]string, len(hp.Steps))
			for j, s := range hp.Steps {
				kinds[j] = string(s.Kind)
			}
			zone := ""
			if hp.Host.Zone != "" {
				zone = " [" + hp.Host.Zone + "]"
			}
			ports := ""
			if hp.StartFirst || (hp.Port != 0 && hp.FromPort != 0 && hp.Port != hp.FromPort) {
				ports = fmt.Sprintf(" (port %d -> %d)", hp.FromPort, hp.Port)
			}
			out := ""
			if hp.KeepOut != "" {
				out = " (stays down in every load balancer: " + hp.KeepOut + ")"
			}
			fmt.Fprintf(&b, "  %s%s: %s -> %s%s: %s%s\n", hp.Host.Name, zone, from, hp.To.Tag, ports, strings.Join(kinds, ", "), out)
		}
	}
	for _, hp := range p.Skipped {
		out := ""
		if hp.KeepOut != "" {
			out = " (stays down in every load balancer: " + hp.KeepOut + ")"
		}
		fmt.Fprintf(&b, "skip %s: %s%s\n", hp.Host.Name, hp.Skip, out)
	}
	return b.String()
}
