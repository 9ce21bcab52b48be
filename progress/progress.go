package progress

import (
	"bytes"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/gantry-dev/gantry/internal/lines"
	"github.com/gantry-dev/gantry/rollout"
)

// Mode is how a View renders a run.
type Mode int

// The modes.
const (
	// Lines writes plain lines, each event with a timestamp and no escape
	// codes: for logs and CI.
	Lines Mode = iota
	// Live redraws one line per host (or per batch on large fleets) and an
	// overall progress bar with an ETA: for a terminal.
	Live
	// JSON writes one JSON object per line: see docs/events.md.
	JSON
)

// Verbosity is how much a Lines or Live view says; JSON always says all.
type Verbosity int

// The verbosities.
const (
	// Quiet: warnings, and one line with the result (the table too when
	// something failed).
	Quiet Verbosity = -1
	// Normal: the plan, progress, the summary table.
	Normal Verbosity = 0
	// Verbose: also every step's start and each host's time per phase.
	Verbose Verbosity = 1
)

// Options configure a View.
type Options struct {
	Out       io.Writer
	Mode      Mode
	Verbosity Verbosity
	// Env is the environment the run changes, for headlines and events.
	Env string
	// Kind is what the summary says ran when the run ended before it had
	// a plan (default deploy).
	Kind rollout.RunKind
	// Secrets are values never to be written (registry password, webhook
	// URLs): each is replaced by "***".
	Secrets []string
	// Width is the terminal width for the Live view (default 100).
	Width int
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Final is how a run ended, for the last thing a View shows.
type Final struct {
	// Report is the run's result; nil when it ended before changing
	// anything (refused, lock held, bad input).
	Report *rollout.Report
	// Err is the error the run ended with, if any.
	Err error
	// ExitCode is gantry's exit code.
	ExitCode int
	// Interrupted says the user interrupted the run.
	Interrupted bool
	// DryRun says nothing was meant to change.
	DryRun bool
}

// View renders one run. Its methods may be called from several goroutines.
type View struct {
	opts  Options
	out   io.Writer // opts.Out, with secrets redacted
	mu    sync.Mutex
	start time.Time
	plan  *rollout.Plan
	batch map[string]int // host -> 1-based batch number
	live  *liveView      // the Live mode's bars, once the first step starts
}

// New returns a View writing to o.Out.
func New(o Options) *View {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Width <= 0 {
		o.Width = 100
	}
	o.Secrets = usableSecrets(o.Secrets)
	secrets := o.Secrets
	v := &View{opts: o, start: o.Now(), batch: map[string]int{}}
	v.out = &redactor{w: o.Out, secrets: secrets}
	return v
}

// Messages returns the writer for notes and warnings ("warning: ..."),
// one per line: in JSON mode each line becomes a message event; in Live
// mode lines are printed above the live view.
func (v *View) Messages() io.Writer { return &lines.Writer{Line: v.message} }

// message handles one line written to Messages.
func (v *View) message(line string) {
	level := "info"
	if strings.HasPrefix(line, "warning: ") || strings.HasPrefix(line, "REVERT FAILED") {
		level = "warning"
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	switch {
	case v.opts.Mode == JSON:
		v.writeJSON(messageEvent{header: v.header("message"), Level: level, Text: v.redact(line)})
	case v.opts.Verbosity == Quiet && level != "warning":
	case v.live != nil:
		v.live.above(v.redact(line) + "\n")
	default:
		io.WriteString(v.out, line+"\n")
	}
}

// Plan shows what is about to happen. It is called once, before any change
// (and for a dry run, instead of any change).
func (v *View) Plan(p rollout.Plan) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.plan = &p
	for i, b := range p.Batches {
		for _, hp := range b.Hosts {
			v.batch[hp.Host.Name] = i + 1
		}
	}
	switch {
	case v.opts.Mode == JSON:
		v.writeJSON(planEventOf(v.header("plan"), v.opts.Env, p))
	case v.opts.Verbosity == Quiet:
	default:
		io.WriteString(v.out, p.String())
	}
}

// Step shows one step on one host starting or ending, or a line of output
// of the step's command (the release command's).
func (v *View) Step(ev rollout.Event) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if ev.Stream != "" {
		v.output(ev)
		return
	}
	switch v.opts.Mode {
	case JSON:
		v.writeJSON(stepEventOf(v.header("step"), ev, v.batch[ev.Host], v.redact))
	case Live:
		if v.live == nil {
			v.live = newLiveView(v)
		}
		v.live.step(ev)
	default:
		if v.opts.Verbosity == Quiet || (!ev.Done && v.opts.Verbosity < Verbose) {
			return
		}
		io.WriteString(v.out, v.redact(stepLine(ev))+"\n")
	}
}

// output shows a line of a step's command's output, redacted, prefixed
// with its host, in every mode and verbosity: it is what an operator needs
// when the command fails. The caller holds v.mu.
func (v *View) output(ev rollout.Event) {
	switch {
	case v.opts.Mode == JSON && ev.Canary != nil:
		h := v.header("canary")
		h.Time = ev.Time.UTC().Format("2006-01-02T15:04:05.000000Z07:00")
		c := ev.Canary
		v.writeJSON(canaryEvent{header: h, Result: c.Verdict.Result, Summary: v.redact(c.Verdict.Summary), BakedS: c.Baked.Seconds(), BakeS: c.Bake.Seconds(), Final: c.Final, Figures: c.Verdict.Figures})
	case v.opts.Mode == JSON && ev.Stream == rollout.StreamFigures:
		// A bake's read that failed (figures without numbers): a
		// warning, not a command's output.
		v.writeJSON(messageEvent{header: v.header("message"), Level: "warning", Text: v.redact("warning: canary: " + ev.Output)})
	case v.opts.Mode == JSON:
		h := v.header("output")
		h.Time = ev.Time.UTC().Format("2006-01-02T15:04:05.000000Z07:00")
		v.writeJSON(outputEvent{header: h, Host: ev.Host, Step: ev.Step, Stream: ev.Stream, Text: v.redact(ev.Output)})
	case v.live != nil:
		v.live.above(v.redact(outputLine(ev)) + "\n")
	default:
		io.WriteString(v.out, v.redact(outputLine(ev))+"\n")
	}
}

// outputLine is a line of a step's command's output as one plain line.
func outputLine(ev rollout.Event) string {
	return fmt.Sprintf("%s %-10s %-8s | %s", ev.Time.UTC().Format("2006-01-02T15:04:05.000Z"), ev.Host, ev.Step, ev.Output)
}

// stepLine is a step event as one timestamped plain line.
func stepLine(ev rollout.Event) string {
	ts := ev.Time.UTC().Format("2006-01-02T15:04:05.000Z")
	if !ev.Done {
		return fmt.Sprintf("%s %-10s %-8s started", ts, ev.Host, ev.Step)
	}
	status, detail := "ok", ev.Detail
	if ev.Err != nil {
		status, detail = "FAILED", ev.Err.Error()
	}
	return strings.TrimRight(fmt.Sprintf("%s %-10s %-8s %-6s %6.3fs  %s", ts, ev.Host, ev.Step, status, ev.Duration.Seconds(), detail), " ")
}

// Finish shows how the run ended: the summary table (or one line), or in
// JSON mode the summary event. It is the last call on a View.
func (v *View) Finish(f Final) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.live != nil {
		v.live.finish(f.Report)
		v.live = nil
	}
	if v.opts.Mode == JSON {
		v.writeJSON(summaryEventOf(v.header("summary"), v.opts.Env, v.kind(), f, v.opts.Secrets))
		return
	}
	rep := f.Report
	if rep == nil {
		return // the error itself goes to stderr
	}
	if v.opts.Verbosity == Quiet && rep.OK() {
		med, _ := rep.OutOfRotation()
		fmt.Fprintf(v.out, "%s: %s of %s@%s: %d hosts in %s, out of rotation per host %s (median)\n",
			rep.Outcome(), v.kind(), rep.Target.Service, rep.Target.Tag, startedHosts(rep), secs(rep.Total), secs(med))
		return
	}
	io.WriteString(v.out, "\n"+v.redact(rep.String()))
	if v.opts.Verbosity == Verbose {
		io.WriteString(v.out, v.redact(rep.PhaseTable()))
	}
}

// kind is what ran: the plan's kind, or before there was one the kind the
// CLI said.
func (v *View) kind() string {
	switch {
	case v.plan != nil:
		return string(v.plan.RunKind())
	case v.opts.Kind != "":
		return string(v.opts.Kind)
	}
	return "deploy"
}

func startedHosts(rep *rollout.Report) int {
	n := 0
	for _, h := range rep.Hosts {
		if h.Started() {
			n++
		}
	}
	return n
}

func secs(d time.Duration) string { return fmt.Sprintf("%.2fs", d.Seconds()) }

// redact replaces every secret in s.
func (v *View) redact(s string) string { return Redact(s, v.opts.Secrets) }

// usableSecrets drops values too short to redact without mangling
// ordinary words, and orders the rest longest first, so that a secret
// containing another is replaced whole.
func usableSecrets(secrets []string) []string {
	var out []string
	for _, s := range secrets {
		if len(s) >= 4 {
			out = append(out, s)
		}
	}
	sort.Slice(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out
}

// Redact replaces every one of secrets in s by "***": for what gantry
// prints outside a View (errors on stderr, the --report file).
func Redact(s string, secrets []string) string {
	for _, sec := range usableSecrets(secrets) {
		s = strings.ReplaceAll(s, sec, "***")
	}
	return s
}

// RedactSummary returns s with every secret replaced in its free text
// (errors and warnings), before it is encoded: encoding may escape a
// secret's characters so that the encoded bytes no longer match it.
func RedactSummary(s rollout.Summary, secrets []string) rollout.Summary {
	s.Error = Redact(s.Error, secrets)
	s.Release = Redact(s.Release, secrets)
	hosts := make([]rollout.HostSummary, len(s.Hosts))
	for i, h := range s.Hosts {
		h.Error = Redact(h.Error, secrets)
		h.RevertError = Redact(h.RevertError, secrets)
		if h.Warnings != nil {
			ws := make([]string, len(h.Warnings))
			for j, w := range h.Warnings {
				ws[j] = Redact(w, secrets)
			}
			h.Warnings = ws
		}
		hosts[i] = h
	}
	s.Hosts = hosts
	return s
}

// redactor is a writer that never lets a secret through.
type redactor struct {
	w       io.Writer
	secrets []string
}

func (r *redactor) Write(p []byte) (int, error) {
	out := p
	for _, s := range r.secrets {
		out = bytes.ReplaceAll(out, []byte(s), []byte("***"))
	}
	if _, err := r.w.Write(out); err != nil {
		return 0, err
	}
	return len(p), nil
}
