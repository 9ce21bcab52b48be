// Package lbtest helps tests of code that drives nginx through package lb
// without nginx: FakeMaster is a process that behaves, for what lb looks
// at (its pid file, its child processes, SIGHUP), like an nginx master.
package lbtest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/internal/shell"
)

// fakeMasterScript runs two worker processes and, on SIGHUP, starts two new
// ones and stops the old ones (accept), or keeps its workers (reject).
const fakeMasterScript = `spawn() { sleep 600 & w1=$!; sleep 600 & w2=$!; }
spawn
if [ "$1" = accept ]; then trap 'o1=$w1; o2=$w2; spawn; kill $o1 $o2' HUP; else trap : HUP; fi
trap 'kill $w1 $w2; exit 0' TERM
while :; do wait; done
`

// FakeMaster starts a fake nginx master that takes every reload (accept)
// or rejects every one (keeps its workers), stopped at the end of the
// test. It returns its pid file and the reload command that signals it.
func FakeMaster(t testing.TB, accept bool) (pidFile, reload string) {
	t.Helper()
	mode := "reject"
	if accept {
		mode = "accept"
	}
	cmd := exec.Command("sh", "-c", fakeMasterScript, "sh", mode)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
	})
	pidFile = filepath.Join(t.TempDir(), "nginx.pid")
	if err := os.WriteFile(pidFile, []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// The workers run before the first reload can be told apart.
	deadline := time.Now().Add(5 * time.Second)
	for len(Children(cmd.Process.Pid)) < 2 {
		if time.Now().After(deadline) {
			t.Fatal("the fake nginx master started no workers")
		}
		time.Sleep(10 * time.Millisecond)
	}
	return pidFile, "kill -HUP $(cat " + shell.Quote(pidFile) + ")"
}

// Children lists the pids of pid's child processes.
func Children(pid int) []string {
	out, _ := exec.Command("ps", "-o", "pid=", "--ppid", strconv.Itoa(pid)).Output()
	return strings.Fields(string(out))
}
