package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/gantry-dev/gantry/fleet"
	"github.com/gantry-dev/gantry/rollout"
)

// promoteCommand deploys to one environment the version another runs.
func promoteCommand(code *int, st *state) *cli.Command {
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
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "from", Required: true, Usage: "environment whose running version is promoted"},
			&cli.StringFlag{Name: "to", Required: true, Usage: "environment to deploy that version to"},
			&cli.BoolFlag{Name: "allow-mutable-tag", Usage: "promote even when the version is a tag such as latest that can move"},
			skipReleaseFlag,
		}, append(runFlags(), outputFlags()...)...),
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return fmt.Errorf("promote: want exactly one SERVICE argument, e.g. www")
			}
			cfg, err := loadConfig(c)
			if err != nil {
				return err
			}
			ro, err := runOptions(c, cfg, st, c.String("to"))
			if err != nil {
				return err
			}
			opts := fleet.PromoteOptions{DeployOptions: ro, Service: c.Args().First(), From: c.String("from")}
			opts.AllowMutableTag = c.Bool("allow-mutable-tag")
			opts.SkipRelease = c.Bool("skip-release")
			var rep *rollout.Report
			if fleet.IsApp(ro, opts.Service) {
				rep, err = fleet.PromoteApp(c.Context, opts, opts.Service)
			} else {
				rep, err = fleet.Promote(c.Context, opts)
			}
			return finish(c, code, st, fmt.Sprintf("promotion of %s from %s to %s", c.Args().First(), opts.From, opts.Env), rep, err)
		},
	}
}
