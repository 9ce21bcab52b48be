package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/lab/loadgen"
)

var frontends = []string{"http://127.0.0.1:8001/", "http://127.0.0.1:8002/"}

// TestDeployUnderLoad is the product's promise: a new version goes out to
// every host while users keep getting answers from both load balancers.
func TestDeployUnderLoad(t *testing.T) {
	l := needLab(t)
	v1 := l.publish(t)
	v2 := l.publish(t)
	l.deployOK(t, v1) // the fleet may start empty: no load yet

	ctx, stop := context.WithCancel(context.Background())
	loadDone := make(chan loadgen.Result)
	go func() { loadDone <- loadgen.Run(ctx, frontends, 4, 200, 5*time.Minute) }()
	time.Sleep(500 * time.Millisecond) // load is flowing before the deploy starts
	r := l.run(t, "deploy", v2, "--env", "lab")
	time.Sleep(500 * time.Millisecond)
	stop()
	load := <-loadDone

	if r.code != 0 {
		t.Fatalf("deploy %s exited %d", v2, r.code)
	}
	t.Logf("load during the deploy: %s, versions %v", load, load.Versions)
	if load.Non2xx != 0 || load.Errors != 0 {
		t.Errorf("users saw failures during the deploy: %s; first: %v", load, load.FirstErrors)
	}
	if load.Requests < 200 {
		t.Errorf("only %d requests ran during the deploy; the load did not really run", load.Requests)
	}
	if load.Versions[sha(v1)] == 0 || load.Versions[sha(v2)] == 0 {
		t.Errorf("the load should have seen both versions during the roll, saw %v", load.Versions)
	}
	for _, h := range l.hosts {
		if got := l.versionOn(t, h); got != sha(v2) {
			t.Errorf("%s runs %q, want %s", h.Name, got, sha(v2))
		}
		// The previous image stays cached on the host for rollback.
		if out, err := docker(h, "image", "inspect", "--format", "{{.Id}}", "127.0.0.1:5000/gantry/www:"+sha(v1)); err != nil {
			t.Errorf("%s: previous image %s not cached: %s", h.Name, sha(v1), out)
		}
		// Only the new container is left: the old one was removed.
		out, err := docker(h, "ps", "-a", "--filter", "label=dev.gantry.service=www", "--format", "{{.Names}} {{.Label \"dev.gantry.version\"}} {{.State}}")
		if err != nil || out != "www "+sha(v2)+" running" {
			t.Errorf("%s: containers of www = %q (%v), want exactly \"www %s running\"", h.Name, out, err, sha(v2))
		}
	}
	for _, dir := range l.lbs {
		up := upstream(t, dir)
		if strings.Contains(up, " down;") {
			t.Errorf("%s still has a host down after the deploy:\n%s", dir, up)
		}
		for _, h := range l.hosts {
			if !strings.Contains(up, "server "+h.Address+":8080; # "+h.Name) {
				t.Errorf("%s does not have %s up:\n%s", dir, h.Name, up)
			}
		}
	}
	// Through each frontend, the new version answers from every host.
	seen := map[string]bool{}
	for i := 0; i < 20*len(l.hosts); i++ {
		for _, f := range frontends {
			if body, err := httpGet(f); err == nil && strings.HasPrefix(body, sha(v2)+" ") {
				seen[strings.Fields(body)[1]] = true
			}
		}
	}
	if len(seen) != len(l.hosts) {
		t.Errorf("through the load balancers %s answered from %d hosts (%v), want all %d", sha(v2), len(seen), seen, len(l.hosts))
	}

	// Deploying the same version again changes nothing.
	r = l.run(t, "deploy", v2, "--env", "lab")
	if r.code != 0 || !strings.Contains(r.stdout, "0 host(s) in 0 batch(es)") {
		t.Errorf("redeploying %s should be a no-op, got exit %d:\n%s", v2, r.code, r.stdout)
	}
}

// TestDeployUnhealthyVersionKeepsFleetServing deploys a version whose health
// check fails: the first host goes back to the old version, no other host is
// touched, every host stays in every load balancer and users see no errors.
func TestDeployUnhealthyVersionKeepsFleetServing(t *testing.T) {
	l := needLab(t)
	good := l.publish(t)
	broken := l.publish(t, "--broken")
	l.deployOK(t, good)

	ctx, stop := context.WithCancel(context.Background())
	loadDone := make(chan loadgen.Result)
	go func() { loadDone <- loadgen.Run(ctx, frontends, 2, 100, 5*time.Minute) }()
	// A short health deadline keeps the test quick; the behaviour is the same.
	cfg := l.configWith(t, "deadline: 30s", "deadline: 4s")
	r := l.runWith(t, cfg, "deploy", broken, "--env", "lab")
	stop()
	load := <-loadDone

	if r.code != 1 {
		t.Errorf("deploying an unhealthy version exited %d, want 1", r.code)
	}
	if !strings.Contains(r.stdout, "failed-reverted") || !strings.Contains(r.stderr, "health check failed") {
		t.Errorf("the report should say the host failed its health check and was reverted:\n%s\n%s", r.stdout, r.stderr)
	}
	if load.Non2xx != 0 || load.Errors != 0 {
		t.Errorf("users saw failures: %s; first: %v", load, load.FirstErrors)
	}
	for _, h := range l.hosts {
		if got := l.versionOn(t, h); got != sha(good) {
			t.Errorf("%s runs %q, want %s (the version before the failed deploy)", h.Name, got, sha(good))
		}
	}
	for _, dir := range l.lbs {
		if up := upstream(t, dir); strings.Contains(up, " down;") {
			t.Errorf("%s left a host down:\n%s", dir, up)
		}
	}
}
