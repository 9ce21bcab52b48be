package remote

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/internal/shell"
)

// localIdempotent runs commands with the local sh, counting them.
type localIdempotent struct{ shell.LocalRunner }

func (l *localIdempotent) RunIdempotent(ctx context.Context, command string, stdin []byte) ([]byte, error) {
	return l.Run(ctx, command, stdin)
}

func TestBatchRunsCommandsGivenTogetherInOneSession(t *testing.T) {
	local := &localIdempotent{}
	b := &Batch{conn: local, name: "lb1", window: time.Minute}
	cmds := []struct {
		command, out, stderr string
		status               int
	}{
		{command: "echo one; echo two", out: "one\ntwo\n"},
		{command: "printf 'no newline'", out: "no newline"},
		{command: "[ -d /nonexistent ] || exit 0\necho unreachable", out: ""},
		{command: "echo partial; echo 'it broke' >&2; exit 7", out: "partial\n", stderr: "it broke", status: 7},
		{command: "printf '%s\\n' 'gantry-batch-lookalike 0'; echo after", out: "gantry-batch-lookalike 0\nafter\n"},
	}
	b.Expect(len(cmds))
	var wg sync.WaitGroup
	for _, c := range cmds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := b.Run(t.Context(), c.command, nil)
			if string(out) != c.out {
				t.Errorf("%q printed %q, want %q", c.command, out, c.out)
			}
			if got := shell.ExitStatus(err); c.status != 0 && got != c.status || c.status == 0 && err != nil {
				t.Errorf("%q: error %v (status %d), want status %d", c.command, err, got, c.status)
			}
			if c.stderr != "" && (err == nil || !strings.Contains(err.Error(), c.stderr)) {
				t.Errorf("%q: error %v, want it to carry %q", c.command, err, c.stderr)
			}
		}()
	}
	wg.Wait()
	if n := local.Runs.Load(); n != 1 {
		t.Errorf("%d sessions, want the %d commands in 1", n, len(cmds))
	}

	// Later commands make a batch of their own, run after the window
	// when fewer came than expected.
	b = &Batch{conn: local, name: "lb1", window: 10 * time.Millisecond}
	b.Expect(2)
	if out, err := b.Run(t.Context(), "echo later", nil); err != nil || string(out) != "later\n" {
		t.Errorf("a later command = %q, %v", out, err)
	}
	if n := local.Runs.Load(); n != 2 {
		t.Errorf("%d sessions after a later command, want 2", n)
	}
}

func TestBatchedCommandLeftByItsCallerStillServesTheOthers(t *testing.T) {
	local := &localIdempotent{}
	b := &Batch{conn: local, name: "lb1", window: time.Minute}
	b.Expect(2)
	ctx, cancel := context.WithCancel(t.Context())
	gone := make(chan error, 1)
	go func() {
		_, err := b.Run(ctx, "echo first", nil)
		gone <- err
	}()
	time.Sleep(5 * time.Millisecond)
	cancel()
	if err := <-gone; err == nil {
		t.Error("a caller whose context ended got no error")
	}
	if out, err := b.Run(t.Context(), "echo second", nil); err != nil || string(out) != "second\n" {
		t.Errorf("the other command = %q, %v", out, err)
	}
}
