package rollout

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/internal/fakefleet"
	"github.com/gantry-dev/gantry/inventory"
)

// stepLog records, per host, the steps the executor ran (their end events,
// pulls aside: they are the plan's first phase, not a host's step).
type stepLog struct {
	mu    sync.Mutex
	steps map[string][]StepKind
}

func (l *stepLog) observe(ev Event) {
	if !ev.Done || ev.Stream != "" || ev.Step == "pull" {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.steps == nil {
		l.steps = map[string][]StepKind{}
	}
	l.steps[ev.Host] = append(l.steps[ev.Host], StepKind(ev.Step))
}

func kinds(steps []Step) []StepKind {
	out := make([]StepKind, len(steps))
	for i, s := range steps {
		out[i] = s.Kind
	}
	return out
}

// reactions are the steps the executor adds to a plan: only to undo a
// failed move.
var reactions = map[StepKind]bool{"revert": true, StepRestore: true, StepSwitch: true, StepDrain: true}

// TestExecutedStepsAreThePlannedSteps: for every scenario of the fake
// fleet, each host runs exactly the steps its plan lists, in order; a host
// whose step failed ran a prefix of them, ending with the failed one, then
// only the executor's reactions (revert, and the load balancer steps that
// put it back); a host moved back after another failed then ran exactly
// the steps RevertPlan lists for it.
func TestExecutedStepsAreThePlannedSteps(t *testing.T) {
	worker := func(startFirst bool) func(f *testFleet, e *Executor) Strategy {
		return func(f *testFleet, e *Executor) Strategy {
			f.Balancers, e.Balancers = nil, nil
			e.Service.Health = HealthCheck{Kind: HealthRunning, MinRunning: 5 * time.Millisecond, Interval: 2 * time.Millisecond, Timeout: 50 * time.Millisecond, Threshold: 2, Deadline: 200 * time.Millisecond}
			return Strategy{Worker: true, StartFirst: startFirst}
		}
	}
	stopFirst := func(*testFleet, *Executor) Strategy { return Strategy{Port: appPort} }
	startFirstOn := func(*testFleet, *Executor) Strategy { return startFirst }
	tests := []struct {
		name  string
		from  string // what the hosts run before ("" nothing)
		setup func(f *testFleet, e *Executor) Strategy
		ok    bool
	}{
		{"stop-first", "old1", stopFirst, true},
		{"stop-first onto empty hosts", "", stopFirst, true},
		{"start-first", "old1", startFirstOn, true},
		{"start-first onto empty hosts", "", startFirstOn, true},
		{"worker stop-first", "old1", worker(false), true},
		{"worker start-first", "old1", worker(true), true},
		{"host in maintenance", "old1", func(f *testFleet, e *Executor) Strategy {
			f.held = map[string]string{"host2": "in maintenance"}
			return Strategy{Port: appPort}
		}, true},
		{"back to stop-first from the other port", "old1", func(f *testFleet, e *Executor) Strategy {
			h := f.Host("host1")
			h.Edit("www", func(c *fakefleet.Container) { c.Labels[inventory.LabelPort] = fmt.Sprint(appPort + 1) })
			for _, l := range f.Balancers {
				l.SetAddr("www", "host1", h.Address()+":"+fmt.Sprint(appPort+1))
			}
			return Strategy{Port: appPort}
		}, true},
		{"unhealthy version, stop-first", "old1", func(f *testFleet, e *Executor) Strategy {
			f.Host("host3").SetHealth(testImage+":new2", fakefleet.NeverHealthy)
			return Strategy{Port: appPort}
		}, false},
		{"unhealthy version, start-first", "old1", func(f *testFleet, e *Executor) Strategy {
			f.Host("host3").SetHealth(testImage+":new2", fakefleet.NeverHealthy)
			return startFirst
		}, false},
		{"failed stop", "old1", func(f *testFleet, e *Executor) Strategy {
			f.Host("host2").Fail(fakefleet.OpStop, errors.New("docker daemon hiccup"))
			return Strategy{Port: appPort}
		}, false},
		{"failed drain", "old1", func(f *testFleet, e *Executor) Strategy {
			f.Balancers[1].FailDrain("host2", true)
			return Strategy{Port: appPort}
		}, false},
		{"failed switch", "old1", func(f *testFleet, e *Executor) Strategy {
			f.Balancers[1].FailSwitch("host2", "10.0.0.2:8081", true)
			return startFirst
		}, false},
		{"crashing worker", "old1", func(f *testFleet, e *Executor) Strategy {
			for _, h := range f.Hosts {
				h.Before = func(_ context.Context, op, _ string) error {
					if op == fakefleet.OpInspect {
						h.Crash(testImage+":new2", 1)
					}
					return nil
				}
			}
			return worker(false)(f, e)
		}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFleet(4, tc.from)
			e := f.executor(200 * time.Millisecond)
			s := tc.setup(f, e)
			if s.Worker {
				e.Service.Port = 0
			}
			var log stepLog
			e.Observe = log.observe
			plan := f.planWith("new2", 1, s)
			rep := e.Run(context.Background(), plan)
			if rep.OK() != tc.ok {
				t.Fatalf("deploy OK=%v, want %v: %v\n%s", rep.OK(), tc.ok, rep.Err, rep)
			}
			// The revert was planned from the results as they were when a
			// host failed: the hosts moved back were deployed then.
			then := newReport(plan)
			for _, h := range rep.Hosts {
				r := *h
				if r.Outcome == HostMovedBack {
					r.Outcome = HostDeployed
				}
				*then.byName[h.Host] = r
			}
			back := map[string]HostPlan{}
			for _, b := range RevertPlan(plan, then).Batches {
				for _, hp := range b.Hosts {
					back[hp.Host.Name] = hp
				}
			}
			repairs := map[string][]StepKind{}
			for _, r := range plan.Repairs {
				for _, s := range r.Steps {
					repairs[r.Host.Name] = append(repairs[r.Host.Name], s.Kind)
				}
			}
			for _, b := range plan.Batches {
				for _, hp := range b.Hosts {
					ran := log.steps[hp.Host.Name]
					if r := repairs[hp.Host.Name]; len(r) > 0 {
						if !slices.Equal(ran[:min(len(r), len(ran))], r) {
							t.Errorf("%s: ran %v, its repair says %v first", hp.Host.Name, ran, r)
						}
						ran = ran[min(len(r), len(ran)):]
					}
					checkRanPlan(t, hp, rep.host(hp.Host.Name), !rep.OK(), back, ran)
				}
			}
			for _, hp := range plan.Skipped {
				if got := log.steps[hp.Host.Name]; len(got) > 0 {
					t.Errorf("%s: skipped in the plan, ran %v", hp.Host.Name, got)
				}
			}
			if !s.Worker {
				// The fake takes two workers on one host (no port) for two
				// apps on one port.
				checkNoViolations(t, f)
			}
		})
	}
}

// checkRanPlan checks that host hp.Host ran what its plan says (see
// TestExecutedStepsAreThePlannedSteps).
func checkRanPlan(t *testing.T, hp HostPlan, res *HostResult, reverted bool, back map[string]HostPlan, ran []StepKind) {
	t.Helper()
	planned := kinds(hp.Steps)
	name := hp.Host.Name
	show := func() string {
		return fmt.Sprintf("%s ran  %v\n  plan says %v", name, ran, planned)
	}
	switch {
	case !res.Started():
		if len(ran) > 0 {
			t.Errorf("never started, yet %s", show())
		}
	case res.Outcome == HostDeployed || res.Outcome == HostMovedBack:
		if !slices.Equal(ran[:min(len(ran), len(planned))], planned) {
			t.Errorf("%s", show())
		}
		rest := ran[min(len(ran), len(planned)):]
		if bp, moved := back[name]; reverted && moved {
			if !slices.Equal(rest, kinds(bp.Steps)) {
				t.Errorf("moved back: ran %v after its plan, the revert plan says %v", rest, kinds(bp.Steps))
			}
		} else if len(rest) > 0 {
			t.Errorf("ran %v after its plan: %s", rest, show())
		}
	default: // failed
		i := 0
		for i < len(ran) && i < len(planned) && ran[i] == planned[i] && !(i > 0 && ran[i-1] != planned[i-1]) {
			i++
		}
		// The failed step is the last planned one that ran; what follows
		// is reactions only.
		if i == 0 {
			t.Errorf("failed without running its first step: %s", show())
		}
		for _, k := range ran[i:] {
			if !reactions[k] {
				t.Errorf("ran %s, neither planned there nor a reaction: %s", k, show())
			}
		}
		if !slices.Contains(ran[i:], "revert") && !strings.Contains(fmt.Sprint(res.Err), "restore") && !strings.Contains(fmt.Sprint(res.Err), "switch") {
			t.Errorf("failed with no revert step: %v: %s", res.Err, show())
		}
	}
}
