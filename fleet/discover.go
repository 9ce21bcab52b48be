package fleet

import (
	"context"
	"fmt"
	"io"

	"github.com/gantry-dev/gantry/config"
	"github.com/gantry-dev/gantry/discovery"
	"github.com/gantry-dev/gantry/inventory"
	"github.com/gantry-dev/gantry/rollout"
)

// source returns where the environment's hosts come from: EC2 tags when
// configured, else the static list.
func source(cfg *config.Config, env config.Environment) discovery.Source {
	e := env.Discovery.EC2
	if e == nil {
		return discovery.Static{List: env.Hosts}
	}
	return discovery.EC2{
		Region: e.Region, Profile: e.Profile, Filters: e.Tags, ServicesTag: e.ServicesTag,
		AddressFrom: e.Address, SSHPort: cfg.SSH.Port, DockerSocket: e.DockerSocket,
	}
}

// discoverHosts lists the environment's hosts, printing discovery warnings.
// A discovery failure is a pre-flight refusal: nothing was changed.
func discoverHosts(ctx context.Context, cfg *config.Config, env config.Environment, out io.Writer) ([]inventory.Host, error) {
	found, err := source(cfg, env).Discover(ctx)
	for _, w := range found.Warnings {
		fmt.Fprintln(out, "warning: discovery: "+w)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: discovery: %w", rollout.ErrPreflight, err)
	}
	return found.Hosts, nil
}
