package e2e

// Helpers for the safety tests: stopping and restoring lab pieces by their
// pid files, watching the load balancers' upstream files during a run,
// running gantry in the background, and checking the fleet's end state.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/gantry-dev/gantry/lab/loadgen"
)

// labPieces are the pid files of every process lab/up starts, with a word
// their command line must contain (so a recycled pid is never signalled).
func (l *lab) labPieces() map[string]string {
	p := map[string]string{
		"registry/registry.pid": "config.yml",
		"builder/docker.pid":    "docker.sock",
	}
	for i := range l.hosts {
		n := fmt.Sprintf("host%d", i+1)
		p[n+"/docker.pid"] = "docker.sock"
		p[n+"/sshd.pid"] = "sshd_config"
	}
	for j := range l.lbs {
		n := fmt.Sprintf("lb%d", j+1)
		p[n+"/sshd.pid"] = "sshd_config"
		p[n+"/nginx.pid"] = "nginx.conf"
	}
	return p
}

// livePid returns the pid in the lab pid file rel (relative to LAB_STATE)
// when that process runs and its command line contains marker.
func (l *lab) livePid(rel, marker string) (int, bool) {
	data, err := os.ReadFile(filepath.Join(l.state, rel))
	if err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 1 {
		return 0, false
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || !strings.Contains(string(cmdline), marker) {
		return 0, false
	}
	if stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
		// "pid (comm) S ...": a zombie has exited already.
		if i := bytes.LastIndexByte(stat, ')'); i > 0 && len(stat) > i+2 && stat[i+2] == 'Z' {
			return 0, false
		}
	}
	return pid, true
}

// stopPiece stops one lab process by the pid in its pid file (SIGTERM),
// waits until it is gone, and restores the lab with lab/up when the test
// ends.
func (l *lab) stopPiece(t *testing.T, rel, marker string) {
	t.Helper()
	t.Cleanup(func() { l.labUp(t) })
	pid, ok := l.livePid(rel, marker)
	if !ok {
		t.Fatalf("lab piece %s is not running (pid file %s): is the lab up?", rel, filepath.Join(l.state, rel))
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatalf("stopping %s (pid %d): %v", rel, pid, err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		if _, alive := l.livePid(rel, marker); !alive {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s (pid %d) did not stop within 15s of SIGTERM", rel, pid)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("lab: stopped %s (pid %d)", rel, pid)
}

// labUp runs lab/up, which restarts whatever lab piece is dead.
func (l *lab) labUp(t *testing.T) {
	t.Helper()
	cmd := exec.Command(filepath.Join(l.root, "lab", "up"))
	cmd.Env = append(os.Environ(), "LAB_STATE="+l.state)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "lab is up") {
		t.Errorf("lab/up failed (%v); the lab may not be whole for the next test:\n%s", err, out)
		return
	}
	t.Logf("lab: lab/up restored the lab")
}

// labLB is a load balancer as the lab config describes it.
type labLB struct {
	Name          string
	Dir           string `yaml:"upstreams_dir"`
	TestCommand   string `yaml:"test_command"`
	ReloadCommand string `yaml:"reload_command"`
}

func (l *lab) loadBalancers(t *testing.T) []labLB {
	t.Helper()
	data, err := os.ReadFile(l.config)
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Environments map[string]struct {
			LoadBalancers []labLB `yaml:"load_balancers"`
		}
	}
	if err := yaml.Unmarshal(data, &c); err != nil {
		t.Fatalf("%s: %v", l.config, err)
	}
	return c.Environments["lab"].LoadBalancers
}

// upstreamProblems says what is wrong with one upstream file: a host
// marked down or a host missing. "" when every host is up.
func (l *lab) upstreamProblems(content string) string {
	var probs []string
	for _, h := range l.hosts {
		found := false
		for _, line := range strings.Split(content, "\n") {
			line = strings.TrimSpace(line)
			if !strings.HasPrefix(line, "server "+h.Address+":8080") {
				continue
			}
			found = true
			if strings.Contains(line, " down") {
				probs = append(probs, h.Name+" is down")
			}
		}
		if !found {
			probs = append(probs, h.Name+" is missing")
		}
	}
	if strings.Contains(content, " down;") && len(probs) == 0 {
		probs = append(probs, `has " down;"`)
	}
	return strings.Join(probs, ", ")
}

// fresh makes sure a test starts from a whole lab: every piece running
// (else lab/up), every host up in every load balancer (else the file is
// rewritten and nginx reloaded, as gantry would), and no deploy lock held
// (else it is released with --force). What had to be repaired is logged:
// it is the previous test's leftover.
func (l *lab) fresh(t *testing.T) {
	t.Helper()
	for rel, marker := range l.labPieces() {
		if _, ok := l.livePid(rel, marker); !ok {
			t.Logf("lab: %s is not running: running lab/up", rel)
			l.labUp(t)
			break
		}
	}
	for _, lb := range l.loadBalancers(t) {
		p := filepath.Join(lb.Dir, "www.conf")
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatalf("lab: %v", err)
		}
		prob := l.upstreamProblems(string(data))
		if prob == "" {
			continue
		}
		t.Logf("lab: a previous run left %s with %s: putting every host back", p, prob)
		var b strings.Builder
		fmt.Fprintf(&b, "# Managed by gantry (service www on %s). Do not edit: rewritten on every deploy.\n", lb.Name)
		for _, h := range l.hosts {
			fmt.Fprintf(&b, "server %s:8080; # %s\n", h.Address, h.Name)
		}
		if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command("sh", "-c", lb.ReloadCommand).CombinedOutput(); err != nil {
			t.Fatalf("lab: reloading %s: %v %s", lb.Name, err, out)
		}
	}
	if r := l.quiet("lock", "status", "www", "--env", "lab"); r.code == 0 && !strings.Contains(r.stdout+r.stderr, "free") {
		t.Logf("lab: the deploy lock is held by a previous run: releasing it with --force\n%s%s", r.stdout, r.stderr)
		l.quiet("lock", "release", "www", "--env", "lab", "--force")
	}
}

// quiet runs gantry with the lab config without logging (for probes).
func (l *lab) quiet(args ...string) result { return l.quietWith(l.config, args...) }

// quietWith runs gantry with config without logging (for probes).
func (l *lab) quietWith(config string, args ...string) result {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, l.gantry, append([]string{"--config", config}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String()}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		r.code = ee.ExitCode()
	} else if err != nil {
		r.code = -1
		r.stderr += err.Error()
	}
	return r
}

// configEdits writes a copy of the lab config with each old string
// replaced by the new one that follows it; every old must be present.
func (l *lab) configEdits(t *testing.T, oldNew ...string) string {
	t.Helper()
	data, err := os.ReadFile(l.config)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(oldNew); i += 2 {
		if !bytes.Contains(data, []byte(oldNew[i])) {
			t.Fatalf("%s has no %q to replace", l.config, oldNew[i])
		}
		data = bytes.ReplaceAll(data, []byte(oldNew[i]), []byte(oldNew[i+1]))
	}
	p := filepath.Join(t.TempDir(), "gantry.yml")
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// configLine returns the one line of the lab config that contains every
// one of parts.
func (l *lab) configLine(t *testing.T, parts ...string) string {
	t.Helper()
	data, err := os.ReadFile(l.config)
	if err != nil {
		t.Fatal(err)
	}
	var found []string
	for _, line := range strings.Split(string(data), "\n") {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(line, p)
		}
		if all {
			found = append(found, line)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%s: want exactly one line containing %q, found %q", l.config, parts, found)
	}
	return found[0]
}

// upstreamWatch polls every upstream file every 10 ms and records each
// content in which its check finds a problem (at most 5).
type upstreamWatch struct {
	stop, done chan struct{}
	seen       []string
	polls      int
}

// watchUpstreams starts an upstreamWatch; problem returns "" for a content
// that is fine, else what is wrong with it.
func (l *lab) watchUpstreams(problem func(content string) string) *upstreamWatch {
	w := &upstreamWatch{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			for _, dir := range l.lbs {
				data, err := os.ReadFile(filepath.Join(dir, "www.conf"))
				if err != nil {
					continue // between gantry's write and rename
				}
				w.polls++
				if prob := problem(string(data)); prob != "" && len(w.seen) < 5 {
					w.seen = append(w.seen, fmt.Sprintf("%s at %s, %s:\n%s", dir, time.Now().Format("15:04:05.000"), prob, data))
				}
			}
			select {
			case <-w.stop:
				return
			case <-tick.C:
			}
		}
	}()
	return w
}

// halt stops the watcher and waits for it.
func (w *upstreamWatch) halt() {
	close(w.stop)
	<-w.done
}

// watchDrains records every content with a host down: proof that a host
// was drained.
func (l *lab) watchDrains() *upstreamWatch {
	return l.watchUpstreams(func(content string) string {
		if strings.Contains(content, " down;") {
			return "a host down"
		}
		return ""
	})
}

// assertNeverDrained stops the watcher and fails the test if any host was
// ever marked down in any load balancer.
func (w *upstreamWatch) assertNeverDrained(t *testing.T) {
	t.Helper()
	w.halt()
	if len(w.seen) > 0 {
		t.Errorf("a host was drained although the deploy should have changed nothing; first seen %s", w.seen[0])
	}
}

// hostState is what runs on one host.
type hostState struct{ version, container string }

// snapshot records the version and container id of www on every host.
func (l *lab) snapshot(t *testing.T) map[string]hostState {
	t.Helper()
	s := map[string]hostState{}
	for _, h := range l.hosts {
		id, _ := docker(h, "inspect", "--format", "{{.Id}}", "www")
		s[h.Name] = hostState{l.versionOn(t, h), id}
	}
	return s
}

// assertUnchanged compares the fleet with a snapshot taken before.
func (l *lab) assertUnchanged(t *testing.T, before map[string]hostState) {
	t.Helper()
	after := l.snapshot(t)
	for _, h := range l.hosts {
		if b, a := before[h.Name], after[h.Name]; b != a {
			t.Errorf("%s changed although nothing should have: before %s (container %.12s), after %s (container %.12s)", h.Name, b.version, b.container, a.version, a.container)
		}
	}
}

// assertServing checks the end state every test demands: on every host the
// www container runs and answers, every load balancer has every host up,
// and the deploy lock is free. It returns the version on each host.
func (l *lab) assertServing(t *testing.T) map[string]string {
	t.Helper()
	versions := map[string]string{}
	for _, h := range l.hosts {
		v := l.versionOn(t, h)
		versions[h.Name] = v
		if strings.HasPrefix(v, "unreachable") {
			t.Errorf("%s does not serve: %s", h.Name, v)
		}
		out, err := docker(h, "inspect", "--format", `{{.State.Running}} {{index .Config.Labels "dev.gantry.version"}}`, "www")
		if err != nil || out != "true "+v {
			t.Errorf("%s: container www is %q (%v), want running with version %s", h.Name, out, err, v)
		}
	}
	for _, dir := range l.lbs {
		if prob := l.upstreamProblems(upstream(t, dir)); prob != "" {
			t.Errorf("%s: %s; want every host up:\n%s", dir, prob, upstream(t, dir))
		}
	}
	l.assertLockFree(t)
	return versions
}

// assertAllOn checks assertServing and that every host runs one of the
// given versions (targets or bare shas).
func (l *lab) assertAllOn(t *testing.T, want ...string) {
	t.Helper()
	ok := map[string]bool{}
	for _, w := range want {
		ok[sha(w)] = true
		if !strings.Contains(w, "@") {
			ok[w] = true
		}
	}
	for name, v := range l.assertServing(t) {
		if !ok[v] {
			t.Errorf("%s runs %q, want one of %v", name, v, want)
		}
	}
}

func (l *lab) assertLockFree(t *testing.T) {
	t.Helper()
	r := l.quiet("lock", "status", "www", "--env", "lab")
	if r.code != 0 || !strings.Contains(r.stdout, "free") {
		t.Errorf("`gantry lock status www --env lab` exited %d, want 0 with \"free\" on stdout:\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// requireLockCommand stops a test early when gantry has no lock command:
// running two deploys at once without a lock would mangle the fleet.
func (l *lab) requireLockCommand(t *testing.T) {
	t.Helper()
	r := l.quiet("lock", "status", "www", "--env", "lab")
	if r.code != 0 {
		t.Fatalf("`gantry lock status www --env lab` exited %d: the deploy lock is not there, so concurrent deploys are not attempted:\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// baseline is one good version shared by the safety tests, published once.
var baseline struct {
	once   sync.Once
	target string
}

// onBaseline puts every host on the shared good version (a no-op when the
// fleet already runs it) and returns it.
func (l *lab) onBaseline(t *testing.T) string {
	t.Helper()
	baseline.once.Do(func() { baseline.target = l.publish(t) })
	if baseline.target == "" {
		t.Fatal("publishing the baseline version failed in an earlier test")
	}
	l.deployOK(t, baseline.target)
	return baseline.target
}

// startLoad sends 100 requests/s through both frontends (2 clients each)
// until the returned function is called; it returns what the load saw.
func startLoad() func() loadgen.Result {
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan loadgen.Result, 1)
	go func() { done <- loadgen.Run(ctx, frontends, 2, 100, 5*time.Minute) }()
	time.Sleep(300 * time.Millisecond) // load is flowing before the deploy starts
	return func() loadgen.Result {
		time.Sleep(300 * time.Millisecond)
		stop()
		return <-done
	}
}

func assertNoFailedRequests(t *testing.T, load loadgen.Result) {
	t.Helper()
	t.Logf("load: %s, versions %v", load, load.Versions)
	if load.Non2xx != 0 || load.Errors != 0 {
		t.Errorf("users saw failures: %s; first: %v", load, load.FirstErrors)
	}
	if load.Requests < 50 {
		t.Errorf("only %d requests ran: the load did not really run", load.Requests)
	}
}

// bgRun is gantry running in the background, its stdout read line by line.
type bgRun struct {
	t      *testing.T
	args   []string
	cmd    *exec.Cmd
	mu     sync.Mutex
	lines  []string
	stderr bytes.Buffer
	done   chan struct{}
	code   int
}

// start runs gantry with config in the background (exec.Command, so that
// the test decides which signal it gets).
func (l *lab) start(t *testing.T, config string, args ...string) *bgRun {
	t.Helper()
	b := &bgRun{t: t, args: args, done: make(chan struct{})}
	b.cmd = exec.Command(l.gantry, append([]string{"--config", config}, args...)...)
	b.cmd.Stderr = &b.stderr
	out, err := b.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := b.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(b.done)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			b.mu.Lock()
			b.lines = append(b.lines, sc.Text())
			b.mu.Unlock()
		}
		err := b.cmd.Wait()
		var ee *exec.ExitError
		switch {
		case errors.As(err, &ee):
			b.code = ee.ExitCode()
			if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
				b.code = 128 + int(ws.Signal())
			}
		case err != nil:
			b.code = -1
		}
	}()
	t.Cleanup(func() {
		select {
		case <-b.done:
		default:
			t.Logf("gantry %v still running at the end of the test: killing it (pid %d)", args, b.cmd.Process.Pid)
			_ = b.cmd.Process.Kill()
			<-b.done
		}
	})
	return b
}

// waitLine waits until a stdout line matches re; false when the run ended
// or timeout passed first.
func (b *bgRun) waitLine(re *regexp.Regexp, timeout time.Duration) (string, bool) {
	return b.waitLineN(re, 1, timeout)
}

// waitLineN waits until n stdout lines matched re and returns the nth;
// false when the run ended or timeout passed first. It looks every 2 ms:
// the crash tests kill gantry the moment a step is reported.
func (b *bgRun) waitLineN(re *regexp.Regexp, n int, timeout time.Duration) (string, bool) {
	deadline := time.Now().Add(timeout)
	seen, matched := 0, 0
	for {
		b.mu.Lock()
		lines := b.lines[seen:]
		seen = len(b.lines)
		b.mu.Unlock()
		for _, line := range lines {
			if re.MatchString(line) {
				if matched++; matched == n {
					return line, true
				}
			}
		}
		select {
		case <-b.done:
			b.mu.Lock()
			more := len(b.lines) > seen
			b.mu.Unlock()
			if !more {
				return "", false
			}
		default:
			if time.Now().After(deadline) {
				return "", false
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
}

// wait waits for the run to end (killing it after timeout) and logs it.
func (b *bgRun) wait(timeout time.Duration) result {
	b.t.Helper()
	select {
	case <-b.done:
	case <-time.After(timeout):
		b.t.Errorf("gantry %v did not end within %s: killing it", b.args, timeout)
		_ = b.cmd.Process.Kill()
		<-b.done
	}
	b.mu.Lock()
	r := result{code: b.code, stdout: strings.Join(b.lines, "\n") + "\n", stderr: b.stderr.String()}
	b.mu.Unlock()
	b.t.Logf("gantry %s (background) -> exit %d\n%s%s", strings.Join(b.args, " "), r.code, r.stdout, r.stderr)
	return r
}

// lineWith reports whether one line of text contains every one of parts.
func lineWith(text string, parts ...string) bool {
	for _, line := range strings.Split(text, "\n") {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(line, p)
		}
		if all {
			return true
		}
	}
	return false
}

// configBrokenOn writes a copy of the lab config (with the extra edits
// oldNew applied) under which every container gantry creates on victim is
// broken: the service gets BROKEN="${host.zone}" and victim's zone becomes
// "1" (the demo app's /healthz answers 500 when BROKEN=1). Any healthy
// version then fails on victim only, after the hosts before it moved; the
// old container a revert restarts keeps its own environment.
func (l *lab) configBrokenOn(t *testing.T, victim labHost, oldNew ...string) string {
	t.Helper()
	p := l.configEdits(t, append([]string{
		"      HOST_NAME: \"${host.name}\"\n", "      HOST_NAME: \"${host.name}\"\n      BROKEN: \"${host.zone}\"\n",
	}, oldNew...)...)
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`(address: ` + regexp.QuoteMeta(victim.Address) + `\n\s+zone: )\S+\n`)
	if !re.Match(data) {
		t.Fatalf("%s: no zone line after address %s", l.config, victim.Address)
	}
	data = re.ReplaceAll(data, []byte("${1}\"1\"\n"))
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
