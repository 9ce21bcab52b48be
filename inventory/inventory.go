package inventory

import (
	"strconv"
	"time"
)

// Labels gantry puts on every container it creates. They are the record, on
// the host itself, of what runs there and what ran before.
const (
	LabelManaged       = "dev.gantry.managed"
	LabelService       = "dev.gantry.service"
	LabelVersion       = "dev.gantry.version"
	LabelImage         = "dev.gantry.image"
	LabelPreviousImage = "dev.gantry.previous-image"
	LabelDeployedAt    = "dev.gantry.deployed-at"
	// LabelPort is the port the container's app listens on. A service
	// deployed start-first alternates between two ports, so each host's
	// container says which one it serves on; without the label, the
	// service's configured port.
	LabelPort = "dev.gantry.port"
	// LabelRelease marks the container a release command runs in; with
	// LabelRunID, the run that started it. A run killed mid-release leaves
	// it behind, and the next run removes it.
	LabelRelease = "dev.gantry.release"
	LabelRunID   = "dev.gantry.run-id"
)

// Host is one machine that runs services.
type Host struct {
	Name    string
	Address string
	Zone    string
	// SSHAddr is host:port of its sshd.
	SSHAddr string
	// DockerSocket is the path of the Docker daemon's socket on the host.
	DockerSocket string
	Services     []string
}

// Runs reports whether the host is meant to run service.
func (h Host) Runs(service string) bool {
	for _, s := range h.Services {
		if s == service {
			return true
		}
	}
	return false
}

// Container is what gantry observed of one container on a host.
type Container struct {
	ID      string
	Name    string
	Image   string
	Running bool
	// State is the daemon's word for it: running, exited, created, ...
	State string
	// Restarting is true while the daemon is restarting it after an exit.
	Restarting bool
	// RestartCount counts restarts by the daemon since the container was created.
	RestartCount int
	ExitCode     int
	// Health is the image HEALTHCHECK's status as Docker reports it
	// (starting, healthy, unhealthy), or "" when the image has none.
	Health    string
	StartedAt time.Time
	Labels    map[string]string
	// DataRoot is the Docker data root of the daemon that runs it, as the
	// paths of its files show ("" when they do not).
	DataRoot string
}

// Version is the version gantry recorded on the container, or the image tag
// for containers gantry did not create.
func (c Container) Version() string {
	if v := c.Labels[LabelVersion]; v != "" {
		return v
	}
	return c.Image
}

// Port is the port recorded on the container (LabelPort), or def when it
// has none.
func (c Container) Port(def int) int {
	if p, err := strconv.Atoi(c.Labels[LabelPort]); err == nil && p > 0 && p < 65536 {
		return p
	}
	return def
}

// ContainerSpec is what gantry asks a host to create.
type ContainerSpec struct {
	Name        string
	Image       string
	Env         []string
	Labels      map[string]string
	StopTimeout time.Duration
	// Options are the container options of the service's config.
	Options ContainerOptions
}

// ContainerOptions are how a service's containers run, as gantry.yml gives
// them (checked when the config is loaded; remote turns them into the
// Docker API's types). Zero values leave Docker's (or the image's) default.
type ContainerOptions struct {
	// Command and Entrypoint are in exec form (argv).
	Command    []string
	Entrypoint []string
	WorkingDir string
	User       string
	// Volumes are SOURCE:TARGET[:ro|rw], SOURCE a host path or a volume name.
	Volumes []string
	// Memory is a size such as 512m.
	Memory    string
	CPUs      float64
	PidsLimit int64
	// Ulimits maps a name (nofile) to SOFT or SOFT:HARD.
	Ulimits map[string]string
	CapAdd  []string
	CapDrop []string
	Init    bool
	// StopSignal replaces SIGTERM as the signal that asks the app to stop.
	StopSignal string
	// Tmpfs are TARGET[:OPTIONS], e.g. /tmp:size=64m.
	Tmpfs []string
	// ExtraHosts maps host names to IP addresses in /etc/hosts.
	ExtraHosts map[string]string
	// LogDriver is json-file when empty; LogMaxSize and LogMaxFile are its
	// rotation (json-file and local only); LogOptions are the driver's.
	LogDriver  string
	LogMaxSize string
	LogMaxFile int
	LogOptions map[string]string
}
