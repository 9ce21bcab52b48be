package main

import (
	"context"
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/gantry-dev/gantry/fleet"
)

// decommissionOptions are what decommission and recommission are given.
type decommissionOptions struct {
	configPath, env, host string
	force                 bool
	// do is the operation: fleet.Decommission or fleet.Recommission.
	do func(context.Context, fleet.DecommissionOptions) error
}

// newDecommissionCmds are gantry decommission and recommission. runF,
// when not nil, runs instead of decommissionRun (tests).
func newDecommissionCmds(runF func(context.Context, decommissionOptions) error) []*cli.Command {
	if runF == nil {
		runF = decommissionRun
	}
	action := func(do func(context.Context, fleet.DecommissionOptions) error) cli.ActionFunc {
		return func(c *cli.Context) error {
			if c.NArg() != 1 {
				return fmt.Errorf("%s: want exactly one HOST argument", c.Command.Name)
			}
			return runF(c.Context, decommissionOptions{configPath: c.String("config"), env: c.String("env"), host: c.Args().First(), force: c.Bool("force"), do: do})
		}
	}
	return []*cli.Command{
		{
			Name:      "decommission",
			Usage:     "take HOST out for good: out of every load balancer, its containers stopped, skipped by later deploys",
			ArgsUsage: "HOST",
			Description: `Shows what runs on the host first. Refused when a service would be left with
fewer healthy hosts than its min_in_service, unless --force.

Example:
   gantry decommission web3 --env production`,
			Flags:  []cli.Flag{envFlag("environment"), forceFlag("decommission even below a service's min_in_service")},
			Action: action(fleet.Decommission),
		},
		{
			Name:      "recommission",
			Usage:     "undo decommission: the next deploy brings HOST back into service",
			ArgsUsage: "HOST",
			Flags:     []cli.Flag{envFlag("environment")},
			Action:    action(fleet.Recommission),
		},
	}
}

// decommissionRun decommissions or recommissions opts.host.
func decommissionRun(ctx context.Context, opts decommissionOptions) error {
	cfg, err := loadConfig(opts.configPath)
	if err != nil {
		return err
	}
	return opts.do(ctx, fleet.DecommissionOptions{Config: cfg, Env: opts.env, Host: opts.host, Force: opts.force, Out: os.Stdout})
}
