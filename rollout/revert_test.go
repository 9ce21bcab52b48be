package rollout

import (
	"context"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/internal/fakefleet"
	"github.com/gantry-dev/gantry/inventory"
)

// TestRunFailurePolicy: host2 fails its health check after host1 was
// already moved. With the default policy host1 goes back too, so the fleet
// ends on one version; with halt it stays on the new one.
func TestRunFailurePolicy(t *testing.T) {
	tests := []struct {
		policy   string
		fleet    string
		outcomes string
		ok       bool
	}{
		{
			policy: OnFailureRevert,
			fleet: `host1: www=old1(running)
host2: www=old1(running)
host3: www=old1(running)
lb1 drained: []
lb2 drained: []
`,
			outcomes: `host1 rolled-back old1 in-service=true
host2 failed-reverted old1 in-service=true
host3 not-started old1 in-service=true
`,
		},
		{
			policy: OnFailureHalt,
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
	}
	for _, tc := range tests {
		t.Run(tc.policy, func(t *testing.T) {
			f := newFleet(3, "old1")
			f.Host("host2").SetHealth(testImage+":new2", fakefleet.NeverHealthy)
			e := f.executor(100 * time.Millisecond)
			e.OnFailure = tc.policy
			rep := e.Run(context.Background(), f.plan("new2", 1))
			if rep.OK() {
				t.Fatal("report OK although host2 failed")
			}
			checkText(t, "fleet", f.State(), tc.fleet)
			checkText(t, "outcomes", outcomes(rep), tc.outcomes)
			// The version rolled back to comes from the host's own cache.
			if got := f.Host("host1").Pulls(); len(got) != 1 {
				t.Errorf("host1 pulled %v; the revert must use the cached image, not pull", got)
			}
			checkNoViolations(t, f)
		})
	}
}

// TestRunRevertFailureIsReported: when moving a host back fails too, the
// report says so distinctly, and the host still ends in every balancer.
func TestRunRevertFailureIsReported(t *testing.T) {
	f := newFleet(2, "old1")
	f.Host("host2").SetHealth(testImage+":new2", fakefleet.NeverHealthy)
	// The old version does not come back healthy on host1 either.
	f.Host("host1").SetHealth(testImage+":old1", fakefleet.NeverHealthy)
	e := f.executor(100 * time.Millisecond)
	rep := e.Run(context.Background(), f.plan("new2", 1))
	h1 := rep.host("host1")
	if h1.Outcome != "REVERT-FAILED" || h1.RevertErr == nil {
		t.Errorf("host1 outcome %s (revert error %v), want REVERT-FAILED", h1.Outcome, h1.RevertErr)
	}
	if !h1.InService {
		t.Errorf("host1 not back in the load balancers after a failed revert")
	}
	if h1.Ended != "new2" {
		t.Errorf("host1 ended on %q, want new2 (the version that was healthy there)", h1.Ended)
	}
	checkText(t, "balancers", f.State()[len(f.State())-len("lb1 drained: []\nlb2 drained: []\n"):], "lb1 drained: []\nlb2 drained: []\n")
}

// TestMovedBackHostKeepsItsHistory: a host moved back to old1 because
// another host failed records the previous version old1's container had
// (old0), not the version that failed: a rollback right after goes to
// old0.
func TestMovedBackHostKeepsItsHistory(t *testing.T) {
	f := newFleet(2, "old1")
	for _, h := range f.Hosts {
		h.Edit("www", func(c *fakefleet.Container) { c.Labels[inventory.LabelPreviousImage] = testImage + ":old0" })
	}
	f.Host("host2").SetHealth(testImage+":new1", fakefleet.NeverHealthy)
	e := f.executor(100 * time.Millisecond)
	rep := e.Run(context.Background(), f.plan("new1", 1))
	if rep.OK() || rep.RevertFailed() {
		t.Fatalf("want a failed deploy, put back: %v", rep.Err)
	}
	for _, h := range f.Hosts {
		c, _ := h.Container("www")
		if c.Labels[inventory.LabelVersion] != "old1" || c.Labels[inventory.LabelPreviousImage] != testImage+":old0" {
			t.Errorf("%s: www runs %s recording previous %q, want old1 recording %s:old0", h.Name(), c.Labels[inventory.LabelVersion], c.Labels[inventory.LabelPreviousImage], testImage)
		}
	}
}
