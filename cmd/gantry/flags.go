package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/gantry-dev/gantry/config"
	"github.com/gantry-dev/gantry/rollout"
)

// The flags several commands share, each declared once. Each call returns
// a new flag: urfave/cli keeps a flag's parsed value in the flag itself.

// configFlag is the app's --config.
func configFlag() cli.Flag {
	return &cli.StringFlag{Name: "config", Aliases: []string{"c"}, Value: config.DefaultPath, EnvVars: []string{"GANTRY_CONFIG"}, Usage: "config file"}
}

// envFlag is --env, required; usage says what the environment is for.
func envFlag(usage string) cli.Flag {
	return &cli.StringFlag{Name: "env", Aliases: []string{"e"}, Required: true, EnvVars: []string{"GANTRY_ENV"}, Usage: usage}
}

// optionalEnvFlag is --env where urfave/cli must not require it.
func optionalEnvFlag(usage string) cli.Flag {
	return &cli.StringFlag{Name: "env", Aliases: []string{"e"}, EnvVars: []string{"GANTRY_ENV"}, Usage: usage}
}

// jsonFlag is --json of the commands that print a result (not a run).
func jsonFlag() cli.Flag {
	return &cli.BoolFlag{Name: "json", Usage: "print JSON"}
}

// messageFlag is --message (-m): why, recorded with a lock or maintenance.
func messageFlag(usage string) cli.Flag {
	return &cli.StringFlag{Name: "message", Aliases: []string{"m"}, Usage: usage}
}

// forceFlag is --force; usage says what it overrides.
func forceFlag(usage string) cli.Flag {
	return &cli.BoolFlag{Name: "force", Usage: usage}
}

// lockWaitFlag is --lock-wait; usage says which lock.
func lockWaitFlag(usage string) cli.Flag {
	return &cli.DurationFlag{Name: "lock-wait", Usage: usage}
}

// hostFlag is logs' and exec's --host.
func hostFlag(usage string) cli.Flag {
	return &cli.StringFlag{Name: "host", Usage: usage}
}

// allowMutableTagFlag is deploy's, plan's and promote's --allow-mutable-tag.
func allowMutableTagFlag(usage string) cli.Flag {
	return &cli.BoolFlag{Name: "allow-mutable-tag", Usage: usage}
}

// skipReleaseFlag is deploy's, plan's and promote's --skip-release.
func skipReleaseFlag() cli.Flag {
	return &cli.BoolFlag{Name: "skip-release", Usage: "do not run the service's release command (services.NAME.release) this time"}
}

// canaryFlags are deploy's, plan's and promote's --canary and --no-canary.
func canaryFlags() []cli.Flag {
	return []cli.Flag{
		&cli.BoolFlag{Name: "canary", Usage: "bake a canary this time (services.NAME.canary, or 1 host with the default rules) before the other hosts move"},
		&cli.BoolFlag{Name: "no-canary", Usage: "skip the service's canary stage this time"},
	}
}

// canaryFrom reads --canary and --no-canary: nil when neither is given.
func canaryFrom(c *cli.Context) (*bool, error) {
	on, off := c.Bool("canary"), c.Bool("no-canary")
	switch {
	case on && off:
		return nil, fmt.Errorf("%s: --canary and --no-canary: give one", c.Command.Name)
	case on || off:
		return &on, nil
	}
	return nil, nil
}

// runFlags are the flags of every command that changes the fleet.
func runFlags() []cli.Flag {
	return []cli.Flag{
		&cli.BoolFlag{Name: "dry-run", Usage: "run the pre-flight checks, print the plan and change nothing"},
		&cli.StringFlag{Name: "on-failure", Value: rollout.OnFailureRevert, Usage: "when a host fails: revert (move the hosts already changed back too) or halt (leave them)"},
		lockWaitFlag("wait up to this long for a deploy lock someone else holds"),
		messageFlag("recorded with the deploy lock"),
		forceFlag("take over a deploy lock taken by hand (gantry lock acquire); an expired one is taken over anyway"),
		&cli.StringFlag{Name: "report", Usage: "also write the final report as JSON to `FILE`"},
	}
}

// outputFlags choose how a run is shown.
func outputFlags() []cli.Flag {
	return []cli.Flag{
		&cli.BoolFlag{Name: "json", Usage: "print a stream of JSON events, one per line (schema: docs/events.md)"},
		&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "print only warnings and the result"},
		&cli.BoolFlag{Name: "verbose", Aliases: []string{"v"}, Usage: "print every step's start and end as plain lines, and the time per phase of each host"},
	}
}

// flags joins lists of flags, in order.
func flags(lists ...[]cli.Flag) []cli.Flag {
	var out []cli.Flag
	for _, l := range lists {
		out = append(out, l...)
	}
	return out
}
