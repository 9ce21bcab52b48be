// Command gantry deploys SHA-tagged Docker images to a fleet of hosts behind
// nginx load balancers, batch by batch, with no failed requests.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
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
		Commands:       []*cli.Command{deployCommand(&code), planCommand(&code)},
		ExitErrHandler: func(*cli.Context, error) {},
	}
	if err := app.RunContext(ctx, flagsFirst(app, args)); err != nil {
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
		Flags: append([]cli.Flag{
			&cli.BoolFlag{Name: "dry-run", Usage: "print the plan and change nothing"},
			&cli.StringFlag{Name: "report", Usage: "also write the final report as JSON to `FILE`"},
		}, deployFlags...),
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
	if path := c.String("report"); path != "" && rep != nil {
		data, _ := json.MarshalIndent(rep.Summary(), "", "  ")
		if werr := os.WriteFile(path, append(data, '\n'), 0o644); werr != nil {
			fmt.Fprintln(os.Stderr, "gantry: writing --report:", werr)
		}
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

// flagsFirst moves a command's flags ahead of its arguments, so that the
// natural "gantry deploy www@abc123 --env staging" works: urfave/cli stops
// reading flags at the first argument.
func flagsFirst(app *cli.App, args []string) []string {
	if len(args) < 2 {
		return args
	}
	out := []string{args[0]}
	i := 1
	// Global flags before the command stay where they are.
	for i < len(args) && strings.HasPrefix(args[i], "-") {
		out = append(out, args[i])
		if takesValue(app.Flags, args[i]) && i+1 < len(args) {
			i++
			out = append(out, args[i])
		}
		i++
	}
	if i >= len(args) {
		return out
	}
	cmd := app.Command(args[i])
	out = append(out, args[i])
	i++
	if cmd == nil {
		return append(out, args[i:]...)
	}
	var flags, positional []string
	for ; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			positional = append(positional, args[i+1:]...)
			i = len(args)
		case strings.HasPrefix(a, "-") && len(a) > 1 && isFlag(app.Flags, a) && !isFlag(cmd.Flags, a):
			// A global flag given after the command: move it before.
			global := []string{a}
			if takesValue(app.Flags, a) && i+1 < len(args) {
				i++
				global = append(global, args[i])
			}
			out = append(append(out[:len(out)-1:len(out)-1], global...), out[len(out)-1])
		case strings.HasPrefix(a, "-") && len(a) > 1:
			flags = append(flags, a)
			if takesValue(cmd.Flags, a) && i+1 < len(args) {
				i++
				flags = append(flags, args[i])
			}
		default:
			positional = append(positional, a)
		}
	}
	out = append(out, flags...)
	if len(positional) > 0 {
		out = append(out, "--")
	}
	return append(out, positional...)
}

// isFlag reports whether arg names one of flags.
func isFlag(flags []cli.Flag, arg string) bool {
	name, _, _ := strings.Cut(strings.TrimLeft(arg, "-"), "=")
	for _, f := range flags {
		for _, n := range f.Names() {
			if n == name {
				return true
			}
		}
	}
	return false
}

// takesValue reports whether arg ("--env", "-e") names a flag that takes a
// separate value.
func takesValue(flags []cli.Flag, arg string) bool {
	if strings.Contains(arg, "=") {
		return false
	}
	name := strings.TrimLeft(arg, "-")
	for _, f := range flags {
		for _, n := range f.Names() {
			if n == name {
				dv, ok := f.(cli.DocGenerationFlag)
				return ok && dv.TakesValue()
			}
		}
	}
	return false
}
