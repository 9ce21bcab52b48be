package e2e

// nginx as it is configured in the wild (issue 12, point 4): no pid_file in
// gantry's config, and a master that rejects a reload although the config
// test passes.

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestDrainWaitsWithoutPidFile: with no pid_file in the config, gantry
// finds nginx's pid file itself, so a drain still waits for the requests
// in flight on the host: 3 s requests sent just before the first host is
// drained all succeed although its container is killed 1 s after it is
// told to stop.
func TestDrainWaitsWithoutPidFile(t *testing.T) {
	l := needLab(t)
	l.fresh(t)
	l.onBaseline(t)
	v2 := l.publish(t)
	edits := []string{"stop_timeout: 10s", "stop_timeout: 1s", "batch_size: 1", "batch_size: 2"}
	for _, lb := range l.loadBalancers(t) {
		edits = append(edits, l.configLine(t, "pid_file:", "/"+lb.Name+"/")+"\n", "")
	}
	cfg := l.configEdits(t, edits...)
	if data, _ := os.ReadFile(cfg); bytes.Contains(data, []byte("pid_file")) {
		t.Fatalf("the test config still sets pid_file:\n%s", data)
	}

	run := l.start(t, cfg, "deploy", v2, "--env", "lab", "--json")
	firstBatch := regexp.MustCompile(`"host":"([^"]+)","batch":1,"step":"create","status":"started"`)
	if _, ok := run.waitLine(firstBatch, 2*time.Minute); !ok {
		r := run.wait(time.Minute)
		t.Fatalf("no host of the first batch started its create step (exit %d):\n%s", r.code, r.stderr)
	}
	// Sent while the first batch is being prepared, before its drain: each
	// nginx worker sends its requests round robin, so with 16 on 4 workers
	// some land on the first batch.
	slow := slowRequests(16, 3*time.Second)
	r := run.wait(3 * time.Minute)
	bodies, errs := slow()
	drained := map[string]bool{}
	run.mu.Lock()
	for _, line := range run.lines {
		if m := firstBatch.FindStringSubmatch(line); m != nil {
			drained[m[1]] = true
		}
	}
	run.mu.Unlock()

	if r.code != 0 {
		t.Errorf("deploy exited %d, want 0:\n%s", r.code, r.stderr)
	}
	for _, err := range errs {
		t.Errorf("a request in flight during the drain failed: %v", err)
	}
	onFirst := 0
	for _, b := range bodies {
		_, host, _ := strings.Cut(b, " ")
		if drained[host] {
			onFirst++
		}
	}
	t.Logf("%d of %d slow requests were served by the first batch %v", onFirst, len(bodies), drained)
	if onFirst == 0 && len(errs) == 0 {
		t.Errorf("no slow request was served by the first batch %v: the test proved nothing (bodies %q)", drained, bodies)
	}
	l.assertAllOn(t, v2)
}

// slowRequests sends n requests of d each through the frontends at once;
// the function returned waits for them and returns the bodies of those that
// succeeded ("VERSION HOST") and the failures.
func slowRequests(n int, d time.Duration) func() ([]string, []error) {
	type answer struct {
		body string
		err  error
	}
	ch := make(chan answer, n)
	for i := range n {
		go func() {
			url := fmt.Sprintf("%sslow?ms=%d", frontends[i%len(frontends)], d.Milliseconds())
			out, err := exec.Command("curl", "-fsS", "--max-time", "60", url).CombinedOutput()
			if err != nil {
				err = fmt.Errorf("%s: %w %s", url, err, out)
			}
			ch <- answer{strings.TrimSpace(string(out)), err}
		}()
	}
	return func() ([]string, []error) {
		var bodies []string
		var errs []error
		for range n {
			a := <-ch
			if a.err != nil {
				errs = append(errs, a.err)
			} else {
				bodies = append(bodies, a.body)
			}
		}
		return bodies, errs
	}
}

// TestRejectedReloadChangesNothing: when the nginx master rejects a reload
// although the config test passes (here: lb2's nginx.conf gains a listen
// on an address another process holds; nginx -t ignores a busy address, the
// master does not), nginx -s reload still exits 0. gantry sees that no new
// worker started, puts the previous upstream file back, does not touch the
// host, and stops the deploy: exit 1, every host on the old version, in
// every load balancer, the upstream files as they were, the lock free.
func TestRejectedReloadChangesNothing(t *testing.T) {
	l := needLab(t)
	l.fresh(t)
	v1 := l.onBaseline(t)
	v2 := l.publish(t)
	lbs := l.loadBalancers(t)
	bad := lbs[len(lbs)-1]
	cfg := l.configEdits(t, "drain_timeout: 30s", "drain_timeout: 30s\n        reload_timeout: 3s")
	before := l.snapshot(t)
	files := map[string]string{}
	for _, dir := range l.lbs {
		files[dir] = upstream(t, dir)
	}

	l.breakReloads(t, bad)
	r := l.runWith(t, cfg, "deploy", v2, "--env", "lab")

	if r.code != 1 {
		t.Errorf("exit %d, want 1 (the deploy failed, nothing was left changed)", r.code)
	}
	out := r.stdout + r.stderr
	if !strings.Contains(out, bad.Name) || !strings.Contains(out, "did not take the new configuration") {
		t.Errorf("the output does not say that %s did not take the new configuration:\n%s", bad.Name, out)
	}
	if !strings.Contains(out, "restored") {
		t.Errorf("the output does not say the previous upstream file was restored:\n%s", out)
	}
	if log, err := os.ReadFile(filepath.Join(l.state, bad.Name, "error.log")); err == nil && !bytes.Contains(log, []byte("could not bind")) {
		t.Errorf("%s's error log does not show the rejected reload: the test did not set up what it tests", bad.Name)
	}
	for _, dir := range l.lbs {
		if got := upstream(t, dir); got != files[dir] {
			t.Errorf("%s/www.conf changed:\n%s\nwas:\n%s", dir, got, files[dir])
		}
	}
	l.assertUnchanged(t, before)
	l.assertAllOn(t, v1)
}

// breakReloads makes lb's nginx master reject every reload while its
// config test passes: its nginx.conf gains a server listening on an
// address this test holds. At the end of the test the file is put back,
// nginx reloaded and seen to take it, and the address let go.
func (l *lab) breakReloads(t *testing.T, lb labLB) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(l.state, lb.Name, "nginx.conf")
	orig, err := os.ReadFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	end := bytes.LastIndexByte(orig, '}') // the http block's
	if end < 0 {
		t.Fatalf("%s has no http block", conf)
	}
	broken := fmt.Sprintf("%s    server { listen %s; return 204; } # added by %s\n%s", orig[:end], ln.Addr(), t.Name(), orig[end:])
	if err := os.WriteFile(conf, []byte(broken), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		defer ln.Close() // only once nginx no longer wants it
		if err := os.WriteFile(conf, orig, 0o644); err != nil {
			t.Errorf("putting back %s: %v", conf, err)
			return
		}
		l.reloadAndConfirm(t, lb)
	})
	if out, err := runShell(lb.TestCommand); err != nil {
		t.Fatalf("%s's config test fails with the listen added (%v): %s", lb.Name, err, out)
	}
}

// reloadAndConfirm reloads lb's nginx and waits until its master runs new
// workers.
func (l *lab) reloadAndConfirm(t *testing.T, lb labLB) {
	t.Helper()
	pidFile := filepath.Join(l.state, lb.Name, "nginx.pid")
	workers := func() string {
		data, _ := os.ReadFile(pidFile)
		m, _ := strconv.Atoi(strings.TrimSpace(string(data)))
		out, _ := exec.Command("ps", "-o", "pid=", "--ppid", strconv.Itoa(m)).Output()
		return strings.Join(strings.Fields(string(out)), " ")
	}
	old := workers()
	if out, err := runShell(lb.ReloadCommand); err != nil {
		t.Errorf("reloading %s: %v %s", lb.Name, err, out)
		return
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		now := workers()
		if now != "" && now != old && !sharesAny(now, old) {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("%s: nginx kept its workers (%s) after a reload with its nginx.conf put back", lb.Name, old)
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// sharesAny reports whether two space-separated pid lists share a pid.
func sharesAny(a, b string) bool {
	in := map[string]bool{}
	for _, p := range strings.Fields(b) {
		in[p] = true
	}
	for _, p := range strings.Fields(a) {
		if in[p] {
			return true
		}
	}
	return false
}

// TestNoPidFileRefusedInPreflight: when pid_file is not set and nginx
// cannot say where its pid file is (here the test command is not nginx),
// pre-flight refuses, naming the load balancer and the pid_file key.
func TestNoPidFileRefusedInPreflight(t *testing.T) {
	l := needLab(t)
	l.fresh(t)
	l.onBaseline(t)
	v1 := l.publish(t) // a change: a run with nothing to change has no pre-flight
	lbs := l.loadBalancers(t)
	bad := lbs[len(lbs)-1]
	pidLine := l.configLine(t, "pid_file:", "/"+bad.Name+"/")
	testLine := l.configLine(t, "test_command:", "/"+bad.Name+"/")
	cfg := l.configEdits(t, pidLine+"\n", "", testLine, "        test_command: \"true\"")
	before := l.snapshot(t)
	r := l.runWith(t, cfg, "deploy", v1, "--env", "lab")
	if r.code != 3 {
		t.Errorf("exit %d, want 3 (refused by pre-flight)", r.code)
	}
	for _, want := range []string{bad.Name, "pid_file"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr does not contain %q:\n%s", want, r.stderr)
		}
	}
	l.assertUnchanged(t, before)
	l.assertServing(t)
}
