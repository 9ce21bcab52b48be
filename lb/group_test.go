package lb

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/internal/shell"
)

// TestConcurrentDrainsAreGroupedAndOrdered: a batch's hosts drained at the
// same time all end down in the file, with fewer reloads than hosts, and
// restoring them all at once brings every one back up.
func TestConcurrentDrainsAreGroupedAndOrdered(t *testing.T) {
	dir := t.TempDir()
	runner := &applyCounter{Runner: &shell.LocalRunner{}}
	pidFile, reload := fakeMaster(t, true)
	var servers []Server
	for i := 1; i <= 8; i++ {
		servers = append(servers, Server{Host: fmt.Sprintf("host%d", i), Addr: fmt.Sprintf("10.0.0.%d:8080", i)})
	}
	n := mustNew(t, Options{Name: "lb1", Runner: runner, UpstreamsDir: dir, TestCommand: "sleep 0.05", ReloadCommand: reload, PidFile: pidFile, DrainTimeout: time.Second}, Upstream{Service: "www", Servers: servers})
	file := filepath.Join(dir, "www.conf")

	run := func(op func(context.Context, string, string) error) {
		var wg sync.WaitGroup
		for _, s := range servers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := op(context.Background(), "www", s.Host); err != nil {
					t.Errorf("%s: %v", s.Host, err)
				}
			}()
		}
		wg.Wait()
	}
	run(n.Drain)
	content := readFile(t, file)
	if c := strings.Count(content, " down;"); c != len(servers) {
		t.Fatalf("after draining all %d hosts at once the file has %d down:\n%s", len(servers), c, content)
	}
	if applies := runner.applies.Load(); applies >= int64(len(servers)) {
		t.Errorf("%d file updates for %d concurrent drains: changes were not grouped", applies, len(servers))
	}
	run(n.Restore)
	if content := readFile(t, file); strings.Contains(content, " down;") {
		t.Fatalf("after restoring every host some are still down:\n%s", content)
	}
}

// applyCounter counts the file updates (apply scripts) run through it.
type applyCounter struct {
	Runner
	applies atomic.Int64
}

func (c *applyCounter) Run(ctx context.Context, command string, stdin []byte) ([]byte, error) {
	if strings.Contains(command, ".gantry-tmp") {
		c.applies.Add(1)
	}
	return c.Runner.Run(ctx, command, stdin)
}

// sessionCounter counts the commands run on a load balancer, the most
// running at once, and the wait sessions (for old workers) among them.
type sessionCounter struct {
	Runner
	mu            sync.Mutex
	now, max      int
	waitSessions  int
	applySessions int
}

func (c *sessionCounter) Run(ctx context.Context, command string, stdin []byte) ([]byte, error) {
	c.mu.Lock()
	c.now++
	c.max = max(c.max, c.now)
	if strings.HasPrefix(command, "old=") {
		c.waitSessions++
	} else {
		c.applySessions++
	}
	c.mu.Unlock()
	defer func() { c.mu.Lock(); c.now--; c.mu.Unlock() }()
	return c.Runner.Run(ctx, command, stdin)
}

// TestBatchDrainUsesAFewSessions: a batch of 24 hosts drained at once,
// with old nginx workers that keep requests in flight for a while, costs
// a handful of sessions on the load balancer's connection, never one per
// host: stock sshd refuses an 11th session on one connection. Every drain
// still waits for the workers that ran before its reload.
func TestBatchDrainUsesAFewSessions(t *testing.T) {
	dir := t.TempDir()
	// The "master": its first "workers" stay as long as a slow request in
	// flight (0.6 s); a reload (SIGHUP) starts new workers and retires
	// those of the reload before, which had nothing in flight.
	master := exec.Command("sh", "-c", `sleep 0.6 & sleep 0.6 & cur=""
trap 'old=$cur; sleep 600 & a=$!; sleep 600 & cur="$a $!"; [ -z "$old" ] || kill $old' HUP
trap 'exit 0' TERM
while :; do wait; done`)
	master.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := master.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(-master.Process.Pid, syscall.SIGKILL); _ = master.Wait() })
	pidFile := filepath.Join(dir, "nginx.pid")
	if err := os.WriteFile(pidFile, []byte(fmt.Sprint(master.Process.Pid)), 0o644); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // the workers are up
	counter := &sessionCounter{Runner: &shell.LocalRunner{}}
	var servers []Server
	for i := 1; i <= 24; i++ {
		servers = append(servers, Server{Host: fmt.Sprintf("host%d", i), Addr: fmt.Sprintf("10.0.0.%d:8080", i)})
	}
	n := mustNew(t, Options{Name: "lb1", Runner: counter, UpstreamsDir: dir, TestCommand: "sleep 0.05", ReloadCommand: "kill -HUP " + fmt.Sprint(master.Process.Pid), PidFile: pidFile, DrainTimeout: 10 * time.Second}, Upstream{Service: "www", Servers: servers})

	var wg sync.WaitGroup
	start := time.Now()
	for _, s := range servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := n.Drain(context.Background(), "www", s.Host); err != nil {
				t.Errorf("%s: %v", s.Host, err)
			}
			if time.Since(start) < 400*time.Millisecond {
				t.Errorf("%s: drain returned after %s, before the old workers (0.6 s) exited", s.Host, time.Since(start))
			}
		}()
	}
	wg.Wait()
	if c := strings.Count(readFile(t, filepath.Join(dir, "www.conf")), " down;"); c != len(servers) {
		t.Errorf("%d of %d hosts down after the batch's drains", c, len(servers))
	}
	t.Logf("24 drains: %d apply and %d wait sessions, at most %d at once", counter.applySessions, counter.waitSessions, counter.max)
	if counter.waitSessions > 2 || counter.max > 2 {
		t.Errorf("24 drains ran %d wait sessions, at most %d sessions at once: want at most 2 and 2", counter.waitSessions, counter.max)
	}
}
