// Command gantry deploys SHA-tagged Docker images to a fleet of hosts behind
// nginx load balancers, batch by batch, with no failed requests.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/gantry-dev/gantry/config"
	"github.com/gantry-dev/gantry/fleet"
)

// Exit codes.
const (
	exitOK          = 0
	exitFailed      = 1 // the deploy ran and did not end with every host on the target
	exitUsage       = 2 // bad input or refused before anything changed
	exitInterrupted = 130
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args))
}

func run(ctx context.Context, args []string) int {
	code := exitOK
	app := &cli.App{
		Name:  "gantry",
		Usage: "roll SHA-tagged Docker images out to hosts behind nginx, with no failed requests",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "config", Aliases: []string{"c"}, Value: config.DefaultPath, EnvVars: []string{"GANTRY_CONFIG"}, Usage: "config file"},
		},
		Commands: []*cli.Command{deployCommand(&code), planCommand(&code)},
		ExitErrHandler: func(*cli.Context, error) {},
	}
	if err := app.RunContext(ctx, args); err != nil {
		fmt.Fprintln(os.Stderr, "gantry:", err)
		if code == exitOK {
			code = exitUsage
		}
	}
	return code
}

var deployFlags = []cli.Flag{
	&cli.StringFlag{Name: "env", Aliases: []string{"e"}, Required: true, EnvVars: []string{"GANTRY_ENV"}, Usage: "environment to deploy to"},
	&cli.BoolFlag{Name: "allow-mutable-tag", Usage: "allow tags such as latest that can move"},
}

func deployCommand(code *int) *cli.Command {
	return &cli.Command{
		Name:      "deploy",
		Usage:     "deploy SERVICE@TAG to an environment",
		ArgsUsage: "SERVICE@TAG",
		Description: `Pulls the image on every host, then batch by batch drains each host from every
load balancer, swaps the container, health-checks it and puts the host back.

Example:
   gantry deploy www@3f2c1ab --env staging`,
		Flags: append([]cli.Flag{&cli.BoolFlag{Name: "dry-run", Usage: "print the plan and change nothing"}}, deployFlags...),
		Action: func(c *cli.Context) error {
			return deploy(c, code, c.Bool("dry-run"))
		},
	}
}

func planCommand(code *int) *cli.Command {
	return &cli.Command{
		Name:      "plan",
		Usage:     "print what deploying SERVICE@TAG would do, changing nothing",
		ArgsUsage: "SERVICE@TAG",
		Flags:     deployFlags,
		Action:    func(c *cli.Context) error { return deploy(c, code, true) },
	}
}

func deploy(c *cli.Context, code *int, dryRun bool) error {
	if c.NArg() != 1 {
		return fmt.Errorf("%s: want exactly one SERVICE@TAG argument, e.g. www@3f2c1ab", c.Command.Name)
	}
	cfg, err := config.Load(c.String("config"))
	if err != nil {
		return err
	}
	rep, err := fleet.Deploy(c.Context, fleet.DeployOptions{
		Config:          cfg,
		Env:             c.String("env"),
		Target:          c.Args().First(),
		AllowMutableTag: c.Bool("allow-mutable-tag"),
		DryRun:          dryRun,
		Out:             os.Stdout,
	})
	if err != nil {
		return err
	}
	if rep == nil || rep.OK() {
		return nil
	}
	*code = exitFailed
	if errors.Is(c.Context.Err(), context.Canceled) {
		*code = exitInterrupted
	}
	return fmt.Errorf("deploy of %s did not complete:\n%v", c.Args().First(), rep.Err)
}
