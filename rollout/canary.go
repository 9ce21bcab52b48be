package rollout

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/gantry-dev/gantry/inventory"
)

// Canary is a deploy's canary stage. Its hosts move first, as a batch of
// their own, and go back into rotation; then they bake: for Bake they serve
// live traffic beside the baseline (the serving hosts still on the old
// version), and the executor's CanaryJudge compares the two over that same
// window. A pass lets the rollout go on; a fail moves the canary hosts back
// exactly as a failed health check would.
type Canary struct {
	// Hosts are the canary hosts, by name; Batch is the index of their
	// batch in Plan.Batches.
	Hosts []string
	Batch int
	// Baseline are the serving hosts that stay on the old version while
	// the canary bakes, by name.
	Baseline []string
	// Bake is how long the canary serves before the verdict.
	Bake time.Duration
	// Inconclusive is what too little traffic means at the end of Bake:
	// InconclusiveFail, InconclusivePass, or InconclusiveExtend (keep
	// baking, up to MaxBake, then fail).
	Inconclusive string
	MaxBake      time.Duration
	// Criteria says what the judge checks, for the plan.
	Criteria string
	// Tick is how often the bake reports its running figures (0:
	// DefaultCanaryTick).
	Tick time.Duration
}

// What an inconclusive canary (too little traffic) means.
const (
	InconclusiveFail   = "fail"
	InconclusivePass   = "pass"
	InconclusiveExtend = "extend"
)

// String renders the canary stage for the plan.
func (c *Canary) String() string {
	if c == nil {
		return ""
	}
	inc := c.Inconclusive
	if inc == InconclusiveExtend {
		inc = fmt.Sprintf("keep baking up to %s", c.MaxBake)
	}
	s := fmt.Sprintf("canary: %s first (batch %d), back into rotation, then bake %s against the baseline %s; too little traffic: %s\n",
		strings.Join(c.Hosts, " "), c.Batch+1, c.Bake, strings.Join(c.Baseline, " "), inc)
	if c.Criteria != "" {
		s += "  fails on: " + c.Criteria + "\n"
	}
	return s
}

// canaryBatches cuts the serving hosts to move into a canary batch of n
// hosts, spread over the zones (one per zone in turn, each zone's hosts in
// plan order), and the batches of the others. The canary batch keeps the
// spread rules; at least one serving host must stay outside it to be the
// baseline.
func canaryBatches(hosts []HostPlan, n int, rules SpreadRules) (canary Batch, rest []Batch, err error) {
	if n >= len(hosts) {
		return Batch{}, nil, fmt.Errorf("%w: a canary of %d host(s) leaves no baseline among the %d serving host(s) to move", ErrSpread, n, len(hosts))
	}
	byZone := map[string][]int{}
	var zones []string
	for i, h := range hosts {
		z := h.Host.Zone
		if _, ok := byZone[z]; !ok {
			zones = append(zones, z)
		}
		byZone[z] = append(byZone[z], i)
	}
	sort.Strings(zones)
	picked := map[int]bool{}
	for len(picked) < n {
		for _, z := range zones {
			if len(picked) == n {
				break
			}
			if len(byZone[z]) > 0 {
				picked[byZone[z][0]] = true
				byZone[z] = byZone[z][1:]
			}
		}
	}
	var chosen, others []HostPlan
	for i, h := range hosts {
		if picked[i] {
			chosen = append(chosen, h)
		} else {
			others = append(others, h)
		}
	}
	cr := rules
	cr.BatchSize = n
	cb, err := SpreadBatches(chosen, cr)
	if err != nil {
		return Batch{}, nil, fmt.Errorf("canary: %w", err)
	}
	if len(cb) != 1 {
		return Batch{}, nil, fmt.Errorf("%w: a canary of %d host(s) cannot go out at once under the spread rules (min_in_service %d of %d serving): lower canary.hosts", ErrSpread, n, rules.MinInService, rules.Serving)
	}
	// Hosts of a zone the canary took are not its last ones: the zone
	// counts of the others are the spread rules' business again.
	rest, err = SpreadBatches(others, rules)
	return cb[0], rest, err
}

// CanaryJudge compares the canary hosts with the baseline hosts on live
// traffic. Package fleet implements it over the load balancers' access
// logs.
type CanaryJudge interface {
	// Mark starts the window: only traffic after it counts.
	Mark(ctx context.Context) error
	// Judge judges the window since Mark, as it stands.
	Judge(ctx context.Context, canary, baseline []inventory.Host, window time.Duration) (CanaryVerdict, error)
}

// Canary verdicts.
const (
	CanaryPass         = "pass"
	CanaryFail         = "fail"
	CanaryInconclusive = "inconclusive"
)

// CanaryVerdict is a judge's answer.
type CanaryVerdict struct {
	// Result is CanaryPass, CanaryFail or CanaryInconclusive.
	Result string
	// Summary says why, with the figures: "5xx 7.9% (312 of 3,950) vs
	// baseline 0.0% (0 of 11,802) over 60 s".
	Summary string
	// Figures are the numbers, for --json and the history record.
	Figures any
}

// CanaryProgress is a bake's figures so far, or its verdict (Final).
type CanaryProgress struct {
	Verdict     CanaryVerdict
	Baked, Bake time.Duration
	Final       bool
}

// CanaryResult is what the canary stage found.
type CanaryResult struct {
	// Hosts are the canary hosts.
	Hosts []string
	// Verdict is the final verdict; its Result is CanaryFail for an
	// inconclusive one that counts as a fail.
	Verdict CanaryVerdict
	// Inconclusive is set when the final verdict was inconclusive (and
	// counted as Verdict.Result says).
	Inconclusive bool
	Baked        time.Duration
}

// String says in one line how the canary ended, with its figures ("" for
// none): "canary failed on host1: canary failed: 5xx 7.9% ...".
func (r *CanaryResult) String() string {
	if r == nil || r.Verdict.Result == "" {
		return ""
	}
	s := r.Verdict.Summary
	if r.Inconclusive {
		s = "inconclusive, counted as a " + r.Verdict.Result + ": " + s
	}
	return fmt.Sprintf("canary %s on %s: %s", map[string]string{CanaryPass: "passed", CanaryFail: "failed"}[r.Verdict.Result], strings.Join(r.Hosts, " "), s)
}

// Failed reports whether the canary's verdict stopped the rollout.
func (r *CanaryResult) Failed() bool { return r != nil && r.Verdict.Result == CanaryFail }

// DefaultCanaryTick is how often a bake reports its running figures.
const DefaultCanaryTick = 5 * time.Second

// bake runs the plan's canary stage once its batch serves: it marks the
// window, reports the running figures every canaryTick, and returns the
// verdict at the end of the bake (extended on an inconclusive one when the
// stage says so). The error is the reason the rollout stops: a failed
// verdict, or the judge failing.
func (e *Executor) bake(ctx context.Context, plan Plan, rep *Report) error {
	c := plan.Canary
	hosts := map[string]inventory.Host{}
	for _, b := range plan.Batches {
		for _, hp := range b.Hosts {
			hosts[hp.Host.Name] = hp.Host
		}
	}
	pick := func(names []string) []inventory.Host {
		out := make([]inventory.Host, 0, len(names))
		for _, n := range names {
			out = append(out, hosts[n])
		}
		return out
	}
	canary, baseline := pick(c.Hosts), pick(c.Baseline)
	res := &CanaryResult{Hosts: c.Hosts}
	rep.Canary = res
	if e.Canary == nil {
		return fmt.Errorf("canary: the plan has a canary stage and the executor no judge")
	}
	return e.step(CanaryStep, "bake", func() (string, error) {
		if err := e.Canary.Mark(ctx); err != nil {
			return "", fmt.Errorf("canary: starting the window: %w", err)
		}
		start := time.Now()
		limit := c.Bake
		if c.Inconclusive == InconclusiveExtend && c.MaxBake > limit {
			limit = c.MaxBake
		}
		every := c.Tick
		if every <= 0 {
			every = DefaultCanaryTick
		}
		tick := time.NewTicker(every)
		defer tick.Stop()
		end := time.NewTimer(c.Bake)
		defer end.Stop()
		for {
			final := false
			select {
			case <-ctx.Done():
				return "", fmt.Errorf("canary: interrupted while baking: %w", ctx.Err())
			case <-tick.C:
				if time.Since(start)+every/2 >= c.Bake {
					continue // the end of the bake reads next
				}
			case <-end.C:
				final = true
			}
			v, err := e.Canary.Judge(ctx, canary, baseline, time.Since(start))
			if err != nil && !final {
				// A read that failed mid-bake: the next one reads on from
				// where this one would have.
				e.emit(Event{Host: CanaryStep, Step: "bake", Stream: StreamFigures, Output: fmt.Sprintf("could not read the figures, baking on: %v", err)})
				continue
			}
			if err != nil {
				return "", fmt.Errorf("canary: judging: %w", err)
			}
			res.Verdict, res.Baked = v, time.Since(start)
			if !final {
				e.emit(Event{Host: CanaryStep, Step: "bake", Stream: StreamFigures, Output: fmt.Sprintf("so far %s: %s (%s of %s)", v.Result, v.Summary, res.Baked.Round(time.Second), c.Bake),
					Canary: &CanaryProgress{Verdict: v, Baked: res.Baked, Bake: c.Bake}})
				continue
			}
			if v.Result == CanaryInconclusive && c.Inconclusive == InconclusiveExtend && time.Since(start)+every <= limit {
				// Too little traffic yet: keep baking.
				e.emit(Event{Host: CanaryStep, Step: "bake", Stream: StreamFigures, Output: fmt.Sprintf("inconclusive, baking on (up to %s): %s", limit, v.Summary),
					Canary: &CanaryProgress{Verdict: v, Baked: res.Baked, Bake: limit}})
				end.Reset(every)
				continue
			}
			err = nil
			switch {
			case v.Result == CanaryPass:
			case v.Result == CanaryFail:
				err = canaryFailure(v.Summary)
			case c.Inconclusive == InconclusivePass:
				res.Inconclusive, res.Verdict.Result = true, CanaryPass
			default:
				res.Inconclusive, res.Verdict.Result = true, CanaryFail
				err = canaryFailure(fmt.Sprintf("inconclusive after %s, counted as a fail: %s", res.Baked.Round(time.Second), v.Summary))
			}
			e.emit(Event{Host: CanaryStep, Step: "bake", Stream: StreamFigures, Output: fmt.Sprintf("verdict %s: %s (baked %s)", res.Verdict.Result, v.Summary, res.Baked.Round(time.Second)),
				Canary: &CanaryProgress{Verdict: res.Verdict, Baked: res.Baked, Bake: c.Bake, Final: true}})
			if err != nil {
				return "", err
			}
			return v.Summary, nil
		}
	})
}

// canaryFailure is the error a failed canary stops the rollout with: the
// verdict's summary, which says "canary failed" (it is added when not).
func canaryFailure(summary string) error {
	if !strings.HasPrefix(summary, "canary") {
		summary = "canary failed: " + summary
	}
	return &canaryError{summary}
}

type canaryError struct{ summary string }

func (e *canaryError) Error() string { return e.summary }
func (e *canaryError) Unwrap() error { return ErrCanaryFailed }

// CanaryStep is the name the bake's events carry as their host.
const CanaryStep = "canary"

// ErrCanaryFailed is returned (wrapped) when the canary's verdict stops
// the rollout.
var ErrCanaryFailed = errors.New("canary failed")
