package inventory

import "fmt"

// ServiceStanding is one service of a host about to be decommissioned, as
// its other hosts stand.
type ServiceStanding struct {
	Service string
	// Staying counts the service's hosts that stay (neither this one nor
	// decommissioned already); Healthy those of them that passed their
	// health check.
	Staying, Healthy int
	// MinInService resolves the service's min_in_service for a number of
	// hosts; nil when it sets none.
	MinInService func(total int) int
	// PortUnknown lists the staying hosts of a start-first service whose
	// serving port could not be read (unreachable): their load balancer
	// entries would be rewritten with a guess.
	PortUnknown []string
}

// DecommissionMinimum is how many healthy hosts a service must keep when
// one of its hosts is decommissioned: its min_in_service of the hosts it
// has now (the staying ones and this one), or one when it sets none.
func DecommissionMinimum(s ServiceStanding) int {
	if s.MinInService == nil {
		return 1
	}
	return s.MinInService(s.Staying + 1)
}

// DecommissionRefusals says why decommissioning a host would leave its
// services unsafe, one reason each, in the order of services; none: it is
// safe.
func DecommissionRefusals(services []ServiceStanding) []string {
	var refusals []string
	for _, s := range services {
		for _, h := range s.PortUnknown {
			refusals = append(refusals, fmt.Sprintf("cannot tell which port %s serves %s on (unreachable), so its load balancer entries cannot be rewritten safely", h, s.Service))
		}
		if min := DecommissionMinimum(s); s.Healthy < min {
			refusals = append(refusals, fmt.Sprintf("service %s would keep %d healthy host(s), below min_in_service %d", s.Service, s.Healthy, min))
		}
	}
	return refusals
}
