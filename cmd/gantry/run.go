package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/urfave/cli/v2"
	"golang.org/x/term"

	"github.com/gantry-dev/gantry/config"
	"github.com/gantry-dev/gantry/fleet"
	"github.com/gantry-dev/gantry/progress"
	"github.com/gantry-dev/gantry/rollout"
)

// runOptions are the flags the commands that run a deploy or rollback
// (deploy, plan, rollback, promote) share: runFlags and outputFlags.
type runOptions struct {
	configPath string
	env        string
	dryRun     bool
	onFailure  string
	lockWait   time.Duration
	message    string
	forceLock  bool
	reportPath string

	json, quiet, verbose bool
}

// runOptionsFrom reads the shared run flags; env is the environment the
// run changes (--env, or promote's --to).
func runOptionsFrom(c *cli.Context, env string) runOptions {
	return runOptions{
		configPath: c.String("config"),
		env:        env,
		dryRun:     c.Bool("dry-run"),
		onFailure:  c.String("on-failure"),
		lockWait:   c.Duration("lock-wait"),
		message:    c.String("message"),
		forceLock:  c.Bool("force"),
		reportPath: c.String("report"),
		json:       c.Bool("json"),
		quiet:      c.Bool("quiet"),
		verbose:    c.Bool("verbose"),
	}
}

// runner shows a run: it makes the run's progress view, keeps the report
// the run ended with, and lets the app finish the view once the exit code
// is known, so that the view's last word (the summary table, or the JSON
// summary) carries it. One per invocation of the app.
type runner struct {
	tracker *tracker
	view    *progress.View
	report  *rollout.Report
	dryRun  bool
	secrets []string // the config's secret values, kept out of --report
}

// start returns the fleet options o gives, with the view that shows the
// run (kind: deploy or rollback).
func (r *runner) start(cfg *config.Config, o runOptions, kind rollout.RunKind) (fleet.DeployOptions, error) {
	// The run reads the deployer's environment here, and nowhere deeper.
	secrets := cfg.Secrets(os.LookupEnv)
	r.secrets = secrets
	r.tracker.keepSecret(secrets)
	fo := fleet.DeployOptions{
		Config:    cfg,
		Env:       o.env,
		DryRun:    o.dryRun,
		OnFailure: o.onFailure,
		LockWait:  o.lockWait,
		// The message goes to the lock, the history and webhooks: a
		// secret pasted into it is redacted there too.
		Message:   progress.Redact(o.message, secrets),
		ForceLock: o.forceLock,
		OnEvent:   r.tracker.observe,
		LookupEnv: os.LookupEnv,
	}
	view, err := newView(o, secrets, kind)
	if err != nil {
		return fo, err
	}
	r.view, r.dryRun = view, o.dryRun
	fo.Out, fo.Progress = view.Messages(), view
	return fo, nil
}

// end writes --report and returns the error the run ends with, carrying
// its exit code (reportError).
func (r *runner) end(ctx context.Context, o runOptions, what string, rep *rollout.Report, err error) error {
	r.report = rep
	if err == nil && o.reportPath != "" && rep != nil {
		data, _ := json.MarshalIndent(progress.RedactSummary(rep.Summary(), r.secrets), "", "  ")
		if werr := os.WriteFile(o.reportPath, append(data, '\n'), 0o644); werr != nil {
			fmt.Fprintln(os.Stderr, "gantry: writing --report:", werr)
		}
	}
	return reportError(what, rep, err)
}

// finish gives the run's view its last word: err and code are how the
// command ended. With --json a run refused before its view existed (flags,
// config) still ends its JSON stream with the summary: kind says what it
// would have run.
func (r *runner) finish(ctx context.Context, wantJSON bool, kind rollout.RunKind, err error, code int) {
	if r.view == nil && wantJSON {
		r.view = progress.New(progress.Options{Out: os.Stdout, Mode: progress.JSON, Kind: kind})
	}
	if r.view != nil {
		r.view.Finish(progress.Final{Report: r.report, Err: err, ExitCode: code, Interrupted: ctx.Err() != nil, DryRun: r.dryRun})
	}
}

// newView makes the view of a run from the output flags: JSON with
// --json, the live view when stdout is a terminal, else plain lines.
func newView(o runOptions, secrets []string, kind rollout.RunKind) (*progress.View, error) {
	po := progress.Options{Out: os.Stdout, Env: o.env, Secrets: secrets, Kind: kind}
	if o.quiet && o.verbose {
		return nil, fmt.Errorf("--quiet and --verbose: give one or the other")
	}
	switch {
	case o.quiet:
		po.Verbosity = progress.Quiet
	case o.verbose:
		po.Verbosity = progress.Verbose
	}
	fd := int(os.Stdout.Fd())
	switch {
	case o.json:
		po.Mode = progress.JSON
	case term.IsTerminal(fd) && os.Getenv("TERM") != "dumb" && po.Verbosity == progress.Normal:
		po.Mode = progress.Live
		if w, _, err := term.GetSize(fd); err == nil && w > 20 {
			po.Width = w
		}
	}
	return progress.New(po), nil
}
