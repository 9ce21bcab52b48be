package main

import (
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/gantry-dev/gantry/config"
)

// parsed is what a command saw after urfave/cli parsed the arguments.
type parsed struct {
	command, config, env string
	dryRun, allowMutable bool
	args                 []string
}

// testApp is gantry's app with the real commands and flags, whose actions
// record what they were given instead of deploying.
func testApp(got *parsed) *cli.App {
	r := &runner{tracker: &tracker{}}
	cmds := []*cli.Command{newDeployCmd(r, nil), newPlanCmd(r, nil)}
	for _, c := range cmds {
		c.Action = func(c *cli.Context) error {
			*got = parsed{
				command:      c.Command.Name,
				config:       c.String("config"),
				env:          c.String("env"),
				dryRun:       c.Bool("dry-run"),
				allowMutable: c.Bool("allow-mutable-tag"),
				args:         c.Args().Slice(),
			}
			return nil
		}
	}
	return &cli.App{
		Name: "gantry",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "config", Aliases: []string{"c"}, Value: config.DefaultPath},
		},
		Commands:       cmds,
		Writer:         io.Discard,
		ErrWriter:      io.Discard,
		ExitErrHandler: func(*cli.Context, error) {},
	}
}

func TestFlagsFirst(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string // the rewritten command line
		// what the command then sees; config defaults to gantry.yml
		parsed parsed
	}{
		{
			name:   "flag after the argument",
			in:     "gantry deploy www@abc --env lab",
			want:   "gantry deploy --env lab -- www@abc",
			parsed: parsed{command: "deploy", env: "lab", args: []string{"www@abc"}},
		},
		{
			name:   "flag before the argument",
			in:     "gantry deploy --env lab www@abc",
			want:   "gantry deploy --env lab -- www@abc",
			parsed: parsed{command: "deploy", env: "lab", args: []string{"www@abc"}},
		},
		{
			name:   "short flag and = form",
			in:     "gantry deploy www@abc -e=lab --allow-mutable-tag",
			want:   "gantry deploy -e=lab --allow-mutable-tag -- www@abc",
			parsed: parsed{command: "deploy", env: "lab", allowMutable: true, args: []string{"www@abc"}},
		},
		{
			name:   "global flag after the command moves before it",
			in:     "gantry deploy www@abc --config f.yml --env lab",
			want:   "gantry --config f.yml deploy --env lab -- www@abc",
			parsed: parsed{command: "deploy", config: "f.yml", env: "lab", args: []string{"www@abc"}},
		},
		{
			name:   "global short flag with = after the command",
			in:     "gantry plan -c=f.yml www@abc -e lab",
			want:   "gantry -c=f.yml plan -e lab -- www@abc",
			parsed: parsed{command: "plan", config: "f.yml", env: "lab", args: []string{"www@abc"}},
		},
		{
			name:   "global flag before the command stays",
			in:     "gantry -c f.yml deploy www@abc -e lab",
			want:   "gantry -c f.yml deploy -e lab -- www@abc",
			parsed: parsed{command: "deploy", config: "f.yml", env: "lab", args: []string{"www@abc"}},
		},
		{
			name:   "bool flag does not swallow the argument",
			in:     "gantry deploy --dry-run www@abc --env lab",
			want:   "gantry deploy --dry-run --env lab -- www@abc",
			parsed: parsed{command: "deploy", env: "lab", dryRun: true, args: []string{"www@abc"}},
		},
		{
			name:   "bool flag last",
			in:     "gantry deploy www@abc --env lab --dry-run",
			want:   "gantry deploy --env lab --dry-run -- www@abc",
			parsed: parsed{command: "deploy", env: "lab", dryRun: true, args: []string{"www@abc"}},
		},
		{
			name:   "after -- everything is an argument",
			in:     "gantry deploy --env lab -- www@abc --dry-run",
			want:   "gantry deploy --env lab -- www@abc --dry-run",
			parsed: parsed{command: "deploy", env: "lab", args: []string{"www@abc", "--dry-run"}},
		},
		{
			name:   "two arguments kept in order",
			in:     "gantry deploy www@abc --env lab api@def",
			want:   "gantry deploy --env lab -- www@abc api@def",
			parsed: parsed{command: "deploy", env: "lab", args: []string{"www@abc", "api@def"}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got parsed
			app := testApp(&got)
			out := flagsFirst(app, strings.Fields(tc.in))
			if s := strings.Join(out, " "); s != tc.want {
				t.Errorf("flagsFirst(%s)\n got %s\nwant %s", tc.in, s, tc.want)
			}
			if err := app.Run(out); err != nil {
				t.Fatalf("running %q: %v", out, err)
			}
			want := tc.parsed
			if want.config == "" {
				want.config = config.DefaultPath
			}
			if got.command != want.command || got.config != want.config || got.env != want.env ||
				got.dryRun != want.dryRun || got.allowMutable != want.allowMutable || !slices.Equal(got.args, want.args) {
				t.Errorf("command saw %+v, want %+v", got, want)
			}
		})
	}
}

func TestFlagsFirstLeavesOtherCommandLinesAlone(t *testing.T) {
	var got parsed
	app := testApp(&got)
	for _, in := range []string{
		"gantry",
		"gantry --help",
		"gantry -c f.yml",
		"gantry help deploy",
		"gantry unknown www@abc --env lab",
	} {
		args := strings.Fields(in)
		if out := flagsFirst(app, args); !slices.Equal(out, args) {
			t.Errorf("flagsFirst(%s) = %s, want it unchanged", in, strings.Join(out, " "))
		}
	}
}
