package fleet

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/gantry-dev/gantry/inventory"
	"github.com/gantry-dev/gantry/lock"
	"github.com/gantry-dev/gantry/rollback"
	"github.com/gantry-dev/gantry/rollout"
)

// IsApp reports whether target (APP@TAG or APP) names an app of the config.
func IsApp(o DeployOptions, target string) bool {
	name, _, _ := strings.Cut(target, "@")
	_, ok := o.Config.App(name)
	return ok
}

// DeployApp deploys every service of the app o.Target names (APP@TAG) at
// that one version: their deploy locks are taken together (in name order,
// so two runs never wait on each other in a circle) and held to the end;
// the services move one after the other in the app's order, each with its
// own plan, pre-flight checks and revert. When one fails, every service
// already moved goes back to what each host ran before (with --on-failure
// revert, the default), so the app does not run two versions side by
// side. The report holds every service's hosts.
func DeployApp(ctx context.Context, o DeployOptions) (*rollout.Report, error) {
	cfg := o.Config
	name, tag, _ := strings.Cut(o.Target, "@")
	app, _ := cfg.App(name)
	// Every target and secret first: a bad one changes nothing anywhere.
	for _, svc := range app.Services {
		s, err := cfg.Service(svc)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrRefused, err)
		}
		if _, err := rollout.ParseTarget(svc+"@"+tag, cfg.Registry.Address, s.Image, o.AllowMutableTag); err != nil {
			return nil, fmt.Errorf("%w: app %s: %w", ErrRefused, name, err)
		}
		if _, err := cfg.ResolveSecrets(svc, o.LookupEnv); err != nil {
			return nil, fmt.Errorf("%w: %w", rollout.ErrPreflight, err)
		}
	}
	return runApp(ctx, o, name, app.Services, "deploy", func(ctx context.Context, so DeployOptions, svc string) (*rollout.Report, error) {
		so.Target = svc + "@" + tag
		return Deploy(ctx, so)
	})
}

// RollbackApp rolls every service of the app back (to each host's
// previous version, or to the version to), under all their locks, in the
// app's order; a failure stops it, and the services already rolled back
// stay so (a rollback is the way back already).
func RollbackApp(ctx context.Context, o RollbackOptions, app string) (*rollout.Report, error) {
	a, _ := o.Config.App(app)
	o.Target = app + "@" + orPrevious(o.To) + " (rollback)"
	return runApp(ctx, o.DeployOptions, app, a.Services, "rollback", func(ctx context.Context, so DeployOptions, svc string) (*rollout.Report, error) {
		ro := o
		ro.DeployOptions, ro.Service = so, svc
		return Rollback(ctx, ro)
	})
}

// runApp runs one service's run after the other under every service's
// lock and merges their reports; a failed deploy sends the services moved
// before it back.
func runApp(ctx context.Context, o DeployOptions, name string, services []string, kind string, run func(context.Context, DeployOptions, string) (*rollout.Report, error)) (*rollout.Report, error) {
	cfg := o.Config
	if _, err := cfg.Environment(o.Env); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrRefused, err)
	}
	_, tag, _ := strings.Cut(o.Target, "@")
	appTarget := rollout.Target{Service: name, Tag: tag}
	so := o
	if !o.DryRun {
		s, err := Open(ctx, cfg, o.Env, o.Out, Needs{Records: true, Classify: asPreflight})
		if err != nil {
			return nil, err
		}
		defer s.Done()
		ctx, err = s.HoldLocks(ctx, slices.Sorted(slices.Values(services)),
			lock.Request{Target: o.Target, Message: o.Message, Wait: o.LockWait, Force: o.ForceLock})
		if err != nil {
			return nil, err
		}
		so.locksHeld = true
	}

	reports := map[string]*rollout.Report{}
	var done []string // services moved, in order
	var failed error
	for i, svc := range services {
		fmt.Fprintf(o.Out, "app %s: %s %s (%d of %d: %s)\n", name, kind, svc, i+1, len(services), strings.Join(services, ", "))
		rep, err := run(ctx, so, svc)
		if rep != nil {
			reports[svc] = rep
		}
		switch {
		case err != nil:
			failed = fmt.Errorf("%s: %w", svc, err)
		case rep != nil && !rep.OK():
			failed = fmt.Errorf("%s: %s", svc, rep.Verdict())
		}
		if failed != nil {
			break
		}
		done = append(done, svc)
	}
	if o.DryRun {
		return nil, failed
	}
	merged := rollout.MergeReports(appTarget, reports, services)
	if failed == nil {
		return merged, nil
	}
	fmt.Fprintf(o.Out, "app %s: %v\n", name, failed)
	if kind == "deploy" && o.OnFailure != rollout.OnFailureHalt && ctx.Err() == nil && len(done) > 0 {
		// The services that moved go back, last first, to what each host
		// ran before: the app never stays on two versions.
		var errs []error
		for i := len(done) - 1; i >= 0; i-- {
			svc := done[i]
			if err := revertService(ctx, so, svc, reports[svc]); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", svc, err))
			}
		}
		merged = rollout.MergeReports(appTarget, reports, services)
		if len(errs) > 0 {
			merged.Err = errors.Join(merged.Err, fmt.Errorf("putting the app's other services back: %w", errors.Join(errs...)))
		}
	}
	if merged.Err == nil {
		merged.Err = failed
	}
	return merged, nil
}

// revertService moves the hosts of svc that the app's deploy moved back
// to the version each ran before, from its cache (a rollback to those
// versions), and records that in rep.
func revertService(ctx context.Context, o DeployOptions, svc string, rep *rollout.Report) error {
	back := map[string]string{}
	for _, h := range rep.Hosts {
		if h.From != "" && h.Ended != h.From {
			back[h.Host] = h.From
		}
	}
	if len(back) == 0 {
		return nil
	}
	s, err := o.Config.Service(svc)
	if err != nil {
		return err
	}
	fmt.Fprintf(o.Out, "app: putting %s back on %d host(s)\n", svc, len(back))
	o.Target = svc + "@previous (app revert)"
	rr, err := execute(ctx, o, svc, s, "", func(snap []rollout.HostSnapshot, _ map[string]string) (rollout.Plan, error) {
		// Each host to the image it ran before the app's deploy; a host
		// the deploy did not move stays on what it runs.
		images := map[string]string{}
		for _, h := range snap {
			if tag, ok := back[h.Host.Name]; ok {
				t, err := rollout.ParseTarget(svc+"@"+tag, o.Config.Registry.Address, s.Image, true)
				if err != nil {
					return rollout.Plan{}, err
				}
				images[h.Host.Name] = t.Image
			} else if h.Current != nil {
				images[h.Host.Name] = h.Current.Labels[inventory.LabelImage]
				if images[h.Host.Name] == "" {
					images[h.Host.Name] = h.Current.Image
				}
			}
		}
		return rollback.Plan(snap, rollback.Options{Service: svc, BatchSize: s.BatchSize, MinInService: s.MinInServiceOf(len(snap)), Resume: images, Strategy: strategyOf(s)})
	})
	if rr != nil {
		for _, h := range rep.Hosts {
			for _, r := range rr.Hosts {
				if r.Host == h.Host && back[h.Host] != "" {
					h.Ended, h.InService = r.Ended, r.InService
					if r.Ended == h.From {
						h.Outcome = rollout.HostMovedBack
					}
					if r.RevertErr != nil {
						h.RevertErr = r.RevertErr
						h.Outcome = rollout.HostRevertFailed
					}
				}
			}
		}
	}
	if err != nil {
		return err
	}
	if rr != nil && !rr.OK() {
		return fmt.Errorf("%s", rr.Verdict())
	}
	return nil
}
