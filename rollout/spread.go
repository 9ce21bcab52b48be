package rollout

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// ErrSpread marks a plan refused by a spread rule.
var ErrSpread = errors.New("spread rule")

// SpreadRules keep a service available while batches are out.
type SpreadRules struct {
	// BatchSize is the most hosts out at once.
	BatchSize int
	// MinInService is how many of the service's hosts must keep serving
	// while a batch is out (hosts not in the plan count as serving).
	MinInService int
	// Serving is how many of the service's hosts serve now, in the plan or not.
	Serving int
	// Canary is how many serving hosts move first, as the canary batch
	// (0: no canary stage).
	Canary int
}

// SpreadBatches cuts hosts into batches of at most BatchSize so that no
// batch leaves fewer than MinInService hosts serving and, while the hosts
// span more than one zone, no batch takes out every remaining host of a
// zone. Hosts keep their order within the constraints. It refuses, naming
// the rule and the hosts, when no such batching exists.
func SpreadBatches(hosts []HostPlan, r SpreadRules) ([]Batch, error) {
	if len(hosts) == 0 {
		return nil, nil
	}
	serving := max(r.Serving, len(hosts))
	size := min(max(r.BatchSize, 1), serving-r.MinInService)
	if size < 1 {
		names := make([]string, len(hosts))
		for i, h := range hosts {
			names[i] = h.Host.Name
		}
		return nil, fmt.Errorf("%w: min_in_service %d of %d host(s) leaves no host free to update (%s): lower min_in_service or add hosts", ErrSpread, r.MinInService, serving, strings.Join(names, ", "))
	}
	zoneLeft := map[string]int{}
	for _, h := range hosts {
		zoneLeft[h.Host.Zone]++
	}
	multiZone := len(zoneLeft) > 1
	// Work on indices: a pass over the pending hosts fills one batch and
	// leaves the rest, in order, for the next.
	pending := make([]int, len(hosts))
	for i := range pending {
		pending[i] = i
	}
	var out []Batch
	later := make([]int, 0, len(hosts))
	for len(pending) > 0 {
		var batch []HostPlan
		inBatch := map[string]int{}
		later = later[:0]
		for k, i := range pending {
			if len(batch) == size {
				later = append(later, pending[k:]...)
				break
			}
			z := hosts[i].Host.Zone
			// Taking the last remaining host of a zone is fine once the
			// others of that zone are done and serving again.
			if multiZone && zoneLeft[z] > 1 && inBatch[z]+1 == zoneLeft[z] {
				later = append(later, i)
				continue
			}
			batch = append(batch, hosts[i])
			inBatch[z]++
		}
		if len(batch) == 0 {
			batch = append(batch, hosts[later[0]])
			inBatch[hosts[later[0]].Host.Zone]++
			later = later[1:]
		}
		for z, n := range inBatch {
			zoneLeft[z] -= n
		}
		out = append(out, Batch{Hosts: batch})
		// Two buffers, swapped: the hosts left over become the pending ones.
		pending, later = later, pending
	}
	return out, nil
}

// Footprint says where a service's hosts are: how many and in which zones.
type Footprint struct {
	Hosts int
	Zones []string
}

// FootprintOf counts the hosts and zones of a snapshot.
func FootprintOf(hosts []HostSnapshot) Footprint {
	zones := map[string]bool{}
	for _, h := range hosts {
		zones[h.Host.Zone] = true
	}
	f := Footprint{Hosts: len(hosts)}
	for z := range zones {
		f.Zones = append(f.Zones, z)
	}
	sort.Strings(f.Zones)
	return f
}

// SinglePointOfFailure describes why the footprint has one, or "".
func (f Footprint) SinglePointOfFailure(minZones int) string {
	switch {
	case f.Hosts == 1:
		return "the service runs on a single host"
	case len(f.Zones) < max(minZones, 2):
		return fmt.Sprintf("the service's %d hosts are all in zone(s) %s (min_zones %d)", f.Hosts, strings.Join(f.Zones, ", "), max(minZones, 2))
	}
	return ""
}
