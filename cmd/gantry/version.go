package main

import (
	"fmt"

	"github.com/urfave/cli/v2"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// newVersionCmd is gantry version.
func newVersionCmd() *cli.Command {
	return &cli.Command{
		Name:  "version",
		Usage: "print gantry's version",
		Action: func(c *cli.Context) error {
			fmt.Println("gantry", version)
			return nil
		},
	}
}
