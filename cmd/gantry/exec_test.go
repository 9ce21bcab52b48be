package main

import (
	"context"
	"io"
	"slices"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/gantry-dev/gantry/config"
)

// The command after -- reaches exec as the argv it was typed as: its
// flags, gantry's own names (--env, -c) included, stay its own.
func TestExecArguments(t *testing.T) {
	for _, tc := range []struct {
		args               []string
		env, host, service string
		cmd                []string
	}{
		{
			args: []string{"gantry", "exec", "www", "--env", "lab", "--host", "host2", "--", "/demoapp", "echo", "--env", "-c", "a b", "$HOME"},
			env:  "lab", host: "host2", service: "www",
			cmd: []string{"/demoapp", "echo", "--env", "-c", "a b", "$HOME"},
		},
		{
			args: []string{"gantry", "-c", "x.yml", "exec", "--env", "lab", "www", "--", "sh", "-c", "exit 3"},
			env:  "lab", service: "www",
			cmd: []string{"sh", "-c", "exit 3"},
		},
		{
			args: []string{"gantry", "exec", "www", "-e", "lab", "--", "/demoapp", "version"},
			env:  "lab", service: "www",
			cmd: []string{"/demoapp", "version"},
		},
	} {
		var got []string
		var env, host string
		cmd := newExecCmd(&tracker{}, func(_ context.Context, o execOptions) error {
			got, env, host = append([]string{o.service}, o.cmd...), o.env, o.host
			return nil
		})
		app := &cli.App{
			Name:           "gantry",
			Flags:          []cli.Flag{&cli.StringFlag{Name: "config", Aliases: []string{"c"}, Value: config.DefaultPath}},
			Commands:       []*cli.Command{cmd},
			Writer:         io.Discard,
			ErrWriter:      io.Discard,
			ExitErrHandler: func(*cli.Context, error) {},
		}
		if err := app.Run(flagsFirst(app, tc.args)); err != nil {
			t.Fatalf("%q: %v", tc.args, err)
		}
		if len(got) == 0 || got[0] != tc.service || !slices.Equal(got[1:], tc.cmd) || env != tc.env || host != tc.host {
			t.Errorf("%q:\n got service+cmd %q env %q host %q\nwant %q %q env %q host %q", tc.args, got, env, host, tc.service, tc.cmd, tc.env, tc.host)
		}
	}
}
