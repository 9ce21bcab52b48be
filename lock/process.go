package lock

import (
	"os"
	"strconv"
)

// Process identifies a deployer's process well enough that a deployer on
// the same machine can tell whether it still runs, PID reuse included.
type Process struct {
	// Machine is the host name; Boot tells one boot, and one PID
	// namespace, of that machine from another (empty where unknown).
	Machine string `json:"machine,omitempty"`
	Boot    string `json:"boot,omitempty"`
	PID     int    `json:"pid"`
	// Start is when the process started, in the kernel's own units (empty
	// where unknown): a PID reused by another process has another Start.
	Start string `json:"pid_start,omitempty"`
}

// Self is this process.
func Self() Process {
	host, _ := os.Hostname()
	pid := os.Getpid()
	return Process{Machine: host, Boot: bootID(), PID: pid, Start: startTime(pid)}
}

// SameMachine says whether p runs on the machine (same boot, same PID
// namespace) where q runs, so that q can look p's PID up.
func (p Process) SameMachine(q Process) bool {
	return p.Machine != "" && p.Machine == q.Machine && p.Boot == q.Boot
}

// Gone says whether p has ended, looked up on this machine: no process has
// its PID, or the one that has it started at another time. Call it only for
// a p on this machine (SameMachine).
func (p Process) Gone() bool {
	if p.PID <= 0 {
		return false
	}
	if !pidExists(p.PID) {
		return true
	}
	return p.Start != "" && startTime(p.PID) != "" && startTime(p.PID) != p.Start
}

func itoa(n int) string { return strconv.Itoa(n) }
