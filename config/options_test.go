package config

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

// withService returns minimalYAML with lines added to service www.
func withService(t *testing.T, lines string) string {
	t.Helper()
	return edit(t, minimalYAML, "    port: 8080\n", "    port: 8080\n"+lines)
}

func TestContainerOptionsAccepted(t *testing.T) {
	tests := []struct {
		name  string
		lines string
		check func(s Service) any // returns the value looked at
		want  any
	}{
		{"command list", "    command: [\"/app\", \"--worker\"]\n", func(s Service) any { return []string(s.Command) }, []string{"/app", "--worker"}},
		{"command string runs in a shell", "    command: ./app --worker 2\n", func(s Service) any { return []string(s.Command) }, []string{"/bin/sh", "-c", "./app --worker 2"}},
		{"entrypoint", "    entrypoint: [/tini, --]\n", func(s Service) any { return []string(s.Entrypoint) }, []string{"/tini", "--"}},
		{"no command", "", func(s Service) any { return s.Command == nil }, true},
		{"null command", "    command: ~\n", func(s Service) any { return s.Command == nil }, true},
		{"working_dir", "    working_dir: /srv/app\n", func(s Service) any { return s.WorkingDir }, "/srv/app"},
		{"user uid:gid", "    user: \"1000:1000\"\n", func(s Service) any { return s.User }, "1000:1000"},
		{"user name", "    user: www-data\n", func(s Service) any { return s.User }, "www-data"},
		{"volumes", "    volumes:\n      - data:/var/lib/app\n      - /srv/uploads:/uploads:ro\n      - /etc/ssl/certs:/certs:rw\n",
			func(s Service) any { return s.Volumes }, []string{"data:/var/lib/app", "/srv/uploads:/uploads:ro", "/etc/ssl/certs:/certs:rw"}},
		{"memory", "    memory: 512m\n", func(s Service) any { return s.Memory }, "512m"},
		{"memory in bytes", "    memory: 1073741824\n", func(s Service) any { return s.Memory }, "1073741824"},
		{"cpus", "    cpus: 1.5\n", func(s Service) any { return s.CPUs }, 1.5},
		{"pids_limit", "    pids_limit: 200\n", func(s Service) any { return s.PidsLimit }, int64(200)},
		{"pids_limit unlimited", "    pids_limit: -1\n", func(s Service) any { return s.PidsLimit }, int64(-1)},
		{"ulimits", "    ulimits:\n      nofile: 1024:65536\n      nproc: 512\n", func(s Service) any { return s.Ulimits }, map[string]string{"nofile": "1024:65536", "nproc": "512"}},
		{"capabilities", "    cap_add: [NET_ADMIN, cap_sys_ptrace]\n    cap_drop: [ALL]\n", func(s Service) any { return append(s.CapAdd, s.CapDrop...) }, []string{"NET_ADMIN", "cap_sys_ptrace", "ALL"}},
		{"init", "    init: true\n", func(s Service) any { return s.Init }, true},
		{"stop_signal name", "    stop_signal: SIGQUIT\n", func(s Service) any { return s.StopSignal }, "SIGQUIT"},
		{"stop_signal short and number", "    stop_signal: \"3\"\n", func(s Service) any { return s.StopSignal }, "3"},
		{"stop_signal realtime", "    stop_signal: SIGRTMIN+3\n", func(s Service) any { return s.StopSignal }, "SIGRTMIN+3"},
		{"tmpfs", "    tmpfs: [/run, \"/tmp:size=64m,mode=1777,noexec\"]\n", func(s Service) any { return s.Tmpfs }, []string{"/run", "/tmp:size=64m,mode=1777,noexec"}},
		{"labels", "    labels:\n      com.example.team: payments\n", func(s Service) any { return s.Labels }, map[string]string{"com.example.team": "payments"}},
		{"extra_hosts", "    extra_hosts:\n      db.internal: 10.0.0.5\n      v6.internal: \"::1\"\n      gw: host-gateway\n", func(s Service) any { return len(s.ExtraHosts) }, 3},
		{"default log is json-file rotated", "", func(s Service) any { return s.Log }, Log{Driver: "json-file", MaxSize: DefaultLogMaxSize, MaxFile: DefaultLogMaxFile}},
		{"local log rotated", "    log:\n      driver: local\n      max_size: 50m\n", func(s Service) any { return s.Log }, Log{Driver: "local", MaxSize: "50m", MaxFile: DefaultLogMaxFile}},
		{"json-file with options", "    log:\n      options: {compress: \"true\", tag: \"{{.Name}}\"}\n", func(s Service) any { return s.Log.Options }, map[string]string{"compress": "true", "tag": "{{.Name}}"}},
		{"syslog passed through, no rotation", "    log:\n      driver: syslog\n      options:\n        syslog-address: udp://10.0.0.9:514\n",
			func(s Service) any { return s.Log }, Log{Driver: "syslog", Options: map[string]string{"syslog-address": "udp://10.0.0.9:514"}}},
		{"awslogs", "    log: {driver: awslogs, options: {awslogs-group: www, awslogs-region: eu-west-1}}\n", func(s Service) any { return s.Log.Driver }, "awslogs"},
		{"plugin driver", "    log: {driver: \"grafana/loki-docker-driver:latest\"}\n", func(s Service) any { return s.Log.Driver }, "grafana/loki-docker-driver:latest"},
		{"env from_env", "    env:\n      DB_PASSWORD: {from_env: CI_DB_PASSWORD}\n      PLAIN: 1\n", func(s Service) any { return s.Env }, map[string]EnvValue{"DB_PASSWORD": {FromEnv: "CI_DB_PASSWORD"}, "PLAIN": {Value: "1"}}},
		{"env_file string, relative to the config", "    env_file: secrets/www.env\n", func(s Service) any { return []string(s.EnvFile) }, []string{"/srv/deploy/secrets/www.env"}},
		{"env_file list", "    env_file: [/etc/a.env, b.env]\n", func(s Service) any { return []string(s.EnvFile) }, []string{"/etc/a.env", "/srv/deploy/b.env"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			data := withService(t, tc.lines)
			c, err := Parse("/srv/deploy/gantry.yml", []byte(data))
			if err != nil {
				t.Fatalf("Parse: %v\nconfig:\n%s", err, data)
			}
			if got := tc.check(c.Services["www"]); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %#v, want %#v", got, tc.want)
			}
		})
	}
}

func TestContainerOptionsRejected(t *testing.T) {
	const file = "/srv/deploy/gantry.yml"
	tests := []struct {
		name  string
		lines string
		want  []string // substrings of the error, besides the file name
	}{
		{"command not a command", "    command: {run: app}\n", []string{"services.www.command", "want a command line"}},
		{"empty command", "    command: []\n", []string{"services.www.command", "empty"}},
		{"blank command line", "    entrypoint: \" \"\n", []string{"services.www.entrypoint", "empty"}},
		{"empty program", "    entrypoint: [\"\", x]\n", []string{"services.www.entrypoint", "program (first element) is empty"}},
		{"relative working_dir", "    working_dir: app\n", []string{"services.www.working_dir", `"app" must be an absolute path`}},
		{"bad user", "    user: \"a b\"\n", []string{"services.www.user", "NAME, UID, NAME:GROUP or UID:GID"}},
		{"volume without target", "    volumes: [data]\n", []string{"services.www.volumes[0]", "not SOURCE:TARGET", "e.g. data:/var/lib/app"}},
		{"volume bad mode", "    volumes: [\"data:/d:rx\"]\n", []string{"services.www.volumes[0]", `mode "rx"`, "ro (read-only) or rw"}},
		{"volume relative host path", "    volumes: [\"./data:/d\"]\n", []string{"services.www.volumes[0]", "must be absolute", "not on the deployer's machine"}},
		{"volume relative target", "    volumes: [\"data:d\"]\n", []string{"services.www.volumes[0]", "target", "absolute path"}},
		{"volume bad name", "    volumes: [\"my data:/d\"]\n", []string{"services.www.volumes[0]", "neither an absolute host path nor a volume name"}},
		{"volume target twice", "    volumes: [data:/d, /srv/b:/d]\n", []string{"services.www.volumes[1]", "already mounted by services.www.volumes[0]"}},
		{"tmpfs over a volume", "    volumes: [data:/tmp]\n    tmpfs: [/tmp]\n", []string{"services.www.tmpfs[0]", "already mounted"}},
		{"tmpfs relative", "    tmpfs: [tmp]\n", []string{"services.www.tmpfs[0]", "absolute path"}},
		{"tmpfs bad size", "    tmpfs: [\"/tmp:size=lots\"]\n", []string{"services.www.tmpfs[0]", `size "lots" is not a size`}},
		{"tmpfs bad mode", "    tmpfs: [\"/tmp:mode=999\"]\n", []string{"services.www.tmpfs[0]", "not an octal mode"}},
		{"memory not a size", "    memory: lots\n", []string{"services.www.memory", `"lots" is not a size`, "256m"}},
		{"memory too small", "    memory: 1m\n", []string{"services.www.memory", "minimum of 6m"}},
		{"cpus negative", "    cpus: -1\n", []string{"services.www.cpus", "positive number of CPUs"}},
		{"cpus not a number", "    cpus: many\n", []string{"services.www.cpus", `"many" is not a valid float64`}},
		{"pids_limit", "    pids_limit: -5\n", []string{"services.www.pids_limit", "-1 for no limit"}},
		{"unknown ulimit", "    ulimits: {nofiles: 10}\n", []string{"services.www.ulimits.nofiles", "invalid ulimit type"}},
		{"ulimit soft above hard", "    ulimits: {nofile: \"100:10\"}\n", []string{"services.www.ulimits.nofile", "SOFT:HARD"}},
		{"ulimit not a number", "    ulimits: {nofile: many}\n", []string{"services.www.ulimits.nofile", "many"}},
		{"unknown capability", "    cap_add: [NET_ADMN]\n", []string{"services.www.cap_add[0]", `"NET_ADMN" is not a Linux capability`}},
		{"unknown dropped capability", "    cap_drop: [ALL, FLY]\n", []string{"services.www.cap_drop[1]", "FLY"}},
		{"init not a bool", "    init: maybe\n", []string{"services.www.init", `"maybe" is not a valid bool`}},
		{"bad stop signal", "    stop_signal: SIGSTOPPLEASE\n", []string{"services.www.stop_signal", "not a signal"}},
		{"stop signal number", "    stop_signal: \"99\"\n", []string{"services.www.stop_signal", "1-64"}},
		{"gantry label", "    labels:\n      dev.gantry.version: fake\n", []string{"services.www.labels.dev.gantry.version", "gantry's own record", "com.example.version"}},
		{"bad extra host ip", "    extra_hosts: {db.internal: 10.0.0}\n", []string{"services.www.extra_hosts.db.internal", "not an IP address"}},
		{"bad extra host name", "    extra_hosts: {\"db_internal!\": 10.0.0.1}\n", []string{"services.www.extra_hosts.db_internal!", "not a host name"}},
		{"bad log driver", "    log: {driver: \"Json File\"}\n", []string{"services.www.log.driver", "not a logging driver name"}},
		{"rotation with syslog", "    log: {driver: syslog, max_size: 10m}\n", []string{"services.www.log.max_size", "only for the json-file and local drivers", "syslog's own options under log.options"}},
		{"max_file with gelf", "    log: {driver: gelf, max_file: 3}\n", []string{"services.www.log.max_file", "only for the json-file and local drivers"}},
		{"rotation as an option", "    log: {options: {max-size: 1g}}\n", []string{"services.www.log.options.max-size", "set it with log.max_size"}},
		{"bad option name", "    log: {driver: syslog, options: {\"a b\": x}}\n", []string{"services.www.log.options", `"a b" is not a log option name`}},
		{"from_env not a name", "    env:\n      DB: {from_env: \"db-password\"}\n", []string{"services.www.env.DB.from_env", "not an environment variable name"}},
		{"from_env empty", "    env:\n      DB: {from_env: \"\"}\n", []string{"services.www.env.DB", "{from_env: NAME}"}},
		{"env value a list", "    env:\n      DB: [a, b]\n", []string{"services.www.env.DB", "want a value, or {from_env: NAME}"}},
		{"env value unknown key", "    env:\n      DB: {from_file: x}\n", []string{"services.www.env.DB", "{from_env: NAME}"}},
		{"env_file empty", "    env_file: [\"\"]\n", []string{"services.www.env_file[0]", "empty"}},
		{"env_file a map", "    env_file: {a: b}\n", []string{"services.www.env_file", "want a path or a list of paths"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			data := withService(t, tc.lines)
			c, err := Parse(file, []byte(data))
			if err == nil {
				t.Fatalf("Parse succeeded, want an error; config:\n%s", data)
			}
			if c != nil {
				t.Errorf("Parse returned a config along with the error")
			}
			msg := err.Error()
			for _, w := range append([]string{file + ": "}, tc.want...) {
				if !strings.Contains(msg, w) {
					t.Errorf("error does not contain %q:\n%s", w, msg)
				}
			}
		})
	}
}

func TestReleaseAccepted(t *testing.T) {
	tests := []struct {
		name  string
		lines string
		want  *Release
	}{
		{"none", "", nil},
		{"argv, default timeout and host", "    release:\n      command: [/app, migrate]\n", &Release{Command: Argv{"/app", "migrate"}, Timeout: Duration(DefaultReleaseTimeout)}},
		{"shell form", "    release: {command: ./manage.py migrate --noinput}\n", &Release{Command: Argv{"/bin/sh", "-c", "./manage.py migrate --noinput"}, Timeout: Duration(DefaultReleaseTimeout)}},
		{"timeout and host", "    release: {command: [migrate], timeout: 90s, host: host2}\n", &Release{Command: Argv{"migrate"}, Timeout: Duration(90 * time.Second), Host: "host2"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			data := withService(t, tc.lines)
			c, err := Parse("/srv/deploy/gantry.yml", []byte(data))
			if err != nil {
				t.Fatalf("Parse: %v\nconfig:\n%s", err, data)
			}
			if got := c.Services["www"].Release; !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %#v, want %#v", got, tc.want)
			}
		})
	}
}

func TestReleaseRejected(t *testing.T) {
	const file = "/srv/deploy/gantry.yml"
	tests := []struct {
		name  string
		lines string
		want  []string
	}{
		{"no command", "    release: {timeout: 1m}\n", []string{"services.www.release.command", "required", "e.g. [/app, migrate]"}},
		{"empty command", "    release: {command: []}\n", []string{"services.www.release.command", "required"}},
		{"empty program", "    release: {command: [\"\", migrate]}\n", []string{"services.www.release.command", "program (first element) is empty"}},
		{"command not a command", "    release: {command: {run: migrate}}\n", []string{"services.www.release.command", "want a command line"}},
		{"timeout not a duration", "    release: {command: [migrate], timeout: soon}\n", []string{"services.www.release.timeout", "soon"}},
		{"timeout too short", "    release: {command: [migrate], timeout: 10ms}\n", []string{"services.www.release.timeout", "less than 1s", "e.g. 10m"}},
		{"bad host name", "    release: {command: [migrate], host: \"Host 1\"}\n", []string{"services.www.release.host", `"Host 1"`, "one of the service's hosts"}},
		{"unknown key", "    release: {command: [migrate], on: first}\n", []string{"services.www.release", "on"}},
		{"release a list", "    release: [migrate]\n", []string{"services.www.release"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			data := withService(t, tc.lines)
			_, err := Parse(file, []byte(data))
			if err == nil {
				t.Fatalf("Parse succeeded, want an error; config:\n%s", data)
			}
			msg := err.Error()
			for _, w := range append([]string{file + ": "}, tc.want...) {
				if !strings.Contains(msg, w) {
					t.Errorf("error does not contain %q:\n%s", w, msg)
				}
			}
		})
	}
}
