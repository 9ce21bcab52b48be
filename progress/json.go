package progress

import (
	_ "embed"
	"encoding/json"

	"github.com/gantry-dev/gantry/rollout"
)

// SchemaVersion is the "v" of every JSON event. It changes only when a
// field is removed or changes meaning; new fields may appear at any time.
const SchemaVersion = 1

// header is what every JSON event starts with.
type header struct {
	V    int    `json:"v"`
	Type string `json:"type"`
	Time string `json:"time"` // RFC 3339, UTC, with fractional seconds
}

func (v *View) header(kind string) header {
	return header{V: SchemaVersion, Type: kind, Time: v.opts.Now().UTC().Format("2006-01-02T15:04:05.000000Z07:00")}
}

// writeJSON writes one event as one line. The caller holds v.mu.
func (v *View) writeJSON(ev any) {
	data, err := json.Marshal(ev)
	if err != nil {
		panic("progress: " + err.Error()) // only our own plain structs are marshalled
	}
	v.out.Write(append(data, '\n'))
}

// messageEvent is a note or warning.
type messageEvent struct {
	header
	Level string `json:"level"` // info | warning
	Text  string `json:"text"`
}

// planHost is one host in the plan event.
type planHost struct {
	Host string `json:"host"`
	Zone string `json:"zone"`
	From string `json:"from"`
	To   string `json:"to"`
}

// skippedHost is a host the plan leaves alone.
type skippedHost struct {
	Host   string `json:"host"`
	From   string `json:"from"`
	Reason string `json:"reason"`
}

// planEvent is what the run is about to do.
type planEvent struct {
	header
	Kind    string        `json:"kind"` // deploy | rollback
	Env     string        `json:"env"`
	Service string        `json:"service"`
	Version string        `json:"version"`
	Image   string        `json:"image"`
	Pull    []string      `json:"pull"`
	Batches [][]planHost  `json:"batches"`
	Skipped []skippedHost `json:"skipped"`
	Release *planRelease  `json:"release,omitempty"`
	Canary  *planCanary   `json:"canary,omitempty"`
	Notes   []string      `json:"notes,omitempty"`
}

// planCanary is the canary stage in the plan event.
type planCanary struct {
	Hosts        []string `json:"hosts"`
	Baseline     []string `json:"baseline"`
	Batch        int      `json:"batch"` // 1-based
	BakeS        float64  `json:"bake_s"`
	Inconclusive string   `json:"inconclusive"`
	Criteria     string   `json:"criteria,omitempty"`
}

func planEventOf(h header, env string, p rollout.Plan) planEvent {
	ev := planEvent{header: h, Kind: string(p.RunKind()), Env: env, Service: p.Target.Service, Version: p.Target.Tag, Image: p.Target.Image,
		Pull: []string{}, Batches: [][]planHost{}, Skipped: []skippedHost{}}
	for _, host := range p.Pull {
		ev.Pull = append(ev.Pull, host.Name)
	}
	for _, b := range p.Batches {
		batch := []planHost{}
		for _, hp := range b.Hosts {
			batch = append(batch, planHost{Host: hp.Host.Name, Zone: hp.Host.Zone, From: hp.From, To: hp.To.Tag})
		}
		ev.Batches = append(ev.Batches, batch)
	}
	for _, hp := range p.Skipped {
		ev.Skipped = append(ev.Skipped, skippedHost{Host: hp.Host.Name, From: hp.From, Reason: hp.Skip})
	}
	if c := p.Canary; c != nil {
		ev.Canary = &planCanary{Hosts: c.Hosts, Baseline: c.Baseline, Batch: c.Batch + 1, BakeS: c.Bake.Seconds(), Inconclusive: c.Inconclusive, Criteria: c.Criteria}
	}
	ev.Notes = p.Notes
	if r := p.Release; r != nil {
		ev.Release = &planRelease{Command: r.Command, Host: r.Host.Name, TimeoutS: r.Timeout.Seconds(), Skip: r.Skip, Leftovers: []string{}}
		if ev.Release.Command == nil {
			ev.Release.Command = []string{}
		}
		for _, l := range r.Leftovers {
			ev.Release.Leftovers = append(ev.Release.Leftovers, l.Host.Name)
		}
	}
	return ev
}

// outputEvent is one line a step's command wrote (the release command's).
type outputEvent struct {
	header
	Host   string `json:"host"`
	Step   string `json:"step"`
	Stream string `json:"stream"` // stdout | stderr
	Text   string `json:"text"`
}

// canaryEvent is the canary's figures while it bakes, and its verdict.
type canaryEvent struct {
	header
	Result  string  `json:"result"`
	Summary string  `json:"summary"`
	BakedS  float64 `json:"baked_s"`
	BakeS   float64 `json:"bake_s"`
	Final   bool    `json:"final"`
	Figures any     `json:"figures,omitempty"`
}

// planRelease is the release step in the plan event.
type planRelease struct {
	Command  []string `json:"command"`
	Host     string   `json:"host"`
	TimeoutS float64  `json:"timeout_s"`
	Skip     string   `json:"skip,omitempty"`
	// Leftovers are hosts whose release container a cut-off run left.
	Leftovers []string `json:"leftovers"`
}

// stepEvent is one step on one host starting or ending.
type stepEvent struct {
	header
	Host      string   `json:"host"`
	Batch     int      `json:"batch"` // 1-based; 0 when the host is in no batch
	Step      string   `json:"step"`
	Status    string   `json:"status"` // started | ok | failed
	DurationS *float64 `json:"duration_s,omitempty"`
	Detail    string   `json:"detail,omitempty"`
	Error     string   `json:"error,omitempty"`
}

func stepEventOf(h header, ev rollout.Event, batch int, redact func(string) string) stepEvent {
	h.Time = ev.Time.UTC().Format("2006-01-02T15:04:05.000000Z07:00")
	out := stepEvent{header: h, Host: ev.Host, Batch: batch, Step: ev.Step, Status: "started", Detail: redact(ev.Detail)}
	if ev.Done {
		d := ev.Duration.Seconds()
		out.DurationS = &d
		out.Status = "ok"
		if ev.Err != nil {
			out.Status = "failed"
			out.Error = redact(ev.Err.Error())
		}
	}
	return out
}

// summaryEvent is the last event of every run.
type summaryEvent struct {
	header
	Kind     string `json:"kind"`
	Env      string `json:"env"`
	OK       bool   `json:"ok"`
	Outcome  string `json:"outcome"`
	ExitCode int    `json:"exit_code"`
	DryRun   bool   `json:"dry_run"`
	Error    string `json:"error,omitempty"`
	// Report is there when the run got as far as changing something.
	Report *rollout.Summary `json:"report,omitempty"`
}

func summaryEventOf(h header, env, kind string, f Final, secrets []string) summaryEvent {
	redact := func(s string) string { return Redact(s, secrets) }
	ev := summaryEvent{header: h, Kind: kind, Env: env, OK: f.ExitCode == 0, ExitCode: f.ExitCode, DryRun: f.DryRun}
	if f.Err != nil {
		ev.Error = redact(f.Err.Error())
	}
	switch {
	case f.Report != nil:
		ev.Outcome = string(f.Report.Outcome())
		s := RedactSummary(f.Report.Summary(), secrets)
		ev.Report = &s
	case f.Interrupted:
		ev.Outcome = string(rollout.OutcomeInterrupted)
	case f.DryRun && f.ExitCode == 0:
		ev.Outcome = string(rollout.OutcomePlanned)
	case f.ExitCode == 0:
		ev.Outcome = string(rollout.OutcomeSucceeded) // nothing to do
	default:
		ev.Outcome = string(rollout.OutcomeRefused)
	}
	return ev
}

// Schema is the JSON Schema (2020-12) of every JSON event.
//
//go:embed events.schema.json
var Schema []byte
