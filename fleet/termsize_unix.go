//go:build unix

package fleet

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/term"

	"github.com/gantry-dev/gantry/remote"
)

// watchSize sends the terminal fd's size each time it changes (SIGWINCH)
// until ctx ends.
func watchSize(ctx context.Context, fd int) <-chan remote.TermSize {
	sizes := make(chan remote.TermSize, 1)
	winch := make(chan os.Signal, 1)
	signal.Notify(winch, syscall.SIGWINCH)
	go func() {
		defer signal.Stop(winch)
		for {
			select {
			case <-ctx.Done():
				return
			case <-winch:
				w, h, err := term.GetSize(fd)
				if err != nil {
					continue
				}
				select {
				case sizes <- remote.TermSize{Height: uint(h), Width: uint(w)}:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return sizes
}
