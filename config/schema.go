package config

import (
	"fmt"
	"net"
	"sort"
	"strings"

	"github.com/gantry-dev/gantry/canary"
)

// Config is a loaded, validated gantry.yml.
type Config struct {
	// Path is the file the config was read from.
	Path         string                 `yaml:"-"`
	Registry     Registry               `yaml:"registry"`
	SSH          SSH                    `yaml:"ssh"`
	Environments map[string]Environment `yaml:"environments"`
	Services     map[string]Service     `yaml:"services"`
	// Apps are services deployed together, at one version, by one
	// command (gantry deploy APP@TAG).
	Apps map[string]App `yaml:"apps"`

	// env reads the deployer's environment (UseEnv); nil: nothing is set.
	// It is a function, not values, so no secret is held here.
	env LookupFunc
}

// App is several services deployed together: one target version, their
// deploy locks held together, in Services' order; when one fails, every
// service already moved goes back, so the app never runs two versions.
type App struct {
	Services []string `yaml:"services"`
}

// Registry is where images are pulled from.
type Registry struct {
	// Address is host[:port] of the registry, e.g. 127.0.0.1:5000.
	Address string `yaml:"address"`
	// Username for registry auth; the password comes from PasswordEnv, never
	// from the file. Without them the deployer's Docker credential file
	// (~/.docker/config.json) is consulted.
	Username    string `yaml:"username"`
	PasswordEnv string `yaml:"password_env"`
	// PullTimeout bounds one image pull on one host.
	PullTimeout Duration `yaml:"pull_timeout"`
	// PullConcurrency bounds how many hosts pull at once.
	PullConcurrency int `yaml:"pull_concurrency"`
}

// SSH says how gantry reaches hosts and load balancers.
type SSH struct {
	User           string   `yaml:"user"`
	IdentityFile   string   `yaml:"identity_file"`
	Agent          bool     `yaml:"agent"`
	KnownHosts     string   `yaml:"known_hosts"`
	Port           int      `yaml:"port"`
	ConnectTimeout Duration `yaml:"connect_timeout"`
	// JumpHost is an optional bastion, "[user@]host[:port]".
	JumpHost string `yaml:"jump_host"`
	// KeepaliveInterval is how often gantry asks each connection for a
	// sign of life; one that stays silent for KeepaliveCountMax intervals
	// is closed and redialled.
	KeepaliveInterval Duration `yaml:"keepalive_interval"`
	KeepaliveCountMax int      `yaml:"keepalive_count_max"`
	// RedialAttempts bounds the dials that replace a broken connection,
	// RedialBackoff is the first pause between them (doubled each time).
	RedialAttempts int      `yaml:"redial_attempts"`
	RedialBackoff  Duration `yaml:"redial_backoff"`
	// MaxSessions bounds the commands gantry runs at once on one
	// connection: sshd refuses sessions past its MaxSessions (10 by
	// default), so the bound stays below it.
	MaxSessions int `yaml:"max_sessions"`
	// DockerCallTimeout bounds each Docker API call on a host, session
	// set-up included (pulls are bounded by registry.pull_timeout).
	DockerCallTimeout Duration `yaml:"docker_call_timeout"`
	// Persist keeps connections open for this long after the last command
	// that used them, in a background keeper process, so that the next
	// command skips the SSH handshakes (as OpenSSH's ControlPersist); 0,
	// the default, keeps nothing. PersistDir holds the keepers' sockets.
	Persist    Duration `yaml:"persist"`
	PersistDir string   `yaml:"persist_dir"`
	// KeeperCommand starts a keeper (the gantry binary's own ssh-keeper
	// command); set by the CLI, not the file.
	KeeperCommand []string `yaml:"-"`
	// KeeperWarn is told why no keeper could be had, when connections are
	// dialled directly although persist is set; set by the CLI.
	KeeperWarn func(error) `yaml:"-"`
}

// Environment is one fleet: its hosts and its load balancers.
type Environment struct {
	// Hosts is the static host list; Discovery.EC2 finds hosts by tag instead.
	Hosts         []Host         `yaml:"hosts"`
	Discovery     Discovery      `yaml:"discovery"`
	LoadBalancers []LoadBalancer `yaml:"load_balancers"`
	// MinFreeDisk is the pre-flight floor of free space on every host's
	// Docker data root, e.g. "2g" (default 1g).
	MinFreeDisk Size `yaml:"min_free_disk"`
	Lock        Lock `yaml:"lock"`
	// JumpHost overrides ssh.jump_host for this environment's machines:
	// "[user@]host[:port]", or "none" for direct connections.
	JumpHost string `yaml:"jump_host"`
	// Production makes single points of failure (a service on one host or
	// in one zone) refuse deploys instead of warning.
	Production bool `yaml:"production"`
	// Notify lists the webhooks told about deploys and rollbacks.
	Notify Notify `yaml:"notify"`
	// Hooks are local commands run before and after deploys and rollbacks.
	Hooks Hooks `yaml:"hooks"`
}

// Notify is where an environment's deploy notifications go.
type Notify struct {
	Webhooks []Webhook `yaml:"webhooks"`
}

// Webhook is one HTTP endpoint that receives a Slack-compatible JSON POST
// when a deploy or rollback starts and ends. Its URL is a secret (Slack's
// carry a token): give it through URLEnv, the name of an environment
// variable, rather than in the file. It is never printed.
type Webhook struct {
	URL    string `yaml:"url"`
	URLEnv string `yaml:"url_env"`
	// Events limits the notifications sent (default: all of WebhookEvents).
	Events []string `yaml:"events"`
	// Timeout bounds one POST (default 5s).
	Timeout Duration `yaml:"timeout"`
}

// WebhookEvents are the notifications a webhook can receive.
var WebhookEvents = []string{"started", "succeeded", "failed", "reverted", "revert-failed", "interrupted"}

// Hooks are local shell commands (run with sh -c on the deployer's machine)
// around deploys and rollbacks. They get GANTRY_SERVICE, GANTRY_ENV,
// GANTRY_VERSION, GANTRY_IMAGE, GANTRY_HOSTS, GANTRY_KIND and, after a run,
// GANTRY_OUTCOME and GANTRY_FAILED_HOSTS. A failing pre-hook stops the run
// before anything changes; a failing post-hook is a warning.
type Hooks struct {
	PreDeploy    string   `yaml:"pre_deploy"`
	PostDeploy   string   `yaml:"post_deploy"`
	PreRollback  string   `yaml:"pre_rollback"`
	PostRollback string   `yaml:"post_rollback"`
	Timeout      Duration `yaml:"timeout"`
}

// Discovery says where an environment's hosts come from when they are not
// listed under hosts.
type Discovery struct {
	EC2 *EC2Discovery `yaml:"ec2"`
}

// EC2Discovery finds hosts among running EC2 instances by tag.
type EC2Discovery struct {
	Region  string `yaml:"region"`
	Profile string `yaml:"profile"`
	// Tags select the environment's instances, e.g. {env: staging}.
	Tags map[string]string `yaml:"tags"`
	// ServicesTag lists an instance's services (default gantry:services).
	ServicesTag string `yaml:"services_tag"`
	// Address is private-ip (default), public-ip or private-dns.
	Address      string `yaml:"address"`
	DockerSocket string `yaml:"docker_socket"`
}

// Lock is where the environment's deploy locks live: a directory on one
// machine of the fleet, shared by every deployer.
type Lock struct {
	// Host is the name of the load balancer or host holding the locks
	// (default: the first load balancer by name, else the first host).
	Host string `yaml:"host"`
	// Dir is the directory on that machine (default /var/lib/gantry/locks).
	Dir string `yaml:"dir"`
	// TTL is the lease of a deploy's lock (default 1m, at least 10s): its
	// holder renews it every few seconds while it runs; a lock not renewed
	// within its TTL, by the lock machine's clock, has expired and the next
	// deployer takes it over.
	TTL Duration `yaml:"ttl"`
}

// Host is one app host from static discovery.
type Host struct {
	Name         string   `yaml:"name"`
	Address      string   `yaml:"address"`
	Zone         string   `yaml:"zone"`
	SSHPort      int      `yaml:"ssh_port"`
	DockerSocket string   `yaml:"docker_socket"`
	Services     []string `yaml:"services"`
}

// LoadBalancer is one nginx host that proxies to the app hosts.
type LoadBalancer struct {
	Name    string `yaml:"name"`
	Address string `yaml:"address"`
	SSHPort int    `yaml:"ssh_port"`
	// UpstreamsDir holds one file per service, <dir>/<service>.conf, owned
	// by gantry and included inside the service's upstream block.
	UpstreamsDir  string   `yaml:"upstreams_dir"`
	TestCommand   string   `yaml:"test_command"`
	ReloadCommand string   `yaml:"reload_command"`
	PidFile       string   `yaml:"pid_file"` // empty: found with test_command -T / -V
	DrainTimeout  Duration `yaml:"drain_timeout"`
	// AccessLog is the access log on the load balancer that records, for
	// each request to the services' frontends, the upstream address,
	// status and response time (log_format canary.LogFormat): a canary
	// is judged from it. "" when no service here has a canary.
	AccessLog     string   `yaml:"access_log"`
	ReloadTimeout Duration `yaml:"reload_timeout"` // for new workers after a reload
}

// Service is one deployable container.
type Service struct {
	Image         string `yaml:"image"`
	ContainerName string `yaml:"container_name"`
	Port          int    `yaml:"port"`
	// Order is how a host's container is replaced: OrderStopFirst (the
	// default: drain, stop, start, health, restore) or OrderStartFirst (the
	// new container starts beside the old one on the other of Ports, is
	// health-checked, and the host's upstream entry is switched to it: the
	// host never leaves rotation).
	Order string `yaml:"order"`
	// Ports are the two ports a start-first service alternates between;
	// Port is then Ports[0], where a container with no port label serves.
	Ports []int `yaml:"ports"`
	// Env is the container's environment: literal values (with
	// ${host.name}-style placeholders) or {from_env: NAME}, a variable of
	// the deployer's environment read when a run starts.
	Env map[string]EnvValue `yaml:"env"`
	// EnvFile lists env files on the deployer's machine (Docker's
	// --env-file format), read when a run starts; env wins over them.
	// Their values, like from_env ones, are secrets.
	EnvFile     StringList `yaml:"env_file"`
	Health      Health     `yaml:"health"`
	StopTimeout Duration   `yaml:"stop_timeout"`
	Log         Log        `yaml:"log"`
	BatchSize   int        `yaml:"batch_size"`
	// MinInService is how many of the service's hosts must stay in
	// service while a batch is out (count or percent; default 1 when the
	// service has more than one host).
	MinInService Count `yaml:"min_in_service"`
	// KeepVersions is how many versions' images prune keeps on each host
	// (default 3, counting the one running): rollback needs them.
	KeepVersions int `yaml:"keep_versions"`
	// MinZones is how many zones the service's hosts must span (default 2
	// counts as "no single point of failure").
	MinZones int `yaml:"min_zones"`
	// AllowSinglePointOfFailure lets a production environment deploy a
	// service that runs on one host or in one zone.
	AllowSinglePointOfFailure bool `yaml:"allow_single_point_of_failure"`

	// Container options (README "Container options"). Left out, Docker's
	// or the image's default applies.

	// Command and Entrypoint: a list is the argv (exec form); a string is
	// run by /bin/sh -c, like a Dockerfile's shell form.
	Command    Argv   `yaml:"command"`
	Entrypoint Argv   `yaml:"entrypoint"`
	WorkingDir string `yaml:"working_dir"`
	User       string `yaml:"user"`
	// Volumes are SOURCE:TARGET[:ro], SOURCE an absolute host path or a
	// named volume.
	Volumes []string `yaml:"volumes"`
	// Memory is the memory limit, e.g. 512m; CPUs the CPU limit, e.g. 1.5.
	Memory    string  `yaml:"memory"`
	CPUs      float64 `yaml:"cpus"`
	PidsLimit int64   `yaml:"pids_limit"`
	// Ulimits maps a limit's name to SOFT or SOFT:HARD, e.g. nofile: 65536.
	Ulimits    map[string]string `yaml:"ulimits"`
	CapAdd     []string          `yaml:"cap_add"`
	CapDrop    []string          `yaml:"cap_drop"`
	Init       bool              `yaml:"init"`
	StopSignal string            `yaml:"stop_signal"`
	// Tmpfs are TARGET[:OPTIONS] tmpfs mounts, e.g. /tmp:size=64m.
	Tmpfs []string `yaml:"tmpfs"`
	// Labels are put on the containers beside gantry's own dev.gantry.*.
	Labels map[string]string `yaml:"labels"`
	// ExtraHosts maps host names to IP addresses in the container's /etc/hosts.
	ExtraHosts map[string]string `yaml:"extra_hosts"`

	// Release is a one-off command run once per deploy, in a container of
	// the new version, after the pull and before any host is drained
	// (database migrations, asset uploads); nil for none.
	Release *Release `yaml:"release"`
	// Canary is the service's canary stage (README "Canary deploys"); nil
	// for none.
	Canary *Canary `yaml:"canary"`
}

// Canary is a service's canary stage: Hosts move first and serve live
// traffic for Bake beside the hosts still on the old version; the load
// balancers' access logs decide whether the rollout goes on. A threshold
// left out takes its default (canary.DefaultThresholds); 0 turns a rule
// off.
type Canary struct {
	// Hosts is how many hosts (or what share of the serving ones) move
	// first, spread over the zones (default 1).
	Hosts Count `yaml:"hosts"`
	// Bake is how long the canary serves before the verdict (default
	// DefaultCanaryBake).
	Bake Duration `yaml:"bake"`
	// MinRequests is how many requests the canary hosts must serve in the
	// bake for a verdict; with fewer it is inconclusive.
	MinRequests *int64 `yaml:"min_requests"`
	// Inconclusive is what too little traffic means: fail (the default in
	// a production environment), pass (the default elsewhere), or extend
	// (keep baking up to MaxBake, then fail).
	Inconclusive string   `yaml:"inconclusive"`
	MaxBake      Duration `yaml:"max_bake"`
	// MaxErrorRate fails a canary whose share of 5xx and failed
	// connections is above it (e.g. 5%).
	MaxErrorRate *Share `yaml:"max_error_rate"`
	// MaxErrorIncrease and MaxErrorFactor compare with the baseline: a
	// canary whose error rate is both that many points and that many times
	// above the baseline's fails.
	MaxErrorIncrease *Share   `yaml:"max_error_increase"`
	MaxErrorFactor   *float64 `yaml:"max_error_factor"`
	// MaxP50 and MaxP99 are absolute bounds on the canary's median and
	// 99th-percentile upstream response time.
	MaxP50 Duration `yaml:"max_p50"`
	MaxP99 Duration `yaml:"max_p99"`
	// MaxP50Factor and MaxP99Factor bound them against the baseline's,
	// beyond LatencySlack.
	MaxP50Factor *float64  `yaml:"max_p50_factor"`
	MaxP99Factor *float64  `yaml:"max_p99_factor"`
	LatencySlack *Duration `yaml:"latency_slack"`
}

// Thresholds are the canary's rules for an environment (production: an
// inconclusive bake fails unless the config says otherwise).
func (c Canary) Thresholds(production bool) canary.Thresholds {
	t := canary.DefaultThresholds(production)
	if c.MinRequests != nil {
		t.MinRequests = *c.MinRequests
	}
	if c.Inconclusive != "" {
		t.Inconclusive = canary.Inconclusive(c.Inconclusive)
	}
	if c.MaxBake != 0 {
		t.MaxBake = c.MaxBake.D()
	}
	if c.MaxErrorRate != nil {
		t.MaxErrorRate = c.MaxErrorRate.F
	}
	if c.MaxErrorIncrease != nil {
		t.MaxErrorIncrease = c.MaxErrorIncrease.F
	}
	if c.MaxErrorFactor != nil {
		t.MaxErrorFactor = *c.MaxErrorFactor
	}
	t.MaxP50, t.MaxP99 = c.MaxP50.D(), c.MaxP99.D()
	if c.MaxP50Factor != nil {
		t.MaxP50Factor = *c.MaxP50Factor
	}
	if c.MaxP99Factor != nil {
		t.MaxP99Factor = *c.MaxP99Factor
	}
	if c.LatencySlack != nil {
		t.LatencySlack = c.LatencySlack.D()
	}
	return t
}

// Release is a service's release command (README "Release command").
type Release struct {
	// Command replaces the image's CMD, as `docker run IMAGE COMMAND`
	// does; the service's (or the image's) entrypoint stays. A list is the
	// argv; a string is run by /bin/sh -c.
	Command Argv `yaml:"command"`
	// Timeout bounds the command; past it the container is killed and
	// the deploy stops (default DefaultReleaseTimeout).
	Timeout Duration `yaml:"timeout"`
	// Host is the host it runs on; "" for the first host of the plan in
	// natural order.
	Host string `yaml:"host"`
}

// Health check kinds (Health.Kind).
const (
	HealthHTTP    = "http"
	HealthTCP     = "tcp"
	HealthCommand = "command"
	HealthDocker  = "docker"
	HealthRunning = "running"
)

// Orders of replacing a host's container (Service.Order).
const (
	OrderStopFirst  = "stop-first"
	OrderStartFirst = "start-first"
)

// Worker reports whether the service is a worker: no port, so no load
// balancer entry (queue consumers, schedulers). Its hosts are swapped
// without draining, and its health check cannot be http or tcp.
func (s Service) Worker() bool { return s.Port == 0 && len(s.Ports) == 0 }

// StartFirst reports whether the service is deployed start-first.
func (s Service) StartFirst() bool { return s.Order == OrderStartFirst }

// Health is the check a new container must pass before it gets traffic.
type Health struct {
	// Kind is the probe: http (the default), tcp, command, docker (the
	// image's own HEALTHCHECK) or running (up, without a restart, for
	// MinRunning).
	Kind string `yaml:"kind"`
	// Path, ExpectedStatus and Host (the Host header) are http's.
	Path           string `yaml:"path"`
	ExpectedStatus int    `yaml:"expected_status"`
	Host           string `yaml:"host"`
	// Command is command's argv, run inside the container: exit 0 passes.
	Command []string `yaml:"command"`
	// MinRunning is running's time up without a restart (default 5s).
	MinRunning       Duration `yaml:"min_running"`
	Interval         Duration `yaml:"interval"`
	Timeout          Duration `yaml:"timeout"`
	HealthyThreshold int      `yaml:"healthy_threshold"`
	Deadline         Duration `yaml:"deadline"`
}

// Log is the logging of a service's containers: json-file with rotation
// unless another Docker logging driver is named.
type Log struct {
	// Driver is a Docker logging driver (default json-file): local,
	// syslog, journald, gelf, fluentd, awslogs, ... or a plugin.
	Driver string `yaml:"driver"`
	// MaxSize and MaxFile rotate json-file and local logs.
	MaxSize string `yaml:"max_size"`
	MaxFile int    `yaml:"max_file"`
	// Options are the driver's own (docker run --log-opt), e.g.
	// syslog-address for syslog.
	Options map[string]string `yaml:"options"`
}

// MinInServiceOf resolves min_in_service for a service with total hosts:
// the configured count or percentage, else 1 when it has more than one host.
func (s Service) MinInServiceOf(total int) int {
	if s.MinInService.IsSet() {
		return s.MinInService.Of(total)
	}
	if total > 1 {
		return 1
	}
	return 0
}

// JumpHostFor returns the bastion to reach env's machines through ("" for none).
func (c *Config) JumpHostFor(env Environment) string {
	switch env.JumpHost {
	case "":
		return c.SSH.JumpHost
	case "none":
		return ""
	}
	return env.JumpHost
}

// Serves reports whether service may run in the environment: a static
// host lists it, or the hosts are discovered (which ones run it is only
// known then).
func (e Environment) Serves(service string) bool {
	if len(e.Hosts) == 0 {
		return true
	}
	for _, h := range e.Hosts {
		for _, s := range h.Services {
			if s == service {
				return true
			}
		}
	}
	return false
}

// Machine finds a host or load balancer of the environment by name and
// returns its address and SSH port.
func (e Environment) Machine(name string) (address string, sshPort int, ok bool) {
	for _, lb := range e.LoadBalancers {
		if lb.Name == name {
			return lb.Address, lb.SSHPort, true
		}
	}
	for _, h := range e.Hosts {
		if h.Name == name {
			return h.Address, h.SSHPort, true
		}
	}
	return "", 0, false
}

// Environment returns the named environment or an error listing the known ones.
func (c *Config) Environment(name string) (Environment, error) {
	env, ok := c.Environments[name]
	if !ok {
		return Environment{}, fmt.Errorf("%s: no environment %q (known: %s)", c.Path, name, strings.Join(sortedKeys(c.Environments), ", "))
	}
	return env, nil
}

// Service returns the named service or an error listing the known ones.
func (c *Config) Service(name string) (Service, error) {
	s, ok := c.Services[name]
	if !ok {
		return Service{}, fmt.Errorf("%s: no service %q (known: %s)", c.Path, name, strings.Join(sortedKeys(c.Services), ", "))
	}
	return s, nil
}

// App returns the app called name, or false.
func (c *Config) App(name string) (App, bool) {
	a, ok := c.Apps[name]
	return a, ok
}

// HostPort joins an address and port, bracketing IPv6 addresses.
func HostPort(addr string, port int) string { return net.JoinHostPort(addr, fmt.Sprint(port)) }

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
