package remote

import (
	"errors"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/internal/shell"
	"github.com/gantry-dev/gantry/lb"
)

// A connection starts the load balancer's apply sessions ahead.
var _ lb.Starter = (*Conn)(nil)

// waitSessions waits (bounded generously) until the server has n sessions
// open.
func waitSessions(t *testing.T, srv *sshServer, n int32) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for srv.sessions.Load() != n {
		if time.Now().After(deadline) {
			t.Fatalf("server has %d sessions open, want %d", srv.sessions.Load(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestStartedCommandGetsItsInputAtFinish: a command started ahead runs
// with the input Finish gives it; abandoned, it reads the end of its
// input, and its session ends.
func TestStartedCommandGetsItsInputAtFinish(t *testing.T) {
	srv := startSSHServer(t)
	c := dialTest(t, clientFiles(t, srv), srv.Addr)
	p, err := c.Start(t.Context(), "read-all")
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	out, err := p.Finish(t.Context(), []byte("hello\n"))
	if err != nil || string(out) != "hello\n" {
		t.Fatalf("Finish = %q, %v; want the input echoed", out, err)
	}
	if _, err := p.Finish(t.Context(), []byte("again\n")); err == nil {
		t.Error("a second Finish succeeded")
	}
	p, err = c.Start(t.Context(), "read-all")
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	waitSessions(t, srv, 1)
	p.Abandon()
	waitSessions(t, srv, 0)
	if _, err := p.Finish(t.Context(), []byte("late\n")); err == nil {
		t.Error("Finish after Abandon succeeded")
	}
}

// TestStartedCommandsNeverKeepOthersWaiting: a command started ahead
// holds a session, but Start takes none when all are in use, and a Run
// that finds none free takes one from a command started ahead.
func TestStartedCommandsNeverKeepOthersWaiting(t *testing.T) {
	srv := startSSHServer(t)
	cfg := clientFiles(t, srv)
	cfg.MaxSessions = 2
	c := dialTest(t, cfg, srv.Addr)
	first, err := c.Start(t.Context(), "read-all")
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	second, err := c.Start(t.Context(), "read-all")
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	if _, err := c.Start(t.Context(), "read-all"); !errors.Is(err, ErrNoFreeSession) {
		t.Errorf("a third Start with 2 sessions = %v, want ErrNoFreeSession", err)
	}
	runEcho(t, t.Context(), c, "now")
	if _, err := first.Finish(t.Context(), []byte("x\n")); err == nil {
		t.Error("the longest-waiting command, given up for a Run, still ran")
	}
	if out, err := second.Finish(t.Context(), []byte("kept\n")); err != nil || string(out) != "kept\n" {
		t.Errorf("the other command started ahead: %q, %v", out, err)
	}
}

// TestStartedCommandOnACutConnection: a connection cut while a command
// waits makes its Finish fail without an exit status (the caller may run
// it again); the connection is redialled for the next command.
func TestStartedCommandOnACutConnection(t *testing.T) {
	srv := startSSHServer(t)
	c := dialTest(t, clientFiles(t, srv), srv.Addr)
	p, err := c.Start(t.Context(), "read-all")
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	srv.cut()
	waitDead(t, c)
	_, err = p.Finish(t.Context(), []byte("hello\n"))
	if err == nil || shell.ExitStatus(err) != -1 {
		t.Fatalf("Finish on a cut connection = %v (exit status %d), want an error without one", err, shell.ExitStatus(err))
	}
	runEcho(t, t.Context(), c, "again")
}
