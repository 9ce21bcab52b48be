package discovery

import (
	"context"
	"sort"

	"github.com/gantry-dev/gantry/config"
	"github.com/gantry-dev/gantry/internal/names"
	"github.com/gantry-dev/gantry/inventory"
)

// Source lists the hosts of one environment.
type Source interface {
	Hosts(ctx context.Context) ([]inventory.Host, error)
}

// Static is the host list written in the config.
type Static struct {
	List []config.Host
}

// Hosts returns the configured hosts, sorted by name.
func (s Static) Hosts(context.Context) ([]inventory.Host, error) {
	out := make([]inventory.Host, 0, len(s.List))
	for _, h := range s.List {
		out = append(out, inventory.Host{
			Name:         h.Name,
			Address:      h.Address,
			Zone:         h.Zone,
			SSHAddr:      config.HostPort(h.Address, h.SSHPort),
			DockerSocket: h.DockerSocket,
			Services:     append([]string(nil), h.Services...),
		})
	}
	sort.Slice(out, func(i, j int) bool { return names.Less(out[i].Name, out[j].Name) })
	return out, nil
}

// ForService keeps the hosts that run service.
func ForService(hosts []inventory.Host, service string) []inventory.Host {
	var out []inventory.Host
	for _, h := range hosts {
		if h.Runs(service) {
			out = append(out, h)
		}
	}
	return out
}
