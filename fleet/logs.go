package fleet

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/gantry-dev/gantry/config"
	namerules "github.com/gantry-dev/gantry/internal/names"
	"github.com/gantry-dev/gantry/internal/panics"
	"github.com/gantry-dev/gantry/inventory"
	"github.com/gantry-dev/gantry/remote"
)

// LogsOptions select whose log lines `gantry logs` shows, and how.
type LogsOptions struct {
	Config  *config.Config
	Env     string
	Service string
	// Host limits the logs to one host of the service ("" for every one).
	Host string
	// Since is a duration before now ("10m") or a timestamp; "" for all.
	Since string
	// Tail is the number of lines from the end of each host's log, or
	// "all" ("" is all).
	Tail string
	// Follow streams new lines until ctx ends, following the service's
	// container across restarts and deploys.
	Follow bool
	// Timestamps puts Docker's timestamp after the host name of each line.
	Timestamps bool
	// Out receives the log lines, each prefixed with its host name.
	Out io.Writer
	// Warn receives warnings (a host that cannot be reached or read).
	Warn io.Writer
}

// ErrLogsIncomplete is returned (wrapped) by Logs when some host's log
// could not be read (each was named in a warning).
var ErrLogsIncomplete = errors.New("logs incomplete")

// followPoll is how often a followed host is asked whether its service
// container is back once its log stream ended.
const followPoll = time.Second

// maxLine bounds the part of a line held while waiting for its end: a
// longer line is written in pieces of this size, each prefixed.
const maxLine = 64 << 10

// CheckTail validates a --tail value: "all" or a number of lines.
func CheckTail(tail string) error {
	if tail == "" || tail == "all" {
		return nil
	}
	if n, err := strconv.Atoi(tail); err != nil || n < 0 {
		return fmt.Errorf("%w: --tail %q: want a number of lines (0 or more) or all", ErrRefused, tail)
	}
	return nil
}

// Logs merges the logs of the service's container on every host of the
// environment (or on o.Host) into o.Out, each line prefixed with its host
// name, names aligned; the container's stdout and stderr both. A host that
// cannot be reached or read is a warning, the other hosts' logs are still
// shown, and Logs returns an error wrapping ErrLogsIncomplete at the end.
// With Follow it returns when ctx ends (not an error).
func Logs(ctx context.Context, o LogsOptions) error {
	if err := CheckTail(o.Tail); err != nil {
		return err
	}
	if err := remote.CheckSince(o.Since); err != nil {
		return fmt.Errorf("%w: %w", ErrRefused, err)
	}
	out := &lineWriter{out: o.Out}
	warn := func(msg string) { out.mu.Lock(); fmt.Fprintln(o.Warn, "warning: "+msg); out.mu.Unlock() }
	env, svc, hosts, err := lookup(ctx, o.Config, o.Env, o.Service, o.Host, warn)
	if err != nil {
		return err
	}
	width := 0
	for _, h := range hosts {
		width = max(width, len(h.Name))
	}

	var mu sync.Mutex
	var bad []string
	failed := func(host string, err error) {
		msg := err.Error()
		if !strings.Contains(msg, host) {
			msg = host + ": " + msg
		}
		warn(msg)
		mu.Lock()
		bad = append(bad, host)
		mu.Unlock()
	}
	reached, unreached := dialDockers(ctx, o.Config, env, hosts)
	defer func() {
		for _, dh := range reached {
			dh.close()
		}
	}()
	for _, h := range hosts {
		if err, ok := unreached[h.Name]; ok && ctx.Err() == nil {
			failed(h.Name, err)
		}
	}

	var g errgroup.Group
	// Following, every host's stream stays open until the end: all of
	// them must run at once (one per host, each on its host's own
	// connection). Otherwise they end by themselves and DialConcurrency
	// at a time is plenty.
	limit := DialConcurrency
	if o.Follow {
		limit = len(hosts)
	}
	g.SetLimit(max(limit, 1))
	for _, h := range hosts {
		dh, ok := reached[h.Name]
		if !ok {
			continue
		}
		g.Go(func() error {
			defer panics.Recover(func(err error) { failed(h.Name, err) })
			prefix := fmt.Sprintf("%-*s | ", width, h.Name)
			stdout := &linePrefixer{w: out, prefix: prefix}
			stderr := &linePrefixer{w: out, prefix: prefix}
			err := hostLogs(ctx, dh.docker, h, svc.ContainerName, o, stdout, stderr, warn)
			stdout.Flush()
			stderr.Flush()
			if err != nil && ctx.Err() == nil {
				failed(h.Name, err)
			}
			return nil
		})
	}
	_ = g.Wait()
	if len(bad) > 0 {
		// Each host's error was a warning already: name the hosts only.
		namerules.Sort(bad)
		return fmt.Errorf("%w: the logs of %s could not be read (see the warnings above)", ErrLogsIncomplete, strings.Join(bad, ", "))
	}
	return nil
}

// hostLogs streams one host's log of container name. Following, when the
// stream ends (the container stopped: a deploy replaced it, or it
// restarted), it waits for the container of that name to run again and
// goes on with the new lines.
func hostLogs(ctx context.Context, d *remote.Docker, h inventory.Host, name string, o LogsOptions, stdout, stderr io.Writer, warn func(string)) error {
	lo := remote.LogOptions{Since: o.Since, Tail: o.Tail, Follow: o.Follow, Timestamps: o.Timestamps}
	for {
		ls, err := d.Logs(ctx, name, lo, stdout, stderr)
		if err != nil || !o.Follow || ctx.Err() != nil {
			return err
		}
		next, err := waitRunning(ctx, d, name, ls)
		if err != nil || ctx.Err() != nil {
			return err
		}
		if next.ID != ls.ID {
			warn(fmt.Sprintf("%s: %s is a new container (%.12s): following it", h.Name, name, next.ID))
			lo.Since, lo.Tail = "", "all"
		} else {
			// The same container restarted: its log holds what was shown.
			lo.Since, lo.Tail = fmt.Sprintf("%d.%09d", next.StartedAt.Unix(), next.StartedAt.Nanosecond()), "all"
		}
	}
}

// waitRunning waits until the container called name runs, and is another
// container than the one whose stream ended or has started again since.
func waitRunning(ctx context.Context, d *remote.Docker, name string, ended remote.LogStream) (inventory.Container, error) {
	for {
		c, ok, err := d.Inspect(ctx, name)
		if err != nil && ctx.Err() == nil {
			return c, err
		}
		if ok && c.Running && (c.ID != ended.ID || c.StartedAt.After(ended.StartedAt)) {
			return c, nil
		}
		t := time.NewTimer(followPoll)
		select {
		case <-ctx.Done():
			t.Stop()
			return c, nil
		case <-t.C:
		}
	}
}

// lineWriter is the output every host's lines go to, one whole line at a
// time so that lines of different hosts never mix.
type lineWriter struct {
	mu  sync.Mutex
	out io.Writer
}

func (w *lineWriter) writeLine(prefix string, line []byte) {
	w.mu.Lock()
	defer w.mu.Unlock()
	// Errors are not the log's: a closed stdout (gantry logs | head) ends
	// the run through SIGPIPE.
	_, _ = io.WriteString(w.out, prefix)
	_, _ = w.out.Write(line)
	if len(line) == 0 || line[len(line)-1] != '\n' {
		_, _ = io.WriteString(w.out, "\n")
	}
}

// linePrefixer cuts one stream into lines and writes each, prefixed, to
// a lineWriter; a line's start is held until its end arrives.
type linePrefixer struct {
	w      *lineWriter
	prefix string
	held   []byte
}

// Write writes every whole line of p, holding its last partial line.
func (p *linePrefixer) Write(b []byte) (int, error) {
	n := len(b)
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			p.held = append(p.held, b...)
			if len(p.held) >= maxLine {
				p.w.writeLine(p.prefix, p.held)
				p.held = p.held[:0]
			}
			break
		}
		line := b[:i+1]
		if len(p.held) > 0 {
			line = append(p.held, line...)
			p.held = p.held[:0]
		}
		p.w.writeLine(p.prefix, line)
		b = b[i+1:]
	}
	return n, nil
}

// Flush writes a held partial line, ending it.
func (p *linePrefixer) Flush() {
	if len(p.held) > 0 {
		p.w.writeLine(p.prefix, p.held)
		p.held = p.held[:0]
	}
}
