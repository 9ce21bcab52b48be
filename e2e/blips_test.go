package e2e

// Connection blips: the sshd processes serving gantry's connection to one
// host are frozen (SIGSTOP) or killed while a deploy runs, and a host's
// dockerd is frozen. The listener of each sshd stays up (its pid file is
// never signalled), as after a network blip.

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// sshdSessions returns the pids of the processes serving connections to
// the sshd whose pid file is rel ("host2/sshd.pid"): every descendant of
// the listener, never the listener itself.
func (l *lab) sshdSessions(t *testing.T, rel string) []int {
	t.Helper()
	listener, ok := l.livePid(rel, "sshd_config")
	if !ok {
		t.Fatalf("sshd %s is not running", rel)
	}
	children := map[int][]int{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// "pid (comm) S ppid ...": comm may hold spaces, so cut at ')'.
		s := string(stat)
		fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(fields) < 2 {
			continue
		}
		ppid, _ := strconv.Atoi(fields[1])
		children[ppid] = append(children[ppid], pid)
	}
	var out []int
	queue := slices.Clone(children[listener])
	for len(queue) > 0 {
		pid := queue[0]
		queue = queue[1:]
		out = append(out, pid)
		queue = append(queue, children[pid]...)
	}
	slices.Sort(out)
	return out
}

// newSessions waits until the sshd of pid file rel serves a connection
// that was not among before (gantry's), and returns its processes.
func (l *lab) newSessions(t *testing.T, rel string, before []int) []int {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var fresh []int
		for _, pid := range l.sshdSessions(t, rel) {
			if !slices.Contains(before, pid) {
				fresh = append(fresh, pid)
			}
		}
		if len(fresh) > 0 {
			return fresh
		}
		if time.Now().After(deadline) {
			t.Fatalf("gantry opened no connection to sshd %s", rel)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// signalAll sends sig to every pid, ignoring the ones already gone.
func signalAll(t *testing.T, pids []int, sig syscall.Signal) {
	t.Helper()
	for _, pid := range pids {
		if err := syscall.Kill(pid, sig); err != nil && err != syscall.ESRCH {
			t.Errorf("kill -%d %d: %v", sig, pid, err)
		}
	}
}

// stepStarted matches the --json event of host starting step.
func stepStarted(host, step string) *regexp.Regexp {
	return regexp.MustCompile(`"host":"` + host + `".*"step":"` + step + `","status":"started"`)
}

// blipDuringDeploy deploys a new version under load and, when the second
// host starts step, hits the sshd processes serving gantry's connection to
// it with sig (the listener stays up); with viaBastion, the connections
// through the lab's jump host are the ones hit, every one of them. The
// deploy must end with exit 0, every host on the new version and in every
// load balancer, no failed request.
func blipDuringDeploy(t *testing.T, step string, sig syscall.Signal, viaBastion bool) {
	l := needLab(t)
	l.fresh(t)
	l.onBaseline(t)
	v2 := l.publish(t)
	victim := 1
	conf, sshd := l.config, fmt.Sprintf("host%d/sshd.pid", victim+1)
	if viaBastion {
		conf = l.configEdits(t, "  connect_timeout: 5s\n", "  connect_timeout: 5s\n  jump_host: root@127.0.4.1:2222\n")
		sshd = "bastion/sshd.pid"
	}
	before := l.sshdSessions(t, sshd)

	load := startLoad()
	run := l.start(t, conf, "deploy", v2, "--env", "lab", "--json")
	if _, ok := run.waitLine(stepStarted(l.hosts[victim].Name, step), 3*time.Minute); !ok {
		run.wait(time.Minute)
		load()
		t.Fatalf("never saw %s's %s step start", l.hosts[victim].Name, step)
	}
	pids := l.newSessions(t, sshd, before)
	if sig == syscall.SIGSTOP {
		// Whatever happens, the stopped processes go on: they exit once
		// they see gantry has hung up.
		t.Cleanup(func() { signalAll(t, pids, syscall.SIGCONT) })
	}
	signalAll(t, pids, sig)
	t.Logf("sent signal %d to the processes %v of sshd %s serving gantry during %s of %s", sig, pids, sshd, step, l.hosts[victim].Name)

	started := time.Now()
	r := run.wait(4 * time.Minute)
	assertNoFailedRequests(t, load())
	t.Logf("the deploy ended %s after the blip", time.Since(started).Round(time.Second))
	if r.code != 0 {
		t.Fatalf("deploy exited %d after the connection to %s was hit during %s, want 0:\n%s", r.code, l.hosts[victim].Name, step, r.stderr)
	}
	l.assertAllOn(t, v2)
	if after := l.sshdSessions(t, sshd); sig == syscall.SIGKILL && slices.ContainsFunc(pids, func(p int) bool { return slices.Contains(after, p) }) {
		t.Errorf("a killed sshd process is still there: %v of %v", after, pids)
	}
}

// TestFrozenConnectionIsRedialled: the sshd processes serving gantry's
// connection to one host are stopped (SIGSTOP) while that host is being
// created; the keepalive finds the connection dead within seconds, gantry
// redials it and the deploy finishes.
func TestFrozenConnectionIsRedialled(t *testing.T) {
	blipDuringDeploy(t, "create", syscall.SIGSTOP, false)
}

// TestFrozenJumpHostIsRedialled: every connection through the lab's
// bastion freezes (its sshd processes serving gantry are stopped) while a
// host is created: each one is found dead by its keepalive and redialled,
// jump connection included, and the deploy finishes.
func TestFrozenJumpHostIsRedialled(t *testing.T) {
	blipDuringDeploy(t, "create", syscall.SIGSTOP, true)
}

// TestConnectionCutDuringCreate: the sshd processes serving gantry's
// connection to one host are killed while it is created.
func TestConnectionCutDuringCreate(t *testing.T) {
	blipDuringDeploy(t, "create", syscall.SIGKILL, false)
}

// TestConnectionCutDuringHealth: the same while the new container is
// health-checked (probes go through that connection).
func TestConnectionCutDuringHealth(t *testing.T) {
	blipDuringDeploy(t, "health", syscall.SIGKILL, false)
}

// TestFrozenDaemonFailsWithinCallTimeout: with one host's dockerd stopped
// (SIGSTOP), inventory and deploy fail for that host within
// ssh.docker_call_timeout, and every other host keeps serving, in both
// load balancers.
func TestFrozenDaemonFailsWithinCallTimeout(t *testing.T) {
	l := needLab(t)
	l.fresh(t)
	v1 := l.onBaseline(t)
	v2 := l.publish(t)
	const callTimeout = 5 * time.Second
	conf := l.configEdits(t, "  connect_timeout: 5s\n",
		"  connect_timeout: 5s\n  docker_call_timeout: 5s\n  keepalive_interval: 1s\n")

	victim := l.hosts[1]
	pid, ok := l.livePid("host2/docker.pid", "docker.sock")
	if !ok {
		t.Fatal("host2's dockerd is not running")
	}
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	thawed := false
	thaw := func() {
		if !thawed {
			thawed = true
			if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
				t.Errorf("SIGCONT to dockerd %d: %v", pid, err)
			}
		}
	}
	t.Cleanup(thaw)
	t.Logf("stopped host2's dockerd (pid %d)", pid)

	// A bound far below "minutes": the call timeout, a retry or two of
	// connection set-up, and process start.
	bound := 3*callTimeout + 10*time.Second
	for _, args := range [][]string{
		{"inventory", "--env", "lab"},
		{"deploy", v2, "--env", "lab"},
	} {
		start := time.Now()
		r := l.runWith(t, conf, args...)
		took := time.Since(start)
		switch args[0] {
		case "inventory": // shows the fleet as it is, host2 as unreachable
			if !lineWith(r.stdout, victim.Name, "UNREACHABLE") {
				t.Errorf("inventory does not show %s as unreachable:\n%s", victim.Name, r.stdout)
			}
		default:
			if r.code == 0 {
				t.Errorf("gantry %s exited 0 with host2's dockerd stopped", args[0])
			}
		}
		if took > bound {
			t.Errorf("gantry %s took %s with a %s docker call timeout, want under %s", args[0], took.Round(time.Second), callTimeout, bound)
		}
		if !strings.Contains(r.stdout+r.stderr, victim.Name) {
			t.Errorf("gantry %s does not name %s:\n%s%s", args[0], victim.Name, r.stdout, r.stderr)
		}
		if args[0] == "inventory" {
			for _, h := range l.hosts {
				if h != victim && !strings.Contains(r.stdout, h.Name) {
					t.Errorf("inventory does not show %s, whose daemon answers:\n%s", h.Name, r.stdout)
				}
			}
		}
	}
	// While host2's daemon is still stopped: every host serves (host2's
	// container never stopped) and is up in both balancers.
	for _, h := range l.hosts {
		if v := l.versionOn(t, h); v != sha(v1) {
			t.Errorf("%s serves %q, want %s", h.Name, v, sha(v1))
		}
	}
	for _, dir := range l.lbs {
		if prob := l.upstreamProblems(upstream(t, dir)); prob != "" {
			t.Errorf("%s: %s; want every host up", dir, prob)
		}
	}
	thaw()
	l.assertAllOn(t, v1)
}

// TestHostLostForGood: while a deploy runs under load, one host's sshd is
// stopped altogether (the listener and the processes serving gantry) as
// that host is health-checked, so every redial fails. The run fails for
// that host and exits 5; the host stays out of every load balancer (a
// container nobody finished checking never goes back in) and no request
// fails. The report (--report), the JSON summary and inventory agree on
// what every host runs and whether it is in each load balancer. With
// sshd back, the next deploy heals the host.
func TestHostLostForGood(t *testing.T) {
	l := needLab(t)
	l.fresh(t)
	v1 := l.onBaseline(t)
	v2 := l.publish(t)
	conf := l.configEdits(t, "  connect_timeout: 5s\n",
		"  connect_timeout: 2s\n  keepalive_interval: 1s\n  redial_attempts: 2\n  redial_backoff: 200ms\n  docker_call_timeout: 5s\n")
	victim := l.hosts[1]
	report := filepath.Join(t.TempDir(), "report.json")

	load := startLoad()
	run := l.start(t, conf, "deploy", v2, "--env", "lab", "--json", "--report", report)
	if _, ok := run.waitLine(stepStarted(victim.Name, "health"), 3*time.Minute); !ok {
		run.wait(time.Minute)
		load()
		t.Fatalf("never saw %s's health step start", victim.Name)
	}
	sessions := l.sshdSessions(t, "host2/sshd.pid")
	l.stopPiece(t, "host2/sshd.pid", "sshd_config") // lab/up restarts it when the test ends
	signalAll(t, sessions, syscall.SIGKILL)
	r := run.wait(4 * time.Minute)
	assertNoFailedRequests(t, load())
	if r.code != 5 {
		t.Errorf("deploy exited %d with %s unreachable, want 5:\n%s", r.code, victim.Name, r.stderr)
	}

	// What the report says of each host.
	var rep struct {
		Hosts []struct {
			Host      string `json:"host"`
			Ended     string `json:"ended"`
			InService bool   `json:"in_service"`
		} `json:"hosts"`
	}
	data, err := os.ReadFile(report)
	if err != nil || json.Unmarshal(data, &rep) != nil {
		t.Fatalf("--report %s: %v\n%s", report, err, data)
	}
	var summary string
	for _, line := range run.lines {
		if strings.Contains(line, `"type":"summary"`) {
			summary = line
		}
	}
	inv := l.inventory(t)
	for _, h := range rep.Hosts {
		ih, ok := inv.host(h.Host)
		if !ok {
			t.Errorf("inventory does not list %s", h.Host)
			continue
		}
		inLBs := len(ih.LBs) == len(l.lbs)
		for _, st := range ih.LBs {
			inLBs = inLBs && st == "up"
		}
		if h.InService != inLBs {
			t.Errorf("%s: the report says in service %t, inventory says the load balancers have it %v", h.Host, h.InService, ih.LBs)
		}
		if !strings.Contains(summary, fmt.Sprintf(`"host":%q`, h.Host)) || !strings.Contains(summary, fmt.Sprintf(`"in_service":%t`, h.InService)) {
			t.Errorf("%s: the JSON summary does not say in_service %t:\n%s", h.Host, h.InService, summary)
		}
		if h.Host == victim.Name {
			if h.InService || ih.Reachable {
				t.Errorf("%s: report in service %t, inventory reachable %t; want neither", h.Host, h.InService, ih.Reachable)
			}
			continue
		}
		c, ok := ih.container("www")
		if !h.InService || !ih.Reachable || !ok || c.Version != h.Ended || h.Ended != sha(v1) {
			t.Errorf("%s: report ended %q in service %t; inventory reachable %t runs %q; want both on %s, in service (the fleet went back)", h.Host, h.Ended, h.InService, ih.Reachable, c.Version, sha(v1))
		}
	}

	// sshd back: the next deploy repairs the host and moves the fleet.
	l.labUp(t)
	if r := l.run(t, "deploy", v1, "--env", "lab"); r.code != 0 {
		t.Fatalf("deploy %s after sshd came back exited %d:\n%s%s", v1, r.code, r.stdout, r.stderr)
	}
	l.assertAllOn(t, v1)
}
