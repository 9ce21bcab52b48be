package main

import (
	"context"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/gantry-dev/gantry/fleet"
	"github.com/gantry-dev/gantry/rollout"
)

// deployOptions are what deploy and plan are given.
type deployOptions struct {
	run             runOptions
	target          string // SERVICE@TAG or APP@TAG
	allowMutableTag bool
	skipRelease     bool
	canary          *bool // --canary / --no-canary; nil: the config's
}

// deployFlags are deploy's and plan's own flags.
func deployFlags() []cli.Flag {
	return append([]cli.Flag{
		envFlag("environment to deploy to"),
		allowMutableTagFlag("allow tags such as latest that can move"),
		skipReleaseFlag(),
	}, canaryFlags()...)
}

// deployOptionsFrom reads deploy's and plan's flags and argument.
func deployOptionsFrom(c *cli.Context) (*deployOptions, error) {
	if c.NArg() != 1 {
		return nil, fmt.Errorf("%s: want exactly one SERVICE@TAG argument, e.g. www@3f2c1ab", c.Command.Name)
	}
	canary, err := canaryFrom(c)
	if err != nil {
		return nil, err
	}
	return &deployOptions{
		run:             runOptionsFrom(c, c.String("env")),
		target:          c.Args().First(),
		allowMutableTag: c.Bool("allow-mutable-tag"),
		skipRelease:     c.Bool("skip-release"),
		canary:          canary,
	}, nil
}

// newDeployCmd is gantry deploy. runF, when not nil, runs instead of
// deployRun (tests).
func newDeployCmd(r *runner, runF func(context.Context, *deployOptions) error) *cli.Command {
	return &cli.Command{
		Name:      "deploy",
		Usage:     "deploy SERVICE@TAG (or APP@TAG: every service of the app) to an environment",
		ArgsUsage: "SERVICE@TAG|APP@TAG",
		Description: `Checks the fleet first (pre-flight), takes the environment's deploy lock,
pulls the image on every host, runs the service's release command once (if it
has one; --skip-release skips it), then batch by batch drains each host from every
load balancer, swaps the container, health-checks it and puts the host back.
If a host fails, it goes back to its old version, and so do the hosts already
moved (unless --on-failure halt). A service with a canary (services.NAME.canary)
moves its canary hosts first and bakes them on live traffic, judged from the
load balancers' access logs, before the others move; --canary and --no-canary
decide for one run.

Examples:
   gantry deploy www@3f2c1ab --env staging
   gantry deploy www@3f2c1ab --env production --lock-wait 10m --message "release 42"
   gantry deploy www@3f2c1ab --env staging --dry-run`,
		Flags: flags(runFlags(), outputFlags(), deployFlags()),
		Action: func(c *cli.Context) error {
			opts, err := deployOptionsFrom(c)
			if err != nil {
				return err
			}
			if runF != nil {
				return runF(c.Context, opts)
			}
			return deployRun(c.Context, r, opts)
		},
	}
}

// deployRun deploys opts.target: every service of the app when it names
// an app.
func deployRun(ctx context.Context, r *runner, opts *deployOptions) error {
	cfg, err := loadConfig(opts.run.configPath)
	if err != nil {
		return err
	}
	fo, err := r.start(cfg, opts.run, rollout.RunDeploy)
	if err != nil {
		return err
	}
	fo.Target = opts.target
	fo.AllowMutableTag = opts.allowMutableTag
	fo.SkipRelease = opts.skipRelease
	fo.Canary = opts.canary
	deploy := fleet.Deploy
	if fleet.IsApp(fo, fo.Target) {
		deploy = fleet.DeployApp // every service of the app, at one version
	}
	rep, err := deploy(ctx, fo)
	return r.end(ctx, opts.run, "deploy of "+opts.target, rep, err)
}
