package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/internal/eventschema"
	"github.com/gantry-dev/gantry/lab/loadgen"
)

// canaryBlock is the canary config the tests add to service www: host1
// (zone a, first by name) moves first and bakes against host2..host4.
const canaryBlock = "    batch_size: 1\n    canary:\n      hosts: 1\n      bake: %s\n      min_requests: 100\n      inconclusive: fail\n"

// canaryRun is a deploy with --json under load through both load
// balancers: its result, its events, and what the load saw.
type canaryRun struct {
	r      result
	events []map[string]any
	load   loadgen.Result
}

func (l *lab) canaryDeploy(t *testing.T, cfg, target string, withLoad bool, args ...string) canaryRun {
	t.Helper()
	var stop func() loadgen.Result
	if withLoad {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan loadgen.Result, 1)
		// About 50 requests a second per host: a canary host serves a few
		// hundred in a bake.
		go func() { done <- loadgen.Run(ctx, frontends, 4, 200, 5*time.Minute) }()
		time.Sleep(300 * time.Millisecond)
		stop = func() loadgen.Result { time.Sleep(300 * time.Millisecond); cancel(); return <-done }
	}
	r := l.runWith(t, cfg, append([]string{"deploy", target, "--env", "lab", "--json"}, args...)...)
	var cr canaryRun
	cr.r = r
	if stop != nil {
		cr.load = stop()
		t.Logf("load: %s, versions %v, non-2xx by %v", cr.load, cr.load.Versions, cr.load.Non2xxBy)
	}
	events, err := eventschema.ValidateStream([]byte(r.stdout))
	if err != nil {
		t.Fatalf("the event stream does not match the schema: %v", err)
	}
	cr.events = events
	return cr
}

// verdict is the final canary event's result and summary.
func (cr canaryRun) verdict() (result, summary string) {
	for _, ev := range cr.events {
		if ev["type"] == "canary" && ev["final"] == true {
			return fmt.Sprint(ev["result"]), fmt.Sprint(ev["summary"])
		}
	}
	return "", ""
}

// stepTime is when host's n-th (0-based) step ended with status.
func (cr canaryRun) stepTime(t *testing.T, host, step, status string, n int) time.Time {
	t.Helper()
	for _, ev := range cr.events {
		if ev["type"] == "step" && ev["host"] == host && ev["step"] == step && ev["status"] == status {
			if n == 0 {
				at, err := time.Parse(time.RFC3339Nano, fmt.Sprint(ev["time"]))
				if err != nil {
					t.Fatal(err)
				}
				return at
			}
			n--
		}
	}
	t.Fatalf("no %s step %s %s (#%d) in the events", host, step, status, n)
	return time.Time{}
}

// assertFleetOn checks every host runs version and is up in every load
// balancer.
func (l *lab) assertFleetOn(t *testing.T, version string) {
	t.Helper()
	for _, h := range l.hosts {
		if got := l.versionOn(t, h); got != version {
			t.Errorf("%s runs %q, want %s", h.Name, got, version)
		}
	}
	for _, dir := range l.lbs {
		up := upstream(t, dir)
		for _, h := range l.hosts {
			if !strings.Contains(up, "server "+h.Address+":8080; # "+h.Name) || strings.Contains(up, h.Address+":8080 down") {
				t.Errorf("%s does not have %s up:\n%s", dir, h.Name, up)
			}
		}
	}
}

// TestCanary: a canary judged from the load balancers' access logs, under
// load through both of them (they do not retry a failed request).
func TestCanary(t *testing.T) {
	l := needLab(t)
	v0 := l.publish(t)
	l.deployOK(t, v0)
	cfg := l.configWith(t, "    batch_size: 1\n", fmt.Sprintf(canaryBlock, "10s"))

	t.Run("a version failing 10% of requests is stopped at the canary", func(t *testing.T) {
		bad := l.publish(t, "--fail-share", "0.1")
		cr := l.canaryDeploy(t, cfg, bad, true)
		if cr.r.code != 1 {
			t.Fatalf("deploy exited %d, want 1", cr.r.code)
		}
		if res, sum := cr.verdict(); res != "fail" || !strings.Contains(sum, "5xx") {
			t.Errorf("canary verdict %q %q, want fail on 5xx", res, sum)
		}
		if !strings.Contains(cr.r.stderr, "canary failed: 5xx") {
			t.Errorf("the error does not say why with figures:\n%s", cr.r.stderr)
		}
		l.assertFleetOn(t, sha(v0))
		// Only the canary host ever served it: every failed request came
		// from host1 on the bad version, between its going back into
		// rotation and its drain to be moved back.
		for who, n := range cr.load.Non2xxBy {
			if who != sha(bad)+" host1" {
				t.Errorf("%d failed request(s) came from %q, want only %q", n, who, sha(bad)+" host1")
			}
		}
		if cr.load.Errors != 0 || cr.load.Non2xx == 0 {
			t.Errorf("load %s: want failed answers from the canary and no connection errors", cr.load)
		}
		in := cr.stepTime(t, "host1", "restore", "ok", 0)
		out := cr.stepTime(t, "host1", "drain", "ok", 1) // the move back's drain
		if cr.load.Non2xxFirst.Before(in.Add(-time.Second)) || cr.load.Non2xxLast.After(out) {
			t.Errorf("failed requests from %s to %s, outside host1's bake (%s to %s)", cr.load.Non2xxFirst.Format(time.StampMilli), cr.load.Non2xxLast.Format(time.StampMilli), in.Format(time.StampMilli), out.Format(time.StampMilli))
		}
		for _, ev := range cr.events {
			if ev["type"] == "step" && ev["host"] != "host1" && ev["host"] != "canary" && ev["step"] != "pull" {
				t.Errorf("a host other than the canary was touched: %v", ev)
			}
		}
	})

	t.Run("a version adding 300ms is stopped by the latency rule", func(t *testing.T) {
		slow := l.publish(t, "--latency", "300ms")
		cr := l.canaryDeploy(t, cfg, slow, true)
		if cr.r.code != 1 {
			t.Fatalf("deploy exited %d, want 1", cr.r.code)
		}
		if res, sum := cr.verdict(); res != "fail" || !strings.Contains(sum, "p50") {
			t.Errorf("canary verdict %q %q, want fail on p50", res, sum)
		}
		l.assertFleetOn(t, sha(v0))
		if cr.load.Non2xx != 0 || cr.load.Errors != 0 {
			t.Errorf("users saw failures: %s; first: %v", cr.load, cr.load.FirstErrors)
		}
	})

	t.Run("a good version passes the bake and the deploy completes", func(t *testing.T) {
		good := l.publish(t)
		cr := l.canaryDeploy(t, cfg, good, true)
		if cr.r.code != 0 {
			t.Fatalf("deploy exited %d, want 0", cr.r.code)
		}
		if res, sum := cr.verdict(); res != "pass" {
			t.Errorf("canary verdict %q %q, want pass", res, sum)
		}
		for _, ev := range cr.events {
			if ev["type"] == "plan" {
				c, _ := ev["canary"].(map[string]any)
				if fmt.Sprint(c["hosts"]) != "[host1]" || fmt.Sprint(c["baseline"]) != "[host2 host3 host4]" || c["batch"] != 1.0 {
					t.Errorf("the plan event's canary stage is %v, want host1 in batch 1 against host2..host4", c)
				}
			}
		}
		assertNoFailedRequests(t, cr.load)
		l.assertFleetOn(t, sha(good))
		v0 = good
	})

	t.Run("too little traffic is inconclusive, counted as configured", func(t *testing.T) {
		quiet := l.configWith(t, "    batch_size: 1\n", fmt.Sprintf(canaryBlock, "2s"))
		next := l.publish(t)
		cr := l.canaryDeploy(t, quiet, next, false)
		if cr.r.code != 1 {
			t.Fatalf("deploy exited %d, want 1 (inconclusive: fail)", cr.r.code)
		}
		if res, sum := cr.verdict(); res != "fail" || !strings.Contains(sum, "fewer than the 100 needed") {
			t.Errorf("canary verdict %q %q, want an inconclusive fail", res, sum)
		}
		l.assertFleetOn(t, sha(v0))
		// --no-canary: the same config, this run without the stage.
		r := l.runWith(t, quiet, "deploy", next, "--env", "lab", "--no-canary")
		if r.code != 0 || strings.Contains(r.stdout, "bake") {
			t.Fatalf("deploy --no-canary exited %d (want 0, no bake):\n%s", r.code, r.stdout)
		}
		l.assertFleetOn(t, sha(next))
	})

	t.Run("a load balancer whose log lacks the fields is refused in pre-flight", func(t *testing.T) {
		// A log in nginx's usual combined format: no upstream fields.
		plain := filepath.Join(t.TempDir(), "access.log")
		line := `127.0.0.1 - - [29/Nov/2026:10:00:00 +0000] "GET / HTTP/1.1" 200 12 "-" "curl/8.0"` + "\n"
		if err := os.WriteFile(plain, []byte(strings.Repeat(line, 5)), 0o644); err != nil {
			t.Fatal(err)
		}
		lacking := l.configWith(t, "access_log: "+filepath.Dir(l.lbs[0])+"/access.log", "access_log: "+plain)
		next := l.publish(t)
		r := l.runWith(t, lacking, "deploy", next, "--env", "lab", "--canary")
		if r.code != 3 {
			t.Fatalf("deploy exited %d, want 3 (refused in pre-flight)", r.code)
		}
		if !strings.Contains(r.stderr, "log_format gantry_canary") || !strings.Contains(r.stderr, "lb1") {
			t.Errorf("the refusal does not name lb1 and give the log_format line to add:\n%s", r.stderr)
		}
		before := l.versionOn(t, l.hosts[0])
		for _, h := range l.hosts {
			if got := l.versionOn(t, h); got != before {
				t.Errorf("%s runs %s after a refusal: something changed", h.Name, got)
			}
		}
	})
}
