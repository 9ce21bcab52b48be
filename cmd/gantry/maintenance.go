package main

import (
	"context"
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/gantry-dev/gantry/fleet"
)

// maintenanceCommand is gantry maintenance [list|on|off].
func maintenanceCommand() *cli.Command {
	action := func(fn func(context.Context, fleet.MaintenanceOptions) error, wantHost bool) cli.ActionFunc {
		return func(c *cli.Context) error {
			if wantHost && c.NArg() != 1 {
				return fmt.Errorf("maintenance %s: want exactly one HOST argument", c.Command.Name)
			}
			if !wantHost && c.NArg() != 0 {
				return fmt.Errorf("maintenance %s: unexpected argument %q (on HOST, off HOST or list)", c.Command.Name, c.Args().First())
			}
			if c.String("env") == "" {
				return fmt.Errorf("maintenance %s: --env is required", c.Command.Name)
			}
			cfg, err := loadConfig(c)
			if err != nil {
				return err
			}
			return fn(c.Context, fleet.MaintenanceOptions{
				Config: cfg, Env: c.String("env"), Host: c.Args().First(), Message: c.String("message"),
				Force: c.Bool("force"), LockWait: c.Duration("lock-wait"), JSON: c.Bool("json"), Out: os.Stdout,
			})
		}
	}
	lockWait := &cli.DurationFlag{Name: "lock-wait", Usage: "wait up to this long for each of the host's services' deploy lock someone else holds"}
	// Not required on the parent: urfave/cli would then ask for it before
	// "on" and "off" too. The list refuses without it.
	optionalEnv := &cli.StringFlag{Name: "env", Aliases: []string{"e"}, EnvVars: []string{"GANTRY_ENV"}, Usage: "environment (required)"}
	list := []cli.Flag{optionalEnv, &cli.BoolFlag{Name: "json", Usage: "print JSON"}}
	return &cli.Command{
		Name:      "maintenance",
		Usage:     "take a host out of every load balancer and keep it out across deploys, put it back, or list the hosts in maintenance",
		ArgsUsage: " ",
		Description: `"on" drains the host from every load balancer (requests in flight finish)
and records it on the lock machine: deploys and rollbacks still move it to
their version and health-check it, but leave it down in every upstream file.
Refused when a service would be left with fewer hosts in rotation than its
min_in_service (and never with none), unless --force. "off" health-checks
the host's running container and puts it back; an unhealthy host is refused
and stays out. Without a subcommand: the list. Each takes the deploy lock of
the host's services, so it never runs beside a deploy.

Examples:
   gantry maintenance on web3 --env production --message "disk swap, ticket 42"
   gantry maintenance --env production
   gantry maintenance off web3 --env production`,
		Flags:  list,
		Action: action(fleet.MaintenanceList, false),
		Subcommands: []*cli.Command{
			{Name: "on", Usage: "drain HOST from every load balancer and keep it out", ArgsUsage: "HOST", Action: action(fleet.MaintenanceOn, true),
				Flags: []cli.Flag{envFlag(), &cli.StringFlag{Name: "message", Aliases: []string{"m"}, Usage: "why, shown by maintenance list and inventory"},
					&cli.BoolFlag{Name: "force", Usage: "even when a service would be left below min_in_service, or with no host in rotation"}, lockWait}},
			{Name: "off", Usage: "health-check HOST and put it back into every load balancer", ArgsUsage: "HOST", Action: action(fleet.MaintenanceOff, true),
				Flags: []cli.Flag{envFlag(), lockWait}},
			{Name: "list", Usage: "the hosts in maintenance: since when, by whom, why", Action: action(fleet.MaintenanceList, false), Flags: list},
		},
	}
}
