//go:build !unix

package fleet

import (
	"context"

	"github.com/gantry-dev/gantry/remote"
)

// watchSize sends nothing: there is no SIGWINCH here, the terminal keeps
// the size it started with.
func watchSize(context.Context, int) <-chan remote.TermSize { return nil }
