// Package shell holds what gantry needs to build POSIX shell commands run
// on remote machines safely: quoting every interpolated value, and reading
// a command's exit status back from an error. LocalRunner runs such
// commands with the local sh, for tests that exercise the real scripts.
package shell

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"sync/atomic"
)

// Quote returns s quoted for a POSIX shell: safe to put in a command line
// whatever it contains.
func Quote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-./:=@,+%") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// ExitStatus returns the exit status carried by err (an *ssh.ExitError or
// anything with an ExitStatus method), or -1.
func ExitStatus(err error) int {
	var e interface{ ExitStatus() int }
	if errors.As(err, &e) {
		return e.ExitStatus()
	}
	return -1
}

// LocalRunner runs commands with the local sh, reporting exit codes the
// way an *ssh.ExitError does. Runs counts the commands run.
type LocalRunner struct {
	Runs atomic.Int64
}

// ExitError is a failed local command.
type ExitError struct {
	Code   int
	Stderr string
}

func (e *ExitError) Error() string   { return fmt.Sprintf("exit status %d: %s", e.Code, e.Stderr) }
func (e *ExitError) ExitStatus() int { return e.Code }

// Run runs command with sh -c, feeding it stdin.
func (r *LocalRunner) Run(ctx context.Context, command string, stdin []byte) ([]byte, error) {
	r.Runs.Add(1)
	cmd := exec.CommandContext(ctx, "sh", "-c", command)
	cmd.Stdin = bytes.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return stdout.Bytes(), &ExitError{Code: ee.ExitCode(), Stderr: strings.TrimSpace(stderr.String())}
	}
	return stdout.Bytes(), err
}
