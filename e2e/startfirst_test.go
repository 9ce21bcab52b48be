package e2e

import (
	"bytes"
	"fmt"
	"os/exec"
	"strings"
	"testing"
)

// startFirstEdits turn the lab's www into a start-first service
// alternating between ports 8080 and 8081.
var startFirstEdits = []string{
	"    port: 8080\n", "    order: start-first\n    ports: [8080, 8081]\n",
	`LISTEN: "${host.address}:8080"`, `LISTEN: "${host.address}:${port}"`,
}

// watchRotation records every content where some host is marked down or
// has no entry at all.
func (l *lab) watchRotation() *upstreamWatch {
	return l.watchUpstreams(func(content string) string {
		for _, h := range l.hosts {
			if line := serverLine(content, h.Name); line == "" || strings.Contains(line, " down") {
				return h.Name + " out"
			}
		}
		return ""
	})
}

// assertAlwaysInRotation stops the watcher and fails the test if a host
// was ever out of any load balancer.
func (w *upstreamWatch) assertAlwaysInRotation(t *testing.T) {
	t.Helper()
	w.halt()
	if len(w.seen) > 0 {
		t.Errorf("a host left rotation during a start-first deploy; first seen %s", w.seen[0])
	}
	if w.polls < 10 {
		t.Errorf("the upstream files were read only %d times", w.polls)
	}
}

// serverLine is the server line of host in an upstream file ("" if none).
func serverLine(content, host string) string {
	for _, line := range strings.Split(content, "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "server ") && strings.HasSuffix(line, "# "+host) {
			return line
		}
	}
	return ""
}

// assertOnPort checks that every host runs version on port: the app there
// answers with it, the container records the port, and every load
// balancer sends the host's traffic to that port, up.
func (l *lab) assertOnPort(t *testing.T, version string, port int) {
	t.Helper()
	for _, h := range l.hosts {
		addr := fmt.Sprintf("%s:%d", h.Address, port)
		out, err := curl("http://" + addr + "/")
		if v, _, _ := strings.Cut(out, " "); err != nil || v != sha(version) {
			t.Errorf("%s: the app on %s answers %q (%v), want %s", h.Name, addr, out, err, sha(version))
		}
		got, err := docker(h, "inspect", "--format", `{{.State.Running}} {{index .Config.Labels "dev.gantry.version"}} {{index .Config.Labels "dev.gantry.port"}}`, "www")
		if want := fmt.Sprintf("true %s %d", sha(version), port); err != nil || got != want {
			t.Errorf("%s: container www is %q (%v), want %q", h.Name, got, err, want)
		}
		for _, dir := range l.lbs {
			line := serverLine(upstream(t, dir), h.Name)
			if want := "server " + addr + "; # " + h.Name; line != want {
				t.Errorf("%s: %s has %q, want %q", dir, h.Name, line, want)
			}
		}
	}
	l.assertLockFree(t)
}

// TestStartFirst: a start-first deploy under load never takes a host out
// of rotation and fails no request; each host's upstream entry moves to
// the other port, the next deploy moves it back, and a rollback works
// the same way. The lab ends on port 8080, stop-first, as it began.
func TestStartFirst(t *testing.T) {
	l := needLab(t)
	l.fresh(t)
	v1 := l.onBaseline(t)
	cfg := l.configEdits(t, startFirstEdits...)
	v2, v3 := l.publish(t), l.publish(t)
	t.Cleanup(func() {
		// Back to the stock, stop-first config on port 8080 (a version the
		// hosts do not run, so every host is moved back to 8080).
		if r := l.run(t, "deploy", v1, "--env", "lab"); r.code != 0 {
			t.Errorf("putting the lab back on %s, stop-first: exit %d\n%s%s", v1, r.code, r.stdout, r.stderr)
		}
		l.assertAllOn(t, v1)
	})

	step := func(t *testing.T, version string, port int, args ...string) {
		t.Helper()
		w := l.watchRotation()
		done := startLoad()
		r := l.runWith(t, cfg, args...)
		load := done()
		w.assertAlwaysInRotation(t)
		if r.code != 0 {
			t.Fatalf("gantry %v: exit %d\n%s%s", args, r.code, r.stdout, r.stderr)
		}
		if strings.Contains(r.stdout, " drain ") {
			t.Errorf("gantry %v drained a host:\n%s", args, r.stdout)
		}
		assertNoFailedRequests(t, load)
		l.assertOnPort(t, version, port)
	}
	t.Run("deploy moves every host to 8081", func(t *testing.T) {
		step(t, v2, 8081, "deploy", v2, "--env", "lab")
	})
	t.Run("next deploy moves them back to 8080", func(t *testing.T) {
		step(t, v3, 8080, "deploy", v3, "--env", "lab")
	})
	t.Run("rollback", func(t *testing.T) {
		step(t, v2, 8081, "rollback", "www", "--env", "lab")
	})
	t.Run("inventory", func(t *testing.T) {
		r := l.runWith(t, cfg, "inventory", "--env", "lab")
		if r.code != 0 || !strings.Contains(r.stdout, "healthy") || strings.Contains(r.stdout, "unhealthy") {
			t.Errorf("inventory: exit %d, want every www healthy on its port:\n%s%s", r.code, r.stdout, r.stderr)
		}
	})
}

func curl(url string) (string, error) {
	var out bytes.Buffer
	cmd := exec.Command("curl", "-fsS", "--max-time", "5", url)
	cmd.Stdout = &out
	err := cmd.Run()
	return strings.TrimSpace(out.String()), err
}
