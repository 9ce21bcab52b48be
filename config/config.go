package config

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"gopkg.in/yaml.v3"

	"github.com/gantry-dev/gantry/internal/names"
	"github.com/gantry-dev/gantry/remote/dockeropts"
)

// DefaultPath is the config file used when --config is not given.
const DefaultPath = "gantry.yml"

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
	DefaultHookTimeout    = 5 * time.Minute
	DefaultKeepVersions   = 3
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

// Size is a byte count written as 500m, 2g, 1t or plain bytes.
type Size int64

// UnmarshalYAML parses a size.
func (z *Size) UnmarshalYAML(n *yaml.Node) error {
	v, err := ParseSize(n.Value)
	if err != nil {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: %v", n.Line, err)}}
	}
	*z = Size(v)
	return nil
}

// ParseSize parses "500m", "2g", "1t", "800k" or a plain byte count.
func ParseSize(s string) (int64, error) {
	m := sizeRE.FindStringSubmatch(strings.ToLower(strings.TrimSpace(s)))
	if m == nil {
		return 0, fmt.Errorf("%q is not a size (use e.g. 500m, 2g, 1t)", s)
	}
	var n int64
	fmt.Sscan(m[1], &n)
	shift := map[string]uint{"": 0, "k": 10, "m": 20, "g": 30, "t": 40}[m[2]]
	return n << shift, nil
}

var sizeRE = regexp.MustCompile(`^([0-9]+)\s*([kmgt]?)b?$`)

// Count is "3" (hosts) or "50%" (of the service's hosts).
type Count struct {
	N       int
	Percent bool
	set     bool
}

// UnmarshalYAML parses a count or a percentage.
func (c *Count) UnmarshalYAML(n *yaml.Node) error {
	v := strings.TrimSpace(n.Value)
	pct := strings.HasSuffix(v, "%")
	var x int
	if _, err := fmt.Sscan(strings.TrimSuffix(v, "%"), &x); err != nil || x < 0 || (pct && x > 100) || strings.ContainsAny(strings.TrimSuffix(v, "%"), ".-+ ") {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: %q is not a host count or percentage (e.g. 2 or 50%%)", n.Line, v)}}
	}
	*c = Count{N: x, Percent: pct, set: true}
	return nil
}

// Of resolves the count against a total number of hosts (percentages
// round up: 50% of 3 hosts is 2).
func (c Count) Of(total int) int {
	if !c.Percent {
		return c.N
	}
	return (c.N*total + 99) / 100
}

// IsSet reports whether the key was given.
func (c Count) IsSet() bool { return c.set }

func (c Count) String() string {
	if c.Percent {
		return fmt.Sprintf("%d%%", c.N)
	}
	return fmt.Sprint(c.N)
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

// EnvValue is one value of a service's env: literal text, or the name of
// a variable in the deployer's environment whose value is a secret.
type EnvValue struct {
	Value   string
	FromEnv string
}

// UnmarshalYAML takes a scalar (literal) or {from_env: NAME}.
func (v *EnvValue) UnmarshalYAML(n *yaml.Node) error {
	bad := func(format string, args ...any) error {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: ", n.Line) + fmt.Sprintf(format, args...)}}
	}
	switch n.Kind {
	case yaml.ScalarNode:
		*v = EnvValue{Value: n.Value}
		if n.Tag == "!!null" {
			v.Value = ""
		}
		return nil
	case yaml.MappingNode:
		if len(n.Content) != 2 || n.Content[0].Value != "from_env" || n.Content[1].Kind != yaml.ScalarNode || n.Content[1].Value == "" {
			return bad("want a value, or {from_env: NAME} to take it from the deployer's environment")
		}
		*v = EnvValue{FromEnv: n.Content[1].Value}
		return nil
	}
	return bad("want a value, or {from_env: NAME} to take it from the deployer's environment")
}

// Argv is a command: a list is taken as it is (exec form), a string is run
// with /bin/sh -c (shell form, as in a Dockerfile).
type Argv []string

// UnmarshalYAML takes a string or a list of strings.
func (a *Argv) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		switch {
		case n.Tag == "!!null":
			*a = nil
		case strings.TrimSpace(n.Value) == "":
			*a = Argv{}
		default:
			*a = Argv{"/bin/sh", "-c", n.Value}
		}
		return nil
	}
	var list []string
	if err := n.Decode(&list); err != nil || n.Kind != yaml.SequenceNode {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: want a command line (run by /bin/sh -c) or a list of arguments", n.Line)}}
	}
	if list == nil {
		list = []string{}
	}
	*a = list
	return nil
}

// StringList is one string or a list of them.
type StringList []string

// UnmarshalYAML takes a string or a list of strings.
func (l *StringList) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		*l = StringList{n.Value}
		return nil
	}
	var list []string
	if err := n.Decode(&list); err != nil || n.Kind != yaml.SequenceNode {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: want a path or a list of paths", n.Line)}}
	}
	*l = list
	return nil
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

// Duration is a time.Duration written in YAML as "500ms", "30s", "2m".
type Duration time.Duration

// UnmarshalYAML parses a Go duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	// A *yaml.TypeError lets the decoder go on and report every problem.
	bad := func(format string, args ...any) error {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: ", n.Line) + fmt.Sprintf(format, args...)}}
	}
	var s string
	if err := n.Decode(&s); err != nil {
		return bad("want a duration like 500ms or 30s")
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return bad("%q is not a duration (use e.g. 500ms, 30s, 2m)", s)
	}
	if v < 0 {
		return bad("duration %q must not be negative", s)
	}
	*d = Duration(v)
	return nil
}

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// Error is a config problem: the file, the key and what is wrong.
type Error struct {
	File    string
	Key     string
	Problem string
}

func (e *Error) Error() string {
	if e.Key == "" {
		return fmt.Sprintf("%s: %s", e.File, e.Problem)
	}
	return fmt.Sprintf("%s: %s: %s", e.File, e.Key, e.Problem)
}

// Load reads, defaults and validates the config file at path. All problems
// found are returned together (as errors joined with errors.Join).
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("config file %s not found: pass --config PATH or create ./%s", path, DefaultPath)
		}
		return nil, fmt.Errorf("reading config: %w", err)
	}
	return Parse(path, data)
}

// Parse decodes and validates config data; path is used for messages and to
// resolve relative file paths.
func Parse(path string, data []byte) (*Config, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, &Error{File: path, Problem: strings.TrimPrefix(err.Error(), "yaml: ")}
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var c Config
	var errs []error
	if err := dec.Decode(&c); err != nil {
		var te *yaml.TypeError
		if !errors.As(err, &te) {
			return nil, &Error{File: path, Problem: strings.TrimPrefix(err.Error(), "yaml: ")}
		}
		// Type errors leave the rest decoded: report them with the
		// validation problems, each with its key.
		keys := keyLines(&root)
		for _, msg := range te.Errors {
			errs = append(errs, typeProblem(path, msg, keys))
		}
	}
	c.Path = path
	c.applyDefaults()
	errs = append(errs, c.validate()...)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return &c, nil
}

var (
	lineMsg       = regexp.MustCompile(`^line (\d+): (.*)$`)
	fieldNotFound = regexp.MustCompile(`^field (\S+) not found in type \S+$`)
	cannotDecode  = regexp.MustCompile(`^cannot unmarshal !!\w+ ` + "`" + `(.*)` + "`" + ` into (\S+)$`)
)

// typeProblem turns one of yaml.v3's messages ("line 5: field x not found
// in type config.Service") into an Error naming the key.
func typeProblem(file, msg string, keys map[int]string) error {
	m := lineMsg.FindStringSubmatch(msg)
	if m == nil {
		return &Error{File: file, Problem: msg}
	}
	line, problem := m[1], m[2]
	var n int
	fmt.Sscan(line, &n)
	key := keys[n]
	if f := fieldNotFound.FindStringSubmatch(problem); f != nil {
		problem = fmt.Sprintf("unknown key %q (check the spelling; the keys are listed in README.md)", f[1])
	} else if d := cannotDecode.FindStringSubmatch(problem); d != nil {
		problem = fmt.Sprintf("%q is not a valid %s", d[1], strings.TrimPrefix(strings.TrimPrefix(d[2], "[]"), "config."))
	}
	if key == "" {
		return &Error{File: file, Problem: "line " + line + ": " + problem}
	}
	return &Error{File: file, Key: key, Problem: problem + " (line " + line + ")"}
}

// keyLines maps each line that holds a key to the key's dotted path, e.g.
// 17 -> services.www.health.interval.
func keyLines(root *yaml.Node) map[int]string {
	keys := map[int]string{}
	var walk func(n *yaml.Node, path string)
	walk = func(n *yaml.Node, path string) {
		switch n.Kind {
		case yaml.DocumentNode:
			for _, c := range n.Content {
				walk(c, path)
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				p := k.Value
				if path != "" {
					p = path + "." + k.Value
				}
				if _, taken := keys[k.Line]; !taken || v.Kind == yaml.ScalarNode {
					keys[k.Line] = p
				}
				walk(v, p)
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				p := fmt.Sprintf("%s[%d]", path, i)
				if _, taken := keys[c.Line]; !taken {
					keys[c.Line] = p
				}
				walk(c, p)
			}
		}
	}
	walk(root, "")
	return keys
}

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
		c.Services[name] = s
	}
}

var (
	nameRE    = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]*$`)
	envKeyRE  = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	logSizeRE = regexp.MustCompile(`^[0-9]+[kmg]?$`)
	// healthHostRE is a Host header: a DNS name or address, optional port.
	healthHostRE = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9.-]{0,252})(:[0-9]{1,5})?$`)
	placeRE      = regexp.MustCompile(`\$\{([^}]*)\}`)
	hostFacts    = map[string]bool{"host.name": true, "host.address": true, "host.zone": true, "port": true}
	imagePathR   = regexp.MustCompile(`^[a-z0-9]+([._-][a-z0-9]+)*(/[a-z0-9]+([._-][a-z0-9]+)*)*$`)
)

func (c *Config) validate() []error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, &Error{File: c.Path, Key: key, Problem: fmt.Sprintf(format, args...)})
	}
	if c.Registry.Address == "" {
		bad("registry.address", "required: host[:port] of the image registry, e.g. registry.example.com")
	} else if strings.Contains(c.Registry.Address, "/") {
		bad("registry.address", "%q must be host[:port] without a scheme or path", c.Registry.Address)
	}
	if c.Registry.Username != "" && c.Registry.PasswordEnv == "" {
		bad("registry.password_env", "required with registry.username: the name of the environment variable holding the password")
	}
	if c.Registry.PullConcurrency < 0 {
		bad("registry.pull_concurrency", "must be at least 1")
	}
	if c.SSH.User == "" {
		bad("ssh.user", "required: the login user on hosts and load balancers")
	}
	if c.SSH.IdentityFile == "" && !c.SSH.Agent {
		bad("ssh.identity_file", "required unless ssh.agent is true: a private key file to log in with")
	}
	if c.SSH.Port < 1 || c.SSH.Port > 65535 {
		bad("ssh.port", "%d is not a TCP port", c.SSH.Port)
	}
	if c.SSH.KeepaliveCountMax < 1 {
		bad("ssh.keepalive_count_max", "must be at least 1 (keepalive intervals a connection may stay silent)")
	}
	if c.SSH.MaxSessions < 1 {
		bad("ssh.max_sessions", "must be at least 1 (keep it below the hosts' sshd MaxSessions, 10 by default)")
	}
	if c.SSH.RedialAttempts < 1 {
		bad("ssh.redial_attempts", "must be at least 1")
	} else if c.SSH.RedialAttempts > 20 {
		bad("ssh.redial_attempts", "%d is too many: an unreachable host would hold the run for minutes (at most 20)", c.SSH.RedialAttempts)
	}
	if w := c.SSH.KeepaliveInterval.D() * time.Duration(max(c.SSH.KeepaliveCountMax, 1)); w >= c.SSH.DockerCallTimeout.D() {
		bad("ssh.keepalive_interval", "a connection is declared dead only after %s of silence (keepalive_interval × keepalive_count_max), not less than ssh.docker_call_timeout %s: a frozen connection would fail calls instead of being redialled", w, c.SSH.DockerCallTimeout.D())
	}
	if len(c.Environments) == 0 {
		bad("environments", "required: at least one environment with hosts")
	}
	for _, en := range sortedKeys(c.Environments) {
		env := c.Environments[en]
		key := "environments." + en
		if !nameRE.MatchString(en) || len(en) > names.MaxLen {
			bad(key, "environment name must be lower case letters, digits, '.', '_' or '-', at most %d characters", names.MaxLen)
		}
		switch {
		case len(env.Hosts) == 0 && env.Discovery.EC2 == nil:
			bad(key+".hosts", "required: at least one host (or discovery.ec2)")
		case len(env.Hosts) > 0 && env.Discovery.EC2 != nil:
			bad(key+".discovery.ec2", "give either hosts or discovery.ec2, not both")
		case env.Discovery.EC2 != nil:
			e := env.Discovery.EC2
			if len(e.Tags) == 0 {
				bad(key+".discovery.ec2.tags", "required: the tags that select the environment's instances, e.g. {env: staging}")
			}
			switch e.Address {
			case "", "private-ip", "public-ip", "private-dns":
			default:
				bad(key+".discovery.ec2.address", "%q: use private-ip, public-ip or private-dns", e.Address)
			}
			if e.DockerSocket != "" {
				if err := names.CheckSocketPath(e.DockerSocket); err != nil {
					bad(key+".discovery.ec2.docker_socket", "%q: %v: give the absolute path of the Docker socket on the hosts, e.g. %s", e.DockerSocket, err, DefaultDockerSocket)
				}
			}
		}
		seen := map[string]bool{}
		for i, h := range env.Hosts {
			hk := fmt.Sprintf("%s.hosts[%d]", key, i)
			checkMachine(bad, hk, "host", h.Name, h.Address, h.SSHPort, seen)
			if h.Zone != "" {
				if err := names.Check(h.Zone); err != nil {
					bad(hk+".zone", "%q: %v (at most %d), e.g. eu-west-1a", h.Zone, err, names.MaxLen)
				}
			}
			if err := names.CheckSocketPath(h.DockerSocket); err != nil {
				bad(hk+".docker_socket", "%q: %v: give the absolute path of the Docker socket on the host, e.g. %s", h.DockerSocket, err, DefaultDockerSocket)
			}
			for j, s := range h.Services {
				if _, ok := c.Services[s]; !ok {
					bad(fmt.Sprintf("%s.services[%d]", hk, j), "unknown service %q (not under services:)", s)
				}
			}
		}
		lbSeen := map[string]bool{}
		for i, lb := range env.LoadBalancers {
			lk := fmt.Sprintf("%s.load_balancers[%d]", key, i)
			checkMachine(bad, lk, "load balancer", lb.Name, lb.Address, lb.SSHPort, lbSeen)
			if !filepath.IsAbs(lb.UpstreamsDir) {
				bad(lk+".upstreams_dir", "%q must be an absolute path on the load balancer", lb.UpstreamsDir)
			}
			if lb.PidFile != "" && !filepath.IsAbs(lb.PidFile) {
				bad(lk+".pid_file", "%q must be an absolute path on the load balancer", lb.PidFile)
			}
			if lb.ReloadTimeout.D() < time.Second {
				bad(lk+".reload_timeout", "%s is too short: nginx needs time to start new workers; give 1s or more (default %s)", lb.ReloadTimeout.D(), DefaultReloadTimeout)
			}
		}
	}
	for _, en := range sortedKeys(c.Environments) {
		env := c.Environments[en]
		if env.Lock.Host != "" {
			if _, _, ok := env.Machine(env.Lock.Host); !ok {
				bad("environments."+en+".lock.host", "%q is not a host or load balancer of the environment", env.Lock.Host)
			}
		}
		if !filepath.IsAbs(env.Lock.Dir) {
			bad("environments."+en+".lock.dir", "%q must be an absolute path", env.Lock.Dir)
		}
		if env.Lock.TTL.D() < MinLockTTL {
			bad("environments."+en+".lock.ttl", "%s is too short: at least %s (the lock is renewed every few seconds)", env.Lock.TTL.D(), MinLockTTL)
		}
		if env.Hooks.Timeout < 0 {
			bad("environments."+en+".hooks.timeout", "must be positive")
		}
		for i, w := range env.Notify.Webhooks {
			wk := fmt.Sprintf("environments.%s.notify.webhooks[%d]", en, i)
			switch {
			case (w.URL == "") == (w.URLEnv == ""):
				bad(wk, "give exactly one of url or url_env (the name of an environment variable holding the URL; better, as webhook URLs are secrets)")
			case w.URLEnv != "" && !envKeyRE.MatchString(w.URLEnv):
				bad(wk+".url_env", "%q is not an environment variable name", w.URLEnv)
			case w.URL != "":
				if u, err := url.Parse(w.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
					// Not echoed: the URL is a secret.
					bad(wk+".url", "not an http(s) URL")
				}
			}
			if w.Timeout < 0 {
				bad(wk+".timeout", "must be positive")
			}
			for j, ev := range w.Events {
				if !slices.Contains(WebhookEvents, ev) {
					bad(fmt.Sprintf("%s.events[%d]", wk, j), "unknown event %q: use %s", ev, strings.Join(WebhookEvents, ", "))
				}
			}
		}
	}
	if len(c.Services) == 0 {
		bad("services", "required: at least one service")
	}
	for _, sn := range sortedKeys(c.Services) {
		s := c.Services[sn]
		key := "services." + sn
		if !nameRE.MatchString(sn) || len(sn) > names.MaxLen {
			bad(key, "service name must be lower case letters, digits, '.', '_' or '-', at most %d characters", names.MaxLen)
		}
		if s.Image == "" {
			bad(key+".image", "required: the image repository in the registry, e.g. team/www")
		} else if !imagePathR.MatchString(s.Image) {
			bad(key+".image", "%q is not a repository path (lower case, no tag, no registry host)", s.Image)
		}
		if !nameRE.MatchString(s.ContainerName) {
			bad(key+".container_name", "%q is not a valid container name", s.ContainerName)
		}
		switch s.Order {
		case OrderStopFirst:
			if len(s.Ports) > 0 {
				bad(key+".ports", "only for order: %s (two ports to alternate between); use port", OrderStartFirst)
			}
		case OrderStartFirst:
			if s.Worker() {
				break // the new worker starts beside the old one: no port to alternate
			}
			if len(s.Ports) != 2 || s.Ports[0] == s.Ports[1] {
				bad(key+".ports", "order: %s needs two different ports to alternate between, e.g. [8080, 8081]", OrderStartFirst)
			} else if s.Port != s.Ports[0] {
				bad(key+".port", "%d: with order: %s, port is the first of ports (%d), where a container deployed before serves; leave it out", s.Port, OrderStartFirst, s.Ports[0])
			}
			for i, p := range s.Ports {
				if p < 1 || p > 65535 {
					bad(fmt.Sprintf("%s.ports[%d]", key, i), "%d is not a TCP port (1-65535)", p)
				}
			}
		default:
			bad(key+".order", "%q: use %s (default) or %s", s.Order, OrderStopFirst, OrderStartFirst)
		}
		if !s.Worker() && (s.Port < 1 || s.Port > 65535) {
			bad(key+".port", "%d is not a TCP port (1-65535): the port the app listens on; leave port out for a worker (no port, no load balancer)", s.Port)
		}
		if s.Worker() {
			if h := s.Health.Kind; h == HealthHTTP || h == HealthTCP {
				bad(key+".health.kind", "%s needs a port, and this service has none (a worker): use running (the default for workers), command or docker", h)
			}
			for _, k := range sortedKeys(s.Env) {
				if strings.Contains(s.Env[k].Value, "${port}") {
					bad(key+".env."+k, "${port}: a worker has no port")
				}
			}
		}
		for _, k := range sortedKeys(s.Env) {
			if !envKeyRE.MatchString(k) {
				bad(key+".env."+k, "not a valid environment variable name")
			}
			if v := s.Env[k]; v.FromEnv != "" {
				if !envKeyRE.MatchString(v.FromEnv) {
					bad(key+".env."+k+".from_env", "%q is not an environment variable name, e.g. DB_PASSWORD", v.FromEnv)
				}
				continue
			}
			for _, m := range placeRE.FindAllStringSubmatch(s.Env[k].Value, -1) {
				if !hostFacts[m[1]] {
					bad(key+".env."+k, "unknown placeholder ${%s}: use ${host.name}, ${host.address}, ${host.zone} or ${port}", m[1])
				}
			}
		}
		for i, f := range s.EnvFile {
			if f == "" {
				bad(fmt.Sprintf("%s.env_file[%d]", key, i), "empty: give the path of an env file on the deployer's machine (relative to %s)", filepath.Dir(c.Path))
			}
		}
		c.validateContainerOptions(bad, key, s)
		if s.Release != nil {
			validateRelease(bad, key+".release", *s.Release)
		}
		h := s.Health
		switch h.Kind {
		case HealthHTTP, HealthTCP, HealthCommand, HealthDocker, HealthRunning:
		default:
			bad(key+".health.kind", "%q is not a health check kind: use http, tcp, command, docker or running", h.Kind)
		}
		if h.Kind == HealthHTTP {
			if !strings.HasPrefix(h.Path, "/") || strings.ContainsAny(h.Path, " \t\r\n") {
				bad(key+".health.path", "%q must start with / and have no spaces", h.Path)
			}
			if h.ExpectedStatus < 100 || h.ExpectedStatus > 599 {
				bad(key+".health.expected_status", "%d is not an HTTP status", h.ExpectedStatus)
			}
			if h.Host != "" && !healthHostRE.MatchString(h.Host) {
				bad(key+".health.host", "%q is not a host name (the Host header of the probe, e.g. app.example.com)", h.Host)
			}
		} else if h.Host != "" {
			bad(key+".health.host", "is only for health.kind http (this one is %s)", h.Kind)
		}
		switch {
		case h.Kind == HealthCommand && len(h.Command) == 0:
			bad(key+".health.command", "required for health.kind command: the command's argv, e.g. [/app, healthcheck]")
		case h.Kind == HealthCommand && h.Command[0] == "":
			bad(key+".health.command", "the first element (the program) is empty")
		case h.Kind != HealthCommand && len(h.Command) > 0:
			bad(key+".health.command", "is only for health.kind command (this one is %s)", h.Kind)
		}
		if h.MinRunning != 0 && h.Kind != HealthRunning {
			bad(key+".health.min_running", "is only for health.kind running (this one is %s)", h.Kind)
		}
		if h.Kind == HealthRunning && h.MinRunning.D() >= h.Deadline.D() {
			bad(key+".health.min_running", "%s must be shorter than health.deadline (%s)", h.MinRunning.D(), h.Deadline.D())
		}
		if h.HealthyThreshold < 1 {
			bad(key+".health.healthy_threshold", "must be at least 1")
		}
		if h.Deadline < h.Interval {
			bad(key+".health.deadline", "must be longer than health.interval")
		}
		if err := dockeropts.LogDriver(s.Log.Driver); err != nil {
			bad(key+".log.driver", "%v", err)
		}
		if dockeropts.Rotates(s.Log.Driver) {
			if !logSizeRE.MatchString(s.Log.MaxSize) {
				bad(key+".log.max_size", "%q is not a size like 10m, 500k or 1g", s.Log.MaxSize)
			}
			if s.Log.MaxFile < 1 {
				bad(key+".log.max_file", "must be at least 1")
			}
			for _, o := range []string{"max-size", "max-file"} {
				if _, ok := s.Log.Options[o]; ok {
					bad(key+".log.options."+o, "set it with log.%s", strings.ReplaceAll(o, "-", "_"))
				}
			}
		} else {
			if s.Log.MaxSize != "" {
				bad(key+".log.max_size", "only for the json-file and local drivers: give %s's own options under log.options", s.Log.Driver)
			}
			if s.Log.MaxFile != 0 {
				bad(key+".log.max_file", "only for the json-file and local drivers: give %s's own options under log.options", s.Log.Driver)
			}
		}
		for _, o := range sortedKeys(s.Log.Options) {
			if o == "" || strings.ContainsAny(o, " =") {
				bad(key+".log.options", "%q is not a log option name (e.g. syslog-address, tag)", o)
			}
		}
		// Docker takes the stop timeout in whole seconds: 500ms would
		// become 0, an immediate kill without a graceful stop.
		if st := s.StopTimeout.D(); st < time.Second {
			bad(key+".stop_timeout", "%s is less than 1s: Docker counts it in whole seconds, so the container would be killed at once; give whole seconds, e.g. 10s", st)
		} else if st%time.Second != 0 {
			bad(key+".stop_timeout", "%s is not whole seconds (Docker would cut it to %s): give whole seconds, e.g. %s", st, st.Truncate(time.Second), st.Round(time.Second))
		}
		if s.BatchSize < 1 {
			bad(key+".batch_size", "must be at least 1")
		}
		if s.KeepVersions < 1 {
			bad(key+".keep_versions", "must be at least 1 (the running version)")
		}
	}
	inApp := map[string]string{}
	for _, name := range sortedKeys(c.Apps) {
		key := "apps." + name
		app := c.Apps[name]
		if !nameRE.MatchString(name) || !names.Safe(name) {
			bad(key, "%q is not a valid app name (lower-case letters, digits, '.', '_', '-')", name)
		}
		if _, clash := c.Services[name]; clash {
			bad(key, "%q is also a service: gantry deploy %s@TAG would be ambiguous; rename the app", name, name)
		}
		if len(app.Services) == 0 {
			bad(key+".services", "required: the services deployed together, in order, e.g. [jobs, www]")
		}
		seen := map[string]bool{}
		for i, svc := range app.Services {
			k := fmt.Sprintf("%s.services[%d]", key, i)
			if _, ok := c.Services[svc]; !ok {
				bad(k, "unknown service %q (not under services:)", svc)
			} else if seen[svc] {
				bad(k, "%q is listed twice", svc)
			} else if other, ok := inApp[svc]; ok {
				bad(k, "%q is already in app %s: a service belongs to one app at most", svc, other)
			}
			seen[svc] = true
			inApp[svc] = name
		}
	}
	return errs
}

// validateContainerOptions checks a service's container options with the
// same functions that turn them into Docker's types when a container is
// created.
func (c *Config) validateContainerOptions(bad func(key, format string, args ...any), key string, s Service) {
	for _, a := range []struct {
		name string
		argv Argv
	}{{"command", s.Command}, {"entrypoint", s.Entrypoint}} {
		if a.argv != nil && len(a.argv) == 0 {
			bad(key+"."+a.name, "empty: give the %s as a list, e.g. [\"/app\", \"--worker\"], or leave it out for the image's", a.name)
		}
		for i, arg := range a.argv {
			if i == 0 && arg == "" {
				bad(key+"."+a.name, "the program (first element) is empty")
			}
		}
	}
	if s.WorkingDir != "" {
		if err := dockeropts.WorkingDir(s.WorkingDir); err != nil {
			bad(key+".working_dir", "%v: the directory in the container, e.g. /app", err)
		}
	}
	if s.User != "" {
		if err := dockeropts.User(s.User); err != nil {
			bad(key+".user", "%v", err)
		}
	}
	targets := map[string]string{}
	for i, v := range s.Volumes {
		vk := fmt.Sprintf("%s.volumes[%d]", key, i)
		m, err := dockeropts.Volume(v)
		if err != nil {
			bad(vk, "%v: e.g. data:/var/lib/app (a named volume) or /srv/uploads:/uploads:ro (a host path, read-only)", err)
			continue
		}
		if prev, ok := targets[m.Target]; ok {
			bad(vk, "%s is already mounted by %s: each target once", m.Target, prev)
		}
		targets[m.Target] = vk
	}
	for i, t := range s.Tmpfs {
		tk := fmt.Sprintf("%s.tmpfs[%d]", key, i)
		target, _, err := dockeropts.Tmpfs(t)
		if err != nil {
			bad(tk, "%v: e.g. /tmp or /tmp:size=64m,mode=1777", err)
			continue
		}
		if prev, ok := targets[target]; ok {
			bad(tk, "%s is already mounted by %s: each target once", target, prev)
		}
		targets[target] = tk
	}
	if s.Memory != "" {
		if _, err := dockeropts.Memory(s.Memory); err != nil {
			bad(key+".memory", "%v", err)
		}
	}
	if s.CPUs != 0 {
		if _, err := dockeropts.NanoCPUs(s.CPUs); err != nil {
			bad(key+".cpus", "%v", err)
		}
	}
	if s.PidsLimit < -1 {
		bad(key+".pids_limit", "%d: give the most processes the container may run, e.g. 200 (or -1 for no limit)", s.PidsLimit)
	}
	for _, name := range sortedKeys(s.Ulimits) {
		if _, err := dockeropts.Ulimit(name, s.Ulimits[name]); err != nil {
			bad(key+".ulimits."+name, "%v", err)
		}
	}
	for _, caps := range []struct {
		name string
		list []string
	}{{"cap_add", s.CapAdd}, {"cap_drop", s.CapDrop}} {
		for i, cp := range caps.list {
			if _, err := dockeropts.Capability(cp); err != nil {
				bad(fmt.Sprintf("%s.%s[%d]", key, caps.name, i), "%v", err)
			}
		}
	}
	if s.StopSignal != "" {
		if err := dockeropts.StopSignal(s.StopSignal); err != nil {
			bad(key+".stop_signal", "%v", err)
		}
	}
	for _, l := range sortedKeys(s.Labels) {
		switch {
		case l == "":
			bad(key+".labels", "a label's name is empty")
		case strings.HasPrefix(l, gantryLabelPrefix):
			bad(key+".labels."+l, "%s* labels are gantry's own record of what runs where and cannot be set: use another prefix, e.g. com.example.%s", gantryLabelPrefix, strings.TrimPrefix(l, gantryLabelPrefix))
		}
	}
	for _, h := range sortedKeys(s.ExtraHosts) {
		if _, err := dockeropts.ExtraHost(h, s.ExtraHosts[h]); err != nil {
			bad(key+".extra_hosts."+h, "%v: e.g. db.internal: 10.0.0.5", err)
		}
	}
}

// validateRelease checks a service's release command.
func validateRelease(bad func(key, format string, args ...any), key string, r Release) {
	switch {
	case len(r.Command) == 0:
		bad(key+".command", "required: the command to run once per deploy in a container of the new version, e.g. [/app, migrate]")
	case r.Command[0] == "":
		bad(key+".command", "the program (first element) is empty")
	}
	if r.Timeout < 0 {
		bad(key+".timeout", "%s is negative: give how long the command may run, e.g. 10m", r.Timeout.D())
	} else if r.Timeout.D() < time.Second {
		bad(key+".timeout", "%s is less than 1s: give how long the command may run, e.g. 10m", r.Timeout.D())
	}
	if r.Host != "" {
		if err := names.Check(r.Host); err != nil {
			bad(key+".host", "%q: %v: the name of one of the service's hosts, or leave it out for the first host of the plan", r.Host, err)
		}
	}
}

// gantryLabelPrefix starts the labels gantry puts on its containers.
const gantryLabelPrefix = "dev.gantry."

// checkMachine checks what hosts and load balancers have in common: a
// unique name, an address and an SSH port.
func checkMachine(bad func(key, format string, args ...any), key, what, name, address string, port int, seen map[string]bool) {
	if name == "" {
		bad(key+".name", "required")
	} else if seen[name] {
		bad(key+".name", "%s %q is listed twice", what, name)
	} else if err := names.Check(name); err != nil {
		// The name goes into upstream files, commands and file names.
		bad(key+".name", "%q: %v (at most %d): rename the %s, e.g. %q", name, err, names.MaxLen, what, suggestName(name))
	}
	seen[name] = true
	if address == "" {
		bad(key+".address", "required: IP address or DNS name of the %s", what)
	} else if err := names.CheckAddr(address); err != nil {
		bad(key+".address", "%q: %v: give the IP address or DNS name of the %s, without port", address, err, what)
	}
	if port < 1 || port > 65535 {
		bad(key+".ssh_port", "%d is not a TCP port", port)
	}
}

// suggestName turns name into a valid one for messages: each run of other
// characters becomes '-', cut to names.MaxLen.
func suggestName(name string) string {
	var b strings.Builder
	dash := false
	for _, r := range name {
		ok := r < 0x80 && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-')
		switch {
		case ok && (b.Len() > 0 || r != '.' && r != '_' && r != '-'):
			b.WriteRune(r)
			dash = false
		case !ok && b.Len() > 0 && !dash:
			b.WriteByte('-')
			dash = true
		}
	}
	out := strings.TrimRight(b.String(), "-")
	if len(out) > names.MaxLen {
		out = out[:names.MaxLen]
	}
	if out == "" {
		out = "host1"
	}
	return out
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

// ExpandEnv returns the service's literal env for one host, with
// ${host.name}, ${host.address} and ${host.zone} replaced by the host's
// facts and ${port} by the service's port.
func (s Service) ExpandEnv(h Host) []string { return s.ExpandEnvPort(h, s.Port, nil) }

// ExpandEnvPort is ExpandEnv for a container listening on port (start-first
// containers alternate between two), with secrets (from ResolveSecrets)
// added as they are: no placeholder is expanded in a secret.
func (s Service) ExpandEnvPort(h Host, port int, secrets map[string]string) []string {
	facts := map[string]string{"host.name": h.Name, "host.address": h.Address, "host.zone": h.Zone, "port": strconv.Itoa(port)}
	vals := map[string]string{}
	for k, v := range secrets {
		vals[k] = v
	}
	for k, v := range s.Env {
		if v.FromEnv != "" {
			continue
		}
		vals[k] = placeRE.ReplaceAllStringFunc(v.Value, func(m string) string {
			return facts[m[2:len(m)-1]]
		})
	}
	out := make([]string, 0, len(vals))
	for _, k := range sortedKeys(vals) {
		out = append(out, k+"="+vals[k])
	}
	return out
}

// LookupFunc finds a variable of the deployer's environment, as
// os.LookupEnv does. The command that starts a run passes os.LookupEnv.
type LookupFunc func(name string) (string, bool)

// ResolveSecrets reads the service's secret env values: its env files
// (in order, a later file winning) and its {from_env: NAME} values, from
// lookup. Literal env values win over env files. Every unset variable and
// unreadable file is reported, by key and name; no value is ever put in
// an error.
func (c *Config) ResolveSecrets(service string, lookup LookupFunc) (map[string]string, error) {
	s, err := c.Service(service)
	if err != nil {
		return nil, err
	}
	if lookup == nil {
		lookup = func(string) (string, bool) { return "", false }
	}
	key := "services." + service
	out := map[string]string{}
	var errs []error
	for i, f := range s.EnvFile {
		vals, err := ReadEnvFile(f, lookup)
		if err != nil {
			errs = append(errs, &Error{File: c.Path, Key: fmt.Sprintf("%s.env_file[%d]", key, i), Problem: err.Error()})
			continue
		}
		for k, v := range vals {
			out[k] = v
		}
	}
	for _, k := range sortedKeys(s.Env) {
		v := s.Env[k]
		if v.FromEnv == "" {
			delete(out, k)
			continue
		}
		val, ok := lookup(v.FromEnv)
		if !ok {
			errs = append(errs, &Error{File: c.Path, Key: key + ".env." + k, Problem: fmt.Sprintf("environment variable %s is not set on the deployer's machine: export it (e.g. from your CI's secrets) and run again", v.FromEnv)})
			continue
		}
		out[k] = val
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

// ReadEnvFile reads an env file in Docker's --env-file format: one
// VAR=VALUE per line, the value taken as it is (no quotes removed, no
// expansion); a line with VAR alone takes VAR from lookup, and is skipped
// when it is unset; blank lines and lines starting with # are skipped.
// Errors name the file and line, never a value.
func ReadEnvFile(path string, lookup LookupFunc) (map[string]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("env file %s not found on the deployer's machine", path)
		}
		return nil, fmt.Errorf("env file %s: %w", path, err)
	}
	if !utf8.Valid(data) {
		return nil, fmt.Errorf("env file %s is not UTF-8 text", path)
	}
	out := map[string]string{}
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSuffix(line, "\r")
		// Like docker: leading white space goes, trailing stays (it is
		// part of the value).
		line = strings.TrimLeft(line, " \t")
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, hasValue := strings.Cut(line, "=")
		if !envKeyRE.MatchString(k) {
			// The line is not echoed: it may hold a secret.
			return nil, fmt.Errorf("env file %s, line %d: not NAME=VALUE (NAME: letters, digits and _)", path, i+1)
		}
		if !hasValue {
			if val, ok := lookup(k); ok {
				out[k] = val
			}
			continue
		}
		out[k] = v
	}
	return out, nil
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

// Endpoint is the webhook's URL: url, or the value of the url_env variable
// ("" when that is unset).
func (w Webhook) Endpoint() string {
	if w.URLEnv != "" {
		return os.Getenv(w.URLEnv)
	}
	return w.URL
}

// Secrets are the secret values the config points at (the registry
// password, webhook URLs, every service's from_env and env file values),
// found through lookup: output must never show them. What cannot be read
// is skipped here; a run reports it (ResolveSecrets).
func (c *Config) Secrets(lookup LookupFunc) []string {
	var out []string
	if lookup == nil {
		lookup = func(string) (string, bool) { return "", false }
	}
	if c.Registry.PasswordEnv != "" {
		if v, _ := lookup(c.Registry.PasswordEnv); v != "" {
			out = append(out, v)
		}
	}
	for _, sn := range sortedKeys(c.Services) {
		s := c.Services[sn]
		for _, f := range s.EnvFile {
			if vals, err := ReadEnvFile(f, lookup); err == nil {
				for _, k := range sortedKeys(vals) {
					out = append(out, vals[k])
				}
			}
		}
		for _, k := range sortedKeys(s.Env) {
			if e := s.Env[k].FromEnv; e != "" {
				if v, _ := lookup(e); v != "" {
					out = append(out, v)
				}
			}
		}
	}
	for _, en := range sortedKeys(c.Environments) {
		for _, w := range c.Environments[en].Notify.Webhooks {
			if u := w.Endpoint(); u != "" {
				out = append(out, u)
			}
		}
	}
	return out
}
