package main

import (
	"context"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/gantry-dev/gantry/fleet"
	"github.com/gantry-dev/gantry/rollout"
)

// promoteOptions are what promote is given; run.env is --to.
type promoteOptions struct {
	run             runOptions
	service         string // a service or an app
	from            string
	allowMutableTag bool
	skipRelease     bool
	canary          *bool // --canary / --no-canary; nil: the config's
}

// newPromoteCmd is gantry promote: it deploys to one environment the
// version another runs. runF, when not nil, runs instead of promoteRun
// (tests).
func newPromoteCmd(r *runner, runF func(context.Context, *promoteOptions) error) *cli.Command {
	return &cli.Command{
		Name:      "promote",
		Usage:     "deploy to --to exactly the version of SERVICE that --from runs",
		ArgsUsage: "SERVICE",
		Description: `Reads the version of SERVICE on every host of the --from environment, changing
nothing there, and deploys that version to the --to environment like deploy
does (same lock, pre-flight, release command, batches and failure handling:
the release command runs, as the version is new to --to; --skip-release skips
it). Refused with exit
3, before anything changes, when the --from hosts run different versions, when
a --from host's container is not running or not healthy, or when no host there
runs the service.

Examples:
   gantry promote www --from staging --to production
   gantry promote www --from staging --to production --dry-run
   gantry promote www --from staging --to production --lock-wait 10m --message "release 42"`,
		Flags: flags([]cli.Flag{
			&cli.StringFlag{Name: "from", Required: true, Usage: "environment whose running version is promoted"},
			&cli.StringFlag{Name: "to", Required: true, Usage: "environment to deploy that version to"},
			allowMutableTagFlag("promote even when the version is a tag such as latest that can move"),
			skipReleaseFlag(),
		}, canaryFlags(), runFlags(), outputFlags()),
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return fmt.Errorf("promote: want exactly one SERVICE argument, e.g. www")
			}
			canary, err := canaryFrom(c)
			if err != nil {
				return err
			}
			opts := &promoteOptions{
				canary:          canary,
				run:             runOptionsFrom(c, c.String("to")),
				service:         c.Args().First(),
				from:            c.String("from"),
				allowMutableTag: c.Bool("allow-mutable-tag"),
				skipRelease:     c.Bool("skip-release"),
			}
			if runF != nil {
				return runF(c.Context, opts)
			}
			return promoteRun(c.Context, r, opts)
		},
	}
}

// promoteRun promotes opts.service: every service of the app when it
// names an app.
func promoteRun(ctx context.Context, r *runner, opts *promoteOptions) error {
	cfg, err := loadConfig(opts.run.configPath)
	if err != nil {
		return err
	}
	fo, err := r.start(cfg, opts.run, rollout.RunDeploy)
	if err != nil {
		return err
	}
	po := fleet.PromoteOptions{DeployOptions: fo, Service: opts.service, From: opts.from}
	po.AllowMutableTag = opts.allowMutableTag
	po.SkipRelease = opts.skipRelease
	po.Canary = opts.canary
	var rep *rollout.Report
	if fleet.IsApp(fo, opts.service) {
		rep, err = fleet.PromoteApp(ctx, po, opts.service)
	} else {
		rep, err = fleet.Promote(ctx, po)
	}
	return r.end(ctx, opts.run, fmt.Sprintf("promotion of %s from %s to %s", opts.service, opts.from, opts.run.env), rep, err)
}
