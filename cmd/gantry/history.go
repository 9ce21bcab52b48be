package main

import (
	"context"
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/gantry-dev/gantry/fleet"
)

// historyOptions are what history is given.
type historyOptions struct {
	configPath, env, service string
	json                     bool
}

// newHistoryCmd is gantry history. runF, when not nil, runs instead of
// historyRun (tests).
func newHistoryCmd(runF func(context.Context, historyOptions) error) *cli.Command {
	return &cli.Command{
		Name:      "history",
		Usage:     "the deploy audit trail of a service: who deployed what, when, from which version to which, where, and how it ended",
		ArgsUsage: "SERVICE",
		Description: `The trail is kept on the fleet (beside the deploy locks), so every deployer
sees the same one.

Examples:
   gantry history www --env production
   gantry history www --env production --json`,
		Flags: []cli.Flag{envFlag("environment"), jsonFlag()},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return fmt.Errorf("history: want exactly one SERVICE argument")
			}
			opts := historyOptions{configPath: c.String("config"), env: c.String("env"), service: c.Args().First(), json: c.Bool("json")}
			if runF != nil {
				return runF(c.Context, opts)
			}
			return historyRun(c.Context, opts)
		},
	}
}

// historyRun prints the service's audit trail.
func historyRun(ctx context.Context, opts historyOptions) error {
	cfg, err := loadConfig(opts.configPath)
	if err != nil {
		return err
	}
	return fleet.History(ctx, fleet.HistoryOptions{Config: cfg, Env: opts.env, Service: opts.service, JSON: opts.json, Out: os.Stdout})
}
