package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/gantry-dev/gantry/fleet"
)

// logsOptions are what logs is given.
type logsOptions struct {
	configPath, env, service, host string
	since, tail                    string
	follow, timestamps             bool
}

// newLogsCmd is gantry logs: the service container's logs of every host.
// runF, when not nil, runs instead of logsRun (tests).
func newLogsCmd(tr *tracker, runF func(context.Context, logsOptions) error) *cli.Command {
	return &cli.Command{
		Name:      "logs",
		Usage:     "the logs of SERVICE's container on every host (or one), merged, each line prefixed with its host",
		ArgsUsage: "SERVICE",
		Description: `Reads each host's container log through the host's SSH connection to its
Docker daemon (stdout and stderr both), and prints every line after its host's
name, like docker compose logs. Works with every logging driver Docker can read
back (json-file, local, journald; others while Docker's dual logging cache is
on); another one is an error naming the host and the driver. A host that cannot
be reached or read is a warning: the other hosts' logs are still shown, and
gantry exits 1 at the end. --follow streams new lines until Ctrl-C (exit 130),
and keeps following a host's container across restarts and deploys.

Examples:
   gantry logs www --env production --tail 20
   gantry logs www --env production --since 10m --follow
   gantry logs www --env production --host web3 --timestamps`,
		Flags: []cli.Flag{envFlag("environment"),
			hostFlag("only this `HOST`"),
			&cli.StringFlag{Name: "since", Usage: "only lines since `WHEN`: a duration before now (10m, 1h30m) or a timestamp (2024-05-01T12:00:00Z)"},
			&cli.StringFlag{Name: "tail", Aliases: []string{"n"}, Value: "all", Usage: "only the last `N` lines of each host (or all)"},
			&cli.BoolFlag{Name: "follow", Aliases: []string{"f"}, Usage: "keep printing new lines until interrupted"},
			&cli.BoolFlag{Name: "timestamps", Aliases: []string{"t"}, Usage: "show Docker's timestamp of each line"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return fmt.Errorf("logs: want exactly one SERVICE argument, e.g. www")
			}
			opts := logsOptions{
				configPath: c.String("config"), env: c.String("env"), service: c.Args().First(), host: c.String("host"),
				since: c.String("since"), tail: c.String("tail"), follow: c.Bool("follow"), timestamps: c.Bool("timestamps"),
			}
			if runF != nil {
				return runF(c.Context, opts)
			}
			return logsRun(c.Context, tr, opts)
		},
	}
}

// logsRun prints the logs. An interrupt ends it with exit 130 and no
// message, as it is how --follow ends, unless some host's log could not
// be read.
func logsRun(ctx context.Context, tr *tracker, opts logsOptions) error {
	cfg, err := loadConfig(opts.configPath)
	if err != nil {
		return err
	}
	tr.changesNothing()
	err = fleet.Logs(ctx, fleet.LogsOptions{
		Config: cfg, Env: opts.env, Service: opts.service, Host: opts.host,
		Since: opts.since, Tail: opts.tail, Follow: opts.follow, Timestamps: opts.timestamps,
		Out: os.Stdout, Warn: os.Stderr,
	})
	if ctx.Err() != nil && !errors.Is(err, fleet.ErrLogsIncomplete) {
		return exitStatus(exitInterrupted)
	}
	return err // exit 1 when some host's log was not read (exitCode)
}
