package rollout

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/inventory"
)

// fakeJudge answers verdicts from a script: one per call, the last one
// repeated.
type fakeJudge struct {
	mu       sync.Mutex
	verdicts []string
	marks    int
	calls    int
	canary   []string
	baseline []string
}

func (j *fakeJudge) Mark(context.Context) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.marks++
	return nil
}

func (j *fakeJudge) Judge(_ context.Context, canary, baseline []inventory.Host, window time.Duration) (CanaryVerdict, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.canary, j.baseline = nil, nil
	for _, h := range canary {
		j.canary = append(j.canary, h.Name)
	}
	for _, h := range baseline {
		j.baseline = append(j.baseline, h.Name)
	}
	v := j.verdicts[min(j.calls, len(j.verdicts)-1)]
	j.calls++
	return CanaryVerdict{Result: v, Summary: "5xx 7.9% (312 of 3,950) vs baseline 0.0% (0 of 11,802)"}, nil
}

func TestCanaryPlanSpreadsOverZones(t *testing.T) {
	var snaps []HostSnapshot
	for i, z := range []string{"a", "a", "a", "b", "b", "b"} {
		c := inventory.Container{Name: "www", Image: testImage + ":old1", Running: true, Labels: map[string]string{inventory.LabelVersion: "old1", inventory.LabelImage: testImage + ":old1"}}
		snaps = append(snaps, HostSnapshot{Host: inventory.Host{Name: "host" + string(rune('1'+i)), Address: "10.0.0.1", Zone: z}, Current: &c})
	}
	p, err := PlanDeployWith(testTarget("new2"), snaps, SpreadRules{BatchSize: 2, Serving: 6, Canary: 2}, Strategy{})
	if err != nil {
		t.Fatal(err)
	}
	p.Canary.Bake = time.Minute
	p.Canary.Inconclusive = InconclusiveFail
	checkText(t, "plan", p.String(), `deploy www@new2 (127.0.0.1:5000/gantry/www:new2): 6 host(s) in 3 batch(es)
pull first, on every host: host1 host2 host3 host4 host5 host6
canary: host1 host4 first (batch 1), back into rotation, then bake 1m0s against the baseline host2 host5 host3 host6; too little traffic: fail
batch 1 (canary):
  host1 [a]: old1 -> new2: create, drain, stop, start, health, restore, cleanup
  host4 [b]: old1 -> new2: create, drain, stop, start, health, restore, cleanup
batch 2:
  host2 [a]: old1 -> new2: create, drain, stop, start, health, restore, cleanup
  host5 [b]: old1 -> new2: create, drain, stop, start, health, restore, cleanup
batch 3:
  host3 [a]: old1 -> new2: create, drain, stop, start, health, restore, cleanup
  host6 [b]: old1 -> new2: create, drain, stop, start, health, restore, cleanup
`)
	// A canary as large as what is left to move would have no baseline:
	// no stage, and the plan says why (a deploy resumed after its canary
	// passed; a redeploy with nothing to move says nothing).
	all, err := PlanDeployWith(testTarget("new2"), snaps, SpreadRules{BatchSize: 2, Serving: 6, Canary: 6}, Strategy{})
	if err != nil || all.Canary != nil || len(all.Notes) != 1 || !strings.Contains(all.Notes[0], "no canary stage: 6 serving host(s) left to move") {
		t.Errorf("a canary of every host: %v, canary %v, notes %q; want no stage and a note", err, all.Canary, all.Notes)
	}
	for i := range snaps {
		snaps[i].Current.Labels[inventory.LabelImage] = testImage + ":new2"
	}
	none, err := PlanDeployWith(testTarget("new2"), snaps, SpreadRules{BatchSize: 2, Serving: 6, Canary: 1}, Strategy{})
	if err != nil || none.Canary != nil || len(none.Notes) != 0 || len(none.Batches) != 0 {
		t.Errorf("nothing to move: %v, canary %v, notes %q, %d batches; want a no-op", err, none.Canary, none.Notes, len(none.Batches))
	}
}

// TestCanaryVerdictDecidesTheRollout: a passing canary lets the rollout go
// on; a failing one (or an inconclusive one counted as a fail) moves the
// canary hosts back and no other host is touched; inconclusive-as-pass
// goes on; extend keeps baking until a conclusive verdict.
func TestCanaryVerdictDecidesTheRollout(t *testing.T) {
	tests := []struct {
		name         string
		verdicts     []string
		inconclusive string
		ok           bool
		fleet        string
		err          string
	}{
		{"pass", []string{CanaryPass}, InconclusiveFail, true, "host1: www=new2(running)\nhost2: www=new2(running)\nhost3: www=new2(running)\n", ""},
		{"fail", []string{CanaryFail}, InconclusiveFail, false, "host1: www=old1(running)\nhost2: www=old1(running)\nhost3: www=old1(running)\n", "canary failed: 5xx 7.9% (312 of 3,950) vs baseline 0.0% (0 of 11,802)"},
		{"inconclusive counted as fail", []string{CanaryInconclusive}, InconclusiveFail, false, "host1: www=old1(running)\nhost2: www=old1(running)\nhost3: www=old1(running)\n", "inconclusive"},
		{"inconclusive counted as pass", []string{CanaryInconclusive}, InconclusivePass, true, "host1: www=new2(running)\nhost2: www=new2(running)\nhost3: www=new2(running)\n", ""},
		{"extend until it fails", []string{CanaryInconclusive, CanaryInconclusive, CanaryInconclusive, CanaryInconclusive, CanaryFail}, InconclusiveExtend, false, "host1: www=old1(running)\nhost2: www=old1(running)\nhost3: www=old1(running)\n", "canary failed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFleet(3, "old1")
			e := f.executor(time.Second)
			j := &fakeJudge{verdicts: tc.verdicts}
			e.Canary = j
			var hs []HostSnapshot
			for _, h := range f.Hosts {
				c, _, _ := h.Inspect(context.Background(), "www")
				hs = append(hs, HostSnapshot{Host: f.InventoryHost(h), Current: &c})
			}
			plan, err := PlanDeployWith(testTarget("new2"), hs, SpreadRules{BatchSize: 1, Serving: 3, Canary: 1}, Strategy{})
			if err != nil {
				t.Fatal(err)
			}
			plan.Canary.Bake, plan.Canary.Tick, plan.Canary.Inconclusive, plan.Canary.MaxBake = 20*time.Millisecond, 5*time.Millisecond, tc.inconclusive, time.Second
			rep := e.Run(context.Background(), plan)
			if rep.OK() != tc.ok {
				t.Fatalf("OK=%v, want %v: %v\n%s", rep.OK(), tc.ok, rep.Err, rep)
			}
			checkText(t, "fleet", f.State(), tc.fleet+"lb1 drained: []\nlb2 drained: []\n")
			if tc.err != "" && !strings.Contains(rep.Err.Error(), tc.err) {
				t.Errorf("error %q does not say %q", rep.Err, tc.err)
			}
			if j.marks != 1 || strings.Join(j.canary, " ") != "host1" || strings.Join(j.baseline, " ") != "host2 host3" {
				t.Errorf("judge marked %d time(s), judged canary %v against baseline %v; want 1, [host1], [host2 host3]", j.marks, j.canary, j.baseline)
			}
			if rep.Canary == nil || (tc.ok && rep.Canary.Verdict.Result != CanaryPass) || (!tc.ok && rep.Canary.Verdict.Result != CanaryFail) {
				t.Errorf("report's canary %+v", rep.Canary)
			}
			if !tc.ok {
				if got := rep.Outcome(); got != OutcomeReverted {
					t.Errorf("outcome %s, want %s", got, OutcomeReverted)
				}
				// History and webhooks say why, and name the canary host.
				if got := strings.Join(rep.FailedHosts(), " "); got != "host1" || !strings.HasPrefix(rep.Canary.String(), "canary failed on host1: ") {
					t.Errorf("failed hosts %q, canary %q", got, rep.Canary.String())
				}
				for _, h := range rep.Hosts[1:] {
					if h.Outcome != HostNotStarted {
						t.Errorf("%s: %s, want not-started: only the canary moves before the verdict", h.Host, h.Outcome)
					}
				}
			}
		})
	}
}

// TestFailedCanaryGoesBackUnderHalt: on_failure: halt leaves hosts a failed
// batch moved where they are, but a failed canary goes back as a failed
// health check would: it must not keep serving.
func TestFailedCanaryGoesBackUnderHalt(t *testing.T) {
	f := newFleet(3, "old1")
	e := f.executor(time.Second)
	e.OnFailure = OnFailureHalt
	e.Canary = &fakeJudge{verdicts: []string{CanaryFail}}
	plan, err := PlanDeployWith(testTarget("new2"), f.snapshot(), SpreadRules{BatchSize: 1, Serving: 3, Canary: 1}, Strategy{})
	if err != nil {
		t.Fatal(err)
	}
	plan.Canary.Bake, plan.Canary.Tick = 20*time.Millisecond, 5*time.Millisecond
	rep := e.Run(context.Background(), plan)
	checkText(t, "fleet", f.State(), "host1: www=old1(running)\nhost2: www=old1(running)\nhost3: www=old1(running)\nlb1 drained: []\nlb2 drained: []\n")
	if rep.Outcome() != OutcomeReverted {
		t.Errorf("outcome %s, want reverted", rep.Outcome())
	}
}
