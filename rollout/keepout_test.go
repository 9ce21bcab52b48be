package rollout

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/internal/fakefleet"
)

// heldPlan plans a deploy of the fake fleet the way fleet.execute does,
// with the given hosts kept out of the load balancers.
func (f *testFleet) heldPlan(tag string, batch int, held ...string) Plan {
	snaps := f.snapshot()
	for i := range snaps {
		for _, h := range held {
			if snaps[i].Host.Name == h {
				snaps[i].Held = "in maintenance"
			}
		}
	}
	repairs, healed := PlanRepairs(snaps, "www", appPort)
	p := PlanDeploy(testTarget(tag), healed, batch)
	p.Repairs = repairs
	return p
}

// drain takes host out of every fake balancer, as maintenance on does.
func (f *testFleet) drain(host string) {
	for _, b := range f.Balancers {
		_ = b.Drain(context.Background(), "www", host)
	}
}

func TestPlanKeptOut(t *testing.T) {
	f := newFleet(3, "old1")
	f.drain("host2")
	p := f.heldPlan("new2", 1, "host2")
	checkText(t, "plan", p.String(), `deploy www@new2 (127.0.0.1:5000/gantry/www:new2): 3 host(s) in 3 batch(es)
pull first, on every host: host1 host2 host3
batch 1:
  host2: old1 -> new2: create, stop, start, health, cleanup (stays down in every load balancer: in maintenance)
batch 2:
  host1: old1 -> new2: create, drain, stop, start, health, restore, cleanup
batch 3:
  host3: old1 -> new2: create, drain, stop, start, health, restore, cleanup
`)
	// Up in one load balancer still (maintenance on cut off): drained by
	// a repair first, never put back.
	f = newFleet(2, "old1")
	_ = f.Balancer("lb1").Drain(context.Background(), "www", "host2")
	p = f.heldPlan("new2", 1, "host2")
	checkText(t, "repairs", RepairsString(p.Repairs), `repair host2 (up in some load balancer although it is to stay out):
  drain: it is to stay out (in maintenance)
`)
	if !strings.Contains(p.String(), "host2: old1 -> new2: create, stop, start, health, cleanup (stays down") {
		t.Errorf("after its repair host2 is not planned to stay out:\n%s", p)
	}
}

// TestPlanKeptOutServesNothing: a host kept out does not count as serving
// when batches are cut under min_in_service.
func TestPlanKeptOutServesNothing(t *testing.T) {
	f := newFleet(3, "old1")
	f.drain("host3")
	snaps := f.snapshot()
	snaps[2].Held = "in maintenance"
	// 2 hosts serve; min_in_service 2 leaves none to update.
	if _, err := PlanDeployWith(testTarget("new2"), snaps, SpreadRules{BatchSize: 1, MinInService: 2, Serving: 3}, Strategy{}); err == nil {
		t.Errorf("planned a deploy that takes a serving host out with 2 serving and min_in_service 2")
	}
	if _, err := PlanDeployWith(testTarget("new2"), snaps, SpreadRules{BatchSize: 1, MinInService: 1, Serving: 3}, Strategy{}); err != nil {
		t.Errorf("min_in_service 1: %v", err)
	}
}

func TestRunKeptOut(t *testing.T) {
	f := newFleet(3, "old1")
	f.drain("host2")
	rep := f.executor(time.Second).Run(context.Background(), f.heldPlan("new2", 1, "host2"))
	if !rep.OK() || rep.Err != nil {
		t.Fatalf("report not OK: %v\n%s", rep.Err, rep)
	}
	checkText(t, "fleet", f.State(), `host1: www=new2(running)
host2: www=new2(running)
host3: www=new2(running)
lb1 drained: [www/host2]
lb2 drained: [www/host2]
`)
	checkText(t, "outcomes", outcomes(rep), `host1 deployed new2 in-service=true
host2 deployed new2 in-service=false
host3 deployed new2 in-service=true
`)
	if s := rep.String(); !strings.Contains(s, "kept out of every load balancer: host2: in maintenance") || !strings.Contains(s, "no (kept out)") {
		t.Errorf("the report does not say host2 was kept out:\n%s", s)
	}
	if rep.RevertFailed() || rep.Outcome() != OutcomeSucceeded {
		t.Errorf("outcome %s, revert failed %v, want succeeded", rep.Outcome(), rep.RevertFailed())
	}
	checkNoViolations(t, f)
}

// TestRunKeptOutReverted: when another host fails, the host kept out is
// moved back like the others, and stays out.
func TestRunKeptOutReverted(t *testing.T) {
	f := newFleet(3, "old1")
	f.drain("host1")
	f.Host("host3").SetHealth(testImage+":new2", fakefleet.NeverHealthy)
	rep := f.executor(100*time.Millisecond).Run(context.Background(), f.heldPlan("new2", 1, "host1"))
	if rep.OK() {
		t.Fatalf("report OK with host3 unhealthy:\n%s", rep)
	}
	checkText(t, "fleet", f.State(), `host1: www=old1(running)
host2: www=old1(running)
host3: www=old1(running)
lb1 drained: [www/host1]
lb2 drained: [www/host1]
`)
	if rep.RevertFailed() {
		t.Errorf("the revert counts as failed:\n%s", rep)
	}
}

// TestRepairKeptOut: a cut-off swap on a host kept out is finished without
// putting the host back.
func TestRepairKeptOut(t *testing.T) {
	f := newFleet(2, "old1")
	f.cutAfterStart("host2", "old1", "new2")
	p := f.heldPlan("new2", 1, "host2")
	checkText(t, "repairs", RepairsString(p.Repairs), `repair host2 (leftover www-gantry-old):
  health new2 on port 8080: traffic only after the health check passes
  remove www-gantry-old (old1): a leftover of a cut-off run
  if the health check fails: drain, stop, remove, start, rename, health
`)
	rep := f.executor(time.Second).Run(context.Background(), p)
	if !rep.OK() {
		t.Fatalf("report not OK: %v\n%s", rep.Err, rep)
	}
	checkText(t, "fleet", f.State(), `host1: www=new2(running)
host2: www=new2(running)
lb1 drained: [www/host2]
lb2 drained: [www/host2]
`)
}

func TestHandDown(t *testing.T) {
	h := HostSnapshot{Entries: map[string]Entry{
		"lb2": {Down: true, ByHand: true},
		"lb1": {Down: true, ByHand: true},
		"lb3": {Down: true},
		"lb4": {},
	}}
	if got := strings.Join(HandDown(h), " "); got != "lb1 lb2" {
		t.Errorf("HandDown = %q, want lb1 lb2", got)
	}
}
