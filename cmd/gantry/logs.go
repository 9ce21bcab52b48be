package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/gantry-dev/gantry/fleet"
)

// exitExecNotRun is gantry exec's exit code when the command could not be
// run at all, as docker exec's 125: any other code is the command's own.
const exitExecNotRun = 125

// logsCommand shows the service container's logs of every host.
func logsCommand(code *int, st *state) *cli.Command {
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
		Flags: []cli.Flag{envFlag(),
			&cli.StringFlag{Name: "host", Usage: "only this `HOST`"},
			&cli.StringFlag{Name: "since", Usage: "only lines since `WHEN`: a duration before now (10m, 1h30m) or a timestamp (2024-05-01T12:00:00Z)"},
			&cli.StringFlag{Name: "tail", Aliases: []string{"n"}, Value: "all", Usage: "only the last `N` lines of each host (or all)"},
			&cli.BoolFlag{Name: "follow", Aliases: []string{"f"}, Usage: "keep printing new lines until interrupted"},
			&cli.BoolFlag{Name: "timestamps", Aliases: []string{"t"}, Usage: "show Docker's timestamp of each line"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return fmt.Errorf("logs: want exactly one SERVICE argument, e.g. www")
			}
			cfg, err := loadConfig(c)
			if err != nil {
				return err
			}
			st.quietInterrupt()
			err = fleet.Logs(c.Context, fleet.LogsOptions{
				Config: cfg, Env: c.String("env"), Service: c.Args().First(), Host: c.String("host"),
				Since: c.String("since"), Tail: c.String("tail"), Follow: c.Bool("follow"), Timestamps: c.Bool("timestamps"),
				Out: os.Stdout, Warn: os.Stderr,
			})
			switch {
			case errors.Is(err, fleet.ErrLogsIncomplete):
				*code = exitFailed
			case c.Context.Err() != nil:
				// Ctrl-C is how --follow ends: no message, exit 130.
				*code = exitInterrupted
				return nil
			}
			return err
		},
	}
}

// execCommand runs a command in the service's running container.
func execCommand(code *int, st *state) *cli.Command {
	return &cli.Command{
		Name:      "exec",
		Usage:     "run a command in SERVICE's running container on one host, and exit with its exit code",
		ArgsUsage: "SERVICE -- CMD [ARG...]",
		Description: `Runs CMD with its arguments as given (an argv array: no shell in between) in the
service's container on --host, or on the first host in natural order whose
container runs (named on stderr), through the host's SSH connection to its
Docker daemon. When stdin is a terminal the command gets one too (interactive:
keys, Ctrl-C included, go to it; window size changes follow); otherwise stdin
is piped to it. gantry exits with the command's exit code, or 125 when the
command could not be run at all (no reachable host with a running container),
2 for bad input, 130 when interrupted.

Examples:
   gantry exec www --env production -- /app/manage migrate --check
   gantry exec www --env production --host web3 -- sh
   gantry exec worker --env staging -- python manage.py shell < fix-orders.py`,
		Flags: []cli.Flag{envFlag(),
			&cli.StringFlag{Name: "host", Usage: "run on this `HOST` (default: the first host whose container runs)"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() < 1 {
				return fmt.Errorf("exec: want SERVICE -- CMD [ARG...], e.g. gantry exec www --env staging -- /app/manage shell")
			}
			cfg, err := loadConfig(c)
			if err != nil {
				return err
			}
			st.quietInterrupt()
			args := c.Args().Slice()
			rc, err := fleet.Exec(c.Context, fleet.ExecOptions{
				Config: cfg, Env: c.String("env"), Service: args[0], Host: c.String("host"), Cmd: args[1:],
				Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr,
			})
			switch {
			case c.Context.Err() != nil:
				return fmt.Errorf("exec interrupted: the command may go on running in the container")
			case errors.Is(err, fleet.ErrExecNotRun):
				*code = exitExecNotRun
			case err == nil:
				*code = rc
			}
			return err
		},
	}
}
