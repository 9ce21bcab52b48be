package config

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/gantry-dev/gantry/internal/names"
	"github.com/gantry-dev/gantry/remote/dockeropts"
)

// Defaults applied to keys left out of the file.
const (
	DefaultSSHPort           = 22
	DefaultConnectTimeout    = 10 * time.Second
	DefaultDockerSocket      = "/var/run/docker.sock"
	DefaultTestCommand       = "nginx -t -q"
	DefaultReloadCommand     = "nginx -s reload"
	DefaultDrainTimeout      = 30 * time.Second
	DefaultReloadTimeout     = 10 * time.Second
	DefaultHealthPath        = "/healthz"
	DefaultHealthStatus      = 200
	DefaultHealthInterval    = 500 * time.Millisecond
	DefaultHealthTimeout     = 2 * time.Second
	DefaultHealthThreshold   = 2
	DefaultHealthDeadline    = 60 * time.Second
	DefaultHealthMinRunning  = 5 * time.Second
	DefaultStopTimeout       = 10 * time.Second
	DefaultLogMaxSize        = "10m"
	DefaultLogMaxFile        = 3
	DefaultLogDriver         = dockeropts.LogDriverJSONFile
	DefaultBatchSize         = 1
	DefaultUpstreamsDir      = "/etc/nginx/gantry"
	DefaultPullTimeout       = 5 * time.Minute
	DefaultPullConcurrency   = 8
	DefaultDockerCallTimeout = 30 * time.Second
	DefaultKeepaliveInterval = 3 * time.Second
	// MaxPersist bounds ssh.persist.
	MaxPersist = time.Hour
	// MaxPersistDir bounds the length of ssh.persist_dir: a keeper's
	// socket, <dir>/<16 hex digits>.sock, must fit a unix socket's path.
	MaxPersistDir            = names.MaxSocketPath - len("/0123456789abcdef.sock")
	DefaultKeepaliveCountMax = 3
	DefaultRedialAttempts    = 4
	DefaultRedialBackoff     = 500 * time.Millisecond
	// DefaultMaxSessions stays below OpenSSH's default MaxSessions (10).
	DefaultMaxSessions    = 8
	DefaultMinFreeDisk    = 1 << 30
	DefaultLockDir        = "/var/lib/gantry/locks"
	DefaultLockTTL        = time.Minute
	MinLockTTL            = 10 * time.Second
	DefaultWebhookTimeout = 5 * time.Second
	// DefaultReleaseTimeout bounds a release command with no timeout.
	DefaultReleaseTimeout = 10 * time.Minute
	// DefaultCanaryBake is how long a canary bakes with no bake given.
	DefaultCanaryBake   = time.Minute
	DefaultHookTimeout  = 5 * time.Minute
	DefaultKeepVersions = 3
)

// applyDefaults fills the keys left out of the file with the Default*
// values (some from another key: a host's ssh_port from ssh.port) and makes
// the deployer's file paths absolute, relative to the config file.
func (c *Config) applyDefaults() {
	base := filepath.Dir(c.Path)
	abs := func(p string) string {
		if p == "" || filepath.IsAbs(p) {
			return p
		}
		if strings.HasPrefix(p, "~/") {
			if home, err := os.UserHomeDir(); err == nil {
				return filepath.Join(home, p[2:])
			}
		}
		return filepath.Join(base, p)
	}
	if c.Registry.PullTimeout == 0 {
		c.Registry.PullTimeout = Duration(DefaultPullTimeout)
	}
	if c.Registry.PullConcurrency == 0 {
		c.Registry.PullConcurrency = DefaultPullConcurrency
	}
	if c.SSH.Port == 0 {
		c.SSH.Port = DefaultSSHPort
	}
	if c.SSH.ConnectTimeout == 0 {
		c.SSH.ConnectTimeout = Duration(DefaultConnectTimeout)
	}
	if c.SSH.KnownHosts == "" {
		c.SSH.KnownHosts = "~/.ssh/known_hosts"
	}
	if c.SSH.KeepaliveInterval == 0 {
		c.SSH.KeepaliveInterval = Duration(DefaultKeepaliveInterval)
	}
	if c.SSH.KeepaliveCountMax == 0 {
		c.SSH.KeepaliveCountMax = DefaultKeepaliveCountMax
	}
	if c.SSH.RedialAttempts == 0 {
		c.SSH.RedialAttempts = DefaultRedialAttempts
	}
	if c.SSH.RedialBackoff == 0 {
		c.SSH.RedialBackoff = Duration(DefaultRedialBackoff)
	}
	if c.SSH.MaxSessions == 0 {
		c.SSH.MaxSessions = DefaultMaxSessions
	}
	if c.SSH.DockerCallTimeout == 0 {
		c.SSH.DockerCallTimeout = Duration(DefaultDockerCallTimeout)
	}
	c.SSH.IdentityFile = abs(c.SSH.IdentityFile)
	c.SSH.KnownHosts = abs(c.SSH.KnownHosts)
	for name, env := range c.Environments {
		for i := range env.Hosts {
			h := &env.Hosts[i]
			if h.SSHPort == 0 {
				h.SSHPort = c.SSH.Port
			}
			if h.DockerSocket == "" {
				h.DockerSocket = DefaultDockerSocket
			}
		}
		if env.MinFreeDisk == 0 {
			env.MinFreeDisk = DefaultMinFreeDisk
		}
		if env.Lock.Dir == "" {
			env.Lock.Dir = DefaultLockDir
		}
		if env.Lock.TTL == 0 {
			env.Lock.TTL = Duration(DefaultLockTTL)
		}
		if env.Lock.Host == "" {
			env.Lock.Host = defaultLockHost(env)
		}
		for i := range env.LoadBalancers {
			lb := &env.LoadBalancers[i]
			if lb.SSHPort == 0 {
				lb.SSHPort = c.SSH.Port
			}
			if lb.UpstreamsDir == "" {
				lb.UpstreamsDir = DefaultUpstreamsDir
			}
			if lb.TestCommand == "" {
				lb.TestCommand = DefaultTestCommand
			}
			if lb.ReloadCommand == "" {
				lb.ReloadCommand = DefaultReloadCommand
			}
			if lb.DrainTimeout == 0 {
				lb.DrainTimeout = Duration(DefaultDrainTimeout)
			}
			if lb.ReloadTimeout == 0 {
				lb.ReloadTimeout = Duration(DefaultReloadTimeout)
			}
		}
		for i := range env.Notify.Webhooks {
			w := &env.Notify.Webhooks[i]
			if w.Timeout == 0 {
				w.Timeout = Duration(DefaultWebhookTimeout)
			}
			if len(w.Events) == 0 {
				w.Events = WebhookEvents
			}
		}
		if env.Hooks.Timeout == 0 {
			env.Hooks.Timeout = Duration(DefaultHookTimeout)
		}
		c.Environments[name] = env
	}
	for name, s := range c.Services {
		if s.ContainerName == "" {
			s.ContainerName = name
		}
		if s.Order == "" {
			s.Order = OrderStopFirst
		}
		if s.Port == 0 && s.Order == OrderStartFirst && len(s.Ports) > 0 {
			s.Port = s.Ports[0]
		}
		h := &s.Health
		if h.Kind == "" {
			h.Kind = HealthHTTP
			if s.Worker() {
				// Nothing to probe: up, without a restart, for a while.
				h.Kind = HealthRunning
			}
		}
		if h.Kind == HealthRunning && h.MinRunning == 0 {
			h.MinRunning = Duration(DefaultHealthMinRunning)
		}
		if h.Path == "" {
			h.Path = DefaultHealthPath
		}
		if h.ExpectedStatus == 0 {
			h.ExpectedStatus = DefaultHealthStatus
		}
		if h.Interval == 0 {
			h.Interval = Duration(DefaultHealthInterval)
		}
		if h.Timeout == 0 {
			h.Timeout = Duration(DefaultHealthTimeout)
		}
		if h.HealthyThreshold == 0 {
			h.HealthyThreshold = DefaultHealthThreshold
		}
		if h.Deadline == 0 {
			h.Deadline = Duration(DefaultHealthDeadline)
		}
		if s.StopTimeout == 0 {
			s.StopTimeout = Duration(DefaultStopTimeout)
		}
		if s.Log.Driver == "" {
			s.Log.Driver = DefaultLogDriver
		}
		if dockeropts.Rotates(s.Log.Driver) {
			// Other drivers have their own options: a max_size given
			// with them is reported, not defaulted.
			if s.Log.MaxSize == "" {
				s.Log.MaxSize = DefaultLogMaxSize
			}
			if s.Log.MaxFile == 0 {
				s.Log.MaxFile = DefaultLogMaxFile
			}
		}
		for i, f := range s.EnvFile {
			s.EnvFile[i] = abs(f)
		}
		if s.BatchSize == 0 {
			s.BatchSize = DefaultBatchSize
		}
		if s.KeepVersions == 0 {
			s.KeepVersions = DefaultKeepVersions
		}
		if s.Release != nil && s.Release.Timeout == 0 {
			s.Release.Timeout = Duration(DefaultReleaseTimeout)
		}
		if s.Canary != nil {
			if !s.Canary.Hosts.IsSet() {
				s.Canary.Hosts = Count{N: 1, set: true}
			}
			if s.Canary.Bake == 0 {
				s.Canary.Bake = Duration(DefaultCanaryBake)
			}
		}
		c.Services[name] = s
	}
}

// defaultLockHost picks where locks live: the first load balancer by name,
// else the first host by name.
func defaultLockHost(env Environment) string {
	names := []string{}
	for _, lb := range env.LoadBalancers {
		names = append(names, lb.Name)
	}
	if len(names) == 0 {
		for _, h := range env.Hosts {
			names = append(names, h.Name)
		}
	}
	sort.Strings(names)
	if len(names) == 0 {
		return ""
	}
	return names[0]
}
