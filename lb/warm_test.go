package lb

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/internal/shell"
)

// TestApplyScriptChangesNothingWithoutACompleteRequest: the apply script
// touches no file, tests and reloads nothing, unless it read a whole
// request: an input that ends before the header (a session abandoned, a
// connection dropped), before the announced length, or does not parse
// exits exitIncomplete with everything as it was.
func TestApplyScriptChangesNothingWithoutACompleteRequest(t *testing.T) {
	content := "server 10.0.0.1:8080 down; # host1\n"
	for _, tc := range []struct{ name, stdin string }{
		{"end before the header", ""},
		{"header cut", "gantry-apply 3"},
		{"header without content", "gantry-apply 35 0\n"},
		{"short content", "gantry-apply 35 0\nserver 10.0.0.1:8080 do"},
		{"content cut at a line end", "gantry-apply 70 0\n" + content},
		{"content longer than announced", "gantry-apply 20 0\n" + content},
		{"garbage header", "hello\n" + content},
		{"length not a number", "gantry-apply 3x 0\n" + content},
		{"keepSame not 0 or 1", "gantry-apply 35 2\n" + content},
		{"length too large", "gantry-apply 99999999999 0\n" + content},
		{"no newline at the end", "gantry-apply 35 0\n" + strings.TrimSuffix(content, "\n")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			file := filepath.Join(dir, "sub", "www.conf")
			pidFile, reload := fakeMaster(t, true)
			marks := filepath.Join(dir, "marks")
			script := applyScript(file, "echo tested >> "+shell.Quote(marks), "echo reloaded >> "+shell.Quote(marks)+"; "+reload, pidFile, 2)
			_, err := (&shell.LocalRunner{}).Run(context.Background(), script, []byte(tc.stdin))
			if got := shell.ExitStatus(err); got != exitIncomplete {
				t.Errorf("exit status %d (%v), want %d", got, err, exitIncomplete)
			}
			entries, _ := os.ReadDir(dir)
			var names []string
			for _, e := range entries {
				names = append(names, e.Name())
			}
			if len(names) != 0 {
				t.Errorf("files left in the upstreams' directory: %v, want none (not even its subdirectory)", names)
			}
		})
	}
}

// TestApplyRequestRoundTrip: a request as gantry sends it is applied
// whole, and the file is what was sent.
func TestApplyRequestRoundTrip(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "sub", "www.conf")
	pidFile, reload := fakeMaster(t, true)
	content := []byte("# Managed by gantry\nserver 10.0.0.1:8080 down; # host1\n  indented \\ back\\slash\n\n")
	req, err := applyRequest(content, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := (&shell.LocalRunner{}).Run(context.Background(), applyScript(file, "true", reload, pidFile, 2), req); err != nil {
		t.Fatalf("apply: %v", err)
	}
	if got := readFile(t, file); got != string(content) {
		t.Errorf("file %q, want %q", got, content)
	}
	if _, err := applyRequest([]byte("no newline"), false); err == nil {
		t.Error("applyRequest took content without a final newline")
	}
}

// localStarter is a Runner and Starter on the local sh: Start starts sh
// -c command with its stdin a pipe. broken makes every Finish fail as a
// dropped connection would (no exit status), having run nothing.
type localStarter struct {
	shell.LocalRunner
	// applies counts the apply scripts run in sessions of their own.
	starts, finishes, applies atomic.Int64
	broken                    atomic.Bool

	mu      sync.Mutex
	started []*localPending
}

type localPending struct {
	s      *localStarter
	cmd    *exec.Cmd
	stdin  interface{ Close() error }
	write  func([]byte) error
	stdout bytes.Buffer
	stderr bytes.Buffer
	once   sync.Once
	// exit is the abandoned or finished command's exit status.
	exit chan int
}

func (s *localStarter) Run(ctx context.Context, command string, stdin []byte) ([]byte, error) {
	if bytes.HasPrefix(stdin, []byte("gantry-apply ")) {
		s.applies.Add(1)
	}
	return s.LocalRunner.Run(ctx, command, stdin)
}

func (s *localStarter) Start(ctx context.Context, command string) (Pending, error) {
	cmd := exec.Command("sh", "-c", command)
	w, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	p := &localPending{s: s, cmd: cmd, stdin: w, exit: make(chan int, 1),
		write: func(b []byte) error { _, err := w.Write(b); return err }}
	cmd.Stdout, cmd.Stderr = &p.stdout, &p.stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s.starts.Add(1)
	s.mu.Lock()
	s.started = append(s.started, p)
	s.mu.Unlock()
	return p, nil
}

func (p *localPending) wait() error {
	err := p.cmd.Wait()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
		err = &shell.ExitError{Code: code, Stderr: strings.TrimSpace(p.stderr.String())}
	}
	p.exit <- code
	return err
}

func (p *localPending) Finish(ctx context.Context, stdin []byte) ([]byte, error) {
	var out []byte
	err := errors.New("finished twice")
	p.once.Do(func() {
		if p.s.broken.Load() {
			p.stdin.Close()
			_ = p.wait()
			err = errors.New("ssh: connection lost")
			return
		}
		p.s.finishes.Add(1)
		_ = p.write(stdin)
		p.stdin.Close()
		err = p.wait()
		out = p.stdout.Bytes()
	})
	return out, err
}

func (p *localPending) Abandon() {
	p.once.Do(func() {
		p.stdin.Close()
		go func() { _ = p.wait() }()
	})
}

// newWarmNginx is newNginx on a localStarter, its reloads counted in the
// file it returns.
func newWarmNginx(t *testing.T, dir string) (*Nginx, *localStarter, string) {
	t.Helper()
	n := newNginx(t, dir)
	r := &localStarter{}
	n.Runner = r
	reloads := filepath.Join(t.TempDir(), "reloads")
	n.ReloadCommand = "echo >> " + shell.Quote(reloads) + "; " + n.ReloadCommand
	return n, r, reloads
}

// waitWarm waits (bounded generously) until a session is ready.
func waitWarm(t *testing.T, n *Nginx) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		n.warmMu.Lock()
		ready := n.warm != nil
		n.warmMu.Unlock()
		if ready {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("no apply session started ahead")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestChangesUseTheSessionStartedAhead: after the check, the first change
// goes through the session started ahead, and each change starts the next
// one; closing the balancer abandons the one ready, which changes nothing.
func TestChangesUseTheSessionStartedAhead(t *testing.T) {
	dir := t.TempDir()
	n, r, reloads := newWarmNginx(t, dir)
	ctx := context.Background()
	if err := n.Check(ctx); err != nil {
		t.Fatalf("check: %v", err)
	}
	waitWarm(t, n)
	if err := n.Drain(ctx, "www", "host1"); err != nil {
		t.Fatalf("drain: %v", err)
	}
	waitWarm(t, n)
	if err := n.Restore(ctx, "www", "host1"); err != nil {
		t.Fatalf("restore: %v", err)
	}
	if r.finishes.Load() != 2 || r.applies.Load() != 0 {
		t.Errorf("%d changes through sessions started ahead, %d in sessions of their own, want 2 and 0", r.finishes.Load(), r.applies.Load())
	}
	if content := readFile(t, filepath.Join(dir, "www.conf")); strings.Contains(content, "down") {
		t.Errorf("host1 not restored:\n%s", content)
	}
	waitWarm(t, n)
	before := readFile(t, filepath.Join(dir, "www.conf"))
	n.Close()
	r.mu.Lock()
	last := r.started[len(r.started)-1]
	r.mu.Unlock()
	select {
	case code := <-last.exit:
		if code != exitIncomplete {
			t.Errorf("abandoned session exited %d, want %d", code, exitIncomplete)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the abandoned session did not end")
	}
	if after := readFile(t, filepath.Join(dir, "www.conf")); after != before {
		t.Errorf("the abandoned session changed the file:\n%s\nwas:\n%s", after, before)
	}
	if data, _ := os.ReadFile(reloads); strings.Count(string(data), "\n") != 2 {
		t.Errorf("%d reloads, want 2 (the drain's, the restore's)", strings.Count(string(data), "\n"))
	}
	if err := n.Drain(ctx, "www", "host2"); err != nil {
		t.Fatalf("drain after Close: %v", err)
	}
	if r.starts.Load() != 3 || r.applies.Load() != 1 {
		t.Errorf("after Close: %d sessions started ahead, %d applies in sessions of their own, want 3 and 1 (the drain)", r.starts.Load(), r.applies.Load())
	}
}

// TestBrokenSessionStartedAheadAppliesAgain: a session started ahead that
// broke (no exit status) is applied again through a session of its own; a
// script's own failure stands.
func TestBrokenSessionStartedAheadAppliesAgain(t *testing.T) {
	dir := t.TempDir()
	n, r, _ := newWarmNginx(t, dir)
	ctx := context.Background()
	n.Warm(ctx)
	waitWarm(t, n)
	r.broken.Store(true)
	if err := n.Drain(ctx, "www", "host1"); err != nil {
		t.Fatalf("drain: %v", err)
	}
	if r.applies.Load() != 1 {
		t.Errorf("%d applies in a session of their own after the broken one, want 1", r.applies.Load())
	}
	if content := readFile(t, filepath.Join(dir, "www.conf")); !strings.Contains(content, "10.0.0.1:8080 down;") {
		t.Errorf("host1 not drained:\n%s", content)
	}
	n.Close()

	// A script that answers (the test command fails) is not run again.
	failing, r2, _ := newWarmNginx(t, t.TempDir())
	failing.TestCommand = "false"
	failing.Warm(ctx)
	waitWarm(t, failing)
	err := failing.Drain(ctx, "www", "host1")
	if !errors.Is(err, ErrConfigTest) || r2.finishes.Load() != 1 || r2.applies.Load() != 0 {
		t.Errorf("drain with a failing test = %v, %d through the session started ahead, %d again, want ErrConfigTest, 1 and 0", err, r2.finishes.Load(), r2.applies.Load())
	}
	failing.Close()
}
