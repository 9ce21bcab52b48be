package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestKeptConnections: with ssh.persist, the first command leaves a keeper
// holding a connection to every machine, and the next deploy goes through
// those same connections (no new SSH connection to any sshd), under load
// with no failed request. A deployer SIGKILLed mid-swap with the keeper
// between it and the hosts is healed by the next run. A host key changed
// in known_hosts is refused although the keeper holds a connection it
// verified with the old key; a key rotated on the host and in known_hosts
// is used by the next run with no keeper to stop. Stopped by its pid, the
// keeper leaves no socket, and the next command starts another.
func TestKeptConnections(t *testing.T) {
	l := needLab(t)
	a, b := l.crashVersions(t)

	dir, err := os.MkdirTemp("", "gk")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stopKeepers(t, dir)
		os.RemoveAll(dir)
	})
	known := filepath.Join(l.state, "keys", "known_hosts")
	good, err := os.ReadFile(known)
	if err != nil {
		t.Fatal(err)
	}
	kh := filepath.Join(dir, "known_hosts")
	if err := os.WriteFile(kh, good, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := l.configEdits(t,
		"known_hosts: "+known, "known_hosts: "+kh,
		"  connect_timeout: 5s\n", "  connect_timeout: 5s\n  persist: 60s\n  persist_dir: "+dir+"\n")

	if r := l.runWith(t, cfg, "deploy", b, "--env", "lab"); r.code != 0 {
		t.Fatalf("first deploy through a keeper exited %d", r.code)
	}
	pid := keeperPid(t, dir)
	kept := sshConnections(t, pid)
	if want := len(l.hosts) + 2; len(kept) != want {
		t.Errorf("the keeper holds %d SSH connections %v, want %d (every host and load balancer)", len(kept), kept, want)
	}

	t.Run("next deploy uses them", func(t *testing.T) {
		done := startLoad()
		r := l.runWith(t, cfg, "deploy", a, "--env", "lab")
		load := done()
		if r.code != 0 {
			t.Fatalf("deploy exited %d", r.code)
		}
		l.assertServingTarget(t, a)
		assertNoFailedRequests(t, load)
		if now := sshConnections(t, pid); !slices.Equal(now, kept) {
			t.Errorf("the keeper's SSH connections went from %v to %v: the deploy did not use the kept ones", kept, now)
		}
	})

	t.Run("killed mid-swap, healed by the next run", func(t *testing.T) {
		l.crashAndRerun(t, l.configEditsOf(t, cfg, crashBatchEdits...), crashCase{step: "stop", host: l.hosts[2]}, b, "deploy", b, "--env", "lab")
		if got := keeperPid(t, dir); got != pid {
			t.Errorf("keeper pid %d, want %d: the keeper outlives the deployer killed", got, pid)
		}
	})

	t.Run("changed host key refused", func(t *testing.T) {
		victim := l.hosts[1]
		_, other := newKeyPair(t, "other")
		knownHostsWith(t, kh, good, victim.Address, other)
		defer os.WriteFile(kh, good, 0o600)
		before := l.snapshot(t)
		r := l.runWith(t, cfg, "deploy", a, "--env", "lab")
		if r.code != 3 {
			t.Errorf("exit %d, want 3 (refused by pre-flight)", r.code)
		}
		for _, want := range []string{victim.Name, "HOST KEY CHANGED", "host key verification failed"} {
			if !strings.Contains(r.stderr, want) {
				t.Errorf("stderr does not say %q:\n%s", want, r.stderr)
			}
		}
		l.assertUnchanged(t, before)
		l.assertLockFree(t)
	})

	t.Run("host key rotated, next run uses the new one", func(t *testing.T) {
		// A run through the keeper keeps a connection to every machine
		// again (the refusal above dropped the victim's).
		if r := l.runWith(t, cfg, "deploy", a, "--env", "lab"); r.code != 0 {
			t.Fatalf("no-op deploy exited %d", r.code)
		}
		before := sshConnections(t, pid)
		victim := l.hosts[1]
		newPub := l.rotateHostKey(t, victim.Name, victim.Address)
		// The operator puts the new key in known_hosts.
		knownHostsWith(t, kh, good, victim.Address, newPub)
		defer os.WriteFile(kh, good, 0o600)
		r := l.runWith(t, cfg, "deploy", b, "--env", "lab")
		if r.code != 0 {
			t.Fatalf("deploy after the host key was rotated and known_hosts updated exited %d: the keeper's old-key connection was lent", r.code)
		}
		l.assertServingTarget(t, b)
		l.assertLockFree(t)
		after := sshConnections(t, pid)
		if len(after) != len(before) {
			t.Errorf("the keeper holds %v, want %d connections", after, len(before))
		}
		if changed := len(slices.DeleteFunc(slices.Clone(after), func(c string) bool { return slices.Contains(before, c) })); changed != 1 {
			t.Errorf("connections before %v, after %v: want exactly the victim's replaced", before, after)
		}
		if got := keeperPid(t, dir); got != pid {
			t.Errorf("keeper pid %d, want %d: nobody needs to stop the keeper", got, pid)
		}
	})

	t.Run("keeper stopped, another started", func(t *testing.T) {
		if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(10 * time.Second)
		for syscall.Kill(pid, 0) == nil && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if socks, _ := filepath.Glob(filepath.Join(dir, "*.sock")); len(socks) != 0 {
			t.Errorf("the stopped keeper left %v", socks)
		}
		r := l.runWith(t, cfg, "deploy", a, "--env", "lab")
		if r.code != 0 {
			t.Fatalf("deploy after the keeper stopped exited %d", r.code)
		}
		l.assertServingTarget(t, a)
		if next := keeperPid(t, dir); next == pid {
			t.Errorf("keeper pid still %d", pid)
		}
	})
}

// rotateHostKey gives lab host name's sshd a new ed25519 host key (SIGHUP:
// its open connections stay) and returns the new public key ("type
// base64"). The old key is put back, the same way, when the test ends.
func (l *lab) rotateHostKey(t *testing.T, name, addr string) string {
	t.Helper()
	key := filepath.Join(l.state, name, "ssh_host_ed25519_key")
	oldKey, err := os.ReadFile(key)
	if err != nil {
		t.Fatal(err)
	}
	oldPub, err := os.ReadFile(key + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	fresh, _ := newKeyPair(t, name)
	newKey, _ := os.ReadFile(fresh)
	newPub, _ := os.ReadFile(fresh + ".pub")
	use := func(priv, pub []byte) {
		if err := os.WriteFile(key, priv, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(key+".pub", pub, 0o644); err != nil {
			t.Fatal(err)
		}
		pid, ok := l.livePid(name+"/sshd.pid", "sshd")
		if !ok {
			t.Fatalf("sshd of %s is not running", name)
		}
		if err := syscall.Kill(pid, syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		want := strings.Join(strings.Fields(string(pub))[:2], " ")
		deadline := time.Now().Add(15 * time.Second)
		for {
			out, _ := exec.Command("ssh-keyscan", "-t", "ed25519", "-p", "2222", addr).Output()
			if strings.Contains(string(out), want) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("sshd of %s still offers %q, want %s", name, out, want)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	use(newKey, newPub)
	t.Cleanup(func() { use(oldKey, oldPub) })
	return strings.Join(strings.Fields(string(newPub))[:2], " ")
}

// newKeyPair makes an ed25519 key pair with ssh-keygen (comment in the
// public key) and returns its private key file and its public key as
// "type base64".
func newKeyPair(t *testing.T, comment string) (file, pub string) {
	t.Helper()
	file = filepath.Join(t.TempDir(), "key")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", file).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v %s", err, out)
	}
	b, err := os.ReadFile(file + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	return file, strings.Join(strings.Fields(string(b))[:2], " ")
}

// knownHostsWith writes to kh the known_hosts lines of good, the lab
// machine at addr's with key pub ("type base64") instead of its own.
func knownHostsWith(t *testing.T, kh string, good []byte, addr, pub string) {
	t.Helper()
	var lines []string
	for _, line := range strings.Split(strings.TrimSpace(string(good)), "\n") {
		if strings.HasPrefix(line, "["+addr+"]:") {
			line = strings.Fields(line)[0] + " " + pub
		}
		lines = append(lines, line)
	}
	if err := os.WriteFile(kh, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}

// configEditsOf is configEdits on another config file than the lab's.
func (l *lab) configEditsOf(t *testing.T, config string, oldNew ...string) string {
	t.Helper()
	saved := l.config
	l.config = config
	defer func() { l.config = saved }()
	return l.configEdits(t, oldNew...)
}

// keeperPid is the pid of the one keeper running in dir.
func keeperPid(t *testing.T, dir string) int {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "*.pid"))
	if len(files) != 1 {
		t.Fatalf("keeper pid files in %s: %v, want one", dir, files)
	}
	b, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || syscall.Kill(pid, 0) != nil {
		t.Fatalf("keeper pid file %s says %q: not a running process", files[0], b)
	}
	return pid
}

// stopKeepers stops the keepers of dir by their pid files.
func stopKeepers(t *testing.T, dir string) {
	files, _ := filepath.Glob(filepath.Join(dir, "*.pid"))
	for _, f := range files {
		b, _ := os.ReadFile(f)
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 0 {
			_ = syscall.Kill(pid, syscall.SIGTERM)
		}
	}
}

// sshConnections lists process pid's established TCP connections to an
// sshd (port 2222) as "local->remote", sorted.
func sshConnections(t *testing.T, pid int) []string {
	t.Helper()
	out, err := exec.Command("ss", "-Htnp", "state", "established", "( dport = :2222 )").Output()
	if err != nil {
		t.Fatalf("ss: %v", err)
	}
	var conns []string
	for _, line := range strings.Split(string(out), "\n") {
		if !strings.Contains(line, "pid="+strconv.Itoa(pid)+",") {
			continue
		}
		f := strings.Fields(line)
		if len(f) >= 4 {
			conns = append(conns, f[2]+"->"+f[3])
		}
	}
	slices.Sort(conns)
	return conns
}
