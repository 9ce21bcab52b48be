package remote

import (
	"context"
	"fmt"
	"io"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/pkg/stdcopy"

	"github.com/gantry-dev/gantry/inventory"
)

// RunOnce runs a one-off container (a release command): it creates a
// container from spec like Create does (host network, the spec's options)
// but with no restart policy, attaches to its output, starts it, copies its
// stdout and stderr until it exits, and returns its exit code. The
// container is removed however it ended. When ctx ends first, the
// container is killed and removed and ctx's error returned. The call
// timeout bounds each call that sets it up, not the command.
//
// Nothing here is retried: a second try could run the command twice. A
// container left by a broken connection carries the spec's labels, and the
// next run removes it.
func (d *Docker) RunOnce(ctx context.Context, spec inventory.ContainerSpec, stdout, stderr io.Writer) (int, error) {
	cfg, hc, err := createConfig(spec)
	if err != nil {
		return -1, fmt.Errorf("create %s on %s: %w", spec.Name, d.conn.Endpoint.Name, err)
	}
	hc.RestartPolicy = container.RestartPolicy{Name: container.RestartPolicyDisabled}
	cfg.AttachStdout, cfg.AttachStderr = true, true

	cctx, cancel := d.call(ctx)
	defer cancel()
	created, err := d.api.ContainerCreate(cctx, cfg, hc, nil, nil, spec.Name)
	if err != nil {
		return -1, d.wrap("create "+spec.Name, err)
	}
	id := created.ID
	defer func() {
		// Removed on every path, interrupts included (killed if it still
		// runs). A failure here is left to the next run, which finds the
		// container by its name and labels and removes it.
		rctx, cancel := d.call(context.WithoutCancel(ctx))
		defer cancel()
		_ = retry(rctx, func() error { return d.api.ContainerRemove(rctx, id, container.RemoveOptions{Force: true}) })
	}()

	// The attachment lives as long as the command: only its opening is
	// bounded by the call timeout.
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
	att, err := d.api.ContainerAttach(actx, id, container.AttachOptions{Stream: true, Stdout: true, Stderr: true})
	close(opened)
	if err != nil {
		return -1, d.wrap("attach to "+spec.Name, err)
	}
	defer att.Close()
	go func() {
		// Closing the connection ends the copy below.
		<-actx.Done()
		att.Close()
	}()
	// Registered before the start, so that an exit right after it is seen.
	waitC, waitErr := d.api.ContainerWait(actx, id, container.WaitConditionNextExit)
	if err := d.api.ContainerStart(cctx, id, container.StartOptions{}); err != nil {
		return -1, d.wrap("start "+spec.Name, err)
	}
	_, copyErr := stdcopy.StdCopy(stdout, stderr, att.Reader)
	if ctx.Err() != nil {
		return -1, ctx.Err()
	}
	select {
	case res := <-waitC:
		if res.Error != nil && res.Error.Message != "" {
			return -1, fmt.Errorf("%s on %s: %s", spec.Name, d.conn.Endpoint.Name, res.Error.Message)
		}
		return int(res.StatusCode), nil
	case err := <-waitErr:
		if ctx.Err() != nil {
			return -1, ctx.Err()
		}
		if copyErr != nil {
			err = fmt.Errorf("%w (reading its output: %w)", err, copyErr)
		}
		return -1, d.wrap("wait for "+spec.Name, err)
	case <-ctx.Done():
		return -1, ctx.Err()
	}
}
