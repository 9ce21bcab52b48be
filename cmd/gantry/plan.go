package main

import (
	"context"

	"github.com/urfave/cli/v2"
)

// newPlanCmd is gantry plan: a deploy with --dry-run. runF, when not nil,
// runs instead of planRun (tests).
func newPlanCmd(r *runner, runF func(context.Context, *deployOptions) error) *cli.Command {
	return &cli.Command{
		Name:      "plan",
		Usage:     "run the pre-flight checks and print what deploying SERVICE@TAG would do, changing nothing",
		ArgsUsage: "SERVICE@TAG|APP@TAG",
		Flags:     flags(outputFlags(), deployFlags()),
		Action: func(c *cli.Context) error {
			opts, err := deployOptionsFrom(c)
			if err != nil {
				return err
			}
			if runF != nil {
				return runF(c.Context, opts)
			}
			return planRun(c.Context, r, opts)
		},
	}
}

// planRun runs the deploy of opts.target as a dry run.
func planRun(ctx context.Context, r *runner, opts *deployOptions) error {
	opts.run.dryRun = true
	return deployRun(ctx, r, opts)
}
