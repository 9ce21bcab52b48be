package remote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/docker/docker/api/types/container"
	timetypes "github.com/docker/docker/api/types/time"
	"github.com/docker/docker/errdefs"
	"github.com/docker/docker/pkg/stdcopy"
)

// ErrNoContainer is returned (wrapped) when a host has no container of
// the name asked for.
var ErrNoContainer = errors.New("no such container")

// ErrLogsUnreadable is returned (wrapped) when the container's logging
// driver is one Docker cannot read back.
var ErrLogsUnreadable = errors.New("logging driver cannot be read back")

// LogOptions select the log lines Logs reads.
type LogOptions struct {
	// Since is a Go duration before now ("10m") or a timestamp, as
	// `docker logs --since` takes it; "" for all.
	Since string
	// Tail is the number of lines from the end to show ("all" or "" for all).
	Tail string
	// Follow keeps the stream open for new lines until ctx ends or the
	// container stops.
	Follow bool
	// Timestamps puts Docker's RFC 3339 timestamp at the start of each line.
	Timestamps bool
}

// CheckSince reports whether since is a value LogOptions.Since accepts.
func CheckSince(since string) error {
	if since == "" {
		return nil
	}
	if _, err := timetypes.GetTimestamp(since, time.Now()); err != nil {
		return fmt.Errorf("--since %q: want a duration such as 10m or 1h30m, or a timestamp such as 2024-05-01T12:00:00Z: %w", since, err)
	}
	return nil
}

// LogStream is what Logs found of a container before streaming.
type LogStream struct {
	ID        string
	Driver    string    // the container's logging driver
	StartedAt time.Time // when the container last started (the host's clock)
}

// Logs copies the log of the container called name to stdout and stderr
// (the container's two streams, demultiplexed) until the log ends: at once
// without Follow, else when the container stops or ctx ends (which is not
// an error). The call timeout bounds finding the container and opening
// the stream, not the stream itself.
//
// A logging driver Docker cannot read back is an error naming the host
// and the driver.
func (d *Docker) Logs(ctx context.Context, name string, o LogOptions, stdout, stderr io.Writer) (LogStream, error) {
	cctx, cancel := d.call(ctx)
	var info container.InspectResponse
	err := retry(cctx, func() (err error) { info, err = d.api.ContainerInspect(cctx, name); return err })
	cancel()
	if errdefs.IsNotFound(err) {
		return LogStream{}, fmt.Errorf("%s: no container %s: %w", d.conn.Endpoint.Name, name, ErrNoContainer)
	}
	if err != nil {
		return LogStream{}, d.wrap("inspect "+name, err)
	}
	ls := LogStream{ID: info.ID}
	tty := false
	if info.HostConfig != nil {
		ls.Driver = info.HostConfig.LogConfig.Type
	}
	if info.Config != nil {
		tty = info.Config.Tty
	}
	if info.State != nil {
		ls.StartedAt, _ = time.Parse(time.RFC3339Nano, info.State.StartedAt)
	}

	tail := o.Tail
	if tail == "" {
		tail = "all"
	}
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	// Bound the opening of the stream by the call timeout, not the stream.
	opened := make(chan struct{})
	timedOut := make(chan struct{})
	go func() {
		t := time.NewTimer(d.CallTimeout)
		defer t.Stop()
		select {
		case <-opened:
		case <-sctx.Done():
		case <-t.C:
			close(timedOut)
			stop()
		}
	}()
	rc, err := d.api.ContainerLogs(sctx, info.ID, container.LogsOptions{
		ShowStdout: true, ShowStderr: true,
		Since: o.Since, Tail: tail, Follow: o.Follow, Timestamps: o.Timestamps,
	})
	close(opened)
	if err != nil {
		select {
		case <-timedOut:
			err = fmt.Errorf("%w (opening the log stream)", context.DeadlineExceeded)
		default:
		}
		if errdefs.IsNotImplemented(err) {
			return ls, fmt.Errorf("%s: container %s logs with driver %q, which Docker cannot read back (it reads json-file, local and journald, and other drivers while its dual logging cache is on; read them where the driver sends them): %w: %w",
				d.conn.Endpoint.Name, name, ls.Driver, ErrLogsUnreadable, err)
		}
		return ls, d.wrap("logs "+name, err)
	}
	defer rc.Close()
	if tty {
		// A container with a TTY has one raw stream, not multiplexed.
		_, err = io.Copy(stdout, rc)
	} else {
		_, err = stdcopy.StdCopy(stdout, stderr, rc)
	}
	if err != nil && ctx.Err() != nil {
		// Interrupted while following: the end the user asked for.
		return ls, nil
	}
	if err != nil {
		return ls, d.wrap("logs "+name, err)
	}
	return ls, nil
}
