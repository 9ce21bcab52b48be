package config

import (
	"fmt"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/gantry-dev/gantry/internal/names"
	"github.com/gantry-dev/gantry/remote/dockeropts"

	"github.com/gantry-dev/gantry/canary"
)

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

// validate checks a defaulted config and returns every problem found, each
// an *Error naming the file and key: nothing stops at the first.
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
	if c.SSH.Persist.D() > MaxPersist {
		bad("ssh.persist", "%s is too long: connections kept open are logged-in sessions on every host (at most %s)", c.SSH.Persist.D(), MaxPersist)
	}
	if c.SSH.PersistDir != "" && !filepath.IsAbs(c.SSH.PersistDir) {
		bad("ssh.persist_dir", "%q must be an absolute path (a directory only you can use)", c.SSH.PersistDir)
	} else if len(c.SSH.PersistDir) > MaxPersistDir {
		bad("ssh.persist_dir", "%q is %d characters long: the keepers' sockets in it would not fit a unix socket's path (at most %d characters)", c.SSH.PersistDir, len(c.SSH.PersistDir), MaxPersistDir)
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
			if lb.AccessLog != "" && !filepath.IsAbs(lb.AccessLog) {
				bad(lk+".access_log", "%q must be an absolute path on the load balancer", lb.AccessLog)
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
		if s.Canary != nil {
			c.validateCanary(bad, key+".canary", sn, s)
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

// validateCanary checks a service's canary stage: its rules, and that
// every load balancer in front of the service says where its access log
// is.
func (c *Config) validateCanary(bad func(key, format string, args ...any), key, name string, s Service) {
	cn := *s.Canary
	if s.Worker() {
		bad(key, "a worker (no port) has no traffic to judge a canary on: remove canary")
		return
	}
	if cn.Hosts.N == 0 {
		bad(key+".hosts", "0: give how many hosts move first, e.g. 1 or 10%%, or remove canary")
	}
	if cn.Bake.D() < time.Second {
		bad(key+".bake", "%s is too short to judge traffic on: give e.g. 60s", cn.Bake.D())
	}
	if err := cn.Thresholds(false).Validate(); err != nil {
		bad(key, "%v", err)
	}
	if cn.Inconclusive == string(canary.InconclusiveExtend) && cn.MaxBake != 0 && cn.MaxBake < cn.Bake {
		bad(key+".max_bake", "%s is shorter than bake %s", cn.MaxBake.D(), cn.Bake.D())
	}
	for _, en := range sortedKeys(c.Environments) {
		env := c.Environments[en]
		for i, lb := range env.LoadBalancers {
			if lb.AccessLog == "" && env.Serves(name) {
				bad(fmt.Sprintf("environments.%s.load_balancers[%d].access_log", en, i), "required: services.%s has a canary, judged from this load balancer's access log; add e.g. access_log: /var/log/nginx/gantry-canary.log, written with: %s", name, canary.LogFormatLine)
			}
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
