package rollout

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/gantry-dev/gantry/internal/lines"
	"github.com/gantry-dev/gantry/internal/names"
	"github.com/gantry-dev/gantry/inventory"
)

// StepRelease runs the service's release command: once per deploy, in a
// container of the new version on one host, after the pull and before any
// host is drained. It is a step of the whole plan, shown on its host.
const StepRelease StepKind = "release"

// ReleaseSuffix ends the name of the container a release command runs in:
// <container>-gantry-release.
const ReleaseSuffix = "-gantry-release"

// ErrRelease is returned (wrapped, in Report.Err) when the release command
// fails, times out or cannot start: then nothing else was changed.
var ErrRelease = errors.New("release command failed")

// ReleaseCommand is a service's release command as configured.
type ReleaseCommand struct {
	// Command replaces the image's CMD; the entrypoint stays.
	Command []string
	// Timeout bounds the command; past it the container is killed.
	Timeout time.Duration
	// Host is the host it runs on ("" for the first host of the plan).
	Host string
}

// Release is a plan's release step.
type Release struct {
	Command []string
	Timeout time.Duration
	// Host is where the command runs (zero when it does not run).
	Host inventory.Host
	// Skip says why the command does not run ("" when it runs).
	Skip string
	// Leftovers are release containers a run cut off mid-release left
	// behind: removed before the command runs (or instead of it).
	Leftovers []Leftover
}

// Leftover is a container a cut-off run left on a host.
type Leftover struct {
	Host      inventory.Host
	Container inventory.Container
}

// Runs reports whether the plan runs a release command.
func (r *Release) Runs() bool { return r != nil && r.Skip == "" }

// WithRelease returns the plan with its release step: rc (nil when the
// service has none) on its configured host or the first host of the plan in
// natural order, unless skip says why not or no host changes version; and
// the removal of every release container a cut-off run left, as observed
// in snap. A configured host that is not one of snap's is an error.
func (p Plan) WithRelease(rc *ReleaseCommand, skip string, snap []HostSnapshot) (Plan, error) {
	var left []Leftover
	for _, h := range snap {
		if h.Release != nil {
			left = append(left, Leftover{Host: h.Host, Container: *h.Release})
		}
	}
	sort.SliceStable(left, func(i, j int) bool { return names.Less(left[i].Host.Name, left[j].Host.Name) })
	if rc == nil {
		if len(left) > 0 {
			p.Release = &Release{Skip: "the service has no release command", Leftovers: left}
		}
		return p, nil
	}
	r := &Release{Command: rc.Command, Timeout: rc.Timeout, Leftovers: left}
	switch {
	case skip != "":
		r.Skip = skip
	case len(p.Batches) == 0:
		r.Skip = "no host changes version"
	case rc.Host != "":
		found := false
		for _, h := range snap {
			if h.Host.Name == rc.Host {
				r.Host, found = h.Host, true
			}
		}
		if !found {
			var all []string
			for _, h := range snap {
				all = append(all, h.Host.Name)
			}
			names.Sort(all)
			return p, fmt.Errorf("release.host %q is not a host of service %s here (its hosts: %s)", rc.Host, p.Target.Service, strings.Join(all, " "))
		}
	default:
		// The first host pulled, in natural order (the plan's hosts are).
		first := p.Pull[0]
		for _, h := range p.Pull[1:] {
			if names.Less(h.Name, first.Name) {
				first = h
			}
		}
		r.Host = first
	}
	p.Release = r
	return p, nil
}

// String renders the release step as a plan shows it.
func (r *Release) String() string {
	if r == nil {
		return ""
	}
	var b strings.Builder
	for _, l := range r.Leftovers {
		fmt.Fprintf(&b, "release: remove %s on %s (%s), left by a run cut off mid-release\n", l.Container.Name, l.Host.Name, l.Container.Version())
	}
	switch {
	case len(r.Command) == 0:
	case r.Skip != "":
		fmt.Fprintf(&b, "release: %s not run: %s\n", strings.Join(r.Command, " "), r.Skip)
	default:
		fmt.Fprintf(&b, "release on %s, once, after the pull and before any drain: %s (timeout %s)\n", r.Host.Name, strings.Join(r.Command, " "), r.Timeout)
	}
	return b.String()
}

// ReleaseResult is what the release step did.
type ReleaseResult struct {
	Host string
	// Ran says the command was started (ExitCode is then its exit code,
	// -1 when it has none: killed, or it could not start).
	Ran      bool
	ExitCode int
	// Skip says why the command did not run.
	Skip     string
	Err      error
	Duration time.Duration
}

// String is the one line that history, webhooks and the report keep of
// the release command: never its output.
func (r *ReleaseResult) String() string {
	switch {
	case r == nil:
		return ""
	case r.Skip != "":
		return "release command skipped: " + r.Skip
	case r.Err == nil:
		return fmt.Sprintf("release command ok (exit %d) on %s", r.ExitCode, r.Host)
	case r.ExitCode > 0:
		return fmt.Sprintf("release command failed (exit %d) on %s", r.ExitCode, r.Host)
	}
	return fmt.Sprintf("release command failed on %s: %v", r.Host, r.Err)
}

// ReleaseFailed reports whether the run stopped because its release
// command failed (then no host was touched).
func (r *Report) ReleaseFailed() bool { return r.Release != nil && r.Release.Err != nil }

// release removes what a cut-off release left and runs the plan's release
// command. An error means the run stops with nothing else changed.
func (e *Executor) release(ctx context.Context, plan Plan, rep *Report) error {
	r := plan.Release
	name := e.Service.ContainerName + ReleaseSuffix
	for _, l := range r.Leftovers {
		err := e.step(l.Host.Name, string(StepRelease), func() (string, error) {
			cctx, cancel := e.cleanupContext(ctx)
			defer cancel()
			return "removed " + l.Container.Name + ", left by a run cut off mid-release", e.Hosts[l.Host.Name].Remove(cctx, l.Container.ID)
		})
		if err != nil {
			return fmt.Errorf("removing %s on %s, left by a run cut off mid-release (nothing else was changed): %w", l.Container.Name, l.Host.Name, err)
		}
	}
	if len(r.Command) == 0 {
		return nil
	}
	if r.Skip != "" {
		rep.Release = &ReleaseResult{Skip: r.Skip}
		return nil
	}
	res := &ReleaseResult{Host: r.Host.Name, ExitCode: -1}
	rep.Release = res
	start := time.Now()
	err := e.step(r.Host.Name, string(StepRelease), func() (string, error) {
		spec := e.releaseSpec(plan.Target, r, name)
		rctx, cancel := context.WithTimeout(ctx, r.Timeout)
		defer cancel()
		stdout, stderr := e.outputLines(r.Host.Name, "stdout"), e.outputLines(r.Host.Name, "stderr")
		code, err := e.Hosts[r.Host.Name].RunOnce(rctx, spec, stdout, stderr)
		stdout.Flush()
		stderr.Flush()
		switch {
		case err != nil && ctx.Err() == nil && errors.Is(rctx.Err(), context.DeadlineExceeded):
			res.Ran = true
			return "", fmt.Errorf("%w (timed out after %s) on %s; nothing else was changed", ErrRelease, r.Timeout, r.Host.Name)
		case err != nil && ctx.Err() != nil:
			return "", fmt.Errorf("release command interrupted on %s; nothing else was changed: %w", r.Host.Name, ctx.Err())
		case err != nil:
			return "", fmt.Errorf("%w on %s (it could not run: %w); nothing else was changed", ErrRelease, r.Host.Name, err)
		}
		res.Ran, res.ExitCode = true, code
		if code != 0 {
			return "", fmt.Errorf("%w (exit %d) on %s; nothing else was changed", ErrRelease, code, r.Host.Name)
		}
		return fmt.Sprintf("exit %d", code), nil
	})
	res.Duration, res.Err = time.Since(start), err
	return err
}

// releaseSpec is the container the release command runs in: the new
// version, with the service's env and container options, the command in
// place of the image's CMD, and gantry's labels with the run's ID.
func (e *Executor) releaseSpec(target Target, r *Release, name string) inventory.ContainerSpec {
	svc := e.Service
	labels := map[string]string{}
	for k, v := range svc.Labels {
		labels[k] = v
	}
	for k, v := range map[string]string{
		inventory.LabelManaged:    "true",
		inventory.LabelService:    svc.Name,
		inventory.LabelVersion:    target.Tag,
		inventory.LabelImage:      target.Image,
		inventory.LabelDeployedAt: time.Now().UTC().Format(time.RFC3339),
		inventory.LabelRelease:    "true",
		inventory.LabelRunID:      e.RunID,
	} {
		labels[k] = v
	}
	opts := svc.Options
	opts.Command = r.Command
	return inventory.ContainerSpec{
		Name:        name,
		Image:       target.Image,
		Env:         svc.Env(r.Host, svc.Port),
		Labels:      labels,
		StopTimeout: svc.StopTimeout,
		Options:     opts,
	}
}

// outputLines turns a command's output into one event per line.
func (e *Executor) outputLines(host, stream string) *lines.Writer {
	return &lines.Writer{Line: func(s string) {
		e.emit(Event{Host: host, Step: string(StepRelease), Output: strings.TrimRight(s, "\r"), Stream: stream})
	}}
}
