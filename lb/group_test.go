package lb

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/internal/shell"
)

// TestConcurrentDrainsAreGroupedAndOrdered: a batch's hosts drained at the
// same time all end down in the file, with fewer reloads than hosts, and
// restoring them all at once brings every one back up.
func TestConcurrentDrainsAreGroupedAndOrdered(t *testing.T) {
	dir := t.TempDir()
	runner := &shell.LocalRunner{}
	n := &Nginx{Name: "lb1", Runner: runner, UpstreamsDir: dir, TestCommand: "sleep 0.05", ReloadCommand: "true", DrainTimeout: time.Second}
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
	if runs := runner.Runs.Load(); runs >= int64(len(servers)) {
		t.Errorf("%d remote commands for %d concurrent drains: changes were not grouped", runs, len(servers))
	}
	run(n.Restore)
	if content := readFile(t, file); strings.Contains(content, " down;") {
		t.Fatalf("after restoring every host some are still down:\n%s", content)
	}
}
