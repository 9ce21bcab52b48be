package fleet

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/hashicorp/go-multierror"

	"github.com/gantry-dev/gantry/config"
	"github.com/gantry-dev/gantry/inventory"
	"github.com/gantry-dev/gantry/lock"
	"github.com/gantry-dev/gantry/rollout"
)

// PromoteOptions are the inputs of one promotion: the run settings of the
// deploy to DeployOptions.Env (the environment promoted to), the service,
// and the environment whose version is promoted.
type PromoteOptions struct {
	DeployOptions
	// Service to promote.
	Service string
	// From is the environment whose running version is deployed to
	// DeployOptions.Env.
	From string
}

// Promote deploys to o.Env exactly the version of o.Service that every host
// of o.From runs. It reads o.From without changing it and refuses (wrapping
// rollout.ErrPreflight, before anything on o.Env is touched) unless every
// host of the service there is reachable and runs one version, running and
// healthy. Then it is a deploy of SERVICE@<that version> with o's settings.
func Promote(ctx context.Context, o PromoteOptions) (*rollout.Report, error) {
	cfg := o.Config
	svc, err := cfg.Service(o.Service)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrRefused, err)
	}
	if o.From == o.Env {
		return nil, fmt.Errorf("%w: promote %s: --from and --to are both %q; promote from one environment to another", ErrRefused, o.Service, o.From)
	}
	// Bad input is refused before anything is looked at.
	if o.OnFailure != "" && o.OnFailure != rollout.OnFailureRevert && o.OnFailure != rollout.OnFailureHalt {
		return nil, fmt.Errorf("%w: --on-failure %q: use revert or halt", ErrRefused, o.OnFailure)
	}
	if _, err := cfg.Environment(o.Env); err != nil {
		return nil, fmt.Errorf("%w: --to: %w", ErrRefused, err)
	}
	if _, err := cfg.Environment(o.From); err != nil {
		return nil, fmt.Errorf("%w: --from: %w", ErrRefused, err)
	}

	tag, names, err := runningVersion(ctx, o, svc)
	if err != nil {
		return nil, err
	}
	o.Target = o.Service + "@" + tag
	if o.Message == "" {
		// The lock and the audit trail say where the version came from.
		o.Message = "promoted from " + o.From
	}
	fmt.Fprintf(o.Out, "promoting %s from %s to %s: %s runs %s on every host (%s)\n", o.Service, o.From, o.Env, o.From, o.Target, strings.Join(names, ", "))
	return Deploy(ctx, o.DeployOptions)
}

// runningVersion reads the version of the service on every host of the
// environment promoted from, changing nothing there, and returns it with
// the hosts' names.
func runningVersion(ctx context.Context, o PromoteOptions, svc config.Service) (string, []string, error) {
	cfg := o.Config
	// Reading versions needs the hosts only: the load balancers of the
	// environment promoted from are left alone.
	s, err := Open(ctx, cfg, o.From, o.Out, Needs{Service: o.Service, Dial: DialAll, HostsOnly: true, Records: true,
		Classify: func(err error) error {
			return fmt.Errorf("%w: promote: cannot read the version of %s in %s: %w", rollout.ErrPreflight, o.Service, o.From, err)
		}})
	if err != nil {
		return "", nil, err
	}
	defer s.Done()
	if holder, err := s.Locker().Read(ctx, lock.Name(o.From, o.Service)); err == nil && holder != nil {
		fmt.Fprintf(o.Out, "note: the deploy lock of %s in %s is held by %s: its version may be changing\n", o.Service, o.From, holder)
	}
	conns, hosts := s.Conns, s.Hosts
	snap, err := snapshot(ctx, conns, hosts, svc.ContainerName)
	if err != nil {
		return "", nil, fmt.Errorf("%w: promote: cannot read the version of %s in %s: %w", rollout.ErrPreflight, o.Service, o.From, err)
	}
	healthy := map[string]bool{}
	for _, h := range snap {
		if h.Current != nil && h.Current.Running && !h.Current.Restarting {
			healthy[h.Host.Name] = conns.Hosts[h.Host.Name].ServesHealthy(ctx, h.Host, svc, h.Current.Port(svc.Port))
		}
	}
	if err := ctx.Err(); err != nil {
		return "", nil, err
	}
	tag, err := PromotedVersion(snap, healthy)
	if err != nil {
		return "", nil, fmt.Errorf("%w: promote %s from %s to %s: %w", rollout.ErrPreflight, o.Service, o.From, o.Env, err)
	}
	names := make([]string, len(snap))
	for i, h := range snap {
		names[i] = h.Host.Name
	}
	return tag, names, nil
}

// PromotedVersion is the version every host of snap runs: the one a
// promotion deploys. healthy says, by host name, whether the host's
// container answered its health check. It fails, naming hosts and versions,
// when a host has no container, or one that is not running or not
// healthy, or when the hosts run different versions.
func PromotedVersion(snap []rollout.HostSnapshot, healthy map[string]bool) (string, error) {
	if len(snap) == 0 {
		return "", fmt.Errorf("no host runs the service: nothing to promote")
	}
	var problems *multierror.Error
	byVersion := map[string][]string{}
	for _, h := range snap {
		c := h.Current
		if c == nil {
			problems = multierror.Append(problems, fmt.Errorf("%s: no container of the service", h.Host.Name))
			continue
		}
		version := c.Labels[inventory.LabelVersion]
		switch {
		case version == "":
			problems = multierror.Append(problems, fmt.Errorf("%s: container %s (image %s) was not deployed by gantry: its version is unknown", h.Host.Name, c.Name, c.Image))
			continue
		case !c.Running || c.Restarting:
			problems = multierror.Append(problems, fmt.Errorf("%s: container %s (version %s) is %s, not running", h.Host.Name, c.Name, version, stateWord(c)))
		case !healthy[h.Host.Name]:
			problems = multierror.Append(problems, fmt.Errorf("%s: container %s (version %s) is running but not healthy", h.Host.Name, c.Name, version))
		}
		byVersion[version] = append(byVersion[version], h.Host.Name)
	}
	versions := make([]string, 0, len(byVersion))
	for v := range byVersion {
		versions = append(versions, v)
	}
	sort.Strings(versions)
	switch {
	case len(versions) > 1:
		parts := make([]string, len(versions))
		for i, v := range versions {
			parts[i] = v + " on " + strings.Join(byVersion[v], ", ")
		}
		problems = multierror.Append(problems, fmt.Errorf("hosts run different versions: %s; finish or roll back the deploy there first", strings.Join(parts, "; ")))
	case len(versions) == 0:
		problems = multierror.Append(problems, fmt.Errorf("no host runs the service: nothing to promote"))
	}
	if err := problems.ErrorOrNil(); err != nil {
		return "", err
	}
	return versions[0], nil
}

// stateWord says how a container that is not serving is.
func stateWord(c *inventory.Container) string {
	switch {
	case c.Restarting:
		return "restarting"
	case c.State == "":
		return "stopped"
	}
	return c.State
}

// PromoteApp deploys to o.Env the version every service of the app runs
// on every host of o.From: they must all run one version there (an app is
// deployed at one version), or nothing is changed. Then it is a deploy of
// APP@<that version>.
func PromoteApp(ctx context.Context, o PromoteOptions, app string) (*rollout.Report, error) {
	cfg := o.Config
	a, _ := cfg.App(app)
	if o.From == o.Env {
		return nil, fmt.Errorf("%w: promote %s: --from and --to are both %q; promote from one environment to another", ErrRefused, app, o.From)
	}
	if _, err := cfg.Environment(o.Env); err != nil {
		return nil, fmt.Errorf("%w: --to: %w", ErrRefused, err)
	}
	if _, err := cfg.Environment(o.From); err != nil {
		return nil, fmt.Errorf("%w: --from: %w", ErrRefused, err)
	}
	tags := map[string][]string{}
	for _, name := range a.Services {
		svc, err := cfg.Service(name)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrRefused, err)
		}
		so := o
		so.Service = name
		tag, _, err := runningVersion(ctx, so, svc)
		if err != nil {
			return nil, err
		}
		tags[tag] = append(tags[tag], name)
	}
	if len(tags) != 1 {
		var parts []string
		for tag, svcs := range tags {
			parts = append(parts, strings.Join(svcs, ", ")+" run "+tag)
		}
		sort.Strings(parts)
		return nil, fmt.Errorf("%w: promote %s: its services run different versions in %s (%s): deploy the app there at one version first", rollout.ErrPreflight, app, o.From, strings.Join(parts, "; "))
	}
	for tag := range tags {
		o.Target = app + "@" + tag
	}
	if o.Message == "" {
		o.Message = "promoted from " + o.From
	}
	fmt.Fprintf(o.Out, "promoting app %s from %s to %s: every service of it runs %s there\n", app, o.From, o.Env, o.Target)
	return DeployApp(ctx, o.DeployOptions)
}
