package e2e

import (
	"strings"
	"testing"
)

// TestJumpHost deploys and decommissions through the lab's bastion (one
// more sshd, at 127.0.4.1), with host keys verified for both hops; with the
// bastion down, the same config is refused naming it.
func TestJumpHost(t *testing.T) {
	l := needLab(t)
	l.fresh(t)
	l.onBaseline(t)
	viaBastion := l.configEdits(t, "  connect_timeout: 5s\n", "  connect_timeout: 5s\n  jump_host: root@127.0.4.1:2222\n")

	v := l.publish(t)
	stopLoad := startLoad()
	r := l.runWith(t, viaBastion, "deploy", v, "--env", "lab")
	assertNoFailedRequests(t, stopLoad())
	if r.code != 0 {
		t.Fatalf("deploy through the jump host exited %d", r.code)
	}
	l.assertAllOn(t, sha(v))

	victim := l.hosts[len(l.hosts)-1]
	t.Cleanup(func() {
		l.runWith(t, l.config, "recommission", victim.Name, "--env", "lab")
		l.deployOK(t, v)
	})
	if r := l.runWith(t, viaBastion, "decommission", victim.Name, "--env", "lab"); r.code != 0 {
		t.Fatalf("decommission through the jump host exited %d", r.code)
	}
	for _, dir := range l.lbs {
		if up := upstream(t, dir); strings.Contains(up, victim.Address+":") {
			t.Errorf("%s still lists %s after decommission:\n%s", dir, victim.Name, up)
		}
	}
	if r := l.runWith(t, viaBastion, "recommission", victim.Name, "--env", "lab"); r.code != 0 {
		t.Fatalf("recommission exited %d", r.code)
	}
	l.deployOK(t, v)
	l.assertAllOn(t, sha(v))

	// Proof the bastion is on the path: without it, nothing is reachable.
	l.stopPiece(t, "bastion/sshd.pid", "sshd_config")
	r = l.runWith(t, viaBastion, "deploy", v, "--env", "lab")
	if r.code != 3 || !strings.Contains(r.stderr, "jump host 127.0.4.1:2222") {
		t.Errorf("with the bastion down: exit %d, stderr %q; want 3 naming the jump host", r.code, r.stderr)
	}
}

// TestSinglePointOfFailure: a service whose hosts are all in one zone is
// refused in a production environment unless allowed, and only warned
// about elsewhere.
func TestSinglePointOfFailure(t *testing.T) {
	l := needLab(t)
	l.fresh(t)
	v := l.onBaseline(t)
	oneZone := []string{"zone: b\n", "zone: a\n"}
	prod := l.configEdits(t, append(oneZone, "    min_free_disk: 1g\n", "    min_free_disk: 1g\n    production: true\n")...)
	r := l.runWith(t, prod, "deploy", v, "--env", "lab")
	if r.code != 3 || !strings.Contains(r.stderr, "single point of failure") && !strings.Contains(r.stderr, "all in zone(s) a") {
		t.Errorf("production, one zone: exit %d, stderr %q; want 3 naming the zone", r.code, r.stderr)
	}
	allowed := l.configEdits(t, append(oneZone,
		"    min_free_disk: 1g\n", "    min_free_disk: 1g\n    production: true\n",
		"    batch_size: 1\n", "    batch_size: 1\n    allow_single_point_of_failure: true\n")...)
	if r := l.runWith(t, allowed, "deploy", v, "--env", "lab"); r.code != 0 {
		t.Errorf("production with allow_single_point_of_failure: exit %d, want 0", r.code)
	}
	staging := l.configEdits(t, oneZone...)
	r = l.runWith(t, staging, "deploy", v, "--env", "lab")
	if r.code != 0 || !strings.Contains(r.stdout, "warning: single point of failure") {
		t.Errorf("non-production, one zone: exit %d, stdout %q; want 0 with a warning", r.code, r.stdout)
	}
	l.assertServing(t)
}
