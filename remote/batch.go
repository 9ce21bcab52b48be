package remote

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gantry-dev/gantry/internal/panics"
	"github.com/gantry-dev/gantry/internal/shell"
)

// Batch runs read-only commands given to it together in one remote session
// instead of one session each: on a machine where starting a session
// (sshd's fork, the login shell) costs more than the command, several
// reads at once cost about one. Callers say how many commands are coming
// (Expect); the batch runs when they all arrived, or window after the
// first arrived, whichever is first. Each command still runs in a
// subshell of its own, with its own output, error output and exit
// status; a failed one is an error carrying its status
// (shell.ExitStatus), as Run's is.
//
// Only commands safe to run twice may go through a Batch (the batch is
// run again after a broken connection, as RunIdempotent runs a command),
// and without input (a command with input runs on its own).
type Batch struct {
	conn   idempotentRunner
	name   string
	window time.Duration

	mu       sync.Mutex
	pending  []*batched
	expected int
	round    int // counts the batches started, so a late timer knows its own
}

type batched struct {
	command string
	done    chan struct{}
	out     []byte
	err     error
}

// idempotentRunner runs a command safe to run twice (Conn).
type idempotentRunner interface {
	RunIdempotent(ctx context.Context, command string, stdin []byte) ([]byte, error)
}

// NewBatch returns a Batch on conn; window bounds the wait for the
// commands expected.
func NewBatch(conn *Conn, window time.Duration) *Batch {
	return &Batch{conn: conn, name: conn.Endpoint.Name, window: window}
}

// Expect says n more commands are coming for the next batch.
func (b *Batch) Expect(n int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.expected += n
}

// Run runs command in the next batch and returns its output.
func (b *Batch) Run(ctx context.Context, command string, stdin []byte) ([]byte, error) {
	if stdin != nil {
		return b.conn.RunIdempotent(ctx, command, stdin)
	}
	c := &batched{command: command, done: make(chan struct{})}
	b.mu.Lock()
	b.pending = append(b.pending, c)
	if len(b.pending) >= b.expected {
		cs := b.takeLocked()
		b.mu.Unlock()
		// Run under a context of its own: every command's caller waits
		// on it.
		go b.runAll(context.WithoutCancel(ctx), cs)
	} else {
		if len(b.pending) == 1 {
			go b.runAfterWindow(context.WithoutCancel(ctx), b.round)
		}
		b.mu.Unlock()
	}
	select {
	case <-c.done:
		return c.out, c.err
	case <-ctx.Done():
		return nil, fmt.Errorf("%s: remote command interrupted: %w", b.name, ctx.Err())
	}
}

// RunIdempotent is Run: every batched command is safe to run twice.
func (b *Batch) RunIdempotent(ctx context.Context, command string, stdin []byte) ([]byte, error) {
	return b.Run(ctx, command, stdin)
}

// takeLocked takes the commands pending for a batch of their own.
func (b *Batch) takeLocked() []*batched {
	cs := b.pending
	b.pending = nil
	b.expected = max(0, b.expected-len(cs))
	b.round++
	return cs
}

// runAfterWindow runs round's batch with what arrived once the window
// passed, unless it ran already.
func (b *Batch) runAfterWindow(ctx context.Context, round int) {
	t := time.NewTimer(b.window)
	<-t.C
	b.mu.Lock()
	if b.round != round || len(b.pending) == 0 {
		b.mu.Unlock()
		return
	}
	cs := b.takeLocked()
	b.mu.Unlock()
	b.runAll(ctx, cs)
}

func (b *Batch) runAll(ctx context.Context, cs []*batched) {
	defer panics.Recover(func(err error) {
		for _, c := range cs {
			c.err = err
			close(c.done)
		}
	})
	if len(cs) == 1 {
		c := cs[0]
		c.out, c.err = b.conn.RunIdempotent(ctx, c.command, nil)
		close(c.done)
		return
	}
	script, mark := batchScript(cs)
	out, err := b.conn.RunIdempotent(ctx, script, nil)
	if err == nil {
		err = splitBatch(out, mark, cs)
	}
	for _, c := range cs {
		if err != nil {
			c.out, c.err = nil, err
		}
		close(c.done)
	}
}

// batchScript is the script running every command in a subshell, each
// one's output followed by a mark line with its exit status, its error
// output, and the mark again. The mark is random: no output holds it.
func batchScript(cs []*batched) (script, mark string) {
	var r [16]byte
	_, _ = rand.Read(r[:])
	mark = "gantry-batch-" + hex.EncodeToString(r[:])
	var s strings.Builder
	// fd 3 is the session's output: each command writes there, its error
	// output is captured.
	s.WriteString("exec 3>&1\n")
	for _, c := range cs {
		// The command substitution is the command's subshell: an exit
		// in the command ends only it.
		fmt.Fprintf(&s, "err=$( {\n%s\n} 2>&1 1>&3 3>&- ); st=$?\nprintf '\\n%s %%s\\n%%s\\n%s\\n' \"$st\" \"$err\"\n", c.command, mark, mark)
	}
	return s.String(), mark
}

// splitBatch gives each command its part of out: its output, and an
// error carrying its status and error output when it failed.
func splitBatch(out []byte, mark string, cs []*batched) error {
	head := []byte("\n" + mark + " ")
	tail := []byte("\n" + mark + "\n")
	for i, c := range cs {
		at := bytes.Index(out, head)
		if at < 0 {
			return fmt.Errorf("batched reads: the output of command %d of %d is cut short", i+1, len(cs))
		}
		c.out = out[:at:at]
		rest := out[at+len(head):]
		nl := bytes.IndexByte(rest, '\n')
		end := bytes.Index(rest, tail)
		if nl < 0 || end < nl {
			return fmt.Errorf("batched reads: the status of command %d of %d is cut short", i+1, len(cs))
		}
		status, err := strconv.Atoi(string(rest[:nl]))
		if err != nil {
			return fmt.Errorf("batched reads: command %d of %d: bad status %q", i+1, len(cs), rest[:nl])
		}
		if status != 0 {
			c.err = &shell.ExitError{Code: status, Stderr: string(rest[nl+1 : end])}
		}
		out = rest[end+len(tail):]
	}
	return nil
}
