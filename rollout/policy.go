package rollout

import (
	"strings"

	"github.com/gantry-dev/gantry/inventory"
)

// Policies a run applies to what it observed, before it plans: pure
// functions of the observations and the service's rules, so each is table
// tested without a fleet.

// SinglePointOfFailureRules say how a run treats a service whose hosts
// share one point of failure (one host, or too few zones).
type SinglePointOfFailureRules struct {
	// MinZones is the service's min_zones (at least 2 apply).
	MinZones int
	// Production: the environment is a production one.
	Production bool
	// Allowed: the service sets allow_single_point_of_failure.
	Allowed bool
}

// CheckSinglePointOfFailure says why hosts have a single point of failure
// ("" when they have none) and whether a run must be refused for it: in a
// production environment, unless the service allows it. Elsewhere it is a
// warning.
func CheckSinglePointOfFailure(hosts []HostSnapshot, r SinglePointOfFailureRules) (why string, refuse bool) {
	why = FootprintOf(hosts).SinglePointOfFailure(r.MinZones)
	return why, why != "" && r.Production && !r.Allowed
}

// MarkedByHand is a host someone marked down by hand in load balancer
// upstream files gantry owns.
type MarkedByHand struct {
	Host string
	// LBs are the load balancers listing it down by hand, sorted.
	LBs []string
}

// MarkKeptOut sets Held on the hosts that stay out of every load balancer
// for the run: those in maintenance (maintenance, by host name), and those
// marked down by hand. The run still deploys to them, and leaves them out.
// It returns the hosts marked down by hand, in the order of hosts.
func MarkKeptOut(hosts []HostSnapshot, maintenance map[string]inventory.Maintenance) []MarkedByHand {
	var byHand []MarkedByHand
	for i := range hosts {
		name := hosts[i].Host.Name
		if rec, ok := maintenance[name]; ok {
			hosts[i].Held = rec.String()
			continue
		}
		if lbs := HandDown(hosts[i]); len(lbs) > 0 {
			hosts[i].Held = "marked down by hand in " + strings.Join(lbs, ", ")
			byHand = append(byHand, MarkedByHand{Host: name, LBs: lbs})
		}
	}
	return byHand
}
