package fleet

import (
	"context"
	"fmt"

	"github.com/gantry-dev/gantry/rollback"
	"github.com/gantry-dev/gantry/rollout"
)

// RollbackOptions are the inputs of one rollback.
type RollbackOptions struct {
	DeployOptions
	// Service to roll back.
	Service string
	// To is a version (tag) to go back to on every host; empty: each
	// host's previous version.
	To string
	// Emergency uses batches of half the hosts, never a whole zone.
	Emergency bool
}

// Rollback moves every host of the service back to the version it ran
// before its current one (or to o.To), from the image cached on each host:
// no registry is needed. It takes the same lock and runs the same
// pre-flight checks and per-host steps as a deploy.
func Rollback(ctx context.Context, o RollbackOptions) (*rollout.Report, error) {
	cfg := o.Config
	svc, err := cfg.Service(o.Service)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrRefused, err)
	}
	ro := rollback.Options{Service: o.Service, BatchSize: svc.BatchSize, Emergency: o.Emergency, Strategy: strategyOf(svc)}
	if o.To != "" {
		// A version given by hand must look like a deploy target would.
		t, err := rollout.ParseTarget(o.Service+"@"+o.To, cfg.Registry.Address, svc.Image, true)
		if err != nil {
			return nil, fmt.Errorf("%w: --to: %w", ErrRefused, err)
		}
		ro.To = t
	}
	o.DeployOptions.Target = o.Service + "@" + orPrevious(o.To) + " (rollback)"
	o.DeployOptions.resumesRollback = o.To == ""
	return execute(ctx, o.DeployOptions, o.Service, svc, "", func(snap []rollout.HostSnapshot, resume map[string]string) (rollout.Plan, error) {
		ro.MinInService = svc.MinInServiceOf(len(snap))
		ro.Resume = resume
		return rollback.Plan(snap, ro)
	})
}

func orPrevious(to string) string {
	if to == "" {
		return "previous"
	}
	return to
}
