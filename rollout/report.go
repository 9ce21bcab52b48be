package rollout

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/gantry-dev/gantry/internal/names"
)

// HostResult is what happened on one host.
type HostResult struct {
	// Service is set in an app's report (several services): whose
	// container this is.
	Service string
	Host    string
	Zone    string
	// From is the version before the deploy, To the target.
	From, To string
	// Ended is the version the host runs at the end ("" if none runs).
	Ended string
	// Outcome is how the host's part of the run ended, set by the
	// executor at each transition.
	Outcome HostOutcome
	Skipped string
	// Err is why the host failed; RevertErr is why putting it back failed.
	Err       error
	RevertErr error
	// InService is true when the host is back in every load balancer.
	InService bool
	// KeptOut says why the host stays out of every load balancer (in
	// maintenance, marked down by hand): out of them is where it belongs.
	KeptOut       string
	OutOfRotation time.Duration
	// Boot, Waits and InFlight split OutOfRotation (stop-first): the new
	// app's boot (started until its first passing probe), the configured
	// waits (from there to the last pass the check needs), and the drain's
	// wait for requests in flight. Docker is the time of the Docker daemon
	// calls made meanwhile (the stop and the start), as the client saw
	// them; Nginx the load balancers' own work in the restore (test,
	// reload, new workers), as they measured it, the longest of those that
	// apply a change together: the drain's comes before the host is out,
	// OutOfRotation starting when the first load balancer confirmed the
	// drain. The rest is gantry's own (Own).
	Boot, Waits, InFlight time.Duration
	Docker, Nginx         time.Duration
	Duration              time.Duration
	// Phases is the time spent in each step (pull, create, drain, ...).
	Phases   map[string]time.Duration
	Warnings []string
	// Repaired says what a run cut off earlier had left on the host and
	// was repaired before this run's own steps.
	Repaired []string
}

// Own is the part of the host's time out of rotation that is gantry's own:
// its SSH sessions, round trips and the gaps between its calls; not the
// app's boot, the configured waits, the requests in flight, nor the Docker
// daemon's or the load balancers' work (0 for a host that never left
// rotation).
func (r HostResult) Own() time.Duration {
	return max(0, r.Overhead()-r.Docker-r.Nginx)
}

// Overhead is the host's time out of rotation that is not the app's: not
// its boot, the configured waits or the requests in flight. It is gantry's
// own time plus the Docker daemon's and the load balancers' (what the
// floor script pays too).
func (r HostResult) Overhead() time.Duration {
	if r.OutOfRotation == 0 {
		return 0
	}
	return max(0, r.OutOfRotation-r.Boot-r.Waits-r.InFlight)
}

// Started reports whether the run reached the host.
func (r HostResult) Started() bool {
	return r.Outcome != HostNotStarted && r.Outcome != HostUnchanged && r.Outcome != ""
}

// failed sets the outcome of a host whose own move failed, from where the
// undo left it.
func (r *HostResult) failed(reverted bool) {
	switch {
	case r.RevertErr != nil:
		r.Outcome = HostRevertFailed
	case reverted:
		r.Outcome = HostFailedReverted
	case r.InService:
		r.Outcome = HostFailed
	default:
		r.Outcome = HostFailedOut
	}
}

// Report is the result of a whole deploy.
type Report struct {
	Target       Target
	Hosts        []*HostResult
	PullDuration time.Duration
	// PullFailed lists the hosts whose pull failed (then nothing changed).
	PullFailed []string
	Total      time.Duration
	// Err aggregates every host's failure (a go-multierror) or nil.
	Err error
	// Release is what the release step did (nil: the plan had none).
	Release *ReleaseResult
	// Kind is the run's kind.
	Kind RunKind
	// RunPhases are the run's own phases around the executor's work, in
	// order (package fleet fills them).
	RunPhases []RunPhase
	// Canary is what the canary stage found (nil: the run had none, or
	// did not get that far).
	Canary *CanaryResult
	// Interrupted says the run was interrupted (its context cancelled,
	// with no other cause) before it finished; the executor records it
	// once.
	Interrupted bool

	byName map[string]*HostResult
}

func newReport(p Plan) *Report {
	r := &Report{Target: p.Target, Kind: p.RunKind()}
	for _, b := range p.Batches {
		for _, hp := range b.Hosts {
			r.Hosts = append(r.Hosts, &HostResult{Host: hp.Host.Name, Zone: hp.Host.Zone, From: hp.From, To: hp.To.Tag, Ended: hp.From, Outcome: HostNotStarted, InService: hp.KeepOut == "", KeptOut: hp.KeepOut})
		}
	}
	for _, hp := range p.Skipped {
		r.Hosts = append(r.Hosts, &HostResult{Host: hp.Host.Name, Zone: hp.Host.Zone, From: hp.From, To: hp.To.Tag, Ended: hp.From, Outcome: HostUnchanged, Skipped: hp.Skip, InService: hp.KeepOut == "", KeptOut: hp.KeepOut})
	}
	sort.Slice(r.Hosts, func(i, j int) bool { return names.Less(r.Hosts[i].Host, r.Hosts[j].Host) })
	r.byName = make(map[string]*HostResult, len(r.Hosts))
	for _, h := range r.Hosts {
		r.byName[h.Host] = h
	}
	return r
}

func (r *Report) host(name string) *HostResult {
	if h, ok := r.byName[name]; ok {
		return h
	}
	panic("rollout: host " + name + " not in report")
}

// OK reports whether every host ended on the target version, in service.
func (r *Report) OK() bool {
	if r.Err != nil {
		return false
	}
	for _, h := range r.Hosts {
		if h.Skipped != "" {
			continue
		}
		if h.Ended != h.To || !h.placed() {
			return false
		}
	}
	return true
}

// RevertFailed reports whether putting some host back failed, or some host
// ended outside the load balancers.
func (r *Report) RevertFailed() bool {
	for _, h := range r.Hosts {
		if h.RevertErr != nil || !h.placed() {
			return true
		}
	}
	return false
}

// placed reports whether the host is where it belongs: in every load
// balancer, or out of all of them when it is kept out.
func (r HostResult) placed() bool { return r.InService || r.KeptOut != "" }

// Verdict says in words where the fleet ended.
func (r *Report) Verdict() string {
	versions := map[string]int{}
	for _, h := range r.Hosts {
		versions[orNone(h.Ended)]++
	}
	if r.RevertFailed() {
		return "REVERT FAILED on some hosts (see the table)"
	}
	var out []string
	for _, h := range r.Hosts {
		if h.KeptOut != "" && !h.InService {
			out = append(out, h.Host)
		}
	}
	but := ""
	if len(out) > 0 {
		but = fmt.Sprintf(" (but %s, kept out of them)", strings.Join(out, ", "))
	}
	if len(versions) == 1 {
		for v := range versions {
			return fmt.Sprintf("every host is serving %s and in every load balancer%s", v, but)
		}
	}
	var parts []string
	for v, n := range versions {
		parts = append(parts, fmt.Sprintf("%d on %s", n, v))
	}
	sort.Strings(parts)
	return "every host is serving and in every load balancer" + but + ", on mixed versions: " + strings.Join(parts, ", ")
}

// OutOfRotation returns the median and maximum time a deployed host spent
// out of the load balancers.
func (r *Report) OutOfRotation() (median, maxd time.Duration) {
	var ds []time.Duration
	for _, h := range r.Hosts {
		if h.Started() && h.KeptOut == "" { // kept out: out before and after
			ds = append(ds, h.OutOfRotation)
		}
	}
	if len(ds) == 0 {
		return 0, 0
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	if n := len(ds); n%2 == 1 {
		median = ds[n/2]
	} else {
		median = (ds[n/2-1] + ds[n/2]) / 2
	}
	return median, ds[len(ds)-1]
}

// String renders the summary table.
func (r *Report) String() string {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	app := len(r.Hosts) > 0 && r.Hosts[0].Service != ""
	if app {
		fmt.Fprint(tw, "SERVICE\t")
	}
	fmt.Fprintln(tw, "HOST\tZONE\tFROM\tTO\tNOW RUNS\tOUTCOME\tOUT OF LB\tIN LBS")
	for _, h := range r.Hosts {
		if app {
			fmt.Fprintf(tw, "%s\t", h.Service)
		}
		from, ended := orNone(h.From), orNone(h.Ended)
		inlb := "yes"
		switch {
		case !h.InService && h.KeptOut != "":
			inlb = "no (kept out)"
		case !h.InService:
			inlb = "NO"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", h.Host, h.Zone, from, h.To, ended, h.Outcome, secs(h.OutOfRotation), inlb)
	}
	tw.Flush()
	if phases := r.phaseTotals(); phases != "" {
		fmt.Fprintf(&b, "time per phase, median over hosts: %s\n", phases)
	}
	med, mx := r.OutOfRotation()
	if !r.OK() {
		fmt.Fprintf(&b, "result: %s\n", r.Verdict())
	}
	fmt.Fprintf(&b, "pull %s, total %s, out of rotation per host: median %s, max %s\n", secs(r.PullDuration), secs(r.Total), secs(med), secs(mx))
	if r.Release != nil {
		fmt.Fprintln(&b, r.Release.String())
	}
	for _, h := range r.Hosts {
		if h.KeptOut != "" {
			fmt.Fprintf(&b, "kept out of every load balancer: %s: %s\n", h.Host, h.KeptOut)
		}
		for _, w := range h.Warnings {
			fmt.Fprintf(&b, "warning: %s: %s\n", h.Host, w)
		}
		for _, r := range h.Repaired {
			fmt.Fprintf(&b, "repaired %s: %s\n", h.Host, r)
		}
		if h.RevertErr != nil {
			fmt.Fprintf(&b, "REVERT FAILED on %s: %v\n", h.Host, h.RevertErr)
		}
	}
	return b.String()
}

func orNone(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func secs(d time.Duration) string { return fmt.Sprintf("%.2fs", d.Seconds()) }

// HostSummary is a host's result in machine-readable form.
type HostSummary struct {
	// Service is set in an app's report: whose container this is.
	Service   string `json:"service,omitempty"`
	Host      string `json:"host"`
	Zone      string `json:"zone,omitempty"`
	From      string `json:"from"`
	To        string `json:"to"`
	Ended     string `json:"ended"`
	Outcome   string `json:"outcome"`
	InService bool   `json:"in_service"`
	// KeptOut says why the host stays out of every load balancer.
	KeptOut        string   `json:"kept_out,omitempty"`
	OutOfRotationS float64  `json:"out_of_rotation_s"`
	DurationS      float64  `json:"duration_s"`
	Error          string   `json:"error,omitempty"`
	RevertError    string   `json:"revert_error,omitempty"`
	Warnings       []string `json:"warnings,omitempty"`
	// PhasesS is the seconds spent per step: pull, create, drain, stop,
	// start, health, restore, cleanup, revert.
	PhasesS map[string]float64 `json:"phases_s,omitempty"`
	// OutOfRotationParts splits out_of_rotation_s (a host that left
	// rotation): the app's boot, the configured waits, the requests in
	// flight, the Docker daemon's calls, the load balancers' own work, and
	// gantry's own.
	OutOfRotationParts *OutOfRotationParts `json:"out_of_rotation_parts_s,omitempty"`
}

// OutOfRotationParts is a host's time out of rotation, split.
type OutOfRotationParts struct {
	Boot     float64 `json:"boot"`
	Waits    float64 `json:"waits"`
	InFlight float64 `json:"in_flight"`
	// Docker is the Docker daemon's calls while out (stop, start).
	Docker float64 `json:"docker"`
	// Nginx is the load balancers' own work while out (test, reload, new
	// workers; drain and restore), as measured on them.
	Nginx float64 `json:"nginx"`
	// Gantry is the rest: gantry's SSH sessions, round trips and gaps.
	Gantry float64 `json:"gantry"`
}

// Summary is a deploy's result in machine-readable form (gantry --report).
type Summary struct {
	Service              string        `json:"service"`
	Version              string        `json:"version"`
	Image                string        `json:"image"`
	OK                   bool          `json:"ok"`
	PullS                float64       `json:"pull_s"`
	TotalS               float64       `json:"total_s"`
	OutOfRotationMedianS float64       `json:"out_of_rotation_median_s"`
	OutOfRotationMaxS    float64       `json:"out_of_rotation_max_s"`
	Hosts                []HostSummary `json:"hosts"`
	Error                string        `json:"error,omitempty"`
	// Release says how the release command ended, in one line (never its
	// output).
	Release string `json:"release,omitempty"`
	// Canary says how the canary stage ended, in one line with its figures
	// ("" for none).
	Canary string `json:"canary,omitempty"`
	// RunPhasesS are the run's own phases in seconds (connect, observe,
	// plan, lock, preflight, hooks, execute, verify, finish), those it went
	// through.
	RunPhasesS map[string]float64 `json:"run_phases_s,omitempty"`
}

// Summary returns the report in machine-readable form.
func (r *Report) Summary() Summary {
	med, mx := r.OutOfRotation()
	s := Summary{Hosts: []HostSummary{},
		Service: r.Target.Service, Version: r.Target.Tag, Image: r.Target.Image, OK: r.OK(),
		PullS: r.PullDuration.Seconds(), TotalS: r.Total.Seconds(),
		OutOfRotationMedianS: med.Seconds(), OutOfRotationMaxS: mx.Seconds(),
	}
	if r.Err != nil {
		s.Error = r.Err.Error()
	}
	s.Release = r.Release.String()
	s.Canary = r.Canary.String()
	if len(r.RunPhases) > 0 {
		s.RunPhasesS = map[string]float64{}
		for _, p := range r.RunPhases {
			s.RunPhasesS[p.Name] += p.Duration.Seconds()
		}
	}
	for _, h := range r.Hosts {
		hs := HostSummary{
			Service: h.Service, Host: h.Host, Zone: h.Zone, From: h.From, To: h.To, Ended: h.Ended, Outcome: string(h.Outcome),
			InService: h.InService, KeptOut: h.KeptOut, OutOfRotationS: h.OutOfRotation.Seconds(), DurationS: h.Duration.Seconds(),
			Warnings: append([]string(nil), h.Warnings...),
		}
		for _, r := range h.Repaired {
			hs.Warnings = append(hs.Warnings, "repaired: "+r)
		}
		if h.Err != nil {
			hs.Error = h.Err.Error()
		}
		if h.RevertErr != nil {
			hs.RevertError = h.RevertErr.Error()
		}
		if h.OutOfRotation > 0 {
			hs.OutOfRotationParts = &OutOfRotationParts{Boot: h.Boot.Seconds(), Waits: h.Waits.Seconds(), InFlight: h.InFlight.Seconds(),
				Docker: h.Docker.Seconds(), Nginx: h.Nginx.Seconds(), Gantry: h.Own().Seconds()}
		}
		if len(h.Phases) > 0 {
			hs.PhasesS = map[string]float64{}
			for p, d := range h.Phases {
				hs.PhasesS[p] = d.Seconds()
			}
		}
		s.Hosts = append(s.Hosts, hs)
	}
	return s
}

// phaseOrder is the order phases are shown in.
var phaseOrder = []string{"pull", "create", "drain", "stop", "start", "health", "switch", "restore", "cleanup", "revert"}

// phaseTotals renders the median time of each phase over the hosts that ran it.
func (r *Report) phaseTotals() string {
	var parts []string
	for _, p := range phaseOrder {
		var ds []time.Duration
		for _, h := range r.Hosts {
			if d, ok := h.Phases[p]; ok {
				ds = append(ds, d)
			}
		}
		if len(ds) == 0 {
			continue
		}
		sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
		parts = append(parts, fmt.Sprintf("%s %s", p, secs(ds[len(ds)/2])))
	}
	return strings.Join(parts, ", ")
}

// Outcome says in one word how the run ended.
func (r *Report) Outcome() RunOutcome {
	// An interrupt that came when every host was done changes nothing, and
	// one that came while putting a host back failed must not hide it.
	switch {
	case r.OK():
		return OutcomeSucceeded
	case r.RevertFailed():
		return OutcomeRevertFailed
	case r.Interrupted:
		return OutcomeInterrupted
	case r.ReleaseFailed():
		return OutcomeFailed // and nothing was changed
	}
	for _, h := range r.Hosts {
		if h.Outcome == HostDeployed && h.Ended == h.To && h.From != h.To {
			return OutcomeFailed // a host stayed on the new version
		}
	}
	return OutcomeReverted
}

// FailedHosts lists the hosts whose own pull or swap failed, and the
// canary hosts of a canary that failed.
func (r *Report) FailedHosts() []string {
	out := append([]string(nil), r.PullFailed...)
	if r.Canary.Failed() {
		out = append(out, r.Canary.Hosts...)
	}
	for _, h := range r.Hosts {
		if h.Err != nil {
			out = append(out, h.Host)
		}
	}
	return out
}

// PhaseTable renders each started host's time per phase, for --verbose.
// After them, each host's time out of rotation split into the app's boot,
// the configured waits, the requests in flight, the Docker daemon's calls,
// the load balancers' own work and gantry's own; then the run's own
// phases.
func (r *Report) PhaseTable() string {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "HOST\t"+strings.ToUpper(strings.Join(phaseOrder, "\t"))+"\tOUT OF LB: BOOT\tWAITS\tIN FLIGHT\tDOCKER\tNGINX\tGANTRY")
	for _, h := range r.Hosts {
		if !h.Started() && len(h.Phases) == 0 {
			continue
		}
		cells := []string{h.Host}
		for _, p := range phaseOrder {
			if d, ok := h.Phases[p]; ok {
				cells = append(cells, secs(d))
			} else {
				cells = append(cells, "-")
			}
		}
		if h.OutOfRotation > 0 {
			cells = append(cells, secs(h.Boot), secs(h.Waits), secs(h.InFlight), secs(h.Docker), secs(h.Nginx), secs(h.Own()))
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	tw.Flush()
	if len(r.RunPhases) > 0 {
		var parts []string
		for _, p := range r.RunPhases {
			parts = append(parts, fmt.Sprintf("%s %s", p.Name, secs(p.Duration)))
		}
		fmt.Fprintf(&b, "run phases: %s\n", strings.Join(parts, ", "))
	}
	return b.String()
}

// RunPhase is one of the run's own phases (connect, lock, observe, plan,
// pre-flight, ...) and how long it took.
type RunPhase struct {
	Name     string
	Duration time.Duration
}

// MergeReports is one report for an app's run: every service's hosts, in
// the order the services ran, each marked with its service; the errors of
// all; the times added up.
func MergeReports(app Target, reports map[string]*Report, order []string) *Report {
	m := &Report{Target: app, byName: map[string]*HostResult{}}
	var errs []error
	for _, svc := range order {
		r := reports[svc]
		if r == nil {
			continue
		}
		for _, h := range r.Hosts {
			h.Service = svc
			m.Hosts = append(m.Hosts, h)
			m.byName[svc+"/"+h.Host] = h
		}
		for _, f := range r.PullFailed {
			m.PullFailed = append(m.PullFailed, svc+"/"+f)
		}
		m.PullDuration += r.PullDuration
		m.Total += r.Total
		m.Kind = r.Kind
		m.Interrupted = m.Interrupted || r.Interrupted
		if r.Err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", svc, r.Err))
		}
	}
	if len(errs) > 0 {
		m.Err = errors.Join(errs...)
	}
	return m
}
