package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/gantry-dev/gantry/fleet"
	"github.com/gantry-dev/gantry/lock"
)

// lockOptions are what lock status, acquire and release are given.
type lockOptions struct {
	configPath, env, service string
	message, id              string
	force                    bool
	ttl                      time.Duration
	// do is the operation: fleet.LockStatus, LockAcquire or LockRelease.
	do func(context.Context, fleet.LockOptions) error
}

// newLockCmd is gantry lock status|acquire|release. runF, when not nil,
// runs instead of lockRun (tests).
func newLockCmd(runF func(context.Context, lockOptions) error) *cli.Command {
	if runF == nil {
		runF = lockRun
	}
	action := func(do func(context.Context, fleet.LockOptions) error) cli.ActionFunc {
		return func(c *cli.Context) error {
			if c.NArg() != 1 {
				return fmt.Errorf("lock %s: want exactly one SERVICE argument", c.Command.Name)
			}
			return runF(c.Context, lockOptions{
				configPath: c.String("config"), env: c.String("env"), service: c.Args().First(),
				message: c.String("message"), force: c.Bool("force"), id: c.String("id"), ttl: c.Duration("ttl"), do: do,
			})
		}
	}
	return &cli.Command{
		Name:  "lock",
		Usage: "show, take or release the deploy lock of a service in an environment",
		Description: `The lock lives on the fleet (environments.ENV.lock in gantry.yml), so every
deployer sees it. Deploys take it by themselves and renew it every few
seconds while they run; a lock not renewed within its TTL (lock.ttl, default
1m) has expired and the next deploy takes it over. A lock taken by hand is
not renewed: it lasts until released, or until its own --ttl runs out.

Examples:
   gantry lock status www --env production
   gantry lock acquire www --env production --message "db migration until 15:00" --ttl 4h
   gantry lock release www --env production --id RUN_ID   # the run ID acquire printed
   gantry lock release www --env production --force       # whoever holds it`,
		Subcommands: []*cli.Command{
			{Name: "status", Usage: "who holds the lock", ArgsUsage: "SERVICE", Flags: []cli.Flag{envFlag("environment")}, Action: action(fleet.LockStatus)},
			{Name: "acquire", Usage: "take the lock by hand until released (or its --ttl runs out)", ArgsUsage: "SERVICE", Action: action(fleet.LockAcquire),
				Flags: []cli.Flag{
					messageFlag("why"),
					&cli.DurationFlag{Name: "ttl", Value: lock.DefaultManualTTL, Usage: "the lock expires this long after it is taken unless released"},
					forceFlag("take over a lock someone else took by hand"),
					envFlag("environment"),
				}},
			{Name: "release", Usage: "release the lock with the run ID acquire printed (--id), or whoever holds it (--force)", ArgsUsage: "SERVICE", Action: action(fleet.LockRelease),
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "id", Usage: "run ID of the lock to release, as printed by lock acquire and lock status"},
					forceFlag("release the lock whoever holds it (a running deploy then stops, putting its host back)"),
					envFlag("environment"),
				}},
		},
	}
}

// lockRun shows, takes or releases the service's deploy lock.
func lockRun(ctx context.Context, opts lockOptions) error {
	cfg, err := loadConfig(opts.configPath)
	if err != nil {
		return err
	}
	return opts.do(ctx, fleet.LockOptions{
		Config: cfg, Env: opts.env, Service: opts.service,
		Message: opts.message, Force: opts.force, ID: opts.id, TTL: opts.ttl, Out: os.Stdout,
	})
}
