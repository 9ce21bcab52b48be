package remote

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func dialTest(t *testing.T, cfg SSHConfig, addr string) *Conn {
	t.Helper()
	c, err := Dial(t.Context(), cfg, Endpoint{Name: "web1", Addr: addr})
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func runEcho(t *testing.T, ctx context.Context, c *Conn, word string) {
	t.Helper()
	out, err := c.Run(ctx, "echo "+word, nil)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if got := strings.TrimSpace(string(out)); got != word {
		t.Fatalf("Run printed %q, want %q", got, word)
	}
}

// waitDead waits (bounded generously) until the connection in use has
// ended and returns why.
func waitDead(t *testing.T, c *Conn) string {
	t.Helper()
	c.mu.Lock()
	p := c.target
	c.mu.Unlock()
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		t.Fatal("the connection was not closed")
	}
	return p.reason()
}

func TestKeepaliveClosesFrozenConnection(t *testing.T) {
	srv := startSSHServer(t)
	c := dialTest(t, clientFiles(t, srv), srv.Addr)
	runEcho(t, t.Context(), c, "up")

	srv.freeze()
	if why := waitDead(t, c); !strings.Contains(why, "no answer to keepalives") {
		t.Errorf("connection closed because %q, want the keepalive to give up", why)
	}
}

func TestKeepaliveKeepsAnsweringConnection(t *testing.T) {
	srv := startSSHServer(t)
	c := dialTest(t, clientFiles(t, srv), srv.Addr)
	// Many keepalive windows (50ms x 3) pass while a command runs.
	ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
	defer cancel()
	if _, err := c.Run(ctx, "hang", nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Run(hang) = %v, want the deadline", err)
	}
	runEcho(t, t.Context(), c, "still")
	if n := srv.accepts.Load(); n != 1 {
		t.Errorf("server accepted %d connections, want 1: a live connection was dropped", n)
	}
}

func TestRunAndDialBoundedOnFrozenConnection(t *testing.T) {
	srv := startSSHServer(t)
	cfg := clientFiles(t, srv)
	cfg.KeepaliveInterval = time.Hour // only the deadline can end the calls
	c := dialTest(t, cfg, srv.Addr)
	runEcho(t, t.Context(), c, "up")
	srv.freeze()

	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	if _, err := c.Run(ctx, "echo frozen", nil); !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "web1") {
		t.Errorf("Run on a frozen connection = %v, want the deadline, naming the host", err)
	}
	ctx2, cancel2 := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel2()
	if _, err := c.DialContext(ctx2, "tcp", srv.Addr); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("DialContext on a frozen connection = %v, want the deadline", err)
	}
}

func TestRedialAfterFrozenConnection(t *testing.T) {
	srv := startSSHServer(t)
	c := dialTest(t, clientFiles(t, srv), srv.Addr)
	runEcho(t, t.Context(), c, "before")
	srv.freeze()
	// The call waits for the keepalive to give up, then runs on a new
	// connection (the server freezes only the connections it has).
	runEcho(t, t.Context(), c, "after")
	if n := srv.accepts.Load(); n != 2 {
		t.Errorf("server accepted %d connections, want 2 (one redial)", n)
	}
}

func TestRedialAfterCut(t *testing.T) {
	srv := startSSHServer(t)
	c := dialTest(t, clientFiles(t, srv), srv.Addr)
	runEcho(t, t.Context(), c, "before")
	srv.cut()
	waitDead(t, c)
	runEcho(t, t.Context(), c, "after")

	// A forwarded connection (as the Docker client and probes use) works
	// on the redialled connection too.
	srv.cut()
	nc, err := c.DialContext(t.Context(), "tcp", srv.Addr)
	if err != nil {
		t.Fatalf("DialContext after a cut: %v", err)
	}
	nc.Close()
	if n := srv.accepts.Load(); n < 3 {
		t.Errorf("server accepted %d connections, want at least 3 (two redials)", n)
	}
}

func TestConcurrentUsersShareOneRedial(t *testing.T) {
	srv := startSSHServer(t)
	c := dialTest(t, clientFiles(t, srv), srv.Addr)
	runEcho(t, t.Context(), c, "before")
	srv.cut()
	waitDead(t, c)
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for range 20 {
		wg.Go(func() {
			if _, err := c.Run(t.Context(), "echo x", nil); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("Run after a cut: %v", err)
	}
	if n := srv.accepts.Load(); n != 2 {
		t.Errorf("server accepted %d connections, want 2: concurrent users must share one redial", n)
	}
}

func TestStartedCommandIsNotRunAgain(t *testing.T) {
	srv := startSSHServer(t)
	c := dialTest(t, clientFiles(t, srv), srv.Addr)

	srv.cutOnce.Store(true)
	if _, err := c.Run(t.Context(), "cut-once", nil); err == nil {
		t.Error("Run succeeded although the connection was cut while the command ran")
	}
	if n := srv.runs.Load(); n != 1 {
		t.Errorf("command ran %d times, want 1: Run must not repeat a started command", n)
	}

	srv.runs.Store(0)
	srv.cutOnce.Store(true)
	out, err := c.RunIdempotent(t.Context(), "cut-once", nil)
	if err != nil || strings.TrimSpace(string(out)) != "done" {
		t.Fatalf("RunIdempotent = %q, %v; want it run again after the redial", out, err)
	}
	if n := srv.runs.Load(); n != 2 {
		t.Errorf("command ran %d times, want 2", n)
	}
}

func TestCommandErrorIsNotRetried(t *testing.T) {
	srv := startSSHServer(t)
	c := dialTest(t, clientFiles(t, srv), srv.Addr)
	_, err := c.RunIdempotent(t.Context(), "fail", nil)
	if err == nil || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("RunIdempotent(fail) = %v, want the command's error", err)
	}
	if n := srv.runs.Load(); n != 1 {
		t.Errorf("a failing command ran %d times, want 1", n)
	}
	if n := srv.accepts.Load(); n != 1 {
		t.Errorf("server accepted %d connections, want 1: a command error is no reason to redial", n)
	}
}

func TestRefusedChannelIsNotRedialled(t *testing.T) {
	srv := startSSHServer(t)
	c := dialTest(t, clientFiles(t, srv), srv.Addr)
	if _, err := c.DialContext(t.Context(), "unix", "/nonexistent/docker.sock"); err == nil {
		t.Fatal("DialContext to a missing socket succeeded")
	}
	if n := srv.accepts.Load(); n != 1 {
		t.Errorf("server accepted %d connections, want 1: a refused channel is no reason to redial", n)
	}
}

func TestRedialGivesUpWhenHostStaysUnreachable(t *testing.T) {
	srv := startSSHServer(t)
	cfg := clientFiles(t, srv)
	c := dialTest(t, cfg, srv.Addr)
	srv.stop() // listener and connections gone
	waitDead(t, c)
	_, err := c.Run(t.Context(), "echo x", nil)
	if !errors.Is(err, ErrUnreachable) {
		t.Fatalf("Run = %v, want ErrUnreachable", err)
	}
	for _, want := range []string{"web1", srv.Addr, "3 redials"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

func TestRedialAttemptsAreBounded(t *testing.T) {
	srv := startSSHServer(t)
	cfg := clientFiles(t, srv)
	c := dialTest(t, cfg, srv.Addr)
	srv.stop()
	waitDead(t, c)
	// From now on the address accepts and hangs up at once.
	ln := listenAndHangUp(t, srv.Addr)
	if _, err := c.Run(t.Context(), "echo x", nil); !errors.Is(err, ErrUnreachable) {
		t.Fatalf("Run = %v, want ErrUnreachable", err)
	}
	if n := ln.accepts.Load(); n != int32(cfg.RedialAttempts) {
		t.Errorf("%d redials, want %d (ssh.redial_attempts)", n, cfg.RedialAttempts)
	}
}

func TestRedialVerifiesHostKey(t *testing.T) {
	srv := startSSHServer(t)
	c := dialTest(t, clientFiles(t, srv), srv.Addr)
	srv.setHostKey(newSigner(t)) // an impostor answers from now on
	srv.cut()
	waitDead(t, c)
	_, err := c.Run(t.Context(), "echo x", nil)
	if !errors.Is(err, ErrHostKey) {
		t.Fatalf("Run after the host key changed = %v, want ErrHostKey", err)
	}
	if n := srv.accepts.Load(); n != 2 {
		t.Errorf("server accepted %d connections, want 2: a host key mismatch is not retried", n)
	}
}

func TestRedialThroughJumpHost(t *testing.T) {
	jump, target := startSSHServer(t), startSSHServer(t)
	cfg := clientFiles(t, jump, target)
	cfg.JumpHost = "bastion@" + jump.Addr
	c := dialTest(t, cfg, target.Addr)
	runEcho(t, t.Context(), c, "via-jump")

	// The target's connection dies, the jump host's stays: only the
	// target is redialled, through the same jump connection.
	target.cut()
	waitDead(t, c)
	runEcho(t, t.Context(), c, "target-cut")
	if j, tg := jump.accepts.Load(), target.accepts.Load(); j != 1 || tg != 2 {
		t.Errorf("after a target cut: jump accepted %d, target %d; want 1 and 2", j, tg)
	}

	// The jump host's connection freezes: its keepalive closes it, which
	// takes the target's down too, and both are redialled.
	jump.freeze()
	runEcho(t, t.Context(), c, "jump-frozen")
	if j, tg := jump.accepts.Load(), target.accepts.Load(); j != 2 || tg != 3 {
		t.Errorf("after a jump freeze: jump accepted %d, target %d; want 2 and 3", j, tg)
	}
}

type hangUpListener struct {
	accepts atomic.Int32
}

// listenAndHangUp listens on addr and closes every connection at once.
func listenAndHangUp(t *testing.T, addr string) *hangUpListener {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	h := &hangUpListener{}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			h.accepts.Add(1)
			c.Close()
		}
	}()
	return h
}

func TestSessionsPerConnectionStayWithinMaxSessions(t *testing.T) {
	srv := startSSHServer(t)
	srv.maxSessions = 10 // OpenSSH's default MaxSessions
	cfg := clientFiles(t, srv)
	c := dialTest(t, cfg, srv.Addr) // MaxSessions unset: the default, below 10
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := c.Run(t.Context(), "nap", nil); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("Run with 40 commands at once on one connection: %v", err)
	}
	if most := srv.mostSessions.Load(); most > DefaultMaxSessions {
		t.Errorf("%d sessions open at once, want at most %d", most, DefaultMaxSessions)
	}
}
