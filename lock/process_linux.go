package lock

import (
	"os"
	"strings"
)

// bootID names this boot of the machine and this process's PID namespace:
// two containers sharing a host name (host networking) see different PIDs.
func bootID() string {
	boot, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	ns, _ := os.Readlink("/proc/self/ns/pid")
	return strings.TrimSpace(string(boot)) + "/" + ns
}

// startTime is the process's start time in clock ticks after boot (field
// 22 of /proc/PID/stat), or "" when unknown.
func startTime(pid int) string {
	data, err := os.ReadFile("/proc/" + itoa(pid) + "/stat")
	if err != nil {
		return ""
	}
	// The command name (field 2) is in parentheses and may hold spaces.
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return ""
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 {
		return ""
	}
	return f[19] // fields 3.. follow the name: field 22 is f[19]
}
