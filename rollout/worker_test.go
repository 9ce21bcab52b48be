package rollout

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/internal/fakefleet"
)

// workerFleet is a fleet of 3 hosts running a worker: no load balancer,
// health by running.
func workerFleet(t *testing.T) (*testFleet, *Executor) {
	t.Helper()
	f := newFleet(3, "old1")
	f.Balancers = nil
	e := f.executor(300 * time.Millisecond)
	e.Service.Port = 0
	e.Service.Health = HealthCheck{Kind: HealthRunning, MinRunning: 20 * time.Millisecond, Interval: 2 * time.Millisecond, Timeout: 50 * time.Millisecond, Threshold: 2, Deadline: 300 * time.Millisecond}
	return f, e
}

// TestWorkerDeploy: a worker moves host by host with no drain, restore or
// switch, stop-first (the old worker finishes its job before the new one
// starts) or start-first (the new one runs before the old one stops), and
// the plan says exactly the steps the executor takes.
func TestWorkerDeploy(t *testing.T) {
	for _, startFirst := range []bool{false, true} {
		name := map[bool]string{false: "stop-first", true: "start-first"}[startFirst]
		t.Run(name, func(t *testing.T) {
			f, e := workerFleet(t)
			plan := f.planWith("new1", 1, Strategy{Worker: true, StartFirst: startFirst})
			var steps []string
			e.Observe = func(ev Event) {
				if ev.Done && ev.Host == "host1" && ev.Step != "pull" { // pulls are the plan's first phase
					steps = append(steps, ev.Step)
				}
			}
			rep := e.Run(context.Background(), plan)
			if !rep.OK() {
				t.Fatalf("worker deploy failed: %v\n%s", rep.Err, rep)
			}
			var planned []string
			for _, s := range plan.Batches[0].Hosts[0].Steps {
				planned = append(planned, string(s.Kind))
			}
			if strings.Join(steps, ",") != strings.Join(planned, ",") {
				t.Errorf("host1 ran %v, the plan says %v", steps, planned)
			}
			for _, s := range steps {
				if balancerSteps[StepKind(s)] {
					t.Errorf("a worker ran load balancer step %s", s)
				}
			}
			checkText(t, "fleet", f.State(), "host1: www=new1(running)\nhost2: www=new1(running)\nhost3: www=new1(running)\n")
			checkText(t, "outcomes", outcomes(rep), "host1 deployed new1 in-service=true\nhost2 deployed new1 in-service=true\nhost3 deployed new1 in-service=true\n")
		})
	}
}

// TestWorkerCrashingVersionReverts: a worker version that exits soon
// after it starts fails its running check and every host is put back on
// the old one, running.
func TestWorkerCrashingVersionReverts(t *testing.T) {
	f, e := workerFleet(t)
	for _, h := range f.Hosts {
		h.Before = func(_ context.Context, op, _ string) error {
			if op == fakefleet.OpInspect {
				h.Crash(testImage+":new1", 1)
			}
			return nil
		}
	}
	rep := e.Run(context.Background(), f.planWith("new1", 1, Strategy{Worker: true}))
	if rep.OK() || rep.RevertFailed() {
		t.Fatalf("want a failed deploy with a clean revert: %v\n%s", rep.Err, rep)
	}
	checkText(t, "fleet", f.State(), "host1: www=old1(running)\nhost2: www=old1(running)\nhost3: www=old1(running)\n")
}
