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
	"github.com/gantry-dev/gantry/remote"
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
	env, err := o.Config.Environment(o.Env)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrRefused, err)
	}
	hosts, err := discoverHosts(ctx, o.Config, env, o.Out)
	if err != nil {
		return err
	}
	conns, err := Connect(ctx, o.Config, env, hosts)
	if err != nil {
		return err
	}
	defer conns.Close()
	// The services some host runs: each one's deploy lock is taken.
	var services []string
	for name := range o.Config.Services {
		if slices.ContainsFunc(hosts, func(h inventory.Host) bool { return h.Runs(name) }) {
			services = append(services, name)
		}
	}
	namerules.Sort(services)
	locker, err := conns.Locker(ctx, o.Config, env)
	if err != nil {
		return err
	}
	ctx, release, err := holdServiceLocks(ctx, locker, o.Env, services, lock.Request{Target: "prune", Message: "gantry prune", Wait: o.LockWait}, o.Out)
	if err != nil {
		return err
	}
	defer release()
	return pruneHosts(ctx, o.Config, conns, hosts, services, o.Keep, o.Out)
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
// around prunePolicy.
func pruneHost(ctx context.Context, cfg *config.Config, hc *Host, h inventory.Host, services []string, keepOverride int) (string, error) {
	list, err := hc.ListContainers(ctx)
	if err != nil {
		return "", err
	}
	var in []pruneService
	for _, name := range services {
		svc, ok := cfg.Services[name]
		if !ok || !h.Runs(name) {
			continue
		}
		ps := pruneService{Name: name, ContainerName: svc.ContainerName, Keep: svc.KeepVersions}
		if keepOverride > 0 {
			ps.Keep = keepOverride
		}
		if ps.Versions, err = hc.ListImageVersions(ctx, cfg.Registry.Address+"/"+svc.Image); err != nil {
			return "", err
		}
		in = append(in, ps)
	}
	pp := prunePolicy(list, in)
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

// pruneService is one service prune was asked about, on one host.
type pruneService struct {
	Name          string
	ContainerName string
	// Keep is how many versions of its image stay cached.
	Keep int
	// Versions are the cached versions of its image, newest first.
	Versions []remote.ImageVersion
}

// pruneImage is one image prune removes.
type pruneImage struct {
	Name string // service:tag, for the report
	Ref  string
}

// prunePlanned is what prune removes on one host, and what it keeps.
type prunePlanned struct {
	Containers []inventory.Container
	Images     []pruneImage
	Kept       []string // service:tag, "(in use)" when over the count
}

// prunePolicy decides what prune removes on a host with containers, for
// services only: the stopped containers gantry left for those services
// (labelled with their name), and each one's images but its last Keep
// versions. Another service's containers are never touched, and their
// images count as in use: a stopped -gantry-old of a service mid-swap is
// what that swap reverts to. A service's own container (even stopped by
// hand) and anything unmanaged stay.
func prunePolicy(containers []inventory.Container, services []pruneService) prunePlanned {
	var out prunePlanned
	pruned := map[string]string{} // service name -> its container name
	for _, s := range services {
		pruned[s.Name] = s.ContainerName
	}
	// Images in use by any container stay; a service's own (and the
	// versions its running containers would roll back to) fill its Keep
	// first. Services built from one image (a web service and its
	// workers) each keep their own versions: one's in-use image takes
	// none of the other's places.
	inUse := map[string]bool{}
	ownInUse := map[string]map[string]bool{}      // service -> image
	ownRollbackTo := map[string]map[string]bool{} // service -> image
	for _, c := range containers {
		own, ok := pruned[c.Labels[inventory.LabelService]]
		if ok && c.Labels[inventory.LabelManaged] == "true" && !c.Running && !c.Restarting && c.Name != own {
			out.Containers = append(out.Containers, c)
			continue
		}
		svc := c.Labels[inventory.LabelService]
		if ownInUse[svc] == nil {
			ownInUse[svc], ownRollbackTo[svc] = map[string]bool{}, map[string]bool{}
		}
		for _, img := range []string{c.Image, c.Labels[inventory.LabelImage]} {
			if img != "" {
				inUse[img] = true
				ownInUse[svc][img] = true
			}
		}
		// The version a rollback would go back to comes right after.
		if prev := c.Labels[inventory.LabelPreviousImage]; prev != "" && c.Running {
			ownRollbackTo[svc][prev] = true
		}
	}
	for _, svc := range services {
		// Kept first: its images in use, then its running containers'
		// previous versions (what rollback needs), then the newest.
		keepSet := map[string]bool{}
		for _, want := range []map[string]bool{ownInUse[svc.Name], ownRollbackTo[svc.Name]} {
			for _, v := range svc.Versions {
				if want[v.Ref] && len(keepSet) < svc.Keep {
					keepSet[v.Ref] = true
				}
			}
		}
		for _, v := range svc.Versions {
			if len(keepSet) >= svc.Keep {
				break
			}
			if inUse[v.Ref] && !ownInUse[svc.Name][v.Ref] {
				continue // another service's: kept, but not one of this one's
			}
			keepSet[v.Ref] = true
		}
		for _, v := range svc.Versions {
			switch {
			case keepSet[v.Ref]:
				out.Kept = append(out.Kept, svc.Name+":"+v.Tag)
			case inUse[v.Ref]:
				out.Kept = append(out.Kept, svc.Name+":"+v.Tag+" (in use)")
			default:
				out.Images = append(out.Images, pruneImage{Name: svc.Name + ":" + v.Tag, Ref: v.Ref})
			}
		}
	}
	return out
}
