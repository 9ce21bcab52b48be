package rollout

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/internal/fakefleet"
	"github.com/gantry-dev/gantry/inventory"
)

var startFirst = Strategy{StartFirst: true, Port: appPort, Ports: [2]int{appPort, appPort + 1}}

// entries renders each balancer's entry for each host: its address, and
// "down" when drained.
func entries(f *testFleet) string {
	var b strings.Builder
	for _, l := range f.Balancers {
		fmt.Fprintf(&b, "%s:", l.LoadBalancerName())
		for _, h := range f.Hosts {
			st := ""
			if l.IsDrained("www", h.Name()) {
				st = "(down)"
			}
			fmt.Fprintf(&b, " %s=%s%s", h.Name(), l.AddrOf("www", h.Name(), h.Address()), st)
		}
		b.WriteString("\n")
	}
	return b.String()
}

func ports(f *testFleet) string {
	var b strings.Builder
	for _, h := range f.Hosts {
		c, _ := h.Container("www")
		fmt.Fprintf(&b, "%s %s:%s ", h.Name(), c.Labels[inventory.LabelVersion], c.Labels[inventory.LabelPort])
	}
	return strings.TrimSpace(b.String())
}

func TestStartFirstPlan(t *testing.T) {
	f := newFleet(2, "old1")
	f.Host("host2").Edit("www", func(c *fakefleet.Container) { c.Labels[inventory.LabelPort] = "8081" })
	for _, l := range f.Balancers {
		l.SetAddr("www", "host2", "10.0.0.2:8081")
	}
	checkText(t, "plan", f.planWith("new2", 1, startFirst).String(), `deploy www@new2 (127.0.0.1:5000/gantry/www:new2): 2 host(s) in 2 batch(es)
pull first, on every host: host1 host2
batch 1:
  host1: old1 -> new2 (port 8080 -> 8081): create, start, health, switch, stop, cleanup
batch 2:
  host2: old1 -> new2 (port 8081 -> 8080): create, start, health, switch, stop, cleanup
`)
	// The default order keeps the plan as it was.
	g := newFleet(1, "old1")
	checkText(t, "stop-first plan", g.planWith("new2", 1, Strategy{Port: appPort}).String(), g.plan("new2", 1).String())
}

// Start-first: no host is ever drained; each host's entry moves to the other
// port, and the next deploy moves it back.
func TestStartFirstDeploysWithoutDraining(t *testing.T) {
	f := newFleet(3, "old1")
	for i, tag := range []string{"new2", "new3"} {
		e := f.executor(time.Second)
		var drains int
		e.Observe = func(ev Event) {
			if ev.Step == string(StepDrain) {
				drains++
			}
		}
		rep := e.Run(context.Background(), f.planWith(tag, 2, startFirst))
		if !rep.OK() {
			t.Fatalf("deploy %s: %v\n%s", tag, rep.Err, rep)
		}
		if drains > 0 {
			t.Errorf("deploy %s: %d drain steps; start-first never drains", tag, drains)
		}
		for _, h := range rep.Hosts {
			if h.OutOfRotation != 0 {
				t.Errorf("deploy %s: %s out of rotation %s", tag, h.Host, h.OutOfRotation)
			}
		}
		port := appPort + 1 - i
		want := ""
		for _, l := range []string{"lb1", "lb2"} {
			want += l + ":"
			for _, h := range f.Hosts {
				want += fmt.Sprintf(" %s=%s:%d", h.Name(), h.Address(), port)
			}
			want += "\n"
		}
		checkText(t, "entries after "+tag, entries(f), want)
		checkText(t, "ports after "+tag, ports(f), fmt.Sprintf("host1 %[1]s:%[2]d host2 %[1]s:%[2]d host3 %[1]s:%[2]d", tag, port))
		checkText(t, "fleet after "+tag, f.State(), fmt.Sprintf(`host1: www=%[1]s(running)
host2: www=%[1]s(running)
host3: www=%[1]s(running)
lb1 drained: []
lb2 drained: []
`, tag))
	}
	checkNoViolations(t, f)
}

// A new version that never gets healthy is removed; the old container never
// stopped and no balancer changed.
func TestStartFirstUnhealthyLeavesOldServing(t *testing.T) {
	f := newFleet(2, "old1")
	f.setHealth("bad2", fakefleet.NeverHealthy)
	before := entries(f)
	rep := f.executor(100*time.Millisecond).Run(context.Background(), f.planWith("bad2", 1, startFirst))
	if rep.OK() {
		t.Fatalf("deploy of an unhealthy version reported OK")
	}
	checkText(t, "outcomes", outcomes(rep), `host1 failed old1 in-service=true
host2 not-started old1 in-service=true
`)
	checkText(t, "fleet", f.State(), `host1: www=old1(running)
host2: www=old1(running)
lb1 drained: []
lb2 drained: []
`)
	checkText(t, "entries", entries(f), before)
	for _, l := range f.Balancers {
		if len(l.Switches()) > 0 {
			t.Errorf("%s switched %v", l.LoadBalancerName(), l.Switches())
		}
	}
	checkNoViolations(t, f)
}

// A switch refused by one balancer: every balancer points back at the old
// port, the new container goes.
func TestStartFirstSwitchFailsPointsBack(t *testing.T) {
	f := newFleet(1, "old1")
	f.Balancer("lb2").FailSwitch("host1", "10.0.0.1:8081", true)
	rep := f.executor(time.Second).Run(context.Background(), f.planWith("new2", 1, startFirst))
	if rep.OK() {
		t.Fatalf("reported OK")
	}
	checkText(t, "outcomes", outcomes(rep), "host1 failed-reverted old1 in-service=true\n")
	checkText(t, "fleet", f.State(), `host1: www=old1(running)
lb1 drained: []
lb2 drained: []
`)
	checkText(t, "entries", entries(f), "lb1: host1=10.0.0.1:8080\nlb2: host1=10.0.0.1:8080\n")
	checkNoViolations(t, f)
}

// When a later host fails, hosts already moved go back to their old
// version on their old port, start-first too.
func TestStartFirstRevertsMovedHostsToTheirPort(t *testing.T) {
	f := newFleet(2, "old1")
	f.Host("host2").SetHealth(testImage+":new2", fakefleet.NeverHealthy)
	rep := f.executor(100*time.Millisecond).Run(context.Background(), f.planWith("new2", 1, startFirst))
	checkText(t, "outcomes", outcomes(rep), `host1 rolled-back old1 in-service=true
host2 failed old1 in-service=true
`)
	checkText(t, "ports", ports(f), "host1 old1:8080 host2 old1:")
	checkText(t, "entries", entries(f), "lb1: host1=10.0.0.1:8080 host2=10.0.0.2:8080\nlb2: host1=10.0.0.1:8080 host2=10.0.0.2:8080\n")
	checkNoViolations(t, f)
}

// TestStartFirstInterruptBeforeTheSwitchTouchesNoBalancer: interrupted
// once the new container passed its check but before the switch, the host
// drops the new container and keeps serving on the old one; no load
// balancer is changed (the switch never began).
func TestStartFirstInterruptBeforeTheSwitchTouchesNoBalancer(t *testing.T) {
	f := newFleet(2, "old1")
	e := f.executor(time.Second)
	ctx, cancel := context.WithCancel(context.Background())
	e.Observe = func(ev Event) {
		if ev.Host == "host1" && ev.Step == string(StepHealth) && ev.Done && ev.Err == nil {
			cancel() // the user's Ctrl-C, right after the check passed
		}
	}
	rep := e.Run(ctx, f.planWith("new2", 1, startFirst))
	for _, l := range f.Balancers {
		if s := l.Switches(); len(s) != 0 {
			t.Errorf("%s switched %v: no balancer should change", l.LoadBalancerName(), s)
		}
	}
	checkText(t, "outcomes", outcomes(rep), "host1 failed old1 in-service=true\nhost2 not-started old1 in-service=true\n")
	checkText(t, "fleet", f.State(), "host1: www=old1(running)\nhost2: www=old1(running)\nlb1 drained: []\nlb2 drained: []\n")
	if !rep.Interrupted {
		t.Errorf("the run is not recorded as interrupted")
	}
}
