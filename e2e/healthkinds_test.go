package e2e

import (
	"strings"
	"testing"
)

// TestHealthCheckKinds deploys with the image's own Docker HEALTHCHECK and
// with a command run inside the container as the health check, against
// the real daemons: a version whose image has no HEALTHCHECK is refused at
// its first host and the fleet stays where it was.
func TestHealthCheckKinds(t *testing.T) {
	l := needLab(t)
	l.fresh(t)
	withCheck := l.publish(t, "--healthcheck")
	without := l.publish(t)
	health := func(kind string) string {
		return l.configEdits(t, "    batch_size: 1\n", "    batch_size: 2\n",
			// docker exec alone takes up to a second on the loaded lab machine.
			"      timeout: 1s\n", "      timeout: 5s\n",
			"    health:\n      path: /healthz\n", "    health:\n"+kind+"      path: /healthz\n")
	}
	docker := health("      kind: docker\n")

	if r := l.runWith(t, docker, "deploy", withCheck, "--env", "lab"); r.code != 0 {
		t.Fatalf("deploy of an image with a HEALTHCHECK, health.kind docker, exited %d", r.code)
	}
	l.assertAllOn(t, withCheck)

	r := l.runWith(t, docker, "deploy", without, "--env", "lab")
	if r.code == 0 || !strings.Contains(r.stdout+r.stderr, "has no HEALTHCHECK") {
		t.Errorf("deploy of an image without a HEALTHCHECK, health.kind docker, exited %d; want a failure saying the image has no HEALTHCHECK", r.code)
	}
	l.assertAllOn(t, withCheck)

	command := health("      kind: command\n      command: [/demoapp, healthcheck]\n")
	if r := l.runWith(t, command, "deploy", without, "--env", "lab"); r.code != 0 {
		t.Fatalf("deploy with health.kind command exited %d", r.code)
	}
	l.assertAllOn(t, without)
}
