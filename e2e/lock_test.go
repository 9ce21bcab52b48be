package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// labLock is where the lab keeps its deploy locks: the lock machine's name,
// its SSH address and the directory there.
type labLock struct {
	Host, Addr, Dir string
}

func (l *lab) lockMachine(t *testing.T) labLock {
	t.Helper()
	data, err := os.ReadFile(l.config)
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Environments map[string]struct {
			Lock struct{ Host, Dir string }
			// The lock machine is one of these.
			LoadBalancers []struct{ Name, Address string } `yaml:"load_balancers"`
			Hosts         []struct{ Name, Address string }
		}
	}
	if err := yaml.Unmarshal(data, &c); err != nil {
		t.Fatalf("%s: %v", l.config, err)
	}
	env := c.Environments["lab"]
	lk := labLock{Host: env.Lock.Host, Dir: env.Lock.Dir}
	for _, m := range append(env.LoadBalancers, env.Hosts...) {
		if m.Name == lk.Host {
			lk.Addr = m.Address
		}
	}
	if lk.Host == "" || lk.Addr == "" || lk.Dir == "" {
		t.Fatalf("%s: environments.lab.lock names no machine of the lab (%+v)", l.config, lk)
	}
	return lk
}

// onLockMachine runs a shell command on the lab's lock machine over SSH,
// as an operator would.
func (l *lab) onLockMachine(t *testing.T, lk labLock, command string) string {
	t.Helper()
	keys := filepath.Join(l.state, "keys")
	out, err := exec.Command("ssh", "-i", filepath.Join(keys, "id_ed25519"),
		"-o", "UserKnownHostsFile="+filepath.Join(keys, "known_hosts"), "-o", "StrictHostKeyChecking=yes",
		"-o", "BatchMode=yes", "-p", "2222", "root@"+lk.Addr, command).CombinedOutput()
	if err != nil {
		t.Fatalf("on %s: %s: %v\n%s", lk.Host, command, err, out)
	}
	return string(out)
}

// TestDeadHolderTakenOver: a deployer that died holding the deploy lock
// never blocks the next deploy, and nobody has to run `lock release`:
//   - one killed with SIGKILL on this machine: its process is gone, so the
//     next deploy from here takes its lock over at once;
//   - one on another machine that stopped renewing (a CI runner that
//     vanished): its lock expires by the lock machine's clock and the next
//     deploy takes it over.
//
// Each time the deploy exits 0, says whose lock it took and what that run
// was doing, and leaves every host on the target, in both load balancers,
// with the lock free.
func TestDeadHolderTakenOver(t *testing.T) {
	l := needLab(t)
	l.fresh(t)
	v1 := l.onBaseline(t)
	l.requireLockCommand(t)
	t.Cleanup(func() { l.quiet("lock", "release", "www", "--env", "lab", "--force") })
	v2 := l.publish(t)

	// A deploy killed right after it took the lock, before any change:
	// the plan is shown once the lock is held and the checks passed.
	killed := l.start(t, l.config, "deploy", v2, "--env", "lab", "--message", "the deploy that died")
	if line, ok := killed.waitLine(regexp.MustCompile(`(?i)\bplan\b|batch`), time.Minute); ok {
		t.Logf("killing the deploy (pid %d) after %q", killed.cmd.Process.Pid, line)
	} else {
		t.Fatalf("the deploy never showed its plan")
	}
	pid := killed.cmd.Process.Pid
	_ = killed.cmd.Process.Kill()
	if r := killed.wait(time.Minute); r.code != 137 {
		t.Fatalf("the killed deploy exited %d, want 137 (SIGKILL)", r.code)
	}
	r := l.run(t, "lock", "status", "www", "--env", "lab")
	if !strings.Contains(r.stdout, fmt.Sprintf("pid %d", pid)) || !strings.Contains(r.stdout, "the deploy that died") {
		t.Fatalf("lock status after the kill should show the dead deploy's lock (pid %d):\n%s", pid, r.stdout)
	}
	r = l.run(t, "deploy", v2, "--env", "lab")
	if r.code != 0 {
		t.Errorf("deploy after a deployer was killed holding the lock exited %d, want 0", r.code)
	}
	out := r.stdout + r.stderr
	for _, want := range []string{"took over deploy lock", fmt.Sprintf("process %d on this machine is gone", pid), "the deploy that died", "deploying " + v2} {
		if !lineWith(out, want) {
			t.Errorf("the deploy's output does not say %q", want)
		}
	}
	l.assertAllOn(t, v2)

	// A deployer on another machine that stopped renewing an hour ago, by
	// the lock machine's clock.
	lk := l.lockMachine(t)
	d := filepath.Join(lk.Dir, "lab--www.lock")
	record := `{"id":"0badc0de0badc0de","who":"ci@runner-7","machine":"runner-7","pid":4242,"target":"www@0000000","message":"nightly from runner-7","ttl":30000000000}`
	l.onLockMachine(t, lk, fmt.Sprintf(`mkdir -p %[1]s && printf '%%s\n' '%[2]s' >%[1]s/info.json && t=$(( $(date +%%s) - 3600 )) && echo $t >%[1]s/since && echo $t >%[1]s/renewed`, d, record))
	r = l.run(t, "lock", "status", "www", "--env", "lab")
	if !strings.Contains(r.stdout, "runner-7") || !strings.Contains(r.stdout, "expired") {
		t.Errorf("lock status should show runner-7's lock as expired:\n%s", r.stdout)
	}
	r = l.run(t, "deploy", v1, "--env", "lab")
	if r.code != 0 {
		t.Errorf("deploy after a remote deployer's lock expired exited %d, want 0", r.code)
	}
	out = r.stdout + r.stderr
	for _, want := range []string{"took over deploy lock", "expired", "ci@runner-7", "nightly from runner-7", "deploying www@0000000"} {
		if !lineWith(out, want) {
			t.Errorf("the deploy's output does not say %q", want)
		}
	}
	l.assertAllOn(t, v1)
}

// TestLostLockStopsDeploy: a deploy whose lock is taken from it (here
// released with --force while it runs) notices at its next renewal, starts
// no new host, puts the host in progress back, and exits 1 saying it lost
// the lock; every host serves one of the two versions, in both load
// balancers, and the lock is free.
func TestLostLockStopsDeploy(t *testing.T) {
	l := needLab(t)
	l.fresh(t)
	v1 := l.onBaseline(t)
	l.requireLockCommand(t)
	t.Cleanup(func() { l.quiet("lock", "release", "www", "--env", "lab", "--force") })
	slow := l.publish(t, "--boot-delay", "3s") // several renewals per host

	a := l.start(t, l.config, "deploy", slow, "--env", "lab")
	first := regexp.MustCompile(`^\S+Z\s+` + regexp.QuoteMeta(l.hosts[0].Name) + `\s+restore\s+ok\b`)
	if line, ok := a.waitLine(first, 2*time.Minute); ok {
		t.Logf("releasing the deploy's lock after %q", line)
		if r := l.run(t, "lock", "release", "www", "--env", "lab", "--force"); r.code != 0 {
			t.Errorf("lock release --force exited %d", r.code)
		}
	} else {
		t.Errorf("the deploy never restored %s", l.hosts[0].Name)
	}
	r := a.wait(3 * time.Minute)
	if r.code != 1 {
		t.Errorf("the deploy that lost its lock exited %d, want 1", r.code)
	}
	out := r.stdout + r.stderr
	if !lineWith(out, "deploy lock lost", "released by someone else") {
		t.Errorf("the deploy's output does not say it lost its lock")
	}
	if strings.Contains(r.stdout, "REVERT-FAILED") {
		t.Errorf("a host could not be put back")
	}
	l.assertAllOn(t, v1, slow)
}
