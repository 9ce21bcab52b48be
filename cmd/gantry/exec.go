package main

import (
	"context"
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/gantry-dev/gantry/fleet"
)

// execOptions are what exec is given.
type execOptions struct {
	configPath, env, service, host string
	cmd                            []string // the command and its arguments, as typed after --
}

// newExecCmd is gantry exec: a command in the service's running
// container. runF, when not nil, runs instead of execRun (tests).
func newExecCmd(tr *tracker, runF func(context.Context, execOptions) error) *cli.Command {
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
		Flags: []cli.Flag{envFlag("environment"),
			hostFlag("run on this `HOST` (default: the first host whose container runs)"),
		},
		Action: func(c *cli.Context) error {
			if c.NArg() < 1 {
				return fmt.Errorf("exec: want SERVICE -- CMD [ARG...], e.g. gantry exec www --env staging -- /app/manage shell")
			}
			args := c.Args().Slice()
			opts := execOptions{configPath: c.String("config"), env: c.String("env"), service: args[0], host: c.String("host"), cmd: args[1:]}
			if runF != nil {
				return runF(c.Context, opts)
			}
			return execRun(c.Context, tr, opts)
		},
	}
}

// execRun runs the command and ends with its exit code; 125 when it could
// not be run at all (fleet.ErrExecNotRun, exitCode).
func execRun(ctx context.Context, tr *tracker, opts execOptions) error {
	cfg, err := loadConfig(opts.configPath)
	if err != nil {
		return err
	}
	tr.changesNothing()
	rc, err := fleet.Exec(ctx, fleet.ExecOptions{
		Config: cfg, Env: opts.env, Service: opts.service, Host: opts.host, Cmd: opts.cmd,
		Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr,
	})
	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("exec interrupted: the command may go on running in the container")
	case err != nil:
		return err
	}
	return exitStatus(rc)
}
