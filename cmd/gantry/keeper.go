package main

import (
	"os"

	"github.com/urfave/cli/v2"

	"github.com/gantry-dev/gantry/remote"
)

// keeperCommandName is the hidden command gantry starts itself as to keep
// SSH connections open between commands (ssh.persist).
const keeperCommandName = "ssh-keeper"

// newKeeperCmd is gantry ssh-keeper, started by gantry (never by hand): it
// reads its spec on stdin, says "ready" on stdout once it listens, and
// keeps connections until none was used for ssh.persist, or until SIGTERM.
func newKeeperCmd(tr *tracker) *cli.Command {
	return &cli.Command{
		Name:   keeperCommandName,
		Usage:  "keep SSH connections open between commands (started by gantry when ssh.persist is set)",
		Hidden: true,
		Action: func(c *cli.Context) error {
			tr.changesNothing()
			return remote.RunKeeper(c.Context, os.Stdin, os.Stdout)
		},
	}
}
