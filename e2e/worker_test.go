package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// workerConfig adds service jobs, a worker of the demo image (no port, no
// load balancer), to every lab host: jobs of 0.5 to 1 s, each start and
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
      JOB_MIN: 500ms
      JOB_MAX: 1s
      JOB_LOG: /data/jobs.log
      HOST_NAME: "${host.name}"
    volumes: [gantry-e2e-jobs:/data]
    stop_timeout: 10s
    health: {kind: running, min_running: 1s, interval: 100ms, deadline: 20s}
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

// TestWorkerService deploys a worker (no port, no load balancer) twice:
// no host is drained, every job a worker started is finished (SIGTERM lets
// it finish the job in hand), and a version that crashes soon after it
// starts fails its running check and every host goes back to the old one.
func TestWorkerService(t *testing.T) {
	l := needLab(t)
	l.onBaseline(t)
	cfg := l.workerConfig(t)
	t.Cleanup(func() {
		for _, h := range l.hosts {
			docker(h, "rm", "-f", "jobs", "jobs-gantry-old", "jobs-gantry-new")
			docker(h, "volume", "rm", "gantry-e2e-jobs")
		}
	})
	v1, v2, broken := l.publish(t), l.publish(t), l.publish(t, "--broken")
	jobs := func(v string) string { return "jobs@" + sha(v) }
	before := map[string]string{}
	for _, dir := range l.lbs {
		before[dir] = upstream(t, dir)
	}
	for _, v := range []string{v1, v2} {
		r := l.runWith(t, cfg, "deploy", jobs(v), "--env", "lab")
		if r.code != 0 {
			t.Fatalf("deploy %s exited %d", jobs(v), r.code)
		}
		for _, word := range []string{" drain ", " restore ", " switch "} {
			if strings.Contains(r.stdout, word) {
				t.Errorf("a worker deploy ran a load balancer step (%q):\n%s", word, r.stdout)
			}
		}
	}
	for _, dir := range l.lbs {
		if after := upstream(t, dir); after != before[dir] {
			t.Errorf("deploying the worker changed %s:\n%s\nwas:\n%s", dir, after, before[dir])
		}
	}
	assertWorkersOn := func(want string) {
		t.Helper()
		for _, h := range l.hosts {
			out, err := docker(h, "ps", "-a", "--filter", "label=dev.gantry.service=jobs", "--format", `{{.Names}} {{.Label "dev.gantry.version"}} {{.State}}`)
			if err != nil || out != "jobs "+sha(want)+" running" {
				t.Errorf("%s: containers of jobs = %q (%v), want exactly \"jobs %s running\"", h.Name, out, err, sha(want))
			}
		}
	}
	assertWorkersOn(v2)
	// No job cut: every job started was finished, by the v1 workers that
	// were stopped as well.
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
		v1Jobs := 0
		for j := range started {
			if strings.HasPrefix(j, sha(v1)+"@") {
				v1Jobs++
			}
			if !done[j] && !strings.HasPrefix(j, sha(v2)+"@") {
				t.Errorf("%s: job %q was started and never finished (cut by the deploy):\n%s", h.Name, j, log)
			}
		}
		if v1Jobs == 0 {
			t.Errorf("%s: the v1 worker logged no job:\n%s", h.Name, log)
		}
	}

	r := l.runWith(t, cfg, "deploy", jobs(broken), "--env", "lab")
	if r.code == 0 {
		t.Errorf("deploying a worker that crashes after it starts exited 0")
	}
	assertWorkersOn(v2)
	l.assertLockFree(t)
}
