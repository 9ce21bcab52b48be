package config

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// fullYAML is a valid config that sets most keys and leaves some to defaults.
const fullYAML = `registry:
  address: 127.0.0.1:5000
ssh:
  user: deploy
  identity_file: keys/id_ed25519
  known_hosts: keys/known_hosts
  port: 2222
environments:
  lab:
    hosts:
      - name: host1
        address: 127.0.2.1
        zone: a
        services: [www]
      - name: host2
        address: 127.0.2.2
        zone: b
        ssh_port: 22
        docker_socket: /run/docker.sock
        services: [www]
    load_balancers:
      - name: lb1
        address: 127.0.3.1
services:
  www:
    image: gantry/www
    port: 8080
    env:
      LISTEN: "${host.address}:8080"
      HOST_NAME: "${host.name}"
    health:
      interval: 100ms
      deadline: 30s
`

// minimalYAML is the smallest valid config; bad configs are made from it.
const minimalYAML = `registry:
  address: 127.0.0.1:5000
ssh:
  user: deploy
  identity_file: /keys/id
environments:
  lab:
    hosts:
      - name: host1
        address: 127.0.2.1
        services: [www]
services:
  www:
    image: gantry/www
    port: 8080
`

func TestParseFullConfigAppliesDefaults(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "gantry.yml")
	if err := os.WriteFile(path, []byte(fullYAML), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if c.Path != path {
		t.Errorf("Path = %q, want %q", c.Path, path)
	}
	// Relative paths resolve against the config file's directory.
	if want := filepath.Join(dir, "keys", "id_ed25519"); c.SSH.IdentityFile != want {
		t.Errorf("ssh.identity_file = %q, want %q", c.SSH.IdentityFile, want)
	}
	if want := filepath.Join(dir, "keys", "known_hosts"); c.SSH.KnownHosts != want {
		t.Errorf("ssh.known_hosts = %q, want %q", c.SSH.KnownHosts, want)
	}

	env, err := c.Environment("lab")
	if err != nil {
		t.Fatal(err)
	}
	h1, h2 := env.Hosts[0], env.Hosts[1]
	lb := env.LoadBalancers[0]
	svc, err := c.Service("www")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		key       string
		got, want any
	}{
		{"registry.pull_timeout", c.Registry.PullTimeout.D(), DefaultPullTimeout},
		{"registry.pull_concurrency", c.Registry.PullConcurrency, DefaultPullConcurrency},
		{"ssh.port (set)", c.SSH.Port, 2222},
		{"ssh.connect_timeout", c.SSH.ConnectTimeout.D(), DefaultConnectTimeout},
		{"ssh.keepalive_interval", c.SSH.KeepaliveInterval.D(), DefaultKeepaliveInterval},
		{"ssh.keepalive_count_max", c.SSH.KeepaliveCountMax, DefaultKeepaliveCountMax},
		{"ssh.redial_attempts", c.SSH.RedialAttempts, DefaultRedialAttempts},
		{"ssh.redial_backoff", c.SSH.RedialBackoff.D(), DefaultRedialBackoff},
		{"ssh.docker_call_timeout", c.SSH.DockerCallTimeout.D(), DefaultDockerCallTimeout},
		{"hosts[0].ssh_port (inherits ssh.port)", h1.SSHPort, 2222},
		{"hosts[0].docker_socket", h1.DockerSocket, DefaultDockerSocket},
		{"hosts[1].ssh_port (set)", h2.SSHPort, 22},
		{"hosts[1].docker_socket (set)", h2.DockerSocket, "/run/docker.sock"},
		{"load_balancers[0].ssh_port", lb.SSHPort, 2222},
		{"load_balancers[0].upstreams_dir", lb.UpstreamsDir, DefaultUpstreamsDir},
		{"load_balancers[0].test_command", lb.TestCommand, DefaultTestCommand},
		{"load_balancers[0].reload_command", lb.ReloadCommand, DefaultReloadCommand},
		{"load_balancers[0].drain_timeout", lb.DrainTimeout.D(), DefaultDrainTimeout},
		{"load_balancers[0].pid_file", lb.PidFile, ""},
		{"load_balancers[0].reload_timeout", lb.ReloadTimeout.D(), DefaultReloadTimeout},
		{"www.container_name", svc.ContainerName, "www"},
		{"www.health.kind", svc.Health.Kind, HealthHTTP},
		{"www.health.path", svc.Health.Path, DefaultHealthPath},
		{"www.health.expected_status", svc.Health.ExpectedStatus, DefaultHealthStatus},
		{"www.health.interval (set)", svc.Health.Interval.D(), 100 * time.Millisecond},
		{"www.health.timeout", svc.Health.Timeout.D(), DefaultHealthTimeout},
		{"www.health.healthy_threshold", svc.Health.HealthyThreshold, DefaultHealthThreshold},
		{"www.health.deadline (set)", svc.Health.Deadline.D(), 30 * time.Second},
		{"www.stop_timeout", svc.StopTimeout.D(), DefaultStopTimeout},
		{"www.log.max_size", svc.Log.MaxSize, DefaultLogMaxSize},
		{"www.log.max_file", svc.Log.MaxFile, DefaultLogMaxFile},
		{"www.batch_size", svc.BatchSize, DefaultBatchSize},
		{"lock.ttl", env.Lock.TTL.D(), DefaultLockTTL},
	} {
		if tc.got != tc.want {
			t.Errorf("%s = %v, want %v", tc.key, tc.got, tc.want)
		}
	}
}

func TestParseKnownHostsDefaultsToHome(t *testing.T) {
	home, err := os.UserHomeDir()
	if err != nil {
		t.Skip("no home directory:", err)
	}
	c, err := Parse("/etc/gantry/gantry.yml", []byte(minimalYAML))
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(home, ".ssh", "known_hosts"); c.SSH.KnownHosts != want {
		t.Errorf("ssh.known_hosts = %q, want %q", c.SSH.KnownHosts, want)
	}
	if c.SSH.IdentityFile != "/keys/id" {
		t.Errorf("absolute ssh.identity_file changed to %q", c.SSH.IdentityFile)
	}
}

// edit returns base with old replaced by new, failing if old is not there.
func edit(t *testing.T, base, old, new string) string {
	t.Helper()
	if !strings.Contains(base, old) {
		t.Fatalf("test setup: %q not in base config", old)
	}
	return strings.Replace(base, old, new, 1)
}

func TestParseRejectsBadConfigs(t *testing.T) {
	const file = "/srv/deploy/gantry.yml"
	tests := []struct {
		name string
		old  string // replaced in minimalYAML by new
		new  string
		want []string // substrings of the error, besides the file name
	}{
		{
			name: "unknown key",
			old:  "    port: 8080\n",
			new:  "    port: 8080\n    colour: blue\n",
			want: []string{`unknown key "colour"`, "line 16"},
		},
		{
			name: "missing registry address",
			old:  "  address: 127.0.0.1:5000\n",
			new:  "  pull_concurrency: 2\n",
			want: []string{"registry.address", "required"},
		},
		{
			name: "registry address with scheme",
			old:  "address: 127.0.0.1:5000",
			new:  "address: https://127.0.0.1:5000",
			want: []string{"registry.address", "without a scheme"},
		},
		{
			name: "registry username without password_env",
			old:  "  address: 127.0.0.1:5000\n",
			new:  "  address: 127.0.0.1:5000\n  username: bot\n",
			want: []string{"registry.password_env", "required with registry.username"},
		},
		{
			name: "lock ttl too short to renew",
			old:  "  lab:\n    hosts:\n",
			new:  "  lab:\n    lock:\n      ttl: 2s\n    hosts:\n",
			want: []string{"environments.lab.lock.ttl", "at least 10s"},
		},
		{
			name: "webhook with both url and url_env",
			old:  "  lab:\n    hosts:\n",
			new:  "  lab:\n    notify:\n      webhooks:\n        - url: https://hooks.example.com/x\n          url_env: HOOK\n    hosts:\n",
			want: []string{"environments.lab.notify.webhooks[0]", "exactly one of url or url_env"},
		},
		{
			name: "webhook url that is not http",
			old:  "  lab:\n    hosts:\n",
			new:  "  lab:\n    notify:\n      webhooks:\n        - url: ftp://secret-token@example.com/x\n    hosts:\n",
			want: []string{"environments.lab.notify.webhooks[0].url", "not an http(s) URL"},
		},
		{
			name: "webhook unknown event",
			old:  "  lab:\n    hosts:\n",
			new:  "  lab:\n    notify:\n      webhooks:\n        - url_env: HOOK\n          events: [started, exploded]\n    hosts:\n",
			want: []string{"environments.lab.notify.webhooks[0].events[1]", `unknown event "exploded"`},
		},
		{
			name: "unknown hook",
			old:  "  lab:\n    hosts:\n",
			new:  "  lab:\n    hooks:\n      before_deploy: ./x\n    hosts:\n",
			want: []string{`unknown key "before_deploy"`},
		},
		{
			name: "missing ssh user",
			old:  "  user: deploy\n",
			new:  "",
			want: []string{"ssh.user", "required"},
		},
		{
			name: "missing identity_file without agent",
			old:  "  identity_file: /keys/id\n",
			new:  "  agent: false\n",
			want: []string{"ssh.identity_file", "required unless ssh.agent is true"},
		},
		{
			name: "bad duration",
			old:  "    port: 8080\n",
			new:  "    port: 8080\n    health:\n      interval: fast\n",
			want: []string{"services.www.health.interval", "line 17", `"fast" is not a duration`},
		},
		{
			name: "bad duration and an unknown key are both reported",
			old:  "    port: 8080\n",
			new:  "    port: 8080\n    helth: {}\n    stop_timeout: soon\n",
			want: []string{"services.www.helth", `unknown key "helth"`, "services.www.stop_timeout", `"soon" is not a duration`},
		},
		{
			name: "unknown health kind",
			old:  "    port: 8080\n",
			new:  "    port: 8080\n    health:\n      kind: grpc\n",
			want: []string{"services.www.health.kind", `"grpc" is not a health check kind`, "http, tcp, command, docker or running"},
		},
		{
			name: "command kind without a command",
			old:  "    port: 8080\n",
			new:  "    port: 8080\n    health:\n      kind: command\n",
			want: []string{"services.www.health.command", "required for health.kind command", "[/app, healthcheck]"},
		},
		{
			name: "command given as a shell string",
			old:  "    port: 8080\n",
			new:  "    port: 8080\n    health:\n      kind: command\n      command: /app check\n",
			want: []string{"services.www.health.command"},
		},
		{
			name: "command on an http check",
			old:  "    port: 8080\n",
			new:  "    port: 8080\n    health:\n      command: [/app, check]\n",
			want: []string{"services.www.health.command", "only for health.kind command (this one is http)"},
		},
		{
			name: "host header on a tcp check, min_running on http",
			old:  "    port: 8080\n",
			new:  "    port: 8080\n    health:\n      kind: tcp\n      host: app.example.com\n      min_running: 5s\n",
			want: []string{"services.www.health.host", "only for health.kind http", "services.www.health.min_running", "only for health.kind running"},
		},
		{
			name: "hostile host header",
			old:  "    port: 8080\n",
			new:  "    port: 8080\n    health:\n      host: \"a.example.com\\r\\nX-Evil: 1\"\n",
			want: []string{"services.www.health.host", "is not a host name"},
		},
		{
			name: "min_running past the deadline",
			old:  "    port: 8080\n",
			new:  "    port: 8080\n    health:\n      kind: running\n      min_running: 2m\n      deadline: 1m\n",
			want: []string{"services.www.health.min_running", "2m0s must be shorter than health.deadline (1m0s)"},
		},
		{
			name: "word where a number belongs",
			old:  "    port: 8080\n",
			new:  "    port: eighty\n",
			want: []string{"services.www.port", `"eighty" is not a valid int`},
		},
		{
			name: "negative duration",
			old:  "    port: 8080\n",
			new:  "    port: 8080\n    stop_timeout: -1s\n",
			want: []string{`"-1s" must not be negative`},
		},
		{
			name: "stop_timeout under a second",
			old:  "    port: 8080\n",
			new:  "    port: 8080\n    stop_timeout: 500ms\n",
			want: []string{"services.www.stop_timeout", "500ms is less than 1s", "whole seconds, e.g. 10s"},
		},
		{
			name: "stop_timeout not whole seconds",
			old:  "    port: 8080\n",
			new:  "    port: 8080\n    stop_timeout: 2500ms\n",
			want: []string{"services.www.stop_timeout", "2.5s is not whole seconds", "cut it to 2s", "e.g. 3s"},
		},
		{
			name: "port 0 with an http health check: a worker cannot be probed over HTTP",
			old:  "port: 8080",
			new:  "port: 0\n    health: {kind: http, path: /healthz}",
			want: []string{"services.www.health.kind", "http needs a port, and this service has none (a worker)", "use running"},
		},
		{
			name: "a worker's env cannot use ${port}",
			old:  "    port: 8080\n",
			new:  "    env: {PORT: \"${port}\"}\n",
			want: []string{"services.www.env.PORT", "${port}: a worker has no port"},
		},
		{
			name: "port out of range",
			old:  "port: 8080",
			new:  "port: 70000",
			want: []string{"services.www.port", "1-65535", "leave port out for a worker"},
		},
		{
			name: "port missing with a tcp health check",
			old:  "    port: 8080\n",
			new:  "    health: {kind: tcp}\n",
			want: []string{"services.www.health.kind", "tcp needs a port"},
		},
		{
			name: "port 70000",
			old:  "port: 8080",
			new:  "port: 70000",
			want: []string{"services.www.port", "1-65535"},
		},
		{
			name: "host ssh_port out of range",
			old:  "        address: 127.0.2.1\n",
			new:  "        address: 127.0.2.1\n        ssh_port: 65536\n",
			want: []string{"environments.lab.hosts[0].ssh_port", "65536 is not a TCP port"},
		},
		{
			name: "missing host address",
			old:  "        address: 127.0.2.1\n",
			new:  "",
			want: []string{"environments.lab.hosts[0].address", "required"},
		},
		{
			name: "unknown service in host services",
			old:  "services: [www]",
			new:  "services: [www, api]",
			want: []string{"environments.lab.hosts[0].services[1]", `unknown service "api"`},
		},
		{
			name: "duplicate host name",
			old:  "        services: [www]\n",
			new:  "        services: [www]\n      - name: host1\n        address: 127.0.2.2\n",
			want: []string{"environments.lab.hosts[1].name", `host "host1" is listed twice`},
		},
		{
			name: "no hosts",
			old:  "    hosts:\n      - name: host1\n        address: 127.0.2.1\n        services: [www]\n",
			new:  "    hosts: []\n",
			want: []string{"environments.lab.hosts", "at least one host"},
		},
		{
			name: "relative docker_socket",
			old:  "        address: 127.0.2.1\n",
			new:  "        address: 127.0.2.1\n        docker_socket: run/docker.sock\n",
			want: []string{"environments.lab.hosts[0].docker_socket", `"run/docker.sock": not an absolute path`, "e.g. /var/run/docker.sock"},
		},
		{
			name: "docker_socket with a shell character",
			old:  "        address: 127.0.2.1\n",
			new:  "        address: 127.0.2.1\n        docker_socket: \"/run/docker.sock; id\"\n",
			want: []string{"environments.lab.hosts[0].docker_socket", `';' at byte 16 is not allowed`},
		},
		{
			name: "docker_socket escaping with ..",
			old:  "        address: 127.0.2.1\n",
			new:  "        address: 127.0.2.1\n        docker_socket: /run/../tmp/x.sock\n",
			want: []string{"environments.lab.hosts[0].docker_socket", `a ".." component is not allowed`},
		},
		{
			name: "host name with a newline and a server line",
			old:  "      - name: host1\n",
			new:  "      - name: \"host1\\nserver 127.0.0.9:80;\"\n",
			want: []string{"environments.lab.hosts[0].name", `"host1\nserver 127.0.0.9:80;": '\n' at byte 5 is not allowed`, "letters, digits", `rename the host, e.g. "host1-server-127.0.0.9-80"`},
		},
		{
			name: "host name with a path",
			old:  "      - name: host1\n",
			new:  "      - name: ../../etc/host1\n",
			want: []string{"environments.lab.hosts[0].name", `"../../etc/host1": '.' at byte 0 is not allowed`, `e.g. "etc-host1"`},
		},
		{
			name: "host name with a space",
			old:  "      - name: host1\n",
			new:  "      - name: web 1\n",
			want: []string{"environments.lab.hosts[0].name", `' ' at byte 3 is not allowed`, `e.g. "web-1"`},
		},
		{
			name: "host name too long",
			old:  "      - name: host1\n",
			new:  "      - name: " + strings.Repeat("h", 64) + "\n",
			want: []string{"environments.lab.hosts[0].name", "64 characters, at most 63"},
		},
		{
			name: "load balancer name with a brace",
			old:  "        services: [www]\n",
			new:  "        services: [www]\n    load_balancers:\n      - name: \"lb1{\"\n        address: 127.0.3.1\n        upstreams_dir: /etc/nginx/gantry\n",
			want: []string{"environments.lab.load_balancers[0].name", `'{' at byte 3 is not allowed`, "rename the load balancer"},
		},
		{
			name: "host address with a semicolon",
			old:  "        address: 127.0.2.1\n",
			new:  "        address: \"127.0.2.1; server 127.0.0.9:80\"\n",
			want: []string{"environments.lab.hosts[0].address", `';' at byte 9 is not allowed`, "IP address or DNS name"},
		},
		{
			name: "zone with a newline",
			old:  "        address: 127.0.2.1\n",
			new:  "        address: 127.0.2.1\n        zone: \"a\\nb\"\n",
			want: []string{"environments.lab.hosts[0].zone", `'\n' at byte 1 is not allowed`},
		},
		{
			name: "service name too long",
			old:  "  www:\n",
			new:  "  " + strings.Repeat("w", 64) + ":\n",
			want: []string{"services." + strings.Repeat("w", 64), "at most 63 characters"},
		},
		{
			name: "ec2 docker_socket relative",
			old:  "    hosts:\n      - name: host1\n        address: 127.0.2.1\n        services: [www]\n",
			new:  "    discovery:\n      ec2:\n        tags: {env: lab}\n        docker_socket: docker.sock\n",
			want: []string{"environments.lab.discovery.ec2.docker_socket", "not an absolute path"},
		},
		{
			name: "relative load balancer upstreams_dir",
			old:  "        services: [www]\n",
			new:  "        services: [www]\n    load_balancers:\n      - name: lb1\n        address: 127.0.3.1\n        upstreams_dir: nginx/gantry\n",
			want: []string{"environments.lab.load_balancers[0].upstreams_dir", "absolute path"},
		},
		{
			name: "load balancer reload_timeout under a second",
			old:  "        services: [www]\n",
			new:  "        services: [www]\n    load_balancers:\n      - name: lb1\n        address: 127.0.3.1\n        upstreams_dir: /etc/nginx/gantry\n        reload_timeout: 200ms\n",
			want: []string{"environments.lab.load_balancers[0].reload_timeout", "too short"},
		},
		{
			name: "bad env placeholder",
			old:  "    port: 8080\n",
			new:  "    port: 8080\n    env:\n      LISTEN: \"${host.ip}:8080\"\n",
			want: []string{"services.www.env.LISTEN", "unknown placeholder ${host.ip}"},
		},
		{
			name: "bad env name",
			old:  "    port: 8080\n",
			new:  "    port: 8080\n    env:\n      1BAD: x\n",
			want: []string{"services.www.env.1BAD", "not a valid environment variable name"},
		},
		{
			name: "bad log max_size",
			old:  "    port: 8080\n",
			new:  "    port: 8080\n    log:\n      max_size: 10mb\n",
			want: []string{"services.www.log.max_size", `"10mb" is not a size`},
		},
		{
			name: "health deadline shorter than interval",
			old:  "    port: 8080\n",
			new:  "    port: 8080\n    health:\n      interval: 2s\n      deadline: 1s\n",
			want: []string{"services.www.health.deadline", "longer than health.interval"},
		},
		{
			name: "health path without slash",
			old:  "    port: 8080\n",
			new:  "    port: 8080\n    health:\n      path: healthz\n",
			want: []string{"services.www.health.path", `"healthz" must start with /`},
		},
		{
			name: "image with a tag",
			old:  "image: gantry/www",
			new:  "image: gantry/www:1.0",
			want: []string{"services.www.image", "not a repository path"},
		},
		{
			name: "upper case service name",
			old:  "  www:\n",
			new:  "  WWW:\n",
			want: []string{"services.WWW", "service name must be lower case"},
		},
		{
			name: "start-first without two ports",
			old:  "    port: 8080\n",
			new:  "    order: start-first\n    ports: [8080]\n",
			want: []string{"services.www.ports", "two different ports"},
		},
		{
			name: "start-first with the same port twice",
			old:  "    port: 8080\n",
			new:  "    order: start-first\n    ports: [8080, 8080]\n",
			want: []string{"services.www.ports", "two different ports"},
		},
		{
			name: "start-first with a port not first of ports",
			old:  "    port: 8080\n",
			new:  "    port: 9000\n    order: start-first\n    ports: [8080, 8081]\n",
			want: []string{"services.www.port", "first of ports"},
		},
		{
			name: "ports without start-first",
			old:  "    port: 8080\n",
			new:  "    port: 8080\n    ports: [8080, 8081]\n",
			want: []string{"services.www.ports", "only for order: start-first"},
		},
		{
			name: "unknown order",
			old:  "    port: 8080\n",
			new:  "    port: 8080\n    order: blue-green\n",
			want: []string{"services.www.order", `"blue-green"`},
		},
		{
			name: "negative keepalive count",
			old:  "  identity_file: /keys/id\n",
			new:  "  identity_file: /keys/id\n  keepalive_count_max: -1\n",
			want: []string{"ssh.keepalive_count_max", "at least 1"},
		},
		{
			name: "negative redial attempts",
			old:  "  identity_file: /keys/id\n",
			new:  "  identity_file: /keys/id\n  redial_attempts: -2\n",
			want: []string{"ssh.redial_attempts", "at least 1"},
		},
		{
			name: "too many redial attempts",
			old:  "  identity_file: /keys/id\n",
			new:  "  identity_file: /keys/id\n  redial_attempts: 50\n",
			want: []string{"ssh.redial_attempts", "at most 20"},
		},
		{
			name: "negative redial backoff",
			old:  "  identity_file: /keys/id\n",
			new:  "  identity_file: /keys/id\n  redial_backoff: -1s\n",
			want: []string{"redial_backoff", "must not be negative"},
		},
		{
			name: "keepalive window not below the docker call timeout",
			old:  "  identity_file: /keys/id\n",
			new:  "  identity_file: /keys/id\n  keepalive_interval: 5s\n  keepalive_count_max: 4\n  docker_call_timeout: 20s\n",
			want: []string{"ssh.keepalive_interval", "20s", "ssh.docker_call_timeout"},
		},
		{
			name: "persist dir too long for a socket",
			old:  "  identity_file: /keys/id\n",
			new:  "  identity_file: /keys/id\n  persist: 1m\n  persist_dir: /run/user/1000/" + strings.Repeat("d", 80) + "\n",
			want: []string{"ssh.persist_dir", "95 characters", "at most 85"},
		},
		{
			name: "relative persist dir",
			old:  "  identity_file: /keys/id\n",
			new:  "  identity_file: /keys/id\n  persist: 1m\n  persist_dir: gantry-ssh\n",
			want: []string{"ssh.persist_dir", "absolute path"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			data := edit(t, minimalYAML, tc.old, tc.new)
			c, err := Parse(file, []byte(data))
			if err == nil {
				t.Fatalf("Parse succeeded, want an error; config:\n%s", data)
			}
			if c != nil {
				t.Errorf("Parse returned a config along with the error")
			}
			msg := err.Error()
			if strings.Contains(msg, "secret-token") {
				t.Errorf("the error shows a webhook URL (a secret):\n%s", msg)
			}
			for _, w := range append([]string{file + ": "}, tc.want...) {
				if !strings.Contains(msg, w) {
					t.Errorf("error does not contain %q:\n%s", w, msg)
				}
			}
		})
	}
}

func TestParseReportsEveryProblemAtOnce(t *testing.T) {
	const file = "gantry.yml"
	data := `registry:
  username: bot
ssh:
  identity_file: id
environments:
  lab:
    hosts:
      - name: host1
        address: 127.0.2.1
        services: [www, api]
      - name: host1
services:
  www:
    image: gantry/www
    port: 70000
    log:
      max_size: big
`
	_, err := Parse(file, []byte(data))
	if err == nil {
		t.Fatal("Parse succeeded, want errors")
	}
	want := []string{
		"gantry.yml: registry.address: required",
		"gantry.yml: registry.password_env: required with registry.username",
		"gantry.yml: ssh.user: required",
		`gantry.yml: environments.lab.hosts[0].services[1]: unknown service "api"`,
		`gantry.yml: environments.lab.hosts[1].name: host "host1" is listed twice`,
		"gantry.yml: environments.lab.hosts[1].address: required",
		"gantry.yml: services.www.port: 70000 is not a TCP port",
		`gantry.yml: services.www.log.max_size: "big" is not a size`,
	}
	// Each problem is its own line (errors.Join), so users see them all.
	lines := strings.Split(err.Error(), "\n")
	for _, w := range want {
		if !slices.ContainsFunc(lines, func(l string) bool { return strings.HasPrefix(l, w) }) {
			t.Errorf("no error line starting %q in:\n%s", w, err)
		}
	}
	if len(lines) != len(want) {
		t.Errorf("got %d problems, want %d:\n%s", len(lines), len(want), err)
	}
	// The individual problems stay reachable as *Error.
	var ce *Error
	if !errors.As(err, &ce) || ce.File != file || ce.Key == "" {
		t.Errorf("errors.As(*Error) = %+v, want a keyed *Error for %s", ce, file)
	}
}

func TestLoadMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nope.yml")
	_, err := Load(path)
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "not found") {
		t.Fatalf("Load(missing) = %v, want a not-found error naming %s", err, path)
	}
}

func TestLookupUnknownNamesListsKnownOnes(t *testing.T) {
	c, err := Parse("gantry.yml", []byte(minimalYAML))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Environment("prod"); err == nil || !strings.Contains(err.Error(), `no environment "prod" (known: lab)`) {
		t.Errorf("Environment(prod) = %v", err)
	}
	if _, err := c.Service("api"); err == nil || !strings.Contains(err.Error(), `no service "api" (known: www)`) {
		t.Errorf("Service(api) = %v", err)
	}
}

func TestStartFirstService(t *testing.T) {
	data := edit(t, minimalYAML, "    port: 8080\n", "    order: start-first\n    ports: [8081, 8080]\n    env:\n      LISTEN: \"${host.address}:${port}\"\n")
	c, err := Parse("/srv/gantry.yml", []byte(data))
	if err != nil {
		t.Fatal(err)
	}
	svc := c.Services["www"]
	if !svc.StartFirst() || svc.Port != 8081 {
		t.Errorf("start-first %v, port %d; want true, 8081 (the first of ports)", svc.StartFirst(), svc.Port)
	}
	h := Host{Name: "host1", Address: "10.0.0.1"}
	if got := strings.Join(svc.ExpandEnvPort(h, 8080, nil), " "); got != "LISTEN=10.0.0.1:8080" {
		t.Errorf("ExpandEnvPort = %q", got)
	}
	if got := strings.Join(svc.ExpandEnv(h), " "); got != "LISTEN=10.0.0.1:8081" {
		t.Errorf("ExpandEnv = %q", got)
	}
	if d, err := Parse("/srv/gantry.yml", []byte(minimalYAML)); err != nil || d.Services["www"].Order != OrderStopFirst {
		t.Errorf("default order: %v %v, want %s", d.Services["www"].Order, err, OrderStopFirst)
	}
}

// TestHealthKindsAccepted: each kind of health check in its usual form.
func TestHealthKindsAccepted(t *testing.T) {
	for _, tc := range []struct {
		health string
		check  func(Health) bool
	}{
		{"      kind: http\n      path: /up\n      host: app.example.com:8443\n", func(h Health) bool { return h.Path == "/up" && h.Host == "app.example.com:8443" }},
		{"      kind: tcp\n", func(h Health) bool { return h.Kind == HealthTCP }},
		{"      kind: command\n      command: [/app, healthcheck, --quiet]\n", func(h Health) bool { return len(h.Command) == 3 && h.Command[2] == "--quiet" }},
		{"      kind: docker\n", func(h Health) bool { return h.Kind == HealthDocker }},
		{"      kind: running\n", func(h Health) bool { return h.MinRunning.D() == DefaultHealthMinRunning }},
		{"      kind: running\n      min_running: 30s\n", func(h Health) bool { return h.MinRunning.D() == 30*time.Second }},
	} {
		data := minimalYAML + "    health:\n" + tc.health
		c, err := Parse("gantry.yml", []byte(data))
		if err != nil {
			t.Errorf("health:\n%s: %v", tc.health, err)
			continue
		}
		if h := c.Services["www"].Health; !tc.check(h) {
			t.Errorf("health:\n%s parsed as %+v", tc.health, h)
		}
	}
}

// TestWorkerService: a service with no port is a worker: no load balancer,
// health by running unless told otherwise, start-first without ports.
func TestWorkerService(t *testing.T) {
	data := strings.Replace(minimalYAML, "    port: 8080\n", "    order: start-first\n    stop_timeout: 10m\n", 1)
	c, err := Parse("gantry.yml", []byte(data))
	if err != nil {
		t.Fatal(err)
	}
	w := c.Services["www"]
	if !w.Worker() || w.Health.Kind != HealthRunning || w.Health.MinRunning.D() != DefaultHealthMinRunning || !w.StartFirst() || w.StopTimeout.D() != 10*time.Minute {
		t.Errorf("worker parsed as worker=%v health=%+v order=%s stop_timeout=%s", w.Worker(), w.Health, w.Order, w.StopTimeout.D())
	}
	data = strings.Replace(minimalYAML, "    port: 8080\n", "    health: {kind: command, command: [/app, ping]}\n", 1)
	if c, err = Parse("gantry.yml", []byte(data)); err != nil || c.Services["www"].Health.Kind != HealthCommand {
		t.Errorf("worker with a command health check: %v", err)
	}
}

// TestApps: services deployed together, in order; each rule's message.
func TestApps(t *testing.T) {
	base := strings.Replace(minimalYAML, "services: [www]", "services: [www, jobs]", 1) + "  jobs:\n    image: gantry/www\n"
	c, err := Parse("gantry.yml", []byte(base+"apps:\n  shop:\n    services: [jobs, www]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if app, ok := c.App("shop"); !ok || strings.Join(app.Services, ",") != "jobs,www" {
		t.Errorf("app shop = %+v, %v", app, ok)
	}
	for _, tc := range []struct{ apps, want string }{
		{"  www:\n    services: [jobs]\n", `apps.www: "www" is also a service`},
		{"  shop:\n    services: []\n", "apps.shop.services: required"},
		{"  shop:\n    services: [jobs, api]\n", `apps.shop.services[1]: unknown service "api"`},
		{"  shop:\n    services: [jobs, jobs]\n", `apps.shop.services[1]: "jobs" is listed twice`},
		{"  a:\n    services: [jobs]\n  b:\n    services: [www, jobs]\n", `apps.b.services[1]: "jobs" is already in app a`},
		{"  Shop!:\n    services: [jobs]\n", `apps.Shop!: "Shop!" is not a valid app name`},
	} {
		_, err := Parse("gantry.yml", []byte(base+"apps:\n"+tc.apps))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("apps:\n%s: error %v, want %q", tc.apps, err, tc.want)
		}
	}
}
