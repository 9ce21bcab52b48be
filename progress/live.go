package progress

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	"github.com/gantry-dev/gantry/rollout"
)

// MaxHostRows is the most hosts the live view shows one line each; larger
// fleets get one line per batch.
const MaxHostRows = 20

// hostSteps is the number of steps a host goes through on the way to
// being back in service (pull, create, drain, stop, start, health, restore).
const hostSteps = 7

// activeVerb names what a host is doing during a step.
var activeVerb = map[string]string{
	"pull":    "pulling",
	"create":  "creating",
	"drain":   "draining",
	"stop":    "stopping old",
	"start":   "starting new",
	"health":  "health-checking",
	"restore": "restoring",
	"switch":  "switching LBs",
	"cleanup": "removing old",
	"revert":  "reverting",
	"release": "running the release command",
}

// hostState is what the live view knows of one host.
type hostState struct {
	name, zone string
	batch      int
	status     string
	failed     bool
	stepsDone  int
	began      time.Time // first step after the pull
	ended      time.Time // back in service (or given up)
	drained    bool
	finished   bool // counted in the overall bar
}

// row is one line of the live view: a host, or a batch of hosts.
type row struct {
	bar   *mpb.Bar
	hosts []*hostState
	label string
}

// liveView draws the run with mpb: a line per host or batch, then an
// overall bar with an ETA. Its own mutex guards the state the decorators
// read; mpb calls are made without holding it (they may wait for the
// render goroutine, which takes it).
type liveView struct {
	v     *View
	p     *mpb.Progress
	mu    sync.Mutex
	hosts map[string]*hostState
	rows  []*row
	byKey map[string]*row // host name -> its row
	total *mpb.Bar
	nDone int
}

func newLiveView(v *View) *liveView {
	lv := &liveView{v: v, hosts: map[string]*hostState{}, byKey: map[string]*row{}}
	// mpb writes to the terminal itself (it needs the file to know the
	// terminal's size); nothing it draws holds a secret, and the lines
	// printed above the bars are redacted first.
	lv.p = mpb.New(mpb.WithOutput(v.opts.Out), mpb.WithWidth(v.opts.Width), mpb.WithAutoRefresh(), mpb.WithRefreshRate(120*time.Millisecond))
	var batches [][]*hostState
	nameW := 4
	if v.plan != nil {
		for bi, b := range v.plan.Batches {
			var members []*hostState
			for _, hp := range b.Hosts {
				h := &hostState{name: hp.Host.Name, zone: hp.Host.Zone, batch: bi + 1, status: "waiting"}
				lv.hosts[h.name] = h
				nameW = max(nameW, len(h.name))
				members = append(members, h)
			}
			batches = append(batches, members)
		}
	}
	perBatch := len(lv.hosts) > MaxHostRows
	for bi, members := range batches {
		if perBatch {
			lv.addRow(&row{hosts: members, label: fmt.Sprintf("batch %d/%d", bi+1, len(batches))}, 12, int64(len(members)))
			continue
		}
		for _, h := range members {
			label := fmt.Sprintf("%-*s %-4s b%d", nameW, h.name, h.zone, h.batch)
			lv.addRow(&row{hosts: []*hostState{h}, label: label}, nameW+9, hostSteps)
		}
	}
	lv.total = lv.p.New(int64(max(1, len(lv.hosts))),
		mpb.BarStyle().Lbound("[").Filler("=").Tip(">").Padding(" ").Rbound("]"),
		mpb.BarWidth(30),
		mpb.PrependDecorators(
			decor.Name("overall", decor.WC{W: 10, C: decor.DindentRight}),
			decor.Any(func(decor.Statistics) string {
				lv.mu.Lock()
				defer lv.mu.Unlock()
				return fmt.Sprintf("%d/%d hosts", lv.nDone, len(lv.hosts))
			}, decor.WC{W: 14, C: decor.DindentRight}),
		),
		mpb.AppendDecorators(
			decor.Percentage(decor.WC{W: 5}),
			decor.Name("  elapsed "),
			decor.Elapsed(decor.ET_STYLE_GO, decor.WC{W: 6}),
			decor.OnComplete(decor.Name("  ETA "), "  done"),
			decor.OnComplete(decor.AverageETA(decor.ET_STYLE_GO, decor.WC{W: 6}), ""),
		),
	)
	return lv
}

func (lv *liveView) addRow(r *row, labelW int, total int64) {
	r.bar = lv.p.New(total,
		mpb.BarStyle().Lbound("[").Filler("=").Tip(">").Padding(" ").Rbound("]"),
		mpb.BarWidth(14),
		mpb.PrependDecorators(decor.Name(r.label, decor.WC{W: labelW + 1, C: decor.DindentRight})),
		mpb.AppendDecorators(decor.Any(func(decor.Statistics) string { return lv.describe(r) })),
	)
	lv.rows = append(lv.rows, r)
	for _, h := range r.hosts {
		lv.byKey[h.name] = r
	}
}

// describe is the text after a row's bar.
func (lv *liveView) describe(r *row) string {
	lv.mu.Lock()
	defer lv.mu.Unlock()
	now := lv.v.opts.Now()
	if len(r.hosts) == 1 {
		h := r.hosts[0]
		el := ""
		if !h.began.IsZero() {
			end := now
			if !h.ended.IsZero() {
				end = h.ended
			}
			el = fmt.Sprintf("%5.1fs  ", end.Sub(h.began).Seconds())
		}
		return " " + el + h.status
	}
	counts := map[string]int{}
	for _, h := range r.hosts {
		counts[h.status]++
	}
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%d %s", counts[k], k)
	}
	return fmt.Sprintf(" %d hosts: %s", len(r.hosts), strings.Join(parts, ", "))
}

// step updates the state of ev's host and its row.
func (lv *liveView) step(ev rollout.Event) {
	lv.mu.Lock()
	h, ok := lv.hosts[ev.Host]
	if !ok {
		lv.mu.Unlock()
		return
	}
	finished := false
	switch {
	case !ev.Done:
		if verb, ok := activeVerb[ev.Step]; ok {
			h.status = verb
			if ev.Step == "cleanup" {
				h.status = "in service, " + verb
			}
		} else {
			h.status = ev.Step
		}
		if ev.Step != "pull" && h.began.IsZero() {
			h.began = ev.Time
		}
		if ev.Step == "drain" {
			h.drained = true
		}
	case ev.Err != nil:
		h.failed = true
		h.status = fmt.Sprintf("FAILED at %s", ev.Step)
		if ev.Step == "revert" && !h.drained {
			finished = true // never left the load balancers: nothing more to do
		}
	default:
		h.stepsDone = min(h.stepsDone+1, hostSteps-1)
		switch ev.Step {
		case "pull":
			h.status = "pulled, waiting"
		case "restore", "switch":
			// Back in every balancer (switch: start-first, on the new port).
			finished = true
			if h.failed {
				h.status = "back in service (reverted)"
			} else {
				h.status = "in service"
			}
		case "revert":
			if !h.drained {
				finished = true
				h.status = "reverted, never left service"
			}
		case "cleanup":
			h.status = "in service"
		case "release":
			h.status = "release command done, waiting"
		default:
			h.status = activeVerb[ev.Step] + " done"
		}
	}
	if finished {
		h.ended = ev.Time
		if !h.finished {
			h.finished = true
			lv.nDone++
		}
	}
	progress := 0
	r := lv.byKey[h.name]
	if len(r.hosts) == 1 {
		progress = h.stepsDone
		if finished {
			progress = hostSteps - 1 // full only at the end, with the outcome
		}
	} else {
		for _, m := range r.hosts {
			if m.finished {
				progress++
			}
		}
	}
	lv.mu.Unlock()
	r.bar.SetCurrent(int64(progress))
	if finished {
		lv.total.SetCurrent(int64(lv.doneCount()))
	}
}

func (lv *liveView) doneCount() int {
	lv.mu.Lock()
	defer lv.mu.Unlock()
	return lv.nDone
}

// above prints text above the live view.
func (lv *liveView) above(text string) {
	_, _ = lv.p.Write([]byte(text))
}

// finish shows each host's outcome and stops drawing.
func (lv *liveView) finish(rep *rollout.Report) {
	lv.mu.Lock()
	if rep != nil {
		for _, res := range rep.Hosts {
			h, ok := lv.hosts[res.Host]
			if !ok {
				continue
			}
			h.status = string(res.Outcome) + " " + orDash(res.Ended)
			if !res.InService {
				h.status += " (NOT in service)"
			}
			if h.ended.IsZero() {
				h.ended = lv.v.opts.Now()
			}
		}
	}
	lv.nDone = 0
	for _, h := range lv.hosts {
		if h.finished || rep != nil {
			lv.nDone++
		}
	}
	lv.mu.Unlock()
	for _, r := range lv.rows {
		if rep == nil {
			r.bar.Abort(false) // stopped where it was
		} else {
			r.bar.SetTotal(-1, true)
		}
	}
	lv.total.SetCurrent(int64(lv.doneCount()))
	if rep == nil {
		lv.total.Abort(false)
	} else {
		lv.total.SetTotal(-1, true)
	}
	lv.p.Wait()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
