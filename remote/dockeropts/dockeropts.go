package dockeropts

import (
	"errors"
	"fmt"
	"net"
	"path"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/strslice"
	units "github.com/docker/go-units"

	"github.com/gantry-dev/gantry/inventory"
)

// Log drivers whose logs rotate with max-size and max-file.
const (
	LogDriverJSONFile = "json-file"
	LogDriverLocal    = "local"
)

// MinMemory is the smallest memory limit the Docker daemon accepts.
const MinMemory = 6 << 20

// Rotates reports whether driver takes gantry's log.max_size and
// log.max_file (json-file and local do; others have their own options).
func Rotates(driver string) bool {
	return driver == "" || driver == LogDriverJSONFile || driver == LogDriverLocal
}

var (
	// volumeNameRE is the Docker daemon's rule for named volumes.
	volumeNameRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)
	userRE       = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]*(:[A-Za-z0-9_][A-Za-z0-9_.-]*)?$`)
	hostnameRE   = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$`)
	logDriverRE  = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]*(/[a-z0-9][a-z0-9_.-]*)*(:[A-Za-z0-9_.-]+)?$`)
	rtSignalRE   = regexp.MustCompile(`^RTM(IN|AX)([+-]([0-9]+))?$`)
)

// Volume parses a volume as docker run -v writes it: SOURCE:TARGET or
// SOURCE:TARGET:ro (or :rw). SOURCE is an absolute path on the host (a bind
// mount: the path must exist on every host) or the name of a named volume
// (created by Docker on first use, kept across containers).
func Volume(spec string) (mount.Mount, error) {
	parts := strings.Split(spec, ":")
	if len(parts) < 2 || len(parts) > 3 {
		return mount.Mount{}, fmt.Errorf("%q is not SOURCE:TARGET or SOURCE:TARGET:ro", spec)
	}
	m := mount.Mount{Source: parts[0], Target: parts[1]}
	if len(parts) == 3 {
		switch parts[2] {
		case "ro":
			m.ReadOnly = true
		case "rw":
		default:
			return mount.Mount{}, fmt.Errorf("%q: mode %q: use ro (read-only) or rw", spec, parts[2])
		}
	}
	if err := absPath(m.Target); err != nil {
		return mount.Mount{}, fmt.Errorf("%q: target %w", spec, err)
	}
	switch {
	case strings.HasPrefix(m.Source, "/"):
		m.Type = mount.TypeBind
		if err := absPath(m.Source); err != nil {
			return mount.Mount{}, fmt.Errorf("%q: host path %w", spec, err)
		}
	case volumeNameRE.MatchString(m.Source):
		m.Type = mount.TypeVolume
	case strings.HasPrefix(m.Source, ".") || strings.HasPrefix(m.Source, "~"):
		return mount.Mount{}, fmt.Errorf("%q: a host path must be absolute (it is a path on every host, not on the deployer's machine)", spec)
	default:
		return mount.Mount{}, fmt.Errorf("%q: %q is neither an absolute host path nor a volume name (two or more letters, digits, '_', '.', '-')", spec, m.Source)
	}
	return m, nil
}

func absPath(p string) error {
	if !path.IsAbs(p) {
		return fmt.Errorf("%q must be an absolute path", p)
	}
	if path.Clean(p) != p {
		return fmt.Errorf("%q is not a clean path (write %s)", p, path.Clean(p))
	}
	return nil
}

// WorkingDir checks a working directory in the container.
func WorkingDir(dir string) error { return absPath(dir) }

// User checks a user as docker run --user takes it: name, uid, name:group
// or uid:gid.
func User(u string) error {
	if !userRE.MatchString(u) {
		return fmt.Errorf("%q is not a user: give NAME, UID, NAME:GROUP or UID:GID, e.g. 1000:1000", u)
	}
	return nil
}

// Memory parses a memory limit such as 512m or 2g (go-units, as docker
// run --memory).
func Memory(s string) (int64, error) {
	n, err := units.RAMInBytes(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a size: use e.g. 256m or 2g", s)
	}
	if n < MinMemory {
		return 0, fmt.Errorf("%q is below Docker's minimum of 6m", s)
	}
	return n, nil
}

// NanoCPUs turns a CPU count such as 1.5 into the API's billionths of a CPU.
func NanoCPUs(cpus float64) (int64, error) {
	n := int64(cpus * 1e9)
	if cpus <= 0 || n < 1e7 {
		return 0, fmt.Errorf("%v: give a positive number of CPUs of at least 0.01, e.g. 0.5 or 2", cpus)
	}
	return n, nil
}

// Ulimit parses one ulimit, name and "SOFT" or "SOFT:HARD" (go-units, as
// docker run --ulimit name=soft:hard).
func Ulimit(name, value string) (*container.Ulimit, error) {
	u, err := units.ParseUlimit(name + "=" + value)
	if err != nil {
		return nil, fmt.Errorf("%s: %q: %w (give a number, or SOFT:HARD, e.g. 1024:65536)", name, value, err)
	}
	return u, nil
}

// Capability normalises a capability as Docker does (upper case, CAP_
// prefix; "ALL" stays) and checks it is one of Linux's.
func Capability(c string) (string, error) {
	n := strings.ToUpper(c)
	if n == "ALL" {
		return n, nil
	}
	n = strings.TrimPrefix(n, "CAP_")
	if !slices.Contains(linuxCapabilities, n) {
		return "", fmt.Errorf("%q is not a Linux capability (e.g. NET_ADMIN, SYS_PTRACE, or ALL; see capabilities(7))", c)
	}
	return "CAP_" + n, nil
}

// linuxCapabilities are the capabilities of capabilities(7), without the
// CAP_ prefix. The daemon checks them again against its kernel.
var linuxCapabilities = []string{
	"CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID",
	"SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW",
	"IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT",
	"SYS_ADMIN", "SYS_BOOT", "SYS_NICE", "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD",
	"LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG",
	"WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF", "CHECKPOINT_RESTORE",
}

// linuxSignals are the names of Linux's standard signals, without SIG.
var linuxSignals = []string{
	"HUP", "INT", "QUIT", "ILL", "TRAP", "ABRT", "IOT", "BUS", "FPE", "KILL", "USR1", "SEGV", "USR2",
	"PIPE", "ALRM", "TERM", "STKFLT", "CHLD", "CONT", "STOP", "TSTP", "TTIN", "TTOU", "URG", "XCPU",
	"XFSZ", "VTALRM", "PROF", "WINCH", "IO", "POLL", "PWR", "SYS",
}

// StopSignal checks a stop signal as the container's Linux kernel knows
// it: SIGTERM, TERM, 15, SIGRTMIN+3.
func StopSignal(s string) error {
	if n, err := strconv.Atoi(s); err == nil {
		if n < 1 || n > 64 {
			return fmt.Errorf("%d is not a signal number (1-64)", n)
		}
		return nil
	}
	name := strings.TrimPrefix(strings.ToUpper(s), "SIG")
	if slices.Contains(linuxSignals, name) {
		return nil
	}
	if m := rtSignalRE.FindStringSubmatch(name); m != nil {
		if n, _ := strconv.Atoi(m[3]); n <= 30 {
			return nil
		}
	}
	return fmt.Errorf("%q is not a signal: give e.g. SIGTERM, SIGINT, SIGQUIT or a number", s)
}

// Tmpfs parses a tmpfs mount as docker run --tmpfs writes it: TARGET or
// TARGET:OPTIONS, e.g. /tmp:size=64m,mode=1777. size and mode are checked
// here; other mount options (noexec, uid=...) go to the daemon as given.
func Tmpfs(spec string) (target, options string, err error) {
	target, options, _ = strings.Cut(spec, ":")
	if err := absPath(target); err != nil {
		return "", "", fmt.Errorf("%q: target %w", spec, err)
	}
	if options == "" {
		return target, "", nil
	}
	for _, o := range strings.Split(options, ",") {
		k, v, _ := strings.Cut(o, "=")
		switch k {
		case "size":
			if _, err := units.RAMInBytes(v); err != nil {
				return "", "", fmt.Errorf("%q: size %q is not a size (e.g. 64m)", spec, v)
			}
		case "mode":
			if _, err := strconv.ParseUint(v, 8, 32); err != nil {
				return "", "", fmt.Errorf("%q: mode %q is not an octal mode (e.g. 1777)", spec, v)
			}
		case "":
			return "", "", fmt.Errorf("%q: empty mount option", spec)
		}
	}
	return target, options, nil
}

// ExtraHost checks one /etc/hosts entry, a host name and an IP address
// (or host-gateway, the host's own address), and returns it as the API
// wants it, "name:ip".
func ExtraHost(name, ip string) (string, error) {
	if !hostnameRE.MatchString(name) {
		return "", fmt.Errorf("%q is not a host name", name)
	}
	if ip != "host-gateway" && net.ParseIP(ip) == nil {
		return "", fmt.Errorf("%s: %q is not an IP address (or host-gateway)", name, ip)
	}
	return name + ":" + ip, nil
}

// LogDriver checks a logging driver's name: a built-in driver (json-file,
// local, syslog, journald, gelf, fluentd, awslogs, splunk, etwlogs,
// gcplogs, none) or a plugin (vendor/name[:tag]). Its options are checked
// by the daemon, which alone knows the plugins it has.
func LogDriver(d string) error {
	if !logDriverRE.MatchString(d) {
		return fmt.Errorf("%q is not a logging driver name (e.g. json-file, local, syslog, journald, gelf, fluentd, awslogs)", d)
	}
	return nil
}

// Apply sets the options o on a container's config and host config. The
// options were checked when the config was loaded; an error here means
// they were not.
func Apply(o inventory.ContainerOptions, cfg *container.Config, hc *container.HostConfig) error {
	var errs []error
	if len(o.Command) > 0 {
		cfg.Cmd = strslice.StrSlice(o.Command)
	}
	if len(o.Entrypoint) > 0 {
		cfg.Entrypoint = strslice.StrSlice(o.Entrypoint)
	}
	cfg.WorkingDir = o.WorkingDir
	cfg.User = o.User
	cfg.StopSignal = o.StopSignal
	for _, v := range o.Volumes {
		m, err := Volume(v)
		errs = append(errs, err)
		hc.Mounts = append(hc.Mounts, m)
	}
	if o.Memory != "" {
		n, err := Memory(o.Memory)
		errs = append(errs, err)
		hc.Memory = n
	}
	if o.CPUs != 0 {
		n, err := NanoCPUs(o.CPUs)
		errs = append(errs, err)
		hc.NanoCPUs = n
	}
	if o.PidsLimit != 0 {
		n := o.PidsLimit
		hc.PidsLimit = &n
	}
	for _, name := range sortedKeys(o.Ulimits) {
		u, err := Ulimit(name, o.Ulimits[name])
		errs = append(errs, err)
		if u != nil {
			hc.Ulimits = append(hc.Ulimits, u)
		}
	}
	for _, c := range o.CapAdd {
		n, err := Capability(c)
		errs = append(errs, err)
		hc.CapAdd = append(hc.CapAdd, n)
	}
	for _, c := range o.CapDrop {
		n, err := Capability(c)
		errs = append(errs, err)
		hc.CapDrop = append(hc.CapDrop, n)
	}
	if o.Init {
		t := true
		hc.Init = &t
	}
	for _, t := range o.Tmpfs {
		target, opts, err := Tmpfs(t)
		errs = append(errs, err)
		if hc.Tmpfs == nil {
			hc.Tmpfs = map[string]string{}
		}
		hc.Tmpfs[target] = opts
	}
	for _, name := range sortedKeys(o.ExtraHosts) {
		e, err := ExtraHost(name, o.ExtraHosts[name])
		errs = append(errs, err)
		hc.ExtraHosts = append(hc.ExtraHosts, e)
	}
	hc.LogConfig = LogConfig(o)
	return errors.Join(errs...)
}

// LogConfig is the container's logging: json-file unless another driver
// is named, with max-size and max-file for the drivers that rotate, and
// the driver's options as given.
func LogConfig(o inventory.ContainerOptions) container.LogConfig {
	lc := container.LogConfig{Type: o.LogDriver, Config: map[string]string{}}
	if lc.Type == "" {
		lc.Type = LogDriverJSONFile
	}
	for k, v := range o.LogOptions {
		lc.Config[k] = v
	}
	if Rotates(lc.Type) {
		if o.LogMaxSize != "" {
			lc.Config["max-size"] = o.LogMaxSize
		}
		if o.LogMaxFile > 0 {
			lc.Config["max-file"] = strconv.Itoa(o.LogMaxFile)
		}
	}
	if len(lc.Config) == 0 {
		lc.Config = nil
	}
	return lc
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
