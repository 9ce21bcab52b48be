package rollback

import (
	"errors"
	"fmt"
	"sort"

	"github.com/distribution/reference"
	"github.com/hashicorp/go-multierror"

	"github.com/gantry-dev/gantry/internal/names"
	"github.com/gantry-dev/gantry/inventory"
	"github.com/gantry-dev/gantry/rollout"
)

// ErrNoPrevious is returned (wrapped) for a host with no earlier version
// recorded.
var ErrNoPrevious = errors.New("no previous version recorded")

// Options say where to roll back to.
type Options struct {
	Service string
	// To is the image to go back to on every host; zero: each host's
	// previous version.
	To rollout.Target
	// BatchSize is the number of hosts out at once.
	BatchSize int
	// MinInService is the spread rule of normal (not emergency) batches.
	MinInService int
	// Emergency uses EmergencyBatches instead of BatchSize.
	Emergency bool
	// Resume is the image each host goes to, by host name, recorded by a
	// rollback that was cut off midway: it wins over the previous version.
	Resume map[string]string
	// Strategy is how the service's containers are replaced.
	Strategy rollout.Strategy
}

// Plan returns the rollback plan, or one error per host that cannot be
// rolled back (nothing runs there, or no earlier version is recorded).
func Plan(hosts []rollout.HostSnapshot, o Options) (rollout.Plan, error) {
	hs := append([]rollout.HostSnapshot(nil), hosts...)
	sort.SliceStable(hs, func(i, j int) bool { return names.Less(hs[i].Host.Name, hs[j].Host.Name) })
	p := rollout.Plan{Kind: rollout.RunRollback, Target: rollout.Target{Service: o.Service, Tag: o.To.Tag, Image: o.To.Image}, Strategy: o.Strategy}
	var errs *multierror.Error
	var todo []rollout.HostPlan
	for _, h := range hs {
		cur := h.Current
		if cur == nil {
			errs = multierror.Append(errs, fmt.Errorf("%s: %s does not run there: nothing to roll back", h.Host.Name, o.Service))
			continue
		}
		to := o.To
		if img, ok := o.Resume[h.Host.Name]; ok && to.Image == "" {
			to = rollout.Target{Service: o.Service, Tag: tagOf(img), Image: img}
		}
		if to.Image == "" {
			prev := cur.Labels[inventory.LabelPreviousImage]
			if prev == "" {
				errs = multierror.Append(errs, fmt.Errorf("%s: %w for %s (it runs %s): give the version with --to", h.Host.Name, ErrNoPrevious, o.Service, cur.Version()))
				continue
			}
			to = rollout.Target{Service: o.Service, Tag: tagOf(prev), Image: prev}
		}
		hp := rollout.HostPlan{Host: h.Host, To: to, From: cur.Version(), FromRunning: cur.Running, FromImage: cur.Labels[inventory.LabelImage], FromPort: cur.Port(0)}
		if hp.FromImage == "" {
			hp.FromImage = cur.Image
		}
		if cur.Running && cur.Labels[inventory.LabelImage] == to.Image {
			hp.Skip = "already runs " + to.Tag
			p.Skipped = append(p.Skipped, rollout.PlanHost(hp, h, o.Strategy))
			continue
		}
		todo = append(todo, rollout.PlanHost(hp, h, o.Strategy))
	}
	if err := errs.ErrorOrNil(); err != nil {
		return p, err
	}
	// The hosts kept out of the load balancers go first, together: they
	// serve nothing.
	var err error
	if o.Emergency {
		p.Batches, err = rollout.BatchKeptOut(todo, func(hs []rollout.HostPlan) ([]rollout.Batch, error) { return EmergencyBatches(hs), nil })
	} else {
		p.Batches, err = rollout.BatchKeptOut(todo, func(todo []rollout.HostPlan) ([]rollout.Batch, error) {
			return rollout.SpreadBatches(todo, rollout.SpreadRules{BatchSize: o.BatchSize, MinInService: o.MinInService, Serving: rollout.Serving(hs)})
		})
	}
	if err != nil {
		return p, err
	}
	if p.Target.Tag == "" {
		p.Target.Tag = "previous"
	}
	return p, nil
}

// EmergencyBatches cuts hosts into batches of half the hosts (rounded up),
// never every host of a zone at once while the hosts span several zones.
func EmergencyBatches(hosts []rollout.HostPlan) []rollout.Batch {
	b, _ := rollout.SpreadBatches(hosts, rollout.SpreadRules{BatchSize: max(1, (len(hosts)+1)/2)})
	return b
}

func tagOf(image string) string {
	if named, err := reference.ParseNormalizedNamed(image); err == nil {
		if t, ok := named.(reference.Tagged); ok {
			return t.Tag()
		}
	}
	return image
}
