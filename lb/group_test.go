package lb

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
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
	n := &Nginx{Name: "lb1", Runner: runner, UpstreamsDir: dir, TestCommand: "sleep 0.05", ReloadCommand: reload, PidFile: pidFile, DrainTimeout: time.Second}
	var servers []Server
	for i := 1; i <= 8; i++ {
		servers = append(servers, Server{Host: fmt.Sprintf("host%d", i), Addr: fmt.Sprintf("10.0.0.%d:8080", i)})
	}
	n.SetUpstream("www", servers)
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
