package fleet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/term"

	"github.com/gantry-dev/gantry/config"
	"github.com/gantry-dev/gantry/inventory"
	"github.com/gantry-dev/gantry/remote"
)

// ExecOptions say what `gantry exec` runs, where, and with which streams.
type ExecOptions struct {
	Config  *config.Config
	Env     string
	Service string
	// Host is the host to run on; "" for the first host of the service,
	// in natural order, whose container runs.
	Host string
	// Cmd is the program and its arguments, handed to Docker as they are
	// (never through a shell).
	Cmd []string
	// Stdin, Stdout and Stderr are the command's streams. When Stdin is a
	// terminal, the command gets a terminal too (interactive: raw mode
	// here, resized with ours).
	Stdin          io.Reader
	Stdout, Stderr io.Writer
}

// ErrExecNotRun is returned (wrapped) by Exec when the command could not
// be run at all (no host reachable with a running container, the daemon
// refused the exec): the error is gantry's, not the command's.
var ErrExecNotRun = errors.New("command not run")

// Exec runs o.Cmd in the service's running container on one host and
// returns the command's exit code. Errors before the command runs wrap
// ErrRefused (bad input) or ErrExecNotRun; when ctx ends, Exec returns
// ctx's error.
func Exec(ctx context.Context, o ExecOptions) (int, error) {
	if err := checkCmd(o.Cmd); err != nil {
		return 0, err
	}
	warn := func(msg string) { fmt.Fprintln(o.Stderr, "warning: "+msg) }
	env, svc, hosts, err := lookup(ctx, o.Config, o.Env, o.Service, o.Host, warn)
	if err != nil {
		return 0, err
	}
	h, dh, err := execHost(ctx, o.Config, env, o.Service, svc, hosts, o.Host != "", warn)
	if err != nil {
		return 0, err
	}
	defer dh.close()
	if o.Host == "" {
		fmt.Fprintf(o.Stderr, "gantry: running in %s on %s\n", svc.ContainerName, h.Name)
	}

	eo := remote.ExecOptions{Cmd: o.Cmd, Stdin: o.Stdin, Stdout: o.Stdout, Stderr: o.Stderr}
	if f, ok := o.Stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		restore, err := interactive(ctx, f, &eo)
		if err != nil {
			return 0, fmt.Errorf("%w: terminal: %w", ErrExecNotRun, err)
		}
		defer restore()
	}
	code, err := dh.docker.Exec(ctx, svc.ContainerName, eo)
	if err != nil {
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		return 0, fmt.Errorf("%w: %w", ErrExecNotRun, err)
	}
	return code, nil
}

// checkCmd refuses an empty command.
func checkCmd(cmd []string) error {
	if len(cmd) == 0 || cmd[0] == "" {
		return fmt.Errorf("%w: no command: give it after --, e.g. gantry exec www --env staging -- /app/manage migrate", ErrRefused)
	}
	return nil
}

// execHost reaches the host to run on: the only one of hosts when one was
// named, else the first, in order, that is reachable and whose container
// runs (each skipped host named in a warning).
func execHost(ctx context.Context, cfg *config.Config, env config.Environment, service string, svc config.Service, hosts []inventory.Host, named bool, warn func(string)) (inventory.Host, *dockerHost, error) {
	var why []string
	for _, h := range hosts {
		dh, err := dialDocker(ctx, cfg, env, h)
		if err == nil {
			var c inventory.Container
			var ok bool
			c, ok, err = dh.docker.Inspect(ctx, svc.ContainerName)
			switch {
			case err != nil:
			case !ok:
				err = fmt.Errorf("%s: no container %s", h.Name, svc.ContainerName)
			case !c.Running:
				err = fmt.Errorf("%s: container %s is %s, not running", h.Name, svc.ContainerName, c.State)
			default:
				return h, dh, nil
			}
			dh.close()
		}
		if ctx.Err() != nil {
			return h, nil, ctx.Err()
		}
		if named {
			return h, nil, fmt.Errorf("%w: %w", ErrExecNotRun, err)
		}
		warn(fmt.Sprintf("skipping %s: %v", h.Name, err))
		why = append(why, h.Name)
	}
	return inventory.Host{}, nil, fmt.Errorf("%w: no host of service %s has a running %s container that could be reached (tried %s)",
		ErrExecNotRun, service, svc.ContainerName, strings.Join(why, ", "))
}

// interactive puts the terminal f in raw mode (keys, Ctrl-C included, go
// to the command), asks for a terminal of its size in the container and
// keeps that size in step with f's. restore puts f back as it was.
func interactive(ctx context.Context, f *os.File, eo *remote.ExecOptions) (restore func(), err error) {
	fd := int(f.Fd())
	if w, h, err := term.GetSize(fd); err == nil {
		eo.Size = remote.TermSize{Height: uint(h), Width: uint(w)}
	}
	old, err := term.MakeRaw(fd)
	if err != nil {
		return nil, err
	}
	eo.TTY = true
	ctx, stop := context.WithCancel(ctx)
	eo.Resize = watchSize(ctx, fd)
	return func() {
		stop()
		_ = term.Restore(fd, old)
	}, nil
}
