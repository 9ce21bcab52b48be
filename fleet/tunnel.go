package fleet

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/gantry-dev/gantry/config"
	"github.com/gantry-dev/gantry/discovery"
	namerules "github.com/gantry-dev/gantry/internal/names"
	"github.com/gantry-dev/gantry/internal/panics"
	"github.com/gantry-dev/gantry/inventory"
	"github.com/gantry-dev/gantry/remote"
)

// This file holds what `gantry logs` and `gantry exec` share: choosing the
// hosts of a service they look at, and reaching each host's Docker daemon
// through its SSH connection (no load balancer, no registry credential).

// pickHosts returns the hosts of env (named envName) that run service,
// in natural order, or only host when one is named. A host that is not one
// of them is refused, naming the host and listing the valid ones.
func pickHosts(all []inventory.Host, envName, service, host string) ([]inventory.Host, error) {
	hosts := slices.Clone(discovery.ForService(all, service))
	slices.SortFunc(hosts, func(a, b inventory.Host) int { return namerules.Compare(a.Name, b.Name) })
	names := make([]string, len(hosts))
	for i, h := range hosts {
		names[i] = h.Name
	}
	if len(hosts) == 0 {
		return nil, fmt.Errorf("%w: no host of environment %s runs service %s", ErrRefused, envName, service)
	}
	if host == "" {
		return hosts, nil
	}
	for _, h := range hosts {
		if h.Name == host {
			return []inventory.Host{h}, nil
		}
	}
	for _, h := range all {
		if h.Name == host {
			return nil, fmt.Errorf("%w: --host %s: host %s of environment %s does not run service %s (hosts of %s: %s)",
				ErrRefused, host, host, envName, service, service, strings.Join(names, ", "))
		}
	}
	return nil, fmt.Errorf("%w: --host %s: environment %s has no host %s (hosts of %s: %s)",
		ErrRefused, host, envName, host, service, strings.Join(names, ", "))
}

// lookup validates the environment and service of a logs or exec command
// and returns the hosts to look at (see pickHosts).
func lookup(ctx context.Context, cfg *config.Config, envName, service, host string, warn func(string)) (config.Environment, config.Service, []inventory.Host, error) {
	env, err := cfg.Environment(envName)
	if err != nil {
		return env, config.Service{}, nil, fmt.Errorf("%w: %w", ErrRefused, err)
	}
	svc, err := cfg.Service(service)
	if err != nil {
		return env, svc, nil, fmt.Errorf("%w: %w", ErrRefused, err)
	}
	var msgs strings.Builder
	all, err := discoverHosts(ctx, cfg, env, &msgs)
	for _, line := range strings.Split(strings.TrimSpace(msgs.String()), "\n") {
		if line != "" {
			warn(strings.TrimPrefix(line, "warning: "))
		}
	}
	if err != nil {
		return env, svc, nil, err
	}
	hosts, err := pickHosts(all, envName, service, host)
	return env, svc, hosts, err
}

// dockerHost is one host's SSH connection and the Docker client through it.
type dockerHost struct {
	conn   *remote.Conn
	docker *remote.Docker
}

func (h *dockerHost) close() {
	h.docker.Close()
	h.conn.Close()
}

// dialDocker opens an SSH connection to h and checks its Docker daemon
// answers.
func dialDocker(ctx context.Context, cfg *config.Config, env config.Environment, h inventory.Host) (*dockerHost, error) {
	conn, err := remote.Dial(ctx, sshConfig(cfg, env), remote.Endpoint{Name: h.Name, Addr: h.SSHAddr})
	if err != nil {
		return nil, err
	}
	d, err := remote.NewDocker(conn, h.DockerSocket, cfg.SSH.DockerCallTimeout.D())
	if err == nil {
		err = d.Ping(ctx)
	}
	if err != nil {
		conn.Close()
		return nil, err
	}
	return &dockerHost{conn: conn, docker: d}, nil
}

// dialDockers dials every host, at most DialConcurrency at once, and
// returns the hosts reached and, by name, why the others were not.
func dialDockers(ctx context.Context, cfg *config.Config, env config.Environment, hosts []inventory.Host) (map[string]*dockerHost, map[string]error) {
	var mu sync.Mutex
	reached := map[string]*dockerHost{}
	failed := map[string]error{}
	var g errgroup.Group
	g.SetLimit(DialConcurrency)
	for _, h := range hosts {
		fail := func(err error) { mu.Lock(); failed[h.Name] = err; mu.Unlock() }
		g.Go(func() error {
			defer panics.Recover(fail)
			dh, err := dialDocker(ctx, cfg, env, h)
			if err != nil {
				fail(err)
				return nil
			}
			mu.Lock()
			reached[h.Name] = dh
			mu.Unlock()
			return nil
		})
	}
	_ = g.Wait()
	return reached, failed
}
