package lb

import (
	"context"
	"path"
	"time"

	"github.com/gantry-dev/gantry/internal/panics"
	"github.com/gantry-dev/gantry/internal/shell"
)

// Warm apply sessions: opening an SSH session on the load balancer and
// starting its shell costs more than the rest of a change's round trip
// (sshd forks a session process that execs sh). A balancer whose runner
// can start a command ahead (Starter) keeps one apply script started on
// its load balancer, blocked reading its request; a change then costs
// writing the request and reading the answer. The script changes nothing
// until it has read a complete request, so a session abandoned (Close,
// gantry killed, the connection dropped: the script reads the end of its
// input) leaves the load balancer as it was.

// Pending is a command started ahead (Starter.Start) and blocked reading
// its stdin. It is an alias of an interface literal so that a runner's
// Start can return it without importing this package (remote.Pending is
// the same type).
type Pending = interface {
	// Finish gives the command its stdin, closes it, and returns the
	// command's stdout once it exited; a non-zero exit is an error that
	// carries its status (shell.ExitStatus), like Runner.Run's. The whole
	// call ends when ctx does.
	Finish(ctx context.Context, stdin []byte) ([]byte, error)
	// Abandon closes the command's stdin unwritten and ends the session.
	Abandon()
}

// Starter is a Runner that can start a command ahead of the input it
// will read: the session is set up and the command runs, waiting for its
// stdin. A started command holds one of the connection's sessions until
// it is finished or abandoned.
type Starter interface {
	Start(ctx context.Context, command string) (Pending, error)
}

// warmApply is an apply session started ahead: script is the command it
// runs, which must be the one the change needs.
type warmApply struct {
	p      Pending
	script string
}

// startTimeout bounds setting a warm session up.
const startTimeout = 30 * time.Second

// applyCommand is the apply script of the balancer's service file.
func (n *Nginx) applyCommand(ctx context.Context) (string, error) {
	pidFile, err := n.masterPidFile(ctx)
	if err != nil {
		return "", err
	}
	secs := int((n.reloadTimeout() + time.Second - 1) / time.Second)
	return applyScript(path.Join(n.UpstreamsDir, n.service+".conf"), n.TestCommand, n.ReloadCommand, pidFile, secs), nil
}

// arm starts, in the background, an apply session for the next change,
// unless the runner cannot (no Starter), one is ready or being started,
// or the balancer is closed. A session that cannot be started is no
// error: the next change opens its own.
func (n *Nginx) arm(ctx context.Context) {
	st, ok := n.Runner.(Starter)
	if !ok {
		return
	}
	n.warmMu.Lock()
	if n.closed || n.arming || n.warm != nil {
		n.warmMu.Unlock()
		return
	}
	n.arming = true
	n.warmMu.Unlock()
	// The session outlives the caller's call (and its interrupt): Close
	// ends it.
	ctx = context.WithoutCancel(ctx)
	go func() {
		var w *warmApply
		defer func() {
			n.warmMu.Lock()
			n.arming = false
			if w != nil && !n.closed {
				n.warm, w = w, nil
			}
			n.warmMu.Unlock()
			if w != nil {
				w.p.Abandon()
			}
		}()
		defer panics.Recover(func(error) {})
		sctx, cancel := context.WithTimeout(ctx, startTimeout)
		defer cancel()
		script, err := n.applyCommand(sctx)
		if err != nil {
			return
		}
		p, err := st.Start(sctx, script)
		if err != nil {
			return
		}
		w = &warmApply{p: p, script: script}
	}()
}

// takeWarm returns the session started ahead for script, if one is
// ready; the balancer keeps it no more.
func (n *Nginx) takeWarm(script string) Pending {
	n.warmMu.Lock()
	w := n.warm
	n.warm = nil
	n.warmMu.Unlock()
	if w == nil {
		return nil
	}
	if w.script != script {
		w.p.Abandon()
		return nil
	}
	return w.p
}

// runApply runs the apply script with req: through the session started
// ahead when one is ready, else through a session of its own. When the
// session started ahead broke (the connection dropped, it was abandoned:
// no exit status, or the script says it got no complete request), the
// apply is run again the usual way: it is idempotent (see RetryingRunner).
// An exit status of the script otherwise stands.
func (n *Nginx) runApply(ctx context.Context, script string, req []byte) ([]byte, error) {
	if p := n.takeWarm(script); p != nil {
		out, err := p.Finish(ctx, req)
		status := shell.ExitStatus(err)
		if err == nil || ctx.Err() != nil || (status >= 0 && status != exitIncomplete) {
			return out, err
		}
	}
	return n.run(ctx, script, req)
}

// Warm starts the session the balancer's first change will use, in the
// background, when its runner can (Starter); Check does it too. Nothing
// is changed on the load balancer.
func (n *Nginx) Warm(ctx context.Context) {
	n.arm(ctx)
}

// Close ends the apply session the balancer started ahead, if any (its
// script reads the end of its input and exits, changing nothing), and
// starts no other. The balancer still applies changes, each through a
// session of its own. Closing the runner's connection ends the session
// too.
func (n *Nginx) Close() error {
	n.warmMu.Lock()
	n.closed = true
	w := n.warm
	n.warm = nil
	n.warmMu.Unlock()
	if w != nil {
		w.p.Abandon()
	}
	return nil
}
