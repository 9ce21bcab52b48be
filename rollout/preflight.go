package rollout

import (
	"errors"
	"fmt"
	"strings"

	"github.com/hashicorp/go-multierror"
)

// ErrPreflight marks a deploy refused by its pre-flight checks: nothing on
// the fleet was changed.
var ErrPreflight = errors.New("refused by pre-flight checks, nothing was changed")

// HostFacts is what pre-flight observed on one host of the service.
type HostFacts struct {
	Host string
	// DataRoot is the Docker data root and FreeDisk the bytes free on it.
	DataRoot string
	FreeDisk int64
	// Running says the service's container runs; Healthy that it answered
	// its health check just now.
	Running bool
	Healthy bool
	// KeptOut: the host stays out of the load balancers (maintenance), so
	// it serves nothing, healthy or not.
	KeptOut bool
}

// PreflightRules are the limits a plan must respect.
type PreflightRules struct {
	MinFreeDisk int64
	// MinInService is how many healthy hosts must keep serving while a
	// batch is out of the load balancers.
	MinInService int
}

// CheckPreflight returns every rule the plan would break, one error per
// host or batch (nil when all hold). It is pure: the facts are gathered by
// the caller.
func CheckPreflight(plan Plan, facts []HostFacts, rules PreflightRules) error {
	var errs *multierror.Error
	healthy := map[string]bool{}
	for _, f := range facts {
		healthy[f.Host] = f.Healthy && !f.KeptOut
		if f.FreeDisk < rules.MinFreeDisk && inPlan(plan, f.Host) {
			errs = multierror.Append(errs, fmt.Errorf("%s: only %s free on the Docker data root %s, below min_free_disk %s: free space (docker image prune, or raise the disk) before deploying",
				f.Host, bytesString(f.FreeDisk), f.DataRoot, bytesString(rules.MinFreeDisk)))
		}
	}
	serving := 0
	for _, f := range facts {
		if f.Healthy && !f.KeptOut {
			serving++
		}
	}
	// A service that serves nowhere yet (first deploy) has nothing to keep.
	if serving > 0 {
		for i, b := range plan.Batches {
			var out []string
			for _, hp := range b.Hosts {
				if healthy[hp.Host.Name] {
					out = append(out, hp.Host.Name)
				}
			}
			if left := serving - len(out); left < rules.MinInService {
				var sick []string
				for _, f := range facts {
					if !f.Healthy && !f.KeptOut {
						sick = append(sick, f.Host)
					}
				}
				msg := fmt.Sprintf("batch %d takes %s out of service: %d of %d healthy hosts would serve, below min_in_service %d", i+1, strings.Join(out, ", "), left, serving, rules.MinInService)
				if len(sick) > 0 {
					msg += fmt.Sprintf("; not healthy now: %s", strings.Join(sick, ", "))
				}
				errs = multierror.Append(errs, errors.New(msg+" (lower batch_size or bring hosts back first)"))
			}
		}
	}
	return errs.ErrorOrNil()
}

func inPlan(p Plan, host string) bool {
	for _, h := range p.Pull {
		if h.Name == host {
			return true
		}
	}
	return false
}

func bytesString(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%dB", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f%ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
