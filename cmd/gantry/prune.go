package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/gantry-dev/gantry/fleet"
)

// pruneOptions are what prune is given.
type pruneOptions struct {
	configPath, env string
	keep            int  // versions to keep per service
	keepGiven       bool // else keep is 0: the config's keep_versions
	lockWait        time.Duration
}

// newPruneCmd is gantry prune. runF, when not nil, runs instead of
// pruneRun (tests).
func newPruneCmd(runF func(context.Context, pruneOptions) error) *cli.Command {
	return &cli.Command{
		Name:  "prune",
		Usage: "remove stopped leftovers and old images on every host, keeping the last versions for rollback",
		Description: `Keeps each service's last keep_versions versions (default 3, the running one
included). A successful deploy prunes its own service the same way by itself.
Holds every pruned service's deploy lock (waiting up to --lock-wait for each).

Example:
   gantry prune --env production --keep 5`,
		Flags: []cli.Flag{envFlag("environment"), &cli.IntFlag{Name: "keep", Usage: "versions to keep per service (default: keep_versions)"},
			lockWaitFlag("wait up to this long for each service's deploy lock someone else holds")},
		Action: func(c *cli.Context) error {
			opts := pruneOptions{configPath: c.String("config"), env: c.String("env"), keep: c.Int("keep"), keepGiven: c.IsSet("keep"), lockWait: c.Duration("lock-wait")}
			if runF != nil {
				return runF(c.Context, opts)
			}
			return pruneRun(c.Context, opts)
		},
	}
}

// pruneRun prunes every host of the environment.
func pruneRun(ctx context.Context, opts pruneOptions) error {
	cfg, err := loadConfig(opts.configPath)
	if err != nil {
		return err
	}
	if opts.keepGiven && opts.keep < 1 {
		return fmt.Errorf("--keep must be at least 1 (the running version)")
	}
	return fleet.Prune(ctx, fleet.PruneOptions{Config: cfg, Env: opts.env, Keep: opts.keep, LockWait: opts.lockWait, Out: os.Stdout})
}
