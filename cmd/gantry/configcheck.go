package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/gantry-dev/gantry/fleet"
	"github.com/gantry-dev/gantry/rollout"
)

// configCheckOptions are what config check is given.
type configCheckOptions struct {
	configPath, env string // env "": every environment
}

// newConfigCmd is gantry config check. runF, when not nil, runs instead
// of configCheckRun (tests).
func newConfigCmd(runF func(context.Context, configCheckOptions) error) *cli.Command {
	return &cli.Command{
		Name:  "config",
		Usage: "check the config file",
		Subcommands: []*cli.Command{{
			Name:  "check",
			Usage: "validate the config and reach every host and load balancer, changing nothing",
			Description: `Loads and validates the config, then connects to every host (SSH with host keys
verified, then its Docker daemon) and load balancer (SSH, then its config test).

Examples:
   gantry config check
   gantry --config prod.yml config check --env production`,
			Flags: []cli.Flag{optionalEnvFlag("only this environment")},
			Action: func(c *cli.Context) error {
				opts := configCheckOptions{configPath: c.String("config"), env: c.String("env")}
				if runF != nil {
					return runF(c.Context, opts)
				}
				return configCheckRun(c.Context, opts)
			},
		}},
	}
}

// configCheckRun validates the config and reaches every machine; one that
// cannot be reached is a failed pre-flight check (exit 3).
func configCheckRun(ctx context.Context, opts configCheckOptions) error {
	cfg, err := loadConfig(opts.configPath)
	if err != nil {
		return err
	}
	fmt.Printf("%s: valid\n", cfg.Path)
	err = fleet.CheckConfig(ctx, fleet.CheckOptions{Config: cfg, Env: opts.env, Out: os.Stdout})
	if errors.Is(err, fleet.ErrUnreachable) {
		return fmt.Errorf("%w: %w", rollout.ErrPreflight, err)
	}
	return err
}
