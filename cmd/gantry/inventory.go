package main

import (
	"context"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/gantry-dev/gantry/fleet"
)

// inventoryOptions are what inventory is given.
type inventoryOptions struct {
	configPath, env, service string
	json                     bool
}

// newInventoryCmd is gantry inventory. runF, when not nil, runs instead
// of inventoryRun (tests).
func newInventoryCmd(runF func(context.Context, inventoryOptions) error) *cli.Command {
	return &cli.Command{
		Name:  "inventory",
		Usage: "what runs where: per host its containers, versions, health, cached versions, disk and load balancer state",
		Description: `Looks at every host and load balancer, changing nothing. Flags drift (hosts not
on the version the rest of the service runs), containers gantry does not
manage, and single points of failure.

Examples:
   gantry inventory --env production
   gantry inventory --env production --service www --json`,
		Flags: []cli.Flag{envFlag("environment"),
			&cli.StringFlag{Name: "service", Aliases: []string{"s"}, Usage: "only this service's hosts"},
			jsonFlag(),
		},
		Action: func(c *cli.Context) error {
			opts := inventoryOptions{configPath: c.String("config"), env: c.String("env"), service: c.String("service"), json: c.Bool("json")}
			if runF != nil {
				return runF(c.Context, opts)
			}
			return inventoryRun(c.Context, opts)
		},
	}
}

// inventoryRun prints what runs where.
func inventoryRun(ctx context.Context, opts inventoryOptions) error {
	cfg, err := loadConfig(opts.configPath)
	if err != nil {
		return err
	}
	return fleet.ShowInventory(ctx, fleet.InventoryOptions{Config: cfg, Env: opts.env, Service: opts.service, JSON: opts.json, Out: os.Stdout})
}
