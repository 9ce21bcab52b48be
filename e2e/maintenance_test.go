package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// assertLBLines checks every load balancer lists down exactly the hosts
// in down, and the others up.
func (l *lab) assertLBLines(t *testing.T, when string, down string) {
	t.Helper()
	for _, dir := range l.lbs {
		up := upstream(t, dir)
		for _, h := range l.hosts {
			line, ok := upstreamLine(up, h.Address)
			if isDown := strings.Contains(line, " down"); !ok || isDown != (h.Name == down) {
				t.Errorf("%s: %s lists %s as %q, want down=%v:\n%s", when, dir, h.Name, line, h.Name == down, up)
			}
		}
	}
}

// TestMaintenance: maintenance on drains a host from both load balancers;
// a deploy under load moves every host, that one included, and leaves it
// down in both while the others are up, with no failed request; inventory
// and the list show it; maintenance off puts it back. A host marked down
// by hand is a pre-flight warning pointing at maintenance mode.
func TestMaintenance(t *testing.T) {
	l := needLab(t)
	l.onBaseline(t)
	next := l.publish(t)
	x := l.hosts[1]
	t.Cleanup(func() {
		l.quiet("maintenance", "off", x.Name, "--env", "lab")
		l.putBackInLBs(t)
	})

	done := startLoad()
	r := l.run(t, "maintenance", "on", x.Name, "--env", "lab", "--message", "disk swap")
	if r.code != 0 {
		done()
		t.Fatalf("maintenance on exited %d", r.code)
	}
	l.assertLBLines(t, "after maintenance on", x.Name)

	r = l.run(t, "deploy", next, "--env", "lab")
	if r.code != 0 {
		t.Errorf("deploy with %s in maintenance exited %d, want 0", x.Name, r.code)
	}
	if !lineWith(r.stdout, x.Name, "stays down in every load balancer") {
		t.Errorf("the plan does not say %s stays down:\n%s", x.Name, r.stdout)
	}
	for _, h := range l.hosts {
		if got := l.versionOn(t, h); got != sha(next) {
			t.Errorf("%s runs %q, want %s", h.Name, got, sha(next))
		}
	}
	l.assertLBLines(t, "after the deploy", x.Name)

	if hv, ok := l.inventory(t).host(x.Name); !ok || hv.Maintenance == nil || hv.Maintenance.Message != "disk swap" {
		t.Errorf("inventory --json does not show %s in maintenance with its message: %+v", x.Name, hv.Maintenance)
	}
	if r := l.run(t, "inventory", "--env", "lab"); !lineWith(r.stdout, x.Name+" (maintenance)") {
		t.Errorf("the inventory table does not mark %s in maintenance", x.Name)
	}
	if r := l.run(t, "maintenance", "--env", "lab"); r.code != 0 || !lineWith(r.stdout, x.Name, "disk swap") {
		t.Errorf("maintenance (list) exited %d without %s and its message", r.code, x.Name)
	}

	r = l.run(t, "maintenance", "off", x.Name, "--env", "lab")
	assertNoFailedRequests(t, done())
	if r.code != 0 {
		t.Fatalf("maintenance off exited %d", r.code)
	}
	l.assertLBLines(t, "after maintenance off", "")

	// Marked down by hand in lb1: a warning that names maintenance mode.
	p := filepath.Join(l.lbs[0], "www.conf")
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	line, _ := upstreamLine(string(data), x.Address)
	hand := strings.Replace(string(data), line, strings.Replace(line, ";", " down;", 1), 1)
	if err := os.WriteFile(p, []byte(hand), 0o644); err != nil {
		t.Fatal(err)
	}
	r = l.run(t, "plan", next, "--env", "lab")
	if !lineWith(r.stdout+r.stderr, "warning", x.Name, "down by hand", "gantry maintenance on "+x.Name) {
		t.Errorf("no pre-flight warning about %s marked down by hand", x.Name)
	}
	if r := l.run(t, "maintenance", "off", x.Name, "--env", "lab"); r.code != 0 {
		t.Errorf("maintenance off of a host down by hand exited %d", r.code)
	}
	l.assertLBLines(t, "after maintenance off of a host down by hand", "")
}
