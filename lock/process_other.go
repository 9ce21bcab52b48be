//go:build !linux

package lock

// bootID is unknown off Linux.
func bootID() string { return "" }

// startTime is unknown off Linux.
func startTime(int) string { return "" }
