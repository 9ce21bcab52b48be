package main

import (
	"context"
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/gantry-dev/gantry/rollout"
)

// newApp is gantry's command tree. tr is what the signal handler reads of
// the command in progress; r shows the run of deploy, plan, rollback and
// promote.
func newApp(tr *tracker, r *runner) *cli.App {
	return &cli.App{
		Name:  "gantry",
		Usage: "roll SHA-tagged Docker images out to hosts behind nginx, with no failed requests",
		Flags: []cli.Flag{configFlag()},
		Commands: commands(
			[]*cli.Command{
				newDeployCmd(r, nil), newPlanCmd(r, nil), newRollbackCmd(r, nil), newPromoteCmd(r, nil),
				newHistoryCmd(nil), newInventoryCmd(nil), newPruneCmd(nil), newLockCmd(nil),
				newLogsCmd(tr, nil), newExecCmd(tr, nil), newCompletionCmd(),
			},
			newDecommissionCmds(nil),
			[]*cli.Command{newMaintenanceCmd(nil), newVersionCmd(), newConfigCmd(nil), newKeeperCmd(tr)},
		),
		// Errors are printed, and turned into the exit code, by run.
		ExitErrHandler:       func(*cli.Context, error) {},
		EnableBashCompletion: true, // gantry completion: --generate-bash-completion
	}
}

// commands joins lists of commands, in order.
func commands(lists ...[]*cli.Command) []*cli.Command {
	var out []*cli.Command
	for _, l := range lists {
		out = append(out, l...)
	}
	return out
}

// run runs gantry with args (os.Args) and returns its exit code: the
// command's error mapped by exitCode, after the run's view (if any) has
// shown its last word and the error has been printed, secrets redacted.
func run(ctx context.Context, args []string, tr *tracker) int {
	r := &runner{tracker: tr}
	app := newApp(tr, r)
	runCmd, wantJSON := jsonRun(app, args)
	if wantJSON {
		// stdout carries JSON events only: usage text goes to stderr.
		app.Writer = os.Stderr
	}
	err := app.RunContext(ctx, flagsFirst(app, args))
	code := exitCode(ctx, err)
	kind := rollout.RunDeploy
	if runCmd == "rollback" {
		kind = rollout.RunRollback
	}
	r.finish(ctx, wantJSON, kind, err, code)
	if msg, ok := message(err); ok {
		fmt.Fprintln(os.Stderr, "gantry:", tr.redact(msg))
	}
	return code
}

// showsRun says whether the command named shows a run through a
// progress.View (and so takes --json as a stream of events).
func showsRun(name string) bool {
	switch name {
	case "deploy", "plan", "rollback", "promote":
		return true
	}
	return false
}

// jsonRun returns the name of the command args run, and whether it is a
// run command given --json. It reads args before urfave/cli does, because
// a JSON stream must end with its summary even when parsing them fails.
func jsonRun(app *cli.App, args []string) (string, bool) {
	name := ""
	for _, a := range args[1:] {
		if app.Command(a) != nil {
			name = app.Command(a).Name
			break
		}
	}
	if !showsRun(name) {
		return name, false
	}
	for _, a := range args[1:] {
		if a == "--" {
			break
		}
		if a == "--json" || a == "--json=true" {
			return name, true
		}
	}
	return name, false
}
