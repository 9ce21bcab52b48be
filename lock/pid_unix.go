//go:build unix

package lock

import (
	"errors"
	"syscall"
)

// pidExists says whether a process has this PID (one of another user's
// counts: kill answers EPERM).
func pidExists(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || !errors.Is(err, syscall.ESRCH)
}
