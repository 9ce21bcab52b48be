package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/gantry-dev/gantry/fleet"
)

// maintenanceOptions are what maintenance on, off and list are given.
type maintenanceOptions struct {
	configPath, env, host string
	message               string
	force, json           bool
	lockWait              time.Duration
	// do is the operation: fleet.MaintenanceOn, MaintenanceOff or
	// MaintenanceList.
	do func(context.Context, fleet.MaintenanceOptions) error
}

// newMaintenanceCmd is gantry maintenance [list|on|off]. runF, when not
// nil, runs instead of maintenanceRun (tests).
func newMaintenanceCmd(runF func(context.Context, maintenanceOptions) error) *cli.Command {
	if runF == nil {
		runF = maintenanceRun
	}
	action := func(do func(context.Context, fleet.MaintenanceOptions) error, wantHost bool) cli.ActionFunc {
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
			return runF(c.Context, maintenanceOptions{
				configPath: c.String("config"), env: c.String("env"), host: c.Args().First(), message: c.String("message"),
				force: c.Bool("force"), lockWait: c.Duration("lock-wait"), json: c.Bool("json"), do: do,
			})
		}
	}
	lockWait := func() cli.Flag {
		return lockWaitFlag("wait up to this long for each of the host's services' deploy lock someone else holds")
	}
	// Not required on the parent: urfave/cli would then ask for it before
	// "on" and "off" too. The list refuses without it.
	list := func() []cli.Flag { return []cli.Flag{optionalEnvFlag("environment (required)"), jsonFlag()} }
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
		Flags:  list(),
		Action: action(fleet.MaintenanceList, false),
		Subcommands: []*cli.Command{
			{Name: "on", Usage: "drain HOST from every load balancer and keep it out", ArgsUsage: "HOST", Action: action(fleet.MaintenanceOn, true),
				Flags: []cli.Flag{envFlag("environment"), messageFlag("why, shown by maintenance list and inventory"),
					forceFlag("even when a service would be left below min_in_service, or with no host in rotation"), lockWait()}},
			{Name: "off", Usage: "health-check HOST and put it back into every load balancer", ArgsUsage: "HOST", Action: action(fleet.MaintenanceOff, true),
				Flags: []cli.Flag{envFlag("environment"), lockWait()}},
			{Name: "list", Usage: "the hosts in maintenance: since when, by whom, why", Action: action(fleet.MaintenanceList, false), Flags: list()},
		},
	}
}

// maintenanceRun takes a host out, puts it back, or lists the hosts out.
func maintenanceRun(ctx context.Context, opts maintenanceOptions) error {
	cfg, err := loadConfig(opts.configPath)
	if err != nil {
		return err
	}
	return opts.do(ctx, fleet.MaintenanceOptions{
		Config: cfg, Env: opts.env, Host: opts.host, Message: opts.message,
		Force: opts.force, LockWait: opts.lockWait, JSON: opts.json, Out: os.Stdout,
	})
}
