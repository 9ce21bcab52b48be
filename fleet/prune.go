package fleet

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/gantry-dev/gantry/config"
	namerules "github.com/gantry-dev/gantry/internal/names"
	"github.com/gantry-dev/gantry/internal/panics"
	"github.com/gantry-dev/gantry/inventory"
	"github.com/gantry-dev/gantry/lock"
)

// PruneOptions select what prune cleans.
type PruneOptions struct {
	Config *config.Config
	Env    string
	// Keep overrides every service's keep_versions when > 0.
	Keep int
	// LockWait is how long to wait for each service's deploy lock.
	LockWait time.Duration
	Out      io.Writer
}

// Prune removes, on every host of the environment, the stopped containers
// gantry left behind and the images of each service but its last
// keep_versions versions (the running one always counts and stays), so
// rollback keeps working. Unmanaged containers are not touched. It holds
// the deploy lock of every service it prunes, so no swap is in flight.
func Prune(ctx context.Context, o PruneOptions) error {
	s, err := Open(ctx, o.Config, o.Env, o.Out, Needs{Discover: true, Dial: DialAll, Records: true})
	if err != nil {
		return err
	}
	defer s.Done()
	// The services some host runs: each one's deploy lock is taken.
	var services []string
	for name := range o.Config.Services {
		if slices.ContainsFunc(s.Hosts, func(h inventory.Host) bool { return h.Runs(name) }) {
			services = append(services, name)
		}
	}
	namerules.Sort(services)
	ctx, err = s.HoldLocks(ctx, services, lock.Request{Target: "prune", Message: "gantry prune", Wait: o.LockWait})
	if err != nil {
		return err
	}
	return pruneHosts(ctx, o.Config, s.Conns, s.Hosts, services, o.Keep, o.Out)
}

// pruneHosts prunes the given hosts in parallel for the given services
// only, and prints one line each.
func pruneHosts(ctx context.Context, cfg *config.Config, conns *Connections, hosts []inventory.Host, services []string, keep int, out io.Writer) error {
	var g errgroup.Group
	g.SetLimit(DialConcurrency)
	var mu sync.Mutex
	lines := map[string]string{}
	errs := map[string]error{}
	for _, h := range hosts {
		hc, ok := conns.Hosts[h.Name]
		if !ok {
			continue
		}
		g.Go(func() error {
			defer panics.Recover(func(err error) {
				mu.Lock()
				defer mu.Unlock()
				lines[h.Name], errs[h.Name] = "", err
			})
			line, err := pruneHost(ctx, cfg, hc, h, services, keep)
			mu.Lock()
			defer mu.Unlock()
			lines[h.Name], errs[h.Name] = line, err
			return nil
		})
	}
	_ = g.Wait()
	names := make([]string, 0, len(lines))
	for n := range lines {
		names = append(names, n)
	}
	namerules.Sort(names)
	var failed []string
	for _, n := range names {
		if errs[n] != nil {
			fmt.Fprintf(out, "prune %s: FAILED: %v\n", n, errs[n])
			failed = append(failed, n)
			continue
		}
		fmt.Fprintf(out, "prune %s: %s\n", n, lines[n])
	}
	if len(failed) > 0 {
		return fmt.Errorf("prune failed on %s", strings.Join(failed, ", "))
	}
	return nil
}

// pruneHost prunes one host for the given services: the Docker calls
// around inventory.PlanPrune.
func pruneHost(ctx context.Context, cfg *config.Config, hc *Host, h inventory.Host, services []string, keepOverride int) (string, error) {
	list, err := hc.ListContainers(ctx)
	if err != nil {
		return "", err
	}
	var in []inventory.RetainedService
	for _, name := range services {
		svc, ok := cfg.Services[name]
		if !ok || !h.Runs(name) {
			continue
		}
		ps := inventory.RetainedService{Name: name, ContainerName: svc.ContainerName, Keep: svc.KeepVersions}
		if keepOverride > 0 {
			ps.Keep = keepOverride
		}
		versions, err := hc.ListImageVersions(ctx, cfg.Registry.Address+"/"+svc.Image)
		if err != nil {
			return "", err
		}
		for _, v := range versions {
			ps.Versions = append(ps.Versions, inventory.CachedVersion{Tag: v.Tag, Ref: v.Ref})
		}
		in = append(in, ps)
	}
	pp := inventory.PlanPrune(list, in)
	var removed []string
	for _, c := range pp.Containers {
		if err := hc.Remove(ctx, c.ID); err != nil {
			return "", err
		}
		removed = append(removed, "container "+c.Name)
	}
	for _, img := range pp.Images {
		if err := hc.RemoveImage(ctx, img.Ref); err != nil {
			return "", err
		}
		removed = append(removed, "image "+img.Name)
	}
	if len(removed) == 0 {
		removed = []string{"nothing"}
	}
	return fmt.Sprintf("removed %s; kept %s", strings.Join(removed, ", "), strings.Join(pp.Kept, ", ")), nil
}
