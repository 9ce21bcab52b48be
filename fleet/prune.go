package fleet

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/gantry-dev/gantry/config"
	namerules "github.com/gantry-dev/gantry/internal/names"
	"github.com/gantry-dev/gantry/internal/panics"
	"github.com/gantry-dev/gantry/inventory"
)

// PruneOptions select what prune cleans.
type PruneOptions struct {
	Config *config.Config
	Env    string
	// Keep overrides every service's keep_versions when > 0.
	Keep int
	Out  io.Writer
}

// Prune removes, on every host of the environment, the stopped containers
// gantry left behind and the images of each service but its last
// keep_versions versions (the running one always counts and stays), so
// rollback keeps working. Unmanaged containers are not touched.
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
	return pruneHosts(ctx, o.Config, conns, hosts, o.Keep, o.Out)
}

// pruneHosts prunes the given hosts in parallel and prints one line each.
func pruneHosts(ctx context.Context, cfg *config.Config, conns *Connections, hosts []inventory.Host, keep int, out io.Writer) error {
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
			line, err := pruneHost(ctx, cfg, hc, h, keep)
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

func pruneHost(ctx context.Context, cfg *config.Config, hc *Host, h inventory.Host, keepOverride int) (string, error) {
	list, err := hc.ListContainers(ctx)
	if err != nil {
		return "", err
	}
	inUse := map[string]bool{}
	rollbackTo := map[string]bool{}
	var removed []string
	serviceNames := map[string]bool{}
	for _, svc := range cfg.Services {
		serviceNames[svc.ContainerName] = true
	}
	for _, c := range list {
		// A stopped leftover of gantry's goes; a service's own container
		// (even stopped by hand) and anything unmanaged stay.
		if c.Labels[inventory.LabelManaged] == "true" && !c.Running && !c.Restarting && !serviceNames[c.Name] {
			if err := hc.Remove(ctx, c.ID); err != nil {
				return "", err
			}
			removed = append(removed, "container "+c.Name)
			continue
		}
		inUse[c.Image] = true
		if img := c.Labels[inventory.LabelImage]; img != "" {
			inUse[img] = true
		}
		// The version a rollback would go back to comes right after.
		if prev := c.Labels[inventory.LabelPreviousImage]; prev != "" && c.Running {
			rollbackTo[prev] = true
		}
	}
	var kept []string
	for name, svc := range cfg.Services {
		if !h.Runs(name) {
			continue
		}
		keep := svc.KeepVersions
		if keepOverride > 0 {
			keep = keepOverride
		}
		versions, err := hc.ListImageVersions(ctx, cfg.Registry.Address+"/"+svc.Image)
		if err != nil {
			return "", err
		}
		// Kept first: images in use, then each running container's
		// previous version (what rollback needs), then the newest.
		keepSet := map[string]bool{}
		for _, want := range []map[string]bool{inUse, rollbackTo} {
			for _, v := range versions {
				if want[v.Ref] && len(keepSet) < keep {
					keepSet[v.Ref] = true
				}
			}
		}
		for _, v := range versions {
			if len(keepSet) >= keep {
				break
			}
			keepSet[v.Ref] = true
		}
		for _, v := range versions {
			if keepSet[v.Ref] {
				kept = append(kept, name+":"+v.Tag)
				continue
			}
			if inUse[v.Ref] {
				kept = append(kept, name+":"+v.Tag+" (in use)")
				continue
			}
			if err := hc.RemoveImage(ctx, v.Ref); err != nil {
				return "", err
			}
			removed = append(removed, "image "+name+":"+v.Tag)
		}
	}
	if len(removed) == 0 {
		removed = []string{"nothing"}
	}
	return fmt.Sprintf("removed %s; kept %s", strings.Join(removed, ", "), strings.Join(kept, ", ")), nil
}
