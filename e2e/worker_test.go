package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// workerConfig adds service jobs, a worker of the demo image (no port, no
// load balancer), to every lab host: jobs of 0.3 to 0.6 s, each start and
// end appended to a file in a named volume that outlives the containers.
func (l *lab) workerConfig(t *testing.T) string {
	t.Helper()
	return l.configEdits(t,
		"        services: [www]\n", "        services: [www, jobs]\n",
		"services:\n  www:\n", `services:
  jobs:
    image: gantry/www
    env:
      WORKER: "1"
      JOB_MIN: 300ms
      JOB_MAX: 600ms
      JOB_LOG: /data/jobs.log
      HOST_NAME: "${host.name}"
    volumes: [gantry-e2e-jobs:/data]
    stop_timeout: 10s
    # docker exec alone takes up to a second on the loaded lab machine.
    health: {kind: command, command: [/demoapp, workercheck], healthy_threshold: 1, timeout: 5s, deadline: 8s}
    batch_size: 2
  www:
`)
}

// jobLog returns the worker's job log on host h (in the named volume).
func (l *lab) jobLog(t *testing.T, h labHost) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(l.state, h.Name, "data", "volumes", "gantry-e2e-jobs", "_data", "jobs.log"))
	if err != nil {
		t.Fatalf("%s: reading the job log: %v", h.Name, err)
	}
	return string(data)
}

// assertNoJobCut checks every host's job log: each job a worker started
// was finished (a stopped worker finishes the job in hand), but the last
// workers' own, still running.
func (l *lab) assertNoJobCut(t *testing.T, running string) {
	t.Helper()
	for _, h := range l.hosts {
		started, done := map[string]bool{}, map[string]bool{}
		log := l.jobLog(t, h)
		for _, line := range strings.Split(log, "\n") {
			if j, ok := strings.CutPrefix(line, "start "); ok {
				started[j] = true
			}
			if j, ok := strings.CutPrefix(line, "done "); ok {
				done[j] = true
			}
		}
		if len(started) == 0 {
			t.Errorf("%s: the workers logged no job:\n%s", h.Name, log)
		}
		for j := range started {
			if !done[j] && !strings.HasPrefix(j, sha(running)+"@") {
				t.Errorf("%s: job %q was started and never finished (cut by the deploy):\n%s", h.Name, j, log)
			}
		}
	}
}

// assertWorkersOn checks that every host runs exactly one jobs container,
// of version want, running.
func (l *lab) assertWorkersOn(t *testing.T, want string) {
	t.Helper()
	for _, h := range l.hosts {
		out, err := docker(h, "ps", "-a", "--filter", "label=dev.gantry.service=jobs", "--format", `{{.Names}} {{.Label "dev.gantry.version"}} {{.State}}`)
		if err != nil || out != "jobs "+sha(want)+" running" {
			t.Errorf("%s: containers of jobs = %q (%v), want exactly \"jobs %s running\"", h.Name, out, err, sha(want))
		}
	}
}

// TestAppOfWebAndWorker deploys app shop, the web service www and the
// worker jobs (no port, no load balancer), at one version with one
// command: under load, with no failed request and no job cut, and the
// report lists both. Rollback of the app returns both services to the
// version before; a release whose worker fails its health command puts
// the whole app back, web included.
func TestAppOfWebAndWorker(t *testing.T) {
	l := needLab(t)
	l.fresh(t)
	cfg := l.workerConfig(t)
	data, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg, append(data, "apps:\n  shop:\n    services: [www, jobs]\n"...), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, h := range l.hosts {
			docker(h, "rm", "-f", "jobs", "jobs-gantry-old", "jobs-gantry-new")
			docker(h, "volume", "rm", "gantry-e2e-jobs")
		}
	})
	v1, v2, brokenWorker := l.publish(t), l.publish(t), l.publish(t, "--broken-worker")
	shop := func(v string) string { return "shop@" + sha(v) }
	if r := l.runWith(t, cfg, "deploy", shop(v1), "--env", "lab"); r.code != 0 {
		t.Fatalf("deploy %s exited %d", shop(v1), r.code)
	}

	stopLoad := startLoad()
	r := l.runWith(t, cfg, "deploy", shop(v2), "--env", "lab")
	assertNoFailedRequests(t, stopLoad())
	if r.code != 0 {
		t.Fatalf("deploy %s exited %d", shop(v2), r.code)
	}
	for _, want := range []string{"SERVICE", "jobs ", "www "} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("the app's report does not list %q:\n%s", want, r.stdout)
		}
	}
	for _, line := range strings.Split(r.stdout, "\n") {
		if strings.Contains(line, " jobs") && (strings.Contains(line, " drain ") || strings.Contains(line, " restore ")) {
			t.Errorf("the worker went through a load balancer step: %s", line)
		}
	}
	l.assertAllOn(t, v2)
	l.assertWorkersOn(t, v2)
	l.assertNoJobCut(t, v2)

	if r := l.runWith(t, cfg, "rollback", "shop", "--env", "lab"); r.code != 0 {
		t.Fatalf("rollback of app shop exited %d", r.code)
	}
	l.assertAllOn(t, v1)
	l.assertWorkersOn(t, v1)

	// www moves first and is healthy; jobs' health command then fails:
	// both go back.
	r = l.runWith(t, cfg, "deploy", shop(brokenWorker), "--env", "lab")
	if r.code == 0 {
		t.Errorf("deploying an app whose worker fails its health command exited 0")
	}
	l.assertAllOn(t, v1)
	l.assertWorkersOn(t, v1)
	if r := l.quietWith(cfg, "lock", "status", "jobs", "--env", "lab"); !strings.Contains(r.stdout, "free") {
		t.Errorf("jobs' deploy lock is not free after the app's run:\n%s%s", r.stdout, r.stderr)
	}
}
