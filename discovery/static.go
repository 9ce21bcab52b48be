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
	// Discover returns the hosts found, in natural order of name, and a
	// warning for each one it had to leave out.
	Discover(ctx context.Context) (Result, error)
}

// Result is what a Source found.
type Result struct {
	// Hosts are the hosts found, in natural order of name.
	Hosts []inventory.Host
	// Warnings say, one line each, what was left out and why (an EC2
	// instance without an address, or with a tag that breaks the name
	// rules); sorted.
	Warnings []string
}

// Static is the host list written in the config.
type Static struct {
	List []config.Host
}

// Discover returns the configured hosts, sorted by name. A static list
// leaves nothing out: it has no warnings.
func (s Static) Discover(context.Context) (Result, error) {
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
	return Result{Hosts: out}, nil
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
