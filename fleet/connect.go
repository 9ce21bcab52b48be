package fleet

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/hashicorp/go-multierror"
	"golang.org/x/sync/errgroup"

	"github.com/gantry-dev/gantry/config"
	namerules "github.com/gantry-dev/gantry/internal/names"
	"github.com/gantry-dev/gantry/internal/panics"
	"github.com/gantry-dev/gantry/inventory"
	"github.com/gantry-dev/gantry/remote"
	"github.com/gantry-dev/gantry/rollout"
)

// DialConcurrency bounds how many SSH connections are opened at once. It
// stays below OpenSSH's default MaxStartups (10 unauthenticated
// connections; beyond it sshd starts refusing handshakes), which also
// bounds the dials going through one bastion.
const DialConcurrency = 8

// Connections are the open SSH connections of one command run.
type Connections struct {
	Hosts map[string]*Host
	LBs   map[string]*remote.Conn
	// extra are other machines dialled for this run (the lock's).
	extra []*remote.Conn
}

// Host is one app host's connection and Docker client; it satisfies
// rollout.Host.
type Host struct {
	*remote.Docker
	Conn *remote.Conn
	auth remote.RegistryAuth
}

// Pull pulls ref with the registry credential of the config.
func (h *Host) Pull(ctx context.Context, ref string) error { return h.Docker.Pull(ctx, ref, h.auth) }

// ServesHealthy makes one health check (of the service's kind) of svc's
// container on host h, listening on port, from the host's side, and
// reports whether it passed.
func (h *Host) ServesHealthy(ctx context.Context, host inventory.Host, svc config.Service, port int) bool {
	return rollout.ProbeOnce(ctx, h, svc.ContainerName, config.HostPort(host.Address, port), healthCheck(svc.Health))
}

// ServingPort is the port svc's container on the host serves on, as
// recorded on it (start-first services alternate between two), or the
// service's port; known is false when the host could not be asked.
func (h *Host) ServingPort(ctx context.Context, svc config.Service) (port int, known bool) {
	c, ok, err := h.Inspect(ctx, svc.ContainerName)
	switch {
	case err != nil:
		return svc.Port, false
	case ok:
		return c.Port(svc.Port), true
	}
	return svc.Port, true
}

// Close closes every connection.
func (c *Connections) Close() { _ = c.closeAll() }

// closeAll closes every connection and returns what failed.
func (c *Connections) closeAll() error {
	var errs []error
	for _, h := range c.Hosts {
		if err := h.Docker.Close(); err != nil {
			errs = append(errs, fmt.Errorf("%s: closing its Docker client: %w", h.Conn.Endpoint.Name, err))
		}
		errs = append(errs, h.Conn.Close())
	}
	for _, l := range c.LBs {
		errs = append(errs, l.Close())
	}
	for _, x := range c.extra {
		errs = append(errs, x.Close())
	}
	return errors.Join(errs...)
}

func sshConfig(cfg *config.Config, env config.Environment) remote.SSHConfig {
	return remote.SSHConfig{
		User:           cfg.SSH.User,
		IdentityFile:   cfg.SSH.IdentityFile,
		UseAgent:       cfg.SSH.Agent,
		KnownHostsFile: cfg.SSH.KnownHosts,
		ConnectTimeout: cfg.SSH.ConnectTimeout.D(),
		JumpHost:       cfg.JumpHostFor(env),
		JumpPort:       cfg.SSH.Port,

		KeepaliveInterval: cfg.SSH.KeepaliveInterval.D(),
		KeepaliveCountMax: cfg.SSH.KeepaliveCountMax,
		RedialAttempts:    cfg.SSH.RedialAttempts,
		RedialBackoff:     cfg.SSH.RedialBackoff.D(),
		MaxSessions:       cfg.SSH.MaxSessions,
		Persist:           cfg.SSH.Persist.D(),
		PersistDir:        cfg.SSH.PersistDir,
		KeeperCommand:     cfg.SSH.KeeperCommand,
		KeeperWarn:        cfg.SSH.KeeperWarn,
	}
}

// Connect opens SSH connections to hosts and the environment's load
// balancers, in parallel, and checks each host's Docker daemon answers.
// Every failure is reported (one per machine); on any failure all opened
// connections are closed.
func Connect(ctx context.Context, cfg *config.Config, env config.Environment, hosts []inventory.Host) (*Connections, error) {
	conns, failed, err := ConnectEach(ctx, cfg, env, hosts)
	if err != nil {
		return nil, err
	}
	if err := failures(failed); err != nil {
		conns.Close()
		return nil, err
	}
	return conns, nil
}

// failures is every machine's failure to connect, by machine name in
// order, as one error (nil when none failed).
func failures(failed map[string]error) error {
	var errs *multierror.Error
	for _, name := range sortedNames(failed) {
		errs = multierror.Append(errs, failed[name])
	}
	return errs.ErrorOrNil()
}

func sortedNames(m map[string]error) []string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	namerules.Sort(names)
	return names
}

// ConnectEach is Connect for commands that look at a fleet as it is: it
// returns the connections that could be opened and, by machine name, why
// the others could not.
func ConnectEach(ctx context.Context, cfg *config.Config, env config.Environment, hosts []inventory.Host) (*Connections, map[string]error, error) {
	return connectEach(ctx, cfg, env, hosts, nil, nil)
}

// connectEach is ConnectEach; onLB and onHost, if set, are called with
// each load balancer's connection and each host as soon as it is open
// (from the dialling goroutine), so that work on it starts while the
// other machines are still being dialled.
func connectEach(ctx context.Context, cfg *config.Config, env config.Environment, hosts []inventory.Host, onLB func(name string, conn *remote.Conn), onHost func(h inventory.Host, dh *Host)) (*Connections, map[string]error, error) {
	sc := sshConfig(cfg, env)
	auth, err := registryAuth(cfg)
	if err != nil {
		return nil, nil, err
	}
	conns := &Connections{Hosts: map[string]*Host{}, LBs: map[string]*remote.Conn{}}
	var mu sync.Mutex
	failed := map[string]error{}
	var g errgroup.Group
	g.SetLimit(DialConcurrency)
	// The load balancers first: one of them often keeps the records, which
	// the run reads while the hosts are dialled.
	for _, lb := range env.LoadBalancers {
		fail := func(err error) { mu.Lock(); failed[lb.Name] = err; mu.Unlock() }
		g.Go(func() error {
			defer panics.Recover(fail)
			conn, err := remote.Dial(ctx, sc, remote.Endpoint{Name: lb.Name, Addr: config.HostPort(lb.Address, lb.SSHPort)})
			if err != nil {
				fail(err)
				return nil
			}
			mu.Lock()
			conns.LBs[lb.Name] = conn
			mu.Unlock()
			if onLB != nil {
				onLB(lb.Name, conn)
			}
			return nil
		})
	}
	for _, h := range hosts {
		fail := func(err error) { mu.Lock(); failed[h.Name] = err; mu.Unlock() }
		g.Go(func() error {
			defer panics.Recover(fail)
			conn, err := remote.Dial(ctx, sc, remote.Endpoint{Name: h.Name, Addr: h.SSHAddr})
			if err != nil {
				fail(err)
				return nil
			}
			d, err := remote.NewDocker(conn, h.DockerSocket, cfg.SSH.DockerCallTimeout.D())
			if err == nil {
				err = d.Ping(ctx)
			}
			if err != nil {
				conn.Close()
				fail(err)
				return nil
			}
			dh := &Host{Docker: d, Conn: conn, auth: auth}
			mu.Lock()
			conns.Hosts[h.Name] = dh
			mu.Unlock()
			if onHost != nil {
				onHost(h, dh)
			}
			return nil
		})
	}
	_ = g.Wait()
	return conns, failed, nil
}

// registryAuth finds the registry credential: the config's username with
// the password from the named environment variable, else the deployer's
// Docker credential file, else none. The environment is the one the
// command gave the config (config.UseEnv).
func registryAuth(cfg *config.Config) (remote.RegistryAuth, error) {
	r := cfg.Registry
	if r.Username != "" {
		pw, err := cfg.RegistryPassword()
		if err != nil {
			return remote.RegistryAuth{}, err
		}
		return remote.RegistryAuth{Server: r.Address, Username: r.Username, Password: pw}, nil
	}
	dir, _ := cfg.LookupEnv("DOCKER_CONFIG")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return remote.RegistryAuth{}, nil
		}
		dir = filepath.Join(home, ".docker")
	}
	data, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if errors.Is(err, os.ErrNotExist) {
		return remote.RegistryAuth{}, nil
	}
	if err != nil {
		return remote.RegistryAuth{}, fmt.Errorf("docker credential file: %w", err)
	}
	auth, _, err := remote.DockerConfigAuth(data, r.Address)
	if err != nil {
		return remote.RegistryAuth{}, fmt.Errorf("%s: %w", filepath.Join(dir, "config.json"), err)
	}
	return auth, nil
}
