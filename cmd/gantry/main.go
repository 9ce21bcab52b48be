// Command gantry deploys SHA-tagged Docker images to a fleet of hosts behind
// nginx load balancers, batch by batch, with no failed requests.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"

	"github.com/urfave/cli/v2"
	"golang.org/x/term"

	"github.com/gantry-dev/gantry/config"
	"github.com/gantry-dev/gantry/fleet"
	"github.com/gantry-dev/gantry/internal/hurry"
	"github.com/gantry-dev/gantry/internal/names"
	"github.com/gantry-dev/gantry/lock"
	"github.com/gantry-dev/gantry/progress"
	"github.com/gantry-dev/gantry/rollout"
)

// Exit codes (documented in README.md).
const (
	exitOK           = 0
	exitFailed       = 1 // the deploy failed; the fleet was reverted (or halted) and every host serves
	exitUsage        = 2 // bad input: flags, config, target
	exitPreflight    = 3 // refused by pre-flight checks, or the release command failed: nothing was changed
	exitLockHeld     = 4 // someone else holds the deploy lock
	exitRevertFailed = 5 // putting a host back failed: see the report
	exitInterrupted  = 130
)

func main() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st := &state{}
	// First SIGINT/SIGTERM/SIGHUP: cancel, so gantry stops starting new
	// steps and puts the host in progress back. Second: cut the waits of
	// that work short (requests in flight, more health-check passes), so
	// the host is back at once, but never abandon it mid-swap. Third: print
	// the state and exit now. (CI systems send SIGINT, then SIGTERM a few
	// seconds later, then SIGKILL; a dropped terminal sends SIGHUP.)
	sigs := make(chan os.Signal, 3)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	hurried := make(chan struct{})
	ctx = hurry.With(ctx, hurried)
	go func() {
		s := <-sigs
		if st.interruptIsQuiet() {
			// logs and exec change nothing: stopping is all there is.
			cancel()
			<-sigs
			os.Exit(exitInterrupted)
		}
		fmt.Fprintf(os.Stderr, "gantry: %s: finishing the current step so every host serves, then stopping (again to cut waits short, a third time to abort)\n", s)
		cancel()
		s = <-sigs
		fmt.Fprintf(os.Stderr, "gantry: %s again: putting the host in progress back now, without waiting for requests in flight (again to abort at once)\n", s)
		close(hurried)
		<-sigs
		fmt.Fprintln(os.Stderr, "gantry: aborted; last known state of each host:")
		st.print(os.Stderr)
		os.Exit(exitInterrupted)
	}()
	os.Exit(run(ctx, os.Args, st))
}

// state is what run knows of the command in progress: the last step of
// every host (for an abort), and the view showing the run with its report.
type state struct {
	mu   sync.Mutex
	last map[string]rollout.Event

	view    *progress.View
	report  *rollout.Report
	dryRun  bool
	secrets []string // the config's secret values, kept out of all output

	// quiet: the command changes nothing (logs, exec), so an interrupt
	// just stops it, without the deploy's three-step message.
	quiet bool
}

// quietInterrupt says the command running changes nothing.
func (s *state) quietInterrupt() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.quiet = true
}

func (s *state) interruptIsQuiet() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.quiet
}

func (s *state) observe(ev rollout.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.last == nil {
		s.last = map[string]rollout.Event{}
	}
	s.last[ev.Host] = ev
}

func (s *state) print(w io.Writer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	hosts := make([]string, 0, len(s.last))
	for h := range s.last {
		hosts = append(hosts, h)
	}
	names.Sort(hosts)
	for _, h := range hosts {
		ev := s.last[h]
		status := "in progress"
		if ev.Done {
			status = "done"
			if ev.Err != nil {
				status = "failed: " + ev.Err.Error()
			}
		}
		fmt.Fprintf(w, "  %s: %s %s\n", h, ev.Step, progress.Redact(status, s.secrets))
	}
}

func run(ctx context.Context, args []string, st *state) int {
	code := exitOK
	app := &cli.App{
		Name:  "gantry",
		Usage: "roll SHA-tagged Docker images out to hosts behind nginx, with no failed requests",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "config", Aliases: []string{"c"}, Value: config.DefaultPath, EnvVars: []string{"GANTRY_CONFIG"}, Usage: "config file"},
		},
		Commands:       []*cli.Command{deployCommand(&code, st), planCommand(&code, st), rollbackCommand(&code, st), promoteCommand(&code, st), historyCommand(), inventoryCommand(), pruneCommand(), lockCommand(&code), logsCommand(&code, st), execCommand(&code, st), completionCommand()},
		ExitErrHandler: func(*cli.Context, error) {},
	}
	app.Commands = append(app.Commands, decommissionCommands()...)
	app.Commands = append(app.Commands, maintenanceCommand())
	app.Commands = append(app.Commands, versionCommand(), configCommand())
	app.EnableBashCompletion = true // gantry completion: --generate-bash-completion
	runCmd, wantJSON := jsonRun(app, args)
	if wantJSON {
		// stdout carries JSON events only: usage text goes to stderr.
		app.Writer = os.Stderr
	}
	err := app.RunContext(ctx, flagsFirst(app, args))
	if err != nil && code == exitOK {
		code = exitCode(ctx, err)
	}
	if st.view == nil && wantJSON {
		// Refused before the run's view existed (flags, config): the JSON
		// stream still ends with its summary.
		kind := "deploy"
		if runCmd == "rollback" {
			kind = "rollback"
		}
		st.view = progress.New(progress.Options{Out: os.Stdout, Mode: progress.JSON, Kind: kind})
	}
	if st.view != nil {
		// The last word of a run: the summary table, or the JSON summary.
		st.view.Finish(progress.Final{Report: st.report, Err: err, ExitCode: code, Interrupted: ctx.Err() != nil, DryRun: st.dryRun})
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "gantry:", progress.Redact(err.Error(), st.secrets))
	}
	return code
}

// runCommands are the commands that show a run through a progress.View.
var runCommands = map[string]bool{"deploy": true, "plan": true, "rollback": true, "promote": true}

// jsonRun returns the run command args name, and whether --json was given
// to it.
func jsonRun(app *cli.App, args []string) (string, bool) {
	name := ""
	for _, a := range args[1:] {
		if app.Command(a) != nil {
			name = app.Command(a).Name
			break
		}
	}
	if !runCommands[name] {
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

// exitCode classifies an error that ended a command before or without a
// report.
func exitCode(ctx context.Context, err error) int {
	switch {
	case errors.Is(err, lock.ErrHeld):
		return exitLockHeld
	case ctx.Err() != nil:
		return exitInterrupted
	case errors.Is(err, rollout.ErrPreflight):
		return exitPreflight
	}
	return exitUsage
}

var deployFlags = []cli.Flag{
	&cli.StringFlag{Name: "env", Aliases: []string{"e"}, Required: true, EnvVars: []string{"GANTRY_ENV"}, Usage: "environment to deploy to"},
	&cli.BoolFlag{Name: "allow-mutable-tag", Usage: "allow tags such as latest that can move"},
	skipReleaseFlag,
}

// skipReleaseFlag is deploy's, plan's and promote's.
var skipReleaseFlag = &cli.BoolFlag{Name: "skip-release", Usage: "do not run the service's release command (services.NAME.release) this time"}

func deployCommand(code *int, st *state) *cli.Command {
	return &cli.Command{
		Name:      "deploy",
		Usage:     "deploy SERVICE@TAG (or APP@TAG: every service of the app) to an environment",
		ArgsUsage: "SERVICE@TAG|APP@TAG",
		Description: `Checks the fleet first (pre-flight), takes the environment's deploy lock,
pulls the image on every host, runs the service's release command once (if it
has one; --skip-release skips it), then batch by batch drains each host from every
load balancer, swaps the container, health-checks it and puts the host back.
If a host fails, it goes back to its old version, and so do the hosts already
moved (unless --on-failure halt).

Examples:
   gantry deploy www@3f2c1ab --env staging
   gantry deploy www@3f2c1ab --env production --lock-wait 10m --message "release 42"
   gantry deploy www@3f2c1ab --env staging --dry-run`,
		Flags: append(append(runFlags(), outputFlags()...), deployFlags...),
		Action: func(c *cli.Context) error {
			return deploy(c, code, c.Bool("dry-run"), st)
		},
	}
}

// runFlags are the flags of every command that changes the fleet.
func runFlags() []cli.Flag {
	return []cli.Flag{
		&cli.BoolFlag{Name: "dry-run", Usage: "run the pre-flight checks, print the plan and change nothing"},
		&cli.StringFlag{Name: "on-failure", Value: rollout.OnFailureRevert, Usage: "when a host fails: revert (move the hosts already changed back too) or halt (leave them)"},
		&cli.DurationFlag{Name: "lock-wait", Usage: "wait up to this long for a deploy lock someone else holds"},
		&cli.StringFlag{Name: "message", Aliases: []string{"m"}, Usage: "recorded with the deploy lock"},
		&cli.BoolFlag{Name: "force", Usage: "take over a deploy lock taken by hand (gantry lock acquire); an expired one is taken over anyway"},
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

// newView makes the view of a run from the output flags: JSON with
// --json, the live view when stdout is a terminal, else plain lines.
func newView(c *cli.Context, cfg *config.Config, env string) (*progress.View, error) {
	o := progress.Options{Out: os.Stdout, Env: env, Secrets: cfg.Secrets(os.LookupEnv), Kind: "deploy"}
	if c.Command.Name == "rollback" {
		o.Kind = "rollback"
	}
	if c.Bool("quiet") && c.Bool("verbose") {
		return nil, fmt.Errorf("--quiet and --verbose: give one or the other")
	}
	switch {
	case c.Bool("quiet"):
		o.Verbosity = progress.Quiet
	case c.Bool("verbose"):
		o.Verbosity = progress.Verbose
	}
	fd := int(os.Stdout.Fd())
	switch {
	case c.Bool("json"):
		o.Mode = progress.JSON
	case term.IsTerminal(fd) && os.Getenv("TERM") != "dumb" && o.Verbosity == progress.Normal:
		o.Mode = progress.Live
		if w, _, err := term.GetSize(fd); err == nil && w > 20 {
			o.Width = w
		}
	}
	return progress.New(o), nil
}

func rollbackCommand(code *int, st *state) *cli.Command {
	return &cli.Command{
		Name:      "rollback",
		Usage:     "move every host of SERVICE back to the version it ran before, from its image cache",
		ArgsUsage: "SERVICE",
		Description: `Each host goes back to the version it ran before its current one (recorded on
the container, so any deployer can roll back what another deployed), or to
--to VERSION, using the image already cached on the host: the registry is not
needed. Same lock, pre-flight and drain/swap/health/restore steps as deploy.

Examples:
   gantry rollback www --env production
   gantry rollback www --env production --emergency
   gantry rollback www --env staging --to 3f2c1ab`,
		Flags: append(append(runFlags(), outputFlags()...),
			&cli.StringFlag{Name: "env", Aliases: []string{"e"}, Required: true, EnvVars: []string{"GANTRY_ENV"}, Usage: "environment"},
			&cli.StringFlag{Name: "to", Usage: "go back to this `VERSION` (it must be cached on every host)"},
			&cli.BoolFlag{Name: "emergency", Usage: "batches of half the hosts, never a whole zone at once"},
		),
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return fmt.Errorf("rollback: want exactly one SERVICE argument, e.g. www")
			}
			cfg, err := loadConfig(c)
			if err != nil {
				return err
			}
			ro, err := runOptions(c, cfg, st, c.String("env"))
			if err != nil {
				return err
			}
			opts := fleet.RollbackOptions{DeployOptions: ro, Service: c.Args().First(), To: c.String("to"), Emergency: c.Bool("emergency")}
			var rep *rollout.Report
			if fleet.IsApp(ro, c.Args().First()) {
				rep, err = fleet.RollbackApp(c.Context, opts, c.Args().First())
			} else {
				rep, err = fleet.Rollback(c.Context, opts)
			}
			return finish(c, code, st, "rollback of "+c.Args().First(), rep, err)
		},
	}
}

// runOptions fills the options every fleet-changing command shares, and
// makes the view that shows the run.
func runOptions(c *cli.Context, cfg *config.Config, st *state, env string) (fleet.DeployOptions, error) {
	// The run reads the deployer's environment here, and nowhere deeper.
	st.secrets = cfg.Secrets(os.LookupEnv)
	o := fleet.DeployOptions{
		Config:    cfg,
		Env:       env,
		DryRun:    c.Bool("dry-run"),
		OnFailure: c.String("on-failure"),
		LockWait:  c.Duration("lock-wait"),
		// The message goes to the lock, the history and webhooks: a
		// secret pasted into it is redacted there too.
		Message:   progress.Redact(c.String("message"), st.secrets),
		ForceLock: c.Bool("force"),
		OnEvent:   st.observe,
		LookupEnv: os.LookupEnv,
	}
	view, err := newView(c, cfg, o.Env)
	if err != nil {
		return o, err
	}
	st.view, st.dryRun = view, o.DryRun
	o.Out, o.Progress = view.Messages(), view
	return o, nil
}

// finish writes --report and turns a report into the exit code.
func finish(c *cli.Context, code *int, st *state, what string, rep *rollout.Report, err error) error {
	st.report = rep
	if err != nil {
		return err
	}
	if path := c.String("report"); path != "" && rep != nil {
		data, _ := json.MarshalIndent(progress.RedactSummary(rep.Summary(), st.secrets), "", "  ")
		if werr := os.WriteFile(path, append(data, '\n'), 0o644); werr != nil {
			fmt.Fprintln(os.Stderr, "gantry: writing --report:", werr)
		}
	}
	if rep == nil || rep.OK() {
		return nil
	}
	switch {
	case rep.RevertFailed():
		// Before the interrupt: a host that could not be put back is what
		// the operator must hear about, interrupted or not.
		*code = exitRevertFailed
		return fmt.Errorf("%s failed AND putting hosts back failed; see REVERT-FAILED above:\n%v", what, rep.Err)
	case c.Context.Err() != nil:
		*code = exitInterrupted
		return fmt.Errorf("%s interrupted; every host above is serving and in every load balancer unless marked otherwise:\n%v", what, rep.Err)
	case rep.ReleaseFailed():
		// No host was touched: like a failed pre-flight check.
		*code = exitPreflight
		return fmt.Errorf("%s stopped: %v", what, rep.Err)
	}
	*code = exitFailed
	return fmt.Errorf("%s failed; %s:\n%v", what, rep.Verdict(), rep.Err)
}

func planCommand(code *int, st *state) *cli.Command {
	return &cli.Command{
		Name:      "plan",
		Usage:     "run the pre-flight checks and print what deploying SERVICE@TAG would do, changing nothing",
		ArgsUsage: "SERVICE@TAG|APP@TAG",
		Flags:     append(outputFlags(), deployFlags...),
		Action:    func(c *cli.Context) error { return deploy(c, code, true, st) },
	}
}

func deploy(c *cli.Context, code *int, dryRun bool, st *state) error {
	if c.NArg() != 1 {
		return fmt.Errorf("%s: want exactly one SERVICE@TAG argument, e.g. www@3f2c1ab", c.Command.Name)
	}
	cfg, err := loadConfig(c)
	if err != nil {
		return err
	}
	opts, err := runOptions(c, cfg, st, c.String("env"))
	if err != nil {
		return err
	}
	opts.DryRun = dryRun
	st.dryRun = dryRun
	opts.Target = c.Args().First()
	opts.AllowMutableTag = c.Bool("allow-mutable-tag")
	opts.SkipRelease = c.Bool("skip-release")
	deployFn := fleet.Deploy
	if fleet.IsApp(opts, opts.Target) {
		deployFn = fleet.DeployApp // every service of the app, at one version
	}
	rep, err := deployFn(c.Context, opts)
	return finish(c, code, st, "deploy of "+c.Args().First(), rep, err)
}

func historyCommand() *cli.Command {
	return &cli.Command{
		Name:      "history",
		Usage:     "the deploy audit trail of a service: who deployed what, when, from which version to which, where, and how it ended",
		ArgsUsage: "SERVICE",
		Description: `The trail is kept on the fleet (beside the deploy locks), so every deployer
sees the same one.

Examples:
   gantry history www --env production
   gantry history www --env production --json`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "env", Aliases: []string{"e"}, Required: true, EnvVars: []string{"GANTRY_ENV"}, Usage: "environment"},
			&cli.BoolFlag{Name: "json", Usage: "print JSON"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return fmt.Errorf("history: want exactly one SERVICE argument")
			}
			cfg, err := loadConfig(c)
			if err != nil {
				return err
			}
			return fleet.History(c.Context, fleet.HistoryOptions{Config: cfg, Env: c.String("env"), Service: c.Args().First(), JSON: c.Bool("json"), Out: os.Stdout})
		},
	}
}

func envFlag() cli.Flag {
	return &cli.StringFlag{Name: "env", Aliases: []string{"e"}, Required: true, EnvVars: []string{"GANTRY_ENV"}, Usage: "environment"}
}

func inventoryCommand() *cli.Command {
	return &cli.Command{
		Name:  "inventory",
		Usage: "what runs where: per host its containers, versions, health, cached versions, disk and load balancer state",
		Description: `Looks at every host and load balancer, changing nothing. Flags drift (hosts not
on the version the rest of the service runs), containers gantry does not
manage, and single points of failure.

Examples:
   gantry inventory --env production
   gantry inventory --env production --service www --json`,
		Flags: []cli.Flag{envFlag(),
			&cli.StringFlag{Name: "service", Aliases: []string{"s"}, Usage: "only this service's hosts"},
			&cli.BoolFlag{Name: "json", Usage: "print JSON"},
		},
		Action: func(c *cli.Context) error {
			cfg, err := loadConfig(c)
			if err != nil {
				return err
			}
			return fleet.ShowInventory(c.Context, fleet.InventoryOptions{Config: cfg, Env: c.String("env"), Service: c.String("service"), JSON: c.Bool("json"), Out: os.Stdout})
		},
	}
}

func decommissionCommands() []*cli.Command {
	act := func(fn func(context.Context, fleet.DecommissionOptions) error) cli.ActionFunc {
		return func(c *cli.Context) error {
			if c.NArg() != 1 {
				return fmt.Errorf("%s: want exactly one HOST argument", c.Command.Name)
			}
			cfg, err := loadConfig(c)
			if err != nil {
				return err
			}
			return fn(c.Context, fleet.DecommissionOptions{Config: cfg, Env: c.String("env"), Host: c.Args().First(), Force: c.Bool("force"), Out: os.Stdout})
		}
	}
	return []*cli.Command{
		{
			Name:      "decommission",
			Usage:     "take HOST out for good: out of every load balancer, its containers stopped, skipped by later deploys",
			ArgsUsage: "HOST",
			Description: `Shows what runs on the host first. Refused when a service would be left with
fewer healthy hosts than its min_in_service, unless --force.

Example:
   gantry decommission web3 --env production`,
			Flags:  []cli.Flag{envFlag(), &cli.BoolFlag{Name: "force", Usage: "decommission even below a service's min_in_service"}},
			Action: act(fleet.Decommission),
		},
		{
			Name:      "recommission",
			Usage:     "undo decommission: the next deploy brings HOST back into service",
			ArgsUsage: "HOST",
			Flags:     []cli.Flag{envFlag()},
			Action:    act(fleet.Recommission),
		},
	}
}

func pruneCommand() *cli.Command {
	return &cli.Command{
		Name:  "prune",
		Usage: "remove stopped leftovers and old images on every host, keeping the last versions for rollback",
		Description: `Keeps each service's last keep_versions versions (default 3, the running one
included). A successful deploy prunes its own service the same way by itself.
Holds every pruned service's deploy lock (waiting up to --lock-wait for each).

Example:
   gantry prune --env production --keep 5`,
		Flags: []cli.Flag{envFlag(), &cli.IntFlag{Name: "keep", Usage: "versions to keep per service (default: keep_versions)"},
			&cli.DurationFlag{Name: "lock-wait", Usage: "wait up to this long for each service's deploy lock someone else holds"}},
		Action: func(c *cli.Context) error {
			cfg, err := loadConfig(c)
			if err != nil {
				return err
			}
			if c.IsSet("keep") && c.Int("keep") < 1 {
				return fmt.Errorf("--keep must be at least 1 (the running version)")
			}
			return fleet.Prune(c.Context, fleet.PruneOptions{Config: cfg, Env: c.String("env"), Keep: c.Int("keep"), LockWait: c.Duration("lock-wait"), Out: os.Stdout})
		},
	}
}

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func versionCommand() *cli.Command {
	return &cli.Command{
		Name:  "version",
		Usage: "print gantry's version",
		Action: func(c *cli.Context) error {
			fmt.Println("gantry", version)
			return nil
		},
	}
}

func configCommand() *cli.Command {
	return &cli.Command{
		Name:  "config",
		Usage: "check the config file",
		Subcommands: []*cli.Command{{
			Name:  "check",
			Usage: "validate the config and reach every host and load balancer, changing nothing",
			Description: `Loads and validates the config, then connects to every host (SSH with host keys
verified, then its Docker daemon) and load balancer (SSH, then its config test).

Examples:
   gantry config check
   gantry --config prod.yml config check --env production`,
			Flags: []cli.Flag{&cli.StringFlag{Name: "env", Aliases: []string{"e"}, EnvVars: []string{"GANTRY_ENV"}, Usage: "only this environment"}},
			Action: func(c *cli.Context) error {
				cfg, err := loadConfig(c)
				if err != nil {
					return err
				}
				fmt.Printf("%s: valid\n", cfg.Path)
				err = fleet.CheckConfig(c.Context, fleet.CheckOptions{Config: cfg, Env: c.String("env"), Out: os.Stdout})
				if errors.Is(err, fleet.ErrUnreachable) {
					return fmt.Errorf("%w: %w", rollout.ErrPreflight, err)
				}
				return err
			},
		}},
	}
}

func lockCommand(code *int) *cli.Command {
	flags := []cli.Flag{
		&cli.StringFlag{Name: "env", Aliases: []string{"e"}, Required: true, EnvVars: []string{"GANTRY_ENV"}, Usage: "environment"},
	}
	action := func(fn func(context.Context, fleet.LockOptions) error) cli.ActionFunc {
		return func(c *cli.Context) error {
			if c.NArg() != 1 {
				return fmt.Errorf("lock %s: want exactly one SERVICE argument", c.Command.Name)
			}
			cfg, err := loadConfig(c)
			if err != nil {
				return err
			}
			return fn(c.Context, fleet.LockOptions{
				Config: cfg, Env: c.String("env"), Service: c.Args().First(),
				Message: c.String("message"), Force: c.Bool("force"), ID: c.String("id"), TTL: c.Duration("ttl"), Out: os.Stdout,
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
			{Name: "status", Usage: "who holds the lock", ArgsUsage: "SERVICE", Flags: flags, Action: action(fleet.LockStatus)},
			{Name: "acquire", Usage: "take the lock by hand until released (or its --ttl runs out)", ArgsUsage: "SERVICE", Action: action(fleet.LockAcquire),
				Flags: append([]cli.Flag{
					&cli.StringFlag{Name: "message", Aliases: []string{"m"}, Usage: "why"},
					&cli.DurationFlag{Name: "ttl", Value: lock.DefaultManualTTL, Usage: "the lock expires this long after it is taken unless released"},
					&cli.BoolFlag{Name: "force", Usage: "take over a lock someone else took by hand"},
				}, flags...)},
			{Name: "release", Usage: "release the lock with the run ID acquire printed (--id), or whoever holds it (--force)", ArgsUsage: "SERVICE", Action: action(fleet.LockRelease),
				Flags: append([]cli.Flag{
					&cli.StringFlag{Name: "id", Usage: "run ID of the lock to release, as printed by lock acquire and lock status"},
					&cli.BoolFlag{Name: "force", Usage: "release the lock whoever holds it (a running deploy then stops, putting its host back)"},
				}, flags...)},
		},
	}
}

// flagsFirst moves a command's flags ahead of its arguments, so that the
// natural "gantry deploy www@abc123 --env staging" works: urfave/cli stops
// reading flags at the first argument.
func flagsFirst(app *cli.App, args []string) []string {
	if words, ok := completionWords(args); ok {
		return words
	}
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
	// Descend into subcommands ("lock status"): their flags are the ones read.
	for i < len(args) && len(cmd.Subcommands) > 0 {
		sub := cmd.Command(args[i])
		if sub == nil {
			break
		}
		out = append(out, args[i])
		cmd = sub
		i++
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
