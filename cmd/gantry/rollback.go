package main

import (
	"context"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/gantry-dev/gantry/fleet"
	"github.com/gantry-dev/gantry/rollout"
)

// rollbackOptions are what rollback is given.
type rollbackOptions struct {
	run       runOptions
	service   string // a service or an app
	to        string
	emergency bool
}

// newRollbackCmd is gantry rollback. runF, when not nil, runs instead of
// rollbackRun (tests).
func newRollbackCmd(r *runner, runF func(context.Context, *rollbackOptions) error) *cli.Command {
	return &cli.Command{
		Name:      "rollback",
		Usage:     "move every host of SERVICE back to the version it ran before, from its image cache",
		ArgsUsage: "SERVICE",
		Description: `Each host goes back to the version it ran before its current one (recorded on
the container, so any deployer can roll back what another deployed), or to
--to VERSION, using the image already cached on the host: the registry is not
needed. Same lock, pre-flight and drain/swap/health/restore steps as deploy.

Examples:
   gantry rollback www --env production
   gantry rollback www --env production --emergency
   gantry rollback www --env staging --to 3f2c1ab`,
		Flags: flags(runFlags(), outputFlags(), []cli.Flag{
			envFlag("environment"),
			&cli.StringFlag{Name: "to", Usage: "go back to this `VERSION` (it must be cached on every host)"},
			&cli.BoolFlag{Name: "emergency", Usage: "batches of half the hosts, never a whole zone at once"},
		}),
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return fmt.Errorf("rollback: want exactly one SERVICE argument, e.g. www")
			}
			opts := &rollbackOptions{
				run:       runOptionsFrom(c, c.String("env")),
				service:   c.Args().First(),
				to:        c.String("to"),
				emergency: c.Bool("emergency"),
			}
			if runF != nil {
				return runF(c.Context, opts)
			}
			return rollbackRun(c.Context, r, opts)
		},
	}
}

// rollbackRun rolls opts.service back: every service of the app when it
// names an app.
func rollbackRun(ctx context.Context, r *runner, opts *rollbackOptions) error {
	cfg, err := loadConfig(opts.run.configPath)
	if err != nil {
		return err
	}
	fo, err := r.start(cfg, opts.run, rollout.RunRollback)
	if err != nil {
		return err
	}
	ro := fleet.RollbackOptions{DeployOptions: fo, Service: opts.service, To: opts.to, Emergency: opts.emergency}
	var rep *rollout.Report
	if fleet.IsApp(fo, opts.service) {
		rep, err = fleet.RollbackApp(ctx, ro, opts.service)
	} else {
		rep, err = fleet.Rollback(ctx, ro)
	}
	return r.end(ctx, opts.run, "rollback of "+opts.service, rep, err)
}
