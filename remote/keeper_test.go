package remote

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// keptConfig returns a client config whose connections go through a
// keeper, and runs that keeper in this process (its KeeperCommand cannot
// start: a test that needs a keeper started sets its own).
func keptConfig(t *testing.T, persist time.Duration, servers ...*sshServer) (SSHConfig, chan error) {
	t.Helper()
	cfg := clientFiles(t, servers...)
	// Two hops (command, keeper, host) under -race: a roomier window.
	cfg.KeepaliveInterval = 200 * time.Millisecond
	cfg.Persist = persist
	cfg.PersistDir = shortDir(t)
	cfg.KeeperCommand = []string{"/nonexistent/gantry", "ssh-keeper"}
	files := keeperFilesFor(cfg)
	spec, err := json.Marshal(keeperSpec{SSH: cfg, Socket: files.socket, Pid: files.pid})
	if err != nil {
		t.Fatal(err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- RunKeeper(ctx, bytes.NewReader(spec), w) }()
	exited := make(chan error, 1)
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-exited:
			exited <- err
		case <-time.After(10 * time.Second):
			t.Error("the keeper did not exit")
		}
	})
	go func() { exited <- <-done }()
	if line, _ := bufio.NewReader(r).ReadString('\n'); strings.TrimSpace(line) != "ready" {
		t.Fatalf("keeper said %q, want ready", line)
	}
	return cfg, exited
}

// shortDir is a private temporary directory with a path short enough for
// a unix socket.
func shortDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "gk")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func TestKeptConnectionServesTheNextCommand(t *testing.T) {
	srv := startSSHServer(t)
	cfg, _ := keptConfig(t, time.Minute, srv)
	other, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	go func() {
		for {
			nc, err := other.Accept()
			if err != nil {
				return
			}
			nc.Write([]byte("hello"))
			nc.Close()
		}
	}()

	for _, word := range []string{"first", "second", "third"} {
		c := dialTest(t, cfg, srv.Addr)
		runEcho(t, t.Context(), c, word)
		// Standard input, standard error and the exit status pass through.
		out, err := c.Run(t.Context(), "read-all", []byte("some input"))
		if err != nil || string(out) != "some input" {
			t.Fatalf("read-all = %q, %v", out, err)
		}
		var exit *ssh.ExitError
		if _, err := c.Run(t.Context(), "fail", nil); !errors.As(err, &exit) || exit.ExitStatus() != 3 || !strings.Contains(err.Error(), "boom") {
			t.Fatalf("fail = %v, want exit status 3 with its stderr", err)
		}
		// So do forwarded connections (the Docker client's, probes').
		nc, err := c.DialContext(t.Context(), "tcp", other.Addr().String())
		if err != nil {
			t.Fatalf("DialContext through the keeper: %v", err)
		}
		if b, _ := io.ReadAll(nc); string(b) != "hello" {
			t.Errorf("forwarded connection read %q, want hello", b)
		}
		nc.Close()
		c.Close()
		// The keeper takes the connection back once it sees this command
		// gone; the next command comes later, as the next gantry does.
		time.Sleep(50 * time.Millisecond)
	}
	if n := srv.accepts.Load(); n != 1 {
		t.Errorf("server accepted %d connections, want 1: one connection kept for three commands", n)
	}
}

// trustOnly makes known_hosts list key for addr, and nothing else.
func trustOnly(t *testing.T, cfg SSHConfig, addr string, key ssh.PublicKey) {
	t.Helper()
	line := knownhosts.Line([]string{knownhosts.Normalize(addr)}, key)
	if err := os.WriteFile(cfg.KnownHostsFile, []byte(line+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}

// keptConnection starts a host and a keeper, and leaves the keeper
// holding a connection to the host that one command used.
func keptConnection(t *testing.T) (*sshServer, SSHConfig) {
	t.Helper()
	srv := startSSHServer(t)
	cfg, _ := keptConfig(t, time.Minute, srv)
	c := dialTest(t, cfg, srv.Addr)
	runEcho(t, t.Context(), c, "first command")
	c.Close()
	time.Sleep(50 * time.Millisecond) // the keeper takes it back
	return srv, cfg
}

func TestKeeperHostKeyIsVerifiedByEachCommand(t *testing.T) {
	srv, cfg := keptConnection(t)

	// The operator's known_hosts now says another key: the kept
	// connection is not used.
	trustOnly(t, cfg, srv.Addr, newSigner(t).PublicKey())
	if _, err := Dial(t.Context(), cfg, Endpoint{Name: "web1", Addr: srv.Addr}); !errors.Is(err, ErrHostKey) {
		t.Fatalf("Dial with a changed known_hosts = %v, want ErrHostKey", err)
	}
}

func TestKeptConnectionAfterTheHostKeyWasRotated(t *testing.T) {
	srv, cfg := keptConnection(t)

	// The host gets a new key (its open connections stay), and the
	// operator puts the new key in known_hosts: the next commands work,
	// over a new connection, with no keeper to stop by hand.
	rotated := newSigner(t)
	srv.setHostKey(rotated)
	trustOnly(t, cfg, srv.Addr, rotated.PublicKey())
	for _, word := range []string{"new key", "kept again"} {
		c := dialTest(t, cfg, srv.Addr)
		runEcho(t, t.Context(), c, word)
		c.Close()
		time.Sleep(50 * time.Millisecond)
	}
	if n := srv.accepts.Load(); n != 2 {
		t.Errorf("server accepted %d connections, want 2: the old-key one, then one with the new key, kept", n)
	}
}

func TestKeeperReportsTheHostsOwnFailure(t *testing.T) {
	srv := startSSHServer(t)
	cfg, _ := keptConfig(t, time.Minute, srv)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	_, err = Dial(t.Context(), cfg, Endpoint{Name: "web9", Addr: dead})
	if err == nil || errors.Is(err, errNoKeeper) || !strings.Contains(err.Error(), "web9: ssh connect to "+dead) {
		t.Fatalf("Dial of a closed port through the keeper = %v, want the host's own error", err)
	}
	// A host whose key is not in known_hosts: ErrHostKey, from the keeper.
	other := startSSHServer(t)
	if _, err := Dial(t.Context(), cfg, Endpoint{Name: "web8", Addr: other.Addr}); !errors.Is(err, ErrHostKey) {
		t.Fatalf("Dial of an unknown host through the keeper = %v, want ErrHostKey", err)
	}
	if n := other.accepts.Load(); n != 1 {
		t.Errorf("the unknown host was dialled %d times, want 1 (no direct dial after the keeper's)", n)
	}
}

func TestKeeperRedialsAFrozenHost(t *testing.T) {
	srv := startSSHServer(t)
	cfg, _ := keptConfig(t, time.Minute, srv)
	c := dialTest(t, cfg, srv.Addr)
	runEcho(t, t.Context(), c, "before")
	srv.freeze()
	// As without a keeper: the keepalive gives up, the command redials,
	// and the keeper does not lend the frozen connection again.
	runEcho(t, t.Context(), c, "after")
	c.Close()
	c2 := dialTest(t, cfg, srv.Addr)
	runEcho(t, t.Context(), c2, "next command")
	if n := srv.accepts.Load(); n != 2 {
		t.Errorf("server accepted %d connections, want 2 (one redial, then kept)", n)
	}
}

func TestKeeperClosesAConnectionLeftBusy(t *testing.T) {
	srv := startSSHServer(t)
	cfg, _ := keptConfig(t, time.Minute, srv)
	c := dialTest(t, cfg, srv.Addr)
	runEcho(t, t.Context(), c, "up")
	started := make(chan struct{})
	go func() {
		close(started)
		_, _ = c.Run(context.Background(), "hang", nil)
	}()
	<-started
	for srv.sessions.Load() == 0 {
		time.Sleep(5 * time.Millisecond)
	}
	// The command dies with a command running on a host that no longer
	// answers: that connection is not lent again.
	srv.freeze()
	c.Close()
	time.Sleep(keeperGrace + 200*time.Millisecond)
	c2 := dialTest(t, cfg, srv.Addr)
	runEcho(t, t.Context(), c2, "fresh")
	if n := srv.accepts.Load(); n != 2 {
		t.Errorf("server accepted %d connections, want 2", n)
	}
}

func TestKeeperExitsWhenIdle(t *testing.T) {
	srv := startSSHServer(t)
	cfg, exited := keptConfig(t, 300*time.Millisecond, srv)
	files := keeperFilesFor(cfg)
	c := dialTest(t, cfg, srv.Addr)
	runEcho(t, t.Context(), c, "once")
	c.Close()
	select {
	case err := <-exited:
		exited <- err
		if err != nil {
			t.Fatalf("keeper ended with %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the keeper did not exit once idle")
	}
	for _, f := range []string{files.socket, files.pid} {
		if _, err := os.Stat(f); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s left behind (%v)", f, err)
		}
	}
	// The next command, finding no keeper and unable to start one,
	// dials directly.
	c2 := dialTest(t, cfg, srv.Addr)
	runEcho(t, t.Context(), c2, "direct")
}

func TestKeeperStartedByTheFirstCommand(t *testing.T) {
	srv := startSSHServer(t)
	cfg := clientFiles(t, srv)
	cfg.Persist = time.Minute
	cfg.PersistDir = shortDir(t)
	cfg.KeeperCommand = []string{os.Args[0], "-test.run=^TestHelperKeeperProcess$"}
	t.Setenv("GANTRY_TEST_KEEPER", "1")
	files := keeperFilesFor(cfg)
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(files.log)
			t.Logf("keeper log:\n%s", b)
		}
	})
	for _, word := range []string{"one", "two"} {
		c := dialTest(t, cfg, srv.Addr)
		runEcho(t, t.Context(), c, word)
		c.Close()
	}
	b, err := os.ReadFile(files.pid)
	if err != nil {
		t.Fatalf("no keeper pid file: %v", err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	if pid <= 0 || syscall.Kill(pid, 0) != nil {
		t.Fatalf("keeper pid %q is not running", b)
	}
	if n := srv.accepts.Load(); n != 1 {
		t.Errorf("server accepted %d connections, want 1", n)
	}
	// Stopped by its pid, it leaves no socket; the next command starts
	// another.
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for _, err := os.Stat(files.socket); err == nil && time.Now().Before(deadline); _, err = os.Stat(files.socket) {
		time.Sleep(10 * time.Millisecond)
	}
	c := dialTest(t, cfg, srv.Addr)
	runEcho(t, t.Context(), c, "three")
	c.Close()
	b2, _ := os.ReadFile(files.pid)
	if pid2, _ := strconv.Atoi(strings.TrimSpace(string(b2))); pid2 == pid || pid2 <= 0 {
		t.Errorf("keeper pid after a restart = %q, want a new one", b2)
	} else {
		t.Cleanup(func() { syscall.Kill(pid2, syscall.SIGTERM) })
	}
}

// TestHelperKeeperProcess is the keeper process TestKeeperStartedByTheFirstCommand starts.
func TestHelperKeeperProcess(t *testing.T) {
	if os.Getenv("GANTRY_TEST_KEEPER") != "1" {
		t.Skip("run as a keeper by TestKeeperStartedByTheFirstCommand")
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	if err := RunKeeper(ctx, os.Stdin, os.Stdout); err != nil {
		t.Fatal(err)
	}
}

func TestAnUpgradedBinaryHasAKeeperOfItsOwn(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "gantry")
	if err := os.WriteFile(bin, []byte("v1"), 0o700); err != nil {
		t.Fatal(err)
	}
	cfg := SSHConfig{User: "deploy", KnownHostsFile: "/k", Persist: time.Minute, PersistDir: "/run/x", KeeperCommand: []string{bin, "ssh-keeper"}}
	before := keeperFilesFor(cfg)
	if again := keeperFilesFor(cfg); again != before {
		t.Fatalf("the same login and binary name two keepers: %v, %v", before, again)
	}
	// The binary is replaced by another version, as an upgrade does.
	if err := os.WriteFile(bin, []byte("v2, longer"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(bin, time.Now(), time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if after := keeperFilesFor(cfg); after.socket == before.socket {
		t.Errorf("after an upgrade the keeper is still %s: the old binary's keeper would serve the new one", after.socket)
	}
}

func TestNoKeeperIsSaidAndTheHostDialledDirectly(t *testing.T) {
	srv := startSSHServer(t)
	cfg := clientFiles(t, srv)
	cfg.Persist = time.Minute
	cfg.KeeperCommand = []string{"/nonexistent/gantry", "ssh-keeper"}
	open := shortDir(t)
	if err := os.Chmod(open, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		dir  string
		want string
	}{
		{open, "chmod 700 " + open},
		{"/" + strings.Repeat("d", 90), "set ssh.persist_dir to a shorter directory"},
	} {
		cfg.PersistDir = tc.dir
		var warned []error
		cfg.KeeperWarn = func(err error) { warned = append(warned, err) }
		c := dialTest(t, cfg, srv.Addr)
		runEcho(t, t.Context(), c, "direct")
		c.Close()
		if len(warned) != 1 || !strings.Contains(warned[0].Error(), tc.want) {
			t.Errorf("persist_dir %s: warned %v, want one warning saying %q", tc.dir, warned, tc.want)
		}
	}
	if _, err := os.Stat("/" + strings.Repeat("d", 90)); err == nil {
		t.Error("the too long persist_dir was created")
	}
}
