package e2e

// The crash matrix and the signal tests: a deployer SIGKILLed when a host
// enters a given step, then the same command run once more with no other
// command, must leave the fleet whole; SIGINT/SIGTERM/SIGHUP mid-swap must
// leave every host serving and in every load balancer. All of it under
// continuous load (slow requests included), with no failed request: every
// host stays reachable throughout.

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// crashBatchEdits run two hosts per batch: the matrix stays fast, and the
// host killed mid-step (the first of the second batch) has a neighbour
// mid-swap beside it and a batch already moved before it.
var crashBatchEdits = []string{"    batch_size: 1\n", "    batch_size: 2\n"}

// waitStep waits until the run's JSON stream (docs/events.md) says host
// started step; false when the run ended or timeout passed first.
func (b *bgRun) waitStep(host, step string, timeout time.Duration) bool {
	return b.waitStepN(host, step, "started", 1, timeout)
}

// waitStepN is waitStep for the nth time host's step reports status (a
// host moved back by a revert goes through its steps twice).
func (b *bgRun) waitStepN(host, step, status string, n int, timeout time.Duration) bool {
	re := regexp.MustCompile(`"type":"step",.*"host":` + regexp.QuoteMeta(strconv.Quote(host)) + `,.*"step":` + regexp.QuoteMeta(strconv.Quote(step)) + `,"status":` + regexp.QuoteMeta(strconv.Quote(status)))
	_, ok := b.waitLineN(re, n, timeout)
	return ok
}

// crashCase kills the deployer when host enters step.
type crashCase struct {
	step string
	host labHost
}

// crashAndRerun runs gantry args (with --json) under load, SIGKILLs it the
// moment c.host starts c.step, runs the same command once more and asserts
// the end state: exit 0, every host on want, healthy and up in every load
// balancer, no leftover container, the lock free, no failed request.
func (l *lab) crashAndRerun(t *testing.T, cfg string, c crashCase, want string, args ...string) {
	t.Helper()
	args = append(args, "--json")
	done := startLoad()
	b := l.start(t, cfg, args...)
	if b.waitStep(c.host.Name, c.step, 3*time.Minute) {
		if err := b.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Errorf("SIGKILL: %v", err)
		}
		t.Logf("SIGKILLed gantry (pid %d) as %s entered %s", b.cmd.Process.Pid, c.host.Name, c.step)
	} else {
		t.Errorf("gantry never reported %s starting %s", c.host.Name, c.step)
	}
	if r := b.wait(time.Minute); r.code != 128+int(syscall.SIGKILL) {
		t.Errorf("the first run exited %d, want %d (killed): it ended before the kill", r.code, 128+int(syscall.SIGKILL))
	}
	l.logFleet(t, "after the kill")

	r := l.runWith(t, cfg, args...)
	load := done()
	if r.code != 0 {
		t.Errorf("the second %v exited %d, want 0: it must take over the dead run's lock and heal what it left\n%s", args, r.code, r.stderr)
	}
	l.assertServingTarget(t, want)
	assertNoFailedRequests(t, load)
	if r.code == 4 {
		// Until a dead holder's lock is taken over, tell apart what the
		// healing alone does: release the lock by hand and run once more.
		// Logged only; the test has failed already.
		l.quiet("lock", "release", "www", "--env", "lab", "--force")
		r := l.runWith(t, cfg, args...)
		probs := l.targetProblems(t, want)
		t.Logf("diagnostic: with the dead run's lock released by hand, the same command exits %d; end-state problems: %d %q", r.code, len(probs), probs)
	}
	if t.Failed() {
		l.repair(t, cfg, want)
	}
}

// assertServingTarget checks that every host runs version want in a
// running www container that answers and passes its health check on the
// port it records, that every load balancer sends that host's traffic to
// that port, up, and that the deploy lock is free. It holds for
// stop-first and start-first alike.
func (l *lab) assertServingTarget(t *testing.T, want string) {
	t.Helper()
	for _, p := range l.targetProblems(t, want) {
		t.Error(p)
	}
}

// targetProblems lists what keeps the fleet from the end state
// assertServingTarget demands.
func (l *lab) targetProblems(t *testing.T, want string) []string {
	t.Helper()
	var probs []string
	for _, h := range l.hosts {
		out, err := docker(h, "inspect", "--format", `{{.State.Running}} {{index .Config.Labels "dev.gantry.version"}} {{index .Config.Labels "dev.gantry.port"}}`, "www")
		f := strings.Fields(out)
		if err != nil || len(f) != 3 || f[0] != "true" || f[1] != sha(want) {
			probs = append(probs, fmt.Sprintf("%s: container www is %q (%v), want running version %s", h.Name, out, err, sha(want)))
			continue
		}
		addr := h.Address + ":" + f[2]
		if got, err := curl("http://" + addr + "/"); err != nil || !strings.HasPrefix(got, sha(want)+" ") {
			probs = append(probs, fmt.Sprintf("%s: the app on %s answers %q (%v), want %s", h.Name, addr, got, err, sha(want)))
		}
		if got, err := curl("http://" + addr + "/healthz"); err != nil || got != "ok" {
			probs = append(probs, fmt.Sprintf("%s: /healthz on %s answers %q (%v), want ok", h.Name, addr, got, err))
		}
		for _, dir := range l.lbs {
			if line, wantLine := serverLine(upstream(t, dir), h.Name), "server "+addr+"; # "+h.Name; line != wantLine {
				probs = append(probs, fmt.Sprintf("%s: %s has %q, want %q", dir, h.Name, line, wantLine))
			}
		}
	}
	if r := l.quiet("lock", "status", "www", "--env", "lab"); r.code != 0 || !strings.Contains(r.stdout, "free") {
		probs = append(probs, fmt.Sprintf("the deploy lock is not free: `gantry lock status` exited %d: %s", r.code, strings.TrimSpace(r.stdout+r.stderr)))
	}
	for _, h := range l.hosts {
		if left := leftovers(h); len(left) > 0 {
			probs = append(probs, fmt.Sprintf("%s: leftover containers %q", h.Name, left))
		}
	}
	return probs
}

// leftovers lists the containers on h whose name says a swap was cut off.
func leftovers(h labHost) []string {
	out, err := docker(h, "ps", "-a", "--format", "{{.Names}} {{.State}}")
	if err != nil {
		return []string{"docker ps: " + err.Error()}
	}
	var left []string
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, "-gantry-") {
			left = append(left, line)
		}
	}
	return left
}

// assertNoLeftovers fails the test for any -gantry-old or -gantry-new
// container left on a host.
func (l *lab) assertNoLeftovers(t *testing.T) {
	t.Helper()
	for _, h := range l.hosts {
		if left := leftovers(h); len(left) > 0 {
			t.Errorf("%s: leftover containers %q", h.Name, left)
		}
	}
}

// logFleet logs each host's containers and each load balancer's upstream
// file: what a killed run left, for the reader of a failure.
func (l *lab) logFleet(t *testing.T, when string) {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "fleet %s:\n", when)
	for _, h := range l.hosts {
		out, _ := docker(h, "ps", "-a", "--format", `{{.Names}}={{.State}}:{{.Label "dev.gantry.version"}}`)
		fmt.Fprintf(&b, "  %s: %s\n", h.Name, strings.ReplaceAll(out, "\n", " "))
	}
	for _, dir := range l.lbs {
		data, _ := os.ReadFile(filepath.Join(dir, "www.conf"))
		fmt.Fprintf(&b, "  %s:\n%s", dir, data)
	}
	r := l.quiet("lock", "status", "www", "--env", "lab")
	fmt.Fprintf(&b, "  lock: %s", r.stdout+r.stderr)
	t.Log(b.String())
}

// repair puts the lab back together by hand after a failed crash case, so
// the next case and the next tests start from a whole fleet: the lock is
// released, a cut-off swap's containers are put back under the service's
// name and started, every load balancer gets every host up on the port its
// container records, and want is deployed. What it did is logged; it is
// the repair gantry itself should have made.
func (l *lab) repair(t *testing.T, cfg, want string) {
	t.Helper()
	t.Logf("repair: putting the lab back by hand")
	l.quiet("lock", "release", "www", "--env", "lab", "--force")
	for _, h := range l.hosts {
		_, hasWWW := docker(h, "inspect", "www")
		_, hasOld := docker(h, "inspect", "www-gantry-old")
		if hasWWW != nil && hasOld == nil {
			out, err := docker(h, "rename", "www-gantry-old", "www")
			t.Logf("repair: %s: rename www-gantry-old www: %s %v", h.Name, out, err)
		} else if hasOld == nil {
			out, err := docker(h, "rm", "-f", "www-gantry-old")
			t.Logf("repair: %s: rm www-gantry-old: %s %v", h.Name, out, err)
		}
		if _, err := docker(h, "inspect", "www-gantry-new"); err == nil {
			if _, err := docker(h, "inspect", "www"); err != nil {
				out, err := docker(h, "rename", "www-gantry-new", "www")
				t.Logf("repair: %s: rename www-gantry-new www: %s %v", h.Name, out, err)
			} else {
				out, err := docker(h, "rm", "-f", "www-gantry-new")
				t.Logf("repair: %s: rm www-gantry-new: %s %v", h.Name, out, err)
			}
		}
		if out, err := docker(h, "start", "www"); err != nil {
			t.Logf("repair: %s: start www: %s %v", h.Name, out, err)
		}
	}
	// The started containers listen before they get traffic again.
	for _, h := range l.hosts {
		url := "http://" + h.Address + ":" + wwwPort(h) + "/healthz"
		deadline := time.Now().Add(30 * time.Second)
		for _, err := curl(url); err != nil && time.Now().Before(deadline); _, err = curl(url) {
			time.Sleep(100 * time.Millisecond)
		}
	}
	l.putBackInLBs(t)
	if r := l.runWith(t, cfg, "deploy", want, "--env", "lab"); r.code != 0 {
		t.Logf("repair: deploy %s exited %d", want, r.code)
		l.quiet("lock", "release", "www", "--env", "lab", "--force")
	}
	l.putBackInLBs(t)
	l.logFleet(t, "after the repair")
}

// wwwPort is the port h's www container records (8080 without one).
func wwwPort(h labHost) string {
	port, err := docker(h, "inspect", "--format", `{{index .Config.Labels "dev.gantry.port"}}`, "www")
	if err != nil || !regexp.MustCompile(`^[0-9]+$`).MatchString(port) {
		return "8080"
	}
	return port
}

// putBackInLBs rewrites every load balancer's upstream file with every host
// up on the port its www container records (8080 without one) and reloads
// nginx, as gantry would.
func (l *lab) putBackInLBs(t *testing.T) {
	t.Helper()
	lbs := l.loadBalancers(t)
	for _, lb := range lbs {
		var b strings.Builder
		fmt.Fprintf(&b, "# Managed by gantry (service www on %s). Do not edit: rewritten on every deploy.\n", lb.Name)
		for _, h := range l.hosts {
			fmt.Fprintf(&b, "server %s:%s; # %s\n", h.Address, wwwPort(h), h.Name)
		}
		p := filepath.Join(lb.Dir, "www.conf")
		if old, _ := os.ReadFile(p); string(old) == b.String() {
			continue
		}
		if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
			t.Errorf("repair: %v", err)
			continue
		}
		if out, err := runShell(lb.ReloadCommand); err != nil {
			t.Errorf("repair: reloading %s: %v %s", lb.Name, err, out)
		}
	}
}

// runShell runs a shell command line (a load balancer's reload command).
func runShell(command string) (string, error) {
	out, err := exec.Command("sh", "-c", command).CombinedOutput()
	return string(out), err
}

// crashVersions publishes two versions with the /slow endpoint, puts the
// fleet on the first (stop-first, port 8080) and returns both.
func (l *lab) crashVersions(t *testing.T) (a, b string) {
	t.Helper()
	l.fresh(t)
	a, b = l.publish(t), l.publish(t)
	l.deployOK(t, a)
	return a, b
}

// TestCrashMatrix: for every step a host goes through, SIGKILL the
// deployer when the first host of the second batch enters it, then run
// the same deploy once more: it exits 0 with every host on the target,
// healthy and up in every load balancer, no leftover container, the lock
// free, and no failed request under load throughout. Stop-first and
// start-first, each for every step it goes through.
func TestCrashMatrix(t *testing.T) {
	l := needLab(t)
	a, b := l.crashVersions(t)
	victim := l.hosts[2] // first host of the second batch
	cur := a
	next := func() string {
		if cur == a {
			cur = b
		} else {
			cur = a
		}
		return cur
	}

	stopFirst := l.configEdits(t, crashBatchEdits...)
	for _, step := range []string{"pull", "create", "drain", "stop", "start", "health", "restore", "cleanup"} {
		t.Run("stop-first/"+step, func(t *testing.T) {
			target := next()
			l.crashAndRerun(t, stopFirst, crashCase{step: step, host: victim}, target, "deploy", target, "--env", "lab")
		})
	}

	startFirst := l.configEdits(t, append(append([]string(nil), startFirstEdits...), crashBatchEdits...)...)
	t.Cleanup(func() {
		// Back to the stock, stop-first config on port 8080: a version the
		// hosts do not run moves every host back.
		target := next()
		if r := l.run(t, "deploy", target, "--env", "lab"); r.code != 0 {
			t.Errorf("putting the lab back on %s, stop-first: exit %d\n%s%s", target, r.code, r.stdout, r.stderr)
			l.repair(t, l.config, target)
		}
		l.assertAllOn(t, target)
	})
	// A kill during the pull changes nothing on any host, whatever the
	// order: stop-first/pull covers it.
	for _, step := range []string{"create", "start", "health", "switch", "stop", "cleanup"} {
		t.Run("start-first/"+step, func(t *testing.T) {
			target := next()
			l.crashAndRerun(t, startFirst, crashCase{step: step, host: victim}, target, "deploy", target, "--env", "lab")
		})
	}
}

// TestCrashMatrixRollback: a rollback SIGKILLed mid-way (the first host of
// the second batch entering stop, or health), then the same rollback run
// once more, ends with every host on the version the rollback went back
// to, as the crash matrix demands of a deploy. Hosts the killed run had
// already rolled back must not be rolled "back" to the bad version.
// TestCrashDuringAutomaticRevert: a deploy fails on a later batch and
// the whole fleet goes back; gantry is SIGKILLed as a host moved back has
// its old version's container created under the service's name (not
// started) while the new one still serves as -gantry-old, up in every
// load balancer. The next run must keep what serves (not stop it with
// nothing else running): no request fails, and it ends on the version it
// deploys.
func TestCrashDuringAutomaticRevert(t *testing.T) {
	l := needLab(t)
	l.fresh(t)
	v1 := l.onBaseline(t)
	v2 := l.publish(t)
	moved, victim := l.hosts[0], l.hosts[2] // host1 is on v2 when host3 fails
	cfg := l.configBrokenOn(t, victim, shortDeadline...)
	done := startLoad()
	b := l.start(t, cfg, "deploy", v2, "--env", "lab", "--json")
	// Its second create is the move back's; killed as it ends, before
	// the drain takes effect.
	if b.waitStepN(moved.Name, "create", "ok", 2, 3*time.Minute) {
		if err := b.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Errorf("SIGKILL: %v", err)
		}
		t.Logf("SIGKILLed gantry (pid %d) as %s's move back created its container", b.cmd.Process.Pid, moved.Name)
	} else {
		t.Errorf("gantry never moved %s back", moved.Name)
	}
	if r := b.wait(time.Minute); r.code != 128+int(syscall.SIGKILL) {
		t.Errorf("the first run exited %d, want %d (killed)", r.code, 128+int(syscall.SIGKILL))
	}
	l.logFleet(t, "after the kill")
	r := l.run(t, "deploy", v1, "--env", "lab")
	load := done()
	if r.code != 0 {
		t.Errorf("deploy %s after the kill exited %d, want 0", v1, r.code)
	}
	l.assertServingTarget(t, v1)
	assertNoFailedRequests(t, load)
	if t.Failed() {
		l.repair(t, l.config, v1)
	}
}

func TestCrashMatrixRollback(t *testing.T) {
	l := needLab(t)
	a, b := l.crashVersions(t)
	cfg := l.configEdits(t, crashBatchEdits...)
	victim := l.hosts[2]
	for _, step := range []string{"create", "stop", "health", "restore"} {
		t.Run(step, func(t *testing.T) {
			l.deployOK(t, b) // the release to roll back from; a is the one before it
			l.crashAndRerun(t, cfg, crashCase{step: step, host: victim}, a, "rollback", "www", "--env", "lab")
		})
	}
}

// longRequests sends n requests of d each through the frontends at once
// (round robin over the hosts); the channel gets the first failure, or nil.
func longRequests(n int, d time.Duration) chan error {
	errs := make(chan error, n)
	for i := range n {
		go func() {
			url := fmt.Sprintf("%sslow?ms=%d", frontends[i%len(frontends)], d.Milliseconds())
			out, err := exec.Command("curl", "-fsS", "--max-time", "30", url).CombinedOutput()
			if err != nil {
				err = fmt.Errorf("%s: %w %s", url, err, out)
			}
			errs <- err
		}()
	}
	res := make(chan error, 1)
	go func() {
		var first error
		for range n {
			if err := <-errs; err != nil && first == nil {
				first = err
			}
		}
		res <- first
	}()
	return res
}

// TestSignals: signals a CI system sends to a cancelled job, while a host
// is mid-swap, leave every host serving (old or new version) and in every
// load balancer, the lock free, no leftover container, no failed request,
// and exit 130.
func TestSignals(t *testing.T) {
	l := needLab(t)
	l.fresh(t)
	v1 := l.onBaseline(t)
	// A release that takes 3 s to listen keeps the host mid-swap (in its
	// health check) when the second signal comes 2 s after the first.
	v2 := l.publish(t, "--boot-delay", "3s")
	victim := l.hosts[1]

	// long: 5 s requests are in flight when the host is drained, so the
	// drain is still waiting for them when the second signal comes.
	cases := []struct {
		name    string
		step    string
		long    bool
		signals []syscall.Signal
	}{
		{"SIGINT then SIGTERM at health", "health", false, []syscall.Signal{syscall.SIGINT, syscall.SIGTERM}},
		{"SIGINT then SIGTERM at stop", "stop", false, []syscall.Signal{syscall.SIGINT, syscall.SIGTERM}},
		{"SIGINT then SIGTERM during a long drain", "drain", true, []syscall.Signal{syscall.SIGINT, syscall.SIGTERM}},
		{"SIGHUP at health", "health", false, []syscall.Signal{syscall.SIGHUP}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l.fresh(t)
			l.deployOK(t, v1)
			done := startLoad()
			b := l.start(t, l.config, "deploy", v2, "--env", "lab", "--json")
			var long chan error
			if c.long && b.waitStep(victim.Name, "create", 3*time.Minute) {
				long = longRequests(16, 5*time.Second)
			}
			if b.waitStep(victim.Name, c.step, 3*time.Minute) {
				for i, sig := range c.signals {
					if i > 0 {
						time.Sleep(2 * time.Second) // as CI systems do
					}
					t.Logf("sending %s (%s is in %s)", sig, victim.Name, c.step)
					if err := b.cmd.Process.Signal(sig); err != nil {
						t.Logf("sending %s: %v (gantry already ended)", sig, err)
					}
				}
			} else {
				t.Errorf("gantry never reported %s starting %s", victim.Name, c.step)
			}
			r := b.wait(2 * time.Minute)
			load := done()
			if long != nil {
				if err := <-long; err != nil {
					t.Errorf("a 5 s request failed: %v", err)
				}
			}
			if r.code != 130 {
				t.Errorf("exit %d, want 130 (interrupted)", r.code)
			}
			if !strings.Contains(r.stdout, `"outcome":"interrupted"`) {
				t.Errorf("the JSON summary does not say interrupted")
			}
			assertNoFailedRequests(t, load)
			l.assertAllOn(t, v1, v2)
			l.assertNoLeftovers(t)
			if t.Failed() {
				l.logFleet(t, "after the signals")
				l.repair(t, l.config, v1)
			}
		})
	}
}
