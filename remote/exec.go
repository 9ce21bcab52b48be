package remote

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/errdefs"
	"github.com/docker/docker/pkg/stdcopy"
)

// TermSize is a terminal's size in character cells.
type TermSize struct{ Height, Width uint }

// ExecOptions say what to run in a container and how to attach to it.
type ExecOptions struct {
	// Cmd is the program and its arguments, passed as they are (no shell).
	Cmd []string
	// TTY allocates a terminal: one raw output stream, and the terminal's
	// line discipline in the container.
	TTY bool
	// Size is the terminal's initial size (with TTY).
	Size TermSize
	// Resize carries the terminal's new sizes (with TTY; may be nil).
	Resize <-chan TermSize
	// Stdin is copied to the command's stdin (nil: none attached); its
	// end closes the command's stdin.
	Stdin io.Reader
	// Stdout and Stderr receive the command's output (with TTY, both
	// arrive on Stdout).
	Stdout, Stderr io.Writer
}

// Exec runs o.Cmd in the running container called name and returns its
// exit code once its output has ended. The call timeout bounds setting the
// command up, not the command. When ctx ends first, Exec returns ctx's
// error; the command may go on running in the container.
func (d *Docker) Exec(ctx context.Context, name string, o ExecOptions) (int, error) {
	cctx, cancel := d.call(ctx)
	defer cancel()
	var info container.InspectResponse
	err := retry(cctx, func() (err error) { info, err = d.api.ContainerInspect(cctx, name); return err })
	if errdefs.IsNotFound(err) {
		return 0, fmt.Errorf("%s: no container %s: %w", d.conn.Endpoint.Name, name, ErrNoContainer)
	}
	if err != nil {
		return 0, d.wrap("inspect "+name, err)
	}
	if info.State == nil || !info.State.Running {
		state := "not running"
		if info.State != nil {
			state = info.State.Status
		}
		return 0, fmt.Errorf("%s: container %s is %s: %w", d.conn.Endpoint.Name, name, state, ErrNoContainer)
	}
	eo := container.ExecOptions{
		Cmd: o.Cmd, Tty: o.TTY,
		AttachStdin: o.Stdin != nil, AttachStdout: true, AttachStderr: true,
	}
	if o.TTY && o.Size.Height > 0 && o.Size.Width > 0 {
		eo.ConsoleSize = &[2]uint{o.Size.Height, o.Size.Width}
	}
	// Not retried: creating an exec twice is harmless, but one that was
	// created and not started is left behind until the container goes.
	created, err := d.api.ContainerExecCreate(cctx, info.ID, eo)
	if err != nil {
		return 0, d.wrap(fmt.Sprintf("exec %q in %s", o.Cmd, name), err)
	}
	// The attachment lives as long as the command: only its opening is
	// bounded by the call timeout (cctx ends with this function).
	actx, stopAttach := context.WithCancel(ctx)
	defer stopAttach()
	opened := make(chan struct{})
	go func() {
		select {
		case <-opened:
		case <-cctx.Done():
			stopAttach()
		}
	}()
	resp, err := d.api.ContainerExecAttach(actx, created.ID, container.ExecAttachOptions{Tty: o.TTY, ConsoleSize: eo.ConsoleSize})
	close(opened)
	if err != nil {
		return 0, d.wrap(fmt.Sprintf("exec %q in %s", o.Cmd, name), err)
	}
	defer resp.Close()
	go func() {
		// Closing the connection ends the copies below.
		<-actx.Done()
		resp.Close()
	}()

	if o.TTY && o.Resize != nil {
		go func() {
			for {
				select {
				case <-actx.Done():
					return
				case sz, ok := <-o.Resize:
					if !ok {
						return
					}
					rctx, cancel := d.call(actx)
					_ = d.api.ContainerExecResize(rctx, created.ID, container.ResizeOptions{Height: sz.Height, Width: sz.Width})
					cancel()
				}
			}
		}()
	}
	if o.Stdin != nil {
		go func() {
			// The command sees the end of its stdin when ours ends. This
			// copy may outlive Exec, blocked reading a stdin that never
			// ends; the connection is closed by then.
			_, _ = io.Copy(resp.Conn, o.Stdin)
			_ = resp.CloseWrite()
		}()
	}
	if o.TTY {
		_, err = io.Copy(o.Stdout, resp.Reader)
	} else {
		_, err = stdcopy.StdCopy(o.Stdout, o.Stderr, resp.Reader)
	}
	if ctx.Err() != nil {
		return 0, ctx.Err()
	}
	if err != nil {
		return 0, d.wrap(fmt.Sprintf("exec %q in %s: reading its output", o.Cmd, name), err)
	}
	return d.execExitCode(ctx, created.ID, name, o.Cmd)
}

// execExitCode waits for the exec to be over (its output may end a moment
// before the daemon records its exit) and returns its exit code.
func (d *Docker) execExitCode(ctx context.Context, id, name string, cmd []string) (int, error) {
	ctx, cancel := d.call(ctx)
	defer cancel()
	for wait := 10 * time.Millisecond; ; wait = min(2*wait, 500*time.Millisecond) {
		var st container.ExecInspect
		err := retry(ctx, func() (err error) { st, err = d.api.ContainerExecInspect(ctx, id); return err })
		if err != nil {
			return 0, d.wrap(fmt.Sprintf("exec %q in %s: its exit code", cmd, name), err)
		}
		if !st.Running {
			return st.ExitCode, nil
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return 0, d.wrap(fmt.Sprintf("exec %q in %s: its exit code", cmd, name), ctx.Err())
		case <-t.C:
		}
	}
}
