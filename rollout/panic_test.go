package rollout

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/internal/fakefleet"
	"github.com/gantry-dev/gantry/internal/panics"
)

// panicOnce makes host panic the first time op runs on image.
func panicOnce(h *fakefleet.Host, op, image string) {
	done := false
	h.Before = func(_ context.Context, o, img string) error {
		if o == op && img == image && !done {
			done = true
			panic("adapter bug: nil pointer in " + op)
		}
		return nil
	}
}

// A panic in one host's work (here: the Docker adapter's start) fails that
// host, which is put back like after any other failure; the run ends with
// a report and the other hosts are handled as for a failed host.
func TestRunPanicInAHostFailsThatHost(t *testing.T) {
	tests := []struct {
		name      string
		onFailure string
		order     *Strategy
		fleet     string
		outcomes  string
	}{
		{
			name: "stop-first, revert", onFailure: OnFailureRevert,
			fleet: `host1: www=old1(running)
host2: www=old1(running)
host3: www=old1(running)
lb1 drained: []
lb2 drained: []
`,
			// host1 (same batch) was deployed, then moved back.
			outcomes: `host1 rolled-back old1 in-service=true
host2 failed-reverted old1 in-service=true
host3 not-started old1 in-service=true
`,
		},
		{
			name: "stop-first, halt", onFailure: OnFailureHalt,
			fleet: `host1: www=new2(running)
host2: www=old1(running)
host3: www=old1(running)
lb1 drained: []
lb2 drained: []
`,
			outcomes: `host1 deployed new2 in-service=true
host2 failed-reverted old1 in-service=true
host3 not-started old1 in-service=true
`,
		},
		{
			name: "start-first, revert", onFailure: OnFailureRevert, order: &startFirst,
			fleet: `host1: www=old1(running)
host2: www=old1(running)
host3: www=old1(running)
lb1 drained: []
lb2 drained: []
`,
			outcomes: `host1 rolled-back old1 in-service=true
host2 failed old1 in-service=true
host3 not-started old1 in-service=true
`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFleet(3, "old1")
			panicOnce(f.Host("host2"), "start", testImage+":new2")
			plan := f.plan("new2", 2)
			if tc.order != nil {
				plan = f.planWith("new2", 2, *tc.order)
			}
			e := f.executor(time.Second)
			e.OnFailure = tc.onFailure

			var rep *Report
			if err := panics.Catch(func() error { rep = e.Run(context.Background(), plan); return nil }); err != nil {
				t.Fatalf("a panic escaped the run: %v", err)
			}

			if rep.OK() || rep.Err == nil {
				t.Fatalf("report OK after a panic on host2:\n%s", rep)
			}
			if !panics.Is(rep.Err) {
				t.Errorf("report error does not wrap the recovered panic: %v", rep.Err)
			}
			for _, w := range []string{"host2", "start on host2", "panic: adapter bug: nil pointer in start", "panic_test.go:"} {
				if !strings.Contains(rep.Err.Error(), w) {
					t.Errorf("report error does not mention %q:\n%v", w, rep.Err)
				}
			}
			checkText(t, "fleet", f.State(), tc.fleet)
			checkText(t, "outcomes", outcomes(rep), tc.outcomes)
			if tc.order != nil {
				// Every balancer points at the old container's port again.
				checkText(t, "entries", entries(f), `lb1: host1=10.0.0.1:8080 host2=10.0.0.2:8080 host3=10.0.0.3:8080
lb2: host1=10.0.0.1:8080 host2=10.0.0.2:8080 host3=10.0.0.3:8080
`)
			}
			checkNoViolations(t, f)
		})
	}
}

// A panic in one balancer's drain fails the host's drain: the host is not
// touched and stays in every balancer.
func TestRunPanicInABalancerFailsTheDrain(t *testing.T) {
	f := newFleet(2, "old1")
	f.Balancer("lb2").Before = func(_ context.Context, op, _, host string) error {
		if op == fakefleet.OpDrain && host == "host1" {
			panic(errors.New("balancer bug"))
		}
		return nil
	}
	var rep *Report
	if err := panics.Catch(func() error {
		rep = f.executor(time.Second).Run(context.Background(), f.plan("new2", 1))
		return nil
	}); err != nil {
		t.Fatalf("a panic escaped the run: %v", err)
	}
	if rep.OK() {
		t.Fatal("report OK after a panic in a drain")
	}
	for _, w := range []string{"host1", "drain", "lb2", "panic: balancer bug"} {
		if !strings.Contains(rep.Err.Error(), w) {
			t.Errorf("report error does not mention %q: %v", w, rep.Err)
		}
	}
	checkText(t, "fleet", f.State(), `host1: www=old1(running)
host2: www=old1(running)
lb1 drained: []
lb2 drained: []
`)
	checkText(t, "outcomes", outcomes(rep), `host1 failed old1 in-service=true
host2 not-started old1 in-service=true
`)
	checkNoViolations(t, f)
}

// A panic while pulling is that host's pull failure: nothing changes.
func TestRunPanicInAPullChangesNothing(t *testing.T) {
	f := newFleet(2, "old1")
	panicOnce(f.Host("host2"), "pull", testImage+":new2")
	var rep *Report
	if err := panics.Catch(func() error {
		rep = f.executor(time.Second).Run(context.Background(), f.plan("new2", 1))
		return nil
	}); err != nil {
		t.Fatalf("a panic escaped the run: %v", err)
	}
	if rep.OK() || !strings.Contains(rep.Err.Error(), "host2: pull: pull on host2: panic: adapter bug") {
		t.Fatalf("report error: %v", rep.Err)
	}
	if strings.Join(rep.PullFailed, ",") != "host2" {
		t.Errorf("pull failed on %v, want [host2]", rep.PullFailed)
	}
	checkText(t, "fleet", f.State(), `host1: www=old1(running)
host2: www=old1(running)
lb1 drained: []
lb2 drained: []
`)
}

// A panicking progress observer costs a warning, not the deploy.
func TestRunPanicInTheObserverIsAWarning(t *testing.T) {
	f := newFleet(2, "old1")
	e := f.executor(time.Second)
	e.Observe = func(ev Event) {
		if ev.Host == "host1" && ev.Step == "health" && ev.Done {
			panic("printer bug")
		}
	}
	rep := e.Run(context.Background(), f.plan("new2", 1))
	if !rep.OK() {
		t.Fatalf("report not OK: %v", rep.Err)
	}
	if w := strings.Join(rep.host("host1").Warnings, "; "); !strings.Contains(w, "progress observer: panic: printer bug") {
		t.Errorf("host1 warnings %q do not mention the observer's panic", w)
	}
}

// A panic that escapes every step (a bug in the executor itself) still
// ends in a failed host, not a crash.
func TestGuardHostTurnsAnEscapedPanicIntoTheHostsFailure(t *testing.T) {
	var res HostResult
	res.InService = true
	err := guardHost("host7", &res, func() { panic("executor bug") })
	if err == nil || res.Err == nil || !panics.Is(res.Err) {
		t.Fatalf("guardHost = %v, res.Err = %v: want the recovered panic", err, res.Err)
	}
	if !strings.Contains(res.Err.Error(), "host7: panic: executor bug") {
		t.Errorf("error %q does not name the host and the panic", res.Err)
	}
	if res.InService || !res.Started() {
		t.Errorf("InService=%v Started=%v: a host in an unknown state is not reported serving", res.InService, res.Started())
	}
	if err := guardHost("host7", &HostResult{}, func() {}); err != nil {
		t.Errorf("guardHost without a panic = %v", err)
	}
}
