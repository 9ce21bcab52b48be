package rollout

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/internal/fakefleet"
	"github.com/gantry-dev/gantry/inventory"
)

// cutAfterStart leaves host as a stop-first swap killed after starting the
// new version: the new container runs under the service's name, the old
// one is stopped and renamed, the host is drained from every balancer.
func (f *testFleet) cutAfterStart(host, from, to string) {
	h := f.Host(host)
	h.Edit("www", func(c *fakefleet.Container) { c.Name, c.Running = "www-gantry-old", false })
	img := testImage + ":" + to
	h.AddImage(img)
	h.Put(fakefleet.Container{ID: "cut-new", Name: "www", Image: img, Running: true, Labels: map[string]string{
		inventory.LabelManaged: "true", inventory.LabelService: "www", inventory.LabelVersion: to,
		inventory.LabelImage: img, inventory.LabelPreviousImage: testImage + ":" + from,
	}})
	for _, b := range f.Balancers {
		_ = b.Drain(context.Background(), "www", host)
	}
}

func TestRepairFinishesAStopFirstSwapCutAfterStart(t *testing.T) {
	f := newFleet(3, "old1")
	f.cutAfterStart("host2", "old1", "new2")
	p := f.plan("new2", 1)
	checkText(t, "repairs", RepairsString(p.Repairs), `repair host2 (out of some load balancer; leftover www-gantry-old):
  health new2 on port 8080: traffic only after the health check passes
  restore on port 8080: back into every load balancer
  remove www-gantry-old (old1): a leftover of a cut-off run
  if the health check fails: drain, stop, remove, start, rename, health, switch
`)
	rep := f.executor(time.Second).Run(context.Background(), p)
	if !rep.OK() {
		t.Fatalf("report not OK: %v\n%s", rep.Err, rep)
	}
	checkText(t, "fleet", f.State(), `host1: www=new2(running)
host2: www=new2(running)
host3: www=new2(running)
lb1 drained: []
lb2 drained: []
`)
	if !strings.Contains(rep.String(), "repaired host2:") {
		t.Errorf("report does not say host2 was repaired:\n%s", rep)
	}
	checkNoViolations(t, f)
}

func TestRepairGoesBackWhenTheCutOffVersionIsUnhealthy(t *testing.T) {
	f := newFleet(2, "old1")
	f.setHealth("new2", fakefleet.NeverHealthy)
	f.cutAfterStart("host1", "old1", "new2")
	rep := f.executor(100*time.Millisecond).Run(context.Background(), f.plan("new2", 1))
	if rep.OK() || rep.Err == nil {
		t.Fatalf("report OK with an unhealthy cut-off version:\n%s", rep)
	}
	checkText(t, "fleet", f.State(), `host1: www=old1(running)
host2: www=old1(running)
lb1 drained: []
lb2 drained: []
`)
	if rep.RevertFailed() {
		t.Errorf("going back to old1 counts as failed:\n%s", rep)
	}
}

func TestRepairRestoresAHostLeftDrainedOnTheTarget(t *testing.T) {
	f := newFleet(2, "new2")
	_ = f.Balancer("lb2").Drain(context.Background(), "www", "host1")
	p := f.plan("new2", 1)
	if len(p.Batches) != 0 || len(p.Repairs) != 1 {
		t.Fatalf("want one repair and no batch, got:\n%s", p)
	}
	rep := f.executor(time.Second).Run(context.Background(), p)
	if !rep.OK() {
		t.Fatalf("report not OK: %v\n%s", rep.Err, rep)
	}
	checkText(t, "fleet", f.State(), `host1: www=new2(running)
host2: www=new2(running)
lb1 drained: []
lb2 drained: []
`)
}

func TestRepairFinishesAStartFirstSwitchCutHalfway(t *testing.T) {
	f := newFleet(2, "old1")
	h := f.Host("host1")
	img := testImage + ":new2"
	h.AddImage(img)
	h.Put(fakefleet.Container{ID: "cut-new", Name: "www-gantry-new", Image: img, Running: true, Labels: map[string]string{
		inventory.LabelManaged: "true", inventory.LabelService: "www", inventory.LabelVersion: "new2",
		inventory.LabelImage: img, inventory.LabelPort: "8081",
	}})
	_ = f.Balancer("lb1").Switch(context.Background(), "www", "host1", "10.0.0.1:8081")
	p := f.plan("new2", 1)
	rep := f.executor(time.Second).Run(context.Background(), p)
	if !rep.OK() {
		t.Fatalf("report not OK: %v\n%s", rep.Err, rep)
	}
	checkText(t, "fleet", f.State(), `host1: www=new2(running)
host2: www=new2(running)
lb1 drained: []
lb2 drained: []
`)
	for _, b := range f.Balancers {
		if got := b.AddrOf("www", "host1", "10.0.0.1"); got != "10.0.0.1:8081" {
			t.Errorf("%s sends host1's requests to %s, want the new container's port 8081", b.LoadBalancerName(), got)
		}
	}
}

func TestFailedFirstDeployLeavesAnEmptyHostOut(t *testing.T) {
	f := newFleet(2, "")
	f.setHealth("new2", fakefleet.NeverHealthy)
	rep := f.executor(100*time.Millisecond).Run(context.Background(), f.plan("new2", 1))
	if !rep.RevertFailed() {
		t.Fatalf("a host with nothing healthy counts as serving:\n%s", rep)
	}
	if !f.Balancer("lb1").IsDrained("www", "host1") || !f.Balancer("lb2").IsDrained("www", "host1") {
		t.Errorf("host1 runs nothing healthy but is back in a load balancer:\n%s", f.State())
	}
}

// TestRepairPutsBackAStopFirstSwapCutBeforeTheNewOneStarted: stop-first
// sets the old container aside (renamed -gantry-old, serving on) and
// creates the new one under the service's name before the drain. A run
// killed after any of those calls, or in the drain, or after the stop,
// leaves states the next run repairs by giving the old container its name
// back (the new one, never started, goes), checking it and putting it
// back; the deploy then goes on.
func TestRepairPutsBackAStopFirstSwapCutBeforeTheNewOneStarted(t *testing.T) {
	// createdAfter creates the new container as replacing previous (a
	// deploy's says the old one; a revert's move back says the version
	// before that).
	createdAfter := func(previous string) func(f *testFleet) {
		return func(f *testFleet) {
			img := testImage + ":new2"
			f.Host("host2").AddImage(img)
			f.Host("host2").Put(fakefleet.Container{ID: "cut-new", Name: "www", Image: img, Labels: map[string]string{
				inventory.LabelManaged: "true", inventory.LabelService: "www", inventory.LabelVersion: "new2",
				inventory.LabelImage: img, inventory.LabelPreviousImage: testImage + ":" + previous,
			}})
		}
	}
	created := createdAfter("old1")
	drained := func(f *testFleet) {
		for _, b := range f.Balancers {
			_ = b.Drain(context.Background(), "www", "host2")
		}
	}
	for _, tc := range []struct {
		name    string
		cut     func(f *testFleet)
		repairs string
	}{
		{"old one set aside", func(f *testFleet) {}, `repair host2 (www-gantry-old is what served before a cut-off swap):
  rename www-gantry-old to www: the service's name back
  health old1 on port 8080: traffic only after the health check passes
  restore on port 8080: back into every load balancer
`},
		{"new one created", created, `repair host2 (www-gantry-old is what served before a cut-off swap; leftover www):
  remove www (new2): started by the cut-off run, never put in service
  rename www-gantry-old to www: the service's name back
  health old1 on port 8080: traffic only after the health check passes
  restore on port 8080: back into every load balancer
`},
		{"drained", func(f *testFleet) { created(f); drained(f) }, `repair host2 (www-gantry-old is what served before a cut-off swap; leftover www):
  remove www (new2): started by the cut-off run, never put in service
  rename www-gantry-old to www: the service's name back
  health old1 on port 8080: traffic only after the health check passes
  restore on port 8080: back into every load balancer
`},
		{"old one stopped", func(f *testFleet) {
			created(f)
			drained(f)
			f.Host("host2").Edit("www-gantry-old", func(c *fakefleet.Container) { c.Running = false })
		}, `repair host2 (www-gantry-old is what served before a cut-off swap; leftover www):
  remove www (new2): started by the cut-off run, never put in service
  start www-gantry-old (old1): it served before the cut-off swap
  rename www-gantry-old to www: the service's name back
  health old1 on port 8080: traffic only after the health check passes
  restore on port 8080: back into every load balancer
`},
		// A revert's move back, cut off alike: what serves is kept
		// although the container created says it replaces another
		// version (it must not be stopped with nothing else running).
		{"revert's new one created", createdAfter("old0"), `repair host2 (www-gantry-old is what served before a cut-off swap; leftover www):
  remove www (new2): started by the cut-off run, never put in service
  rename www-gantry-old to www: the service's name back
  health old1 on port 8080: traffic only after the health check passes
  restore on port 8080: back into every load balancer
`},
		{"revert's old one stopped", func(f *testFleet) {
			createdAfter("old0")(f)
			drained(f)
			f.Host("host2").Edit("www-gantry-old", func(c *fakefleet.Container) { c.Running = false })
		}, `repair host2 (www-gantry-old is what served before a cut-off swap; leftover www):
  remove www (new2): started by the cut-off run, never put in service
  start www-gantry-old (old1): it served before the cut-off swap
  rename www-gantry-old to www: the service's name back
  health old1 on port 8080: traffic only after the health check passes
  restore on port 8080: back into every load balancer
`},
		// Cut off between starting the old one and giving it its name
		// back: a running -gantry-old and nothing under the name.
		{"old one started, not renamed", drained, `repair host2 (www-gantry-old is what served before a cut-off swap):
  rename www-gantry-old to www: the service's name back
  health old1 on port 8080: traffic only after the health check passes
  restore on port 8080: back into every load balancer
`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFleet(3, "old1")
			f.Host("host2").Edit("www", func(c *fakefleet.Container) { c.Name = "www-gantry-old" })
			tc.cut(f)
			p := f.plan("new2", 1)
			checkText(t, "repairs", RepairsString(p.Repairs), tc.repairs)
			rep := f.executor(time.Second).Run(context.Background(), p)
			if !rep.OK() {
				t.Fatalf("report not OK: %v\n%s", rep.Err, rep)
			}
			checkText(t, "fleet", f.State(), `host1: www=new2(running)
host2: www=new2(running)
host3: www=new2(running)
lb1 drained: []
lb2 drained: []
`)
			checkNoViolations(t, f)
		})
	}
}
