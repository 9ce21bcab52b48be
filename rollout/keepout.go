package rollout

import (
	"sort"
)

// A host is kept out of the load balancers when HostSnapshot.Held says
// why: it is in maintenance, or someone marked it down by hand. A deploy or
// a rollback still moves it to the new version and health-checks it, but
// never puts it (back) into a load balancer: it ends down in every one.
// Being out already, it needs no drain, and it never counts as serving.

// HandDown lists the load balancers whose upstream file lists the host
// down without gantry having marked it so (someone did it by hand).
func HandDown(h HostSnapshot) []string {
	var lbs []string
	for name, e := range h.Entries {
		if e.Down && e.ByHand {
			lbs = append(lbs, name)
		}
	}
	sort.Strings(lbs)
	return lbs
}

// inEveryLBDown reports whether every load balancer that lists the host
// lists it down (true when none lists it).
func inEveryLBDown(h HostSnapshot) bool {
	for _, e := range h.Entries {
		if !e.Down {
			return false
		}
	}
	return true
}

// KeptOutSteps are the steps that move a host kept out of the load
// balancers from what it runs to hp.To: like a stop-first swap, without a
// restore (or switch), and without a drain when every load balancer
// already lists it down (drain false).
func KeptOutSteps(hp HostPlan, drain bool) []Step {
	var steps []Step
	for _, s := range SwapSteps(hp) {
		switch s.Kind {
		case StepDrain:
			if !drain {
				continue
			}
			s.Reason = "it is to stay out: a load balancer still lists it up"
		case StepRestore, StepSwitch:
			continue // it stays out
		}
		steps = append(steps, s)
	}
	return steps
}

// Serving counts the hosts that serve when nothing is being changed: the
// ones not kept out.
func Serving(hosts []HostSnapshot) int {
	n := 0
	for _, h := range hosts {
		if h.Held == "" {
			n++
		}
	}
	return n
}

// BatchKeptOut puts the hosts kept out in a first batch of their own (they
// serve nothing, so taking them together costs no capacity, and a version
// that fails there fails before any serving host is touched) and cuts the
// others with spread.
func BatchKeptOut(hosts []HostPlan, spread func([]HostPlan) ([]Batch, error)) ([]Batch, error) {
	var kept, others []HostPlan
	for _, hp := range hosts {
		if hp.KeepOut != "" {
			kept = append(kept, hp)
		} else {
			others = append(others, hp)
		}
	}
	batches, err := spread(others)
	if len(kept) > 0 {
		batches = append([]Batch{{Hosts: kept}}, batches...)
	}
	return batches, err
}
