package lb

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/internal/shell"
)

const debianV = `nginx version: nginx/1.22.1
built with OpenSSL 3.0.9 30 May 2023
TLS SNI support enabled
configure arguments: --with-cc-opt='-g -O2' --prefix=/usr/share/nginx --conf-path=/etc/nginx/nginx.conf --pid-path=/run/nginx.pid --modules-path=/usr/lib/nginx/modules
`

func TestPidFileOf(t *testing.T) {
	for _, tc := range []struct {
		name, cmd, dump, version string
		want                     string
		err                      string
	}{
		{
			name: "pid directive",
			cmd:  "nginx -t -q",
			dump: "# configuration file /etc/nginx/nginx.conf:\nuser www-data;\npid /var/run/nginx-main.pid;\nevents {}\n",
			want: "/var/run/nginx-main.pid", version: debianV,
		},
		{
			name: "quoted, among blocks and included files",
			cmd:  "nginx -t -q",
			dump: "# configuration file /etc/nginx/nginx.conf:\nhttp { include /etc/nginx/conf.d/*.conf; }\n\n# configuration file /etc/nginx/main.conf:\n  pid   \"/srv/my nginx/n.pid\" ;\n",
			want: "/srv/my nginx/n.pid",
		},
		{
			name: "commented out, as an argument, or inside a block: not the directive",
			cmd:  "nginx -t",
			dump: "# configuration file /etc/nginx/nginx.conf:\n# pid /wrong/commented.pid;\nhttp { log_format main 'pid $pid; x'; map $x $y { pid /wrong/map.pid; } }\npid /etc/n.pid;\n",
			want: "/etc/n.pid",
		},
		{
			name: "no directive: the built-in --pid-path",
			cmd:  "nginx -t -q",
			dump: "# configuration file /etc/nginx/nginx.conf:\nevents {}\n",
			want: "/run/nginx.pid", version: debianV,
		},
		{
			name: "relative directive: under -p",
			cmd:  "nginx -t -q -p /tmp/gantry-lab/lb1/ -c /tmp/gantry-lab/lb1/nginx.conf",
			dump: "# configuration file /tmp/gantry-lab/lb1/nginx.conf:\npid logs/nginx.pid;\n",
			want: "/tmp/gantry-lab/lb1/logs/nginx.pid", version: debianV,
		},
		{
			name: "relative directive: under -pDIR after sudo -p",
			cmd:  "sudo -p x /usr/sbin/nginx -t -p/srv/ngx",
			dump: "# configuration file /srv/ngx/conf/nginx.conf:\npid run/n.pid;\n",
			want: "/srv/ngx/run/n.pid",
		},
		{
			name: "relative directive: under --prefix",
			cmd:  "nginx -t",
			dump: "# configuration file /etc/nginx/nginx.conf:\npid n.pid;\n",
			want: "/usr/share/nginx/n.pid", version: debianV,
		},
		{
			name: "nothing at all: nginx's own default",
			cmd:  "nginx -t",
			dump: "# configuration file /usr/local/nginx/conf/nginx.conf:\nevents {}\n",
			want: "/usr/local/nginx/logs/nginx.pid",
		},
		{
			name: "not nginx output",
			cmd:  "true",
			dump: "",
			err:  "printed no configuration",
		},
		{
			name: "control characters",
			cmd:  "nginx -t",
			dump: "# configuration file /etc/nginx/nginx.conf:\npid \"/run/a\nb.pid\";\n",
			err:  "not an absolute path",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := PidFileOf(tc.cmd, tc.dump, tc.version)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("PidFileOf = %q, %v; want an error containing %q", got, err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("PidFileOf = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

// fakeNginx writes a test command that behaves like "nginx -t" with -T
// (prints a configuration whose pid directive names pidFile) and -V.
func fakeNginx(t *testing.T, pidFile string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "nginx")
	script := `#!/bin/sh
for a in "$@"; do
  case "$a" in
  -T) printf '# configuration file /etc/nginx/nginx.conf:\nworker_processes 2;\npid %s;\nevents {}\n' ` + shell.Quote(pidFile) + ` ;;
  -V) echo "configure arguments: --prefix=/usr/share/nginx --pid-path=/run/nowhere.pid" >&2 ;;
  esac
done
`
	if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return shell.Quote(p) + " -t -q"
}

// TestDrainFindsThePidFile: with no PidFile, a drain asks nginx where its
// master's pid file is and waits for the workers that ran before the
// reload.
func TestDrainFindsThePidFile(t *testing.T) {
	dir := t.TempDir()
	n := newNginx(t, dir)
	pidFile := n.PidFile
	n.PidFile = ""
	n.TestCommand = fakeNginx(t, pidFile)
	ctx := context.Background()
	if err := n.Check(ctx); err != nil {
		t.Fatalf("Check: %v", err)
	}
	if n.foundPidFile != pidFile {
		t.Errorf("found pid file %q, want %q", n.foundPidFile, pidFile)
	}
	old, onLB, err := n.apply(ctx, "www", []byte("server 10.0.0.1:8080 down; # host1\n"), true)
	if err != nil {
		t.Fatalf("apply: %v", err)
	}
	if len(strings.Fields(old)) != 2 {
		t.Errorf("apply returned old workers %q, want the fake master's two", old)
	}
	if onLB <= 0 {
		t.Errorf("apply measured %s on the load balancer, want its time", onLB)
	}
	if err := n.awaitWorkers(ctx, n.enqueueWait(ctx, old), old); err != nil {
		t.Fatalf("waiting for the old workers: %v", err)
	}
}

// TestNoPidFileRefuses: when no pid file of a running master can be found,
// pre-flight says how to set one, and a drain changes nothing.
func TestNoPidFileRefuses(t *testing.T) {
	for _, tc := range []struct {
		name    string
		setup   func(t *testing.T, n *Nginx)
		message string
	}{
		{"test command is not nginx", func(t *testing.T, n *Nginx) { n.PidFile, n.TestCommand = "", "true" }, "printed no configuration"},
		{"found file names no process", func(t *testing.T, n *Nginx) {
			n.TestCommand = fakeNginx(t, filepath.Join(t.TempDir(), "gone.pid"))
			n.PidFile = ""
		}, "does not exist"},
		{"configured file is stale", func(t *testing.T, n *Nginx) {
			stale := filepath.Join(t.TempDir(), "nginx.pid")
			if err := os.WriteFile(stale, []byte("999999999\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			n.PidFile = stale
		}, "not running"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			n := newNginx(t, dir)
			tc.setup(t, n)
			err := n.Check(context.Background())
			if !errors.Is(err, ErrNoPidFile) {
				t.Fatalf("Check = %v, want ErrNoPidFile", err)
			}
			for _, want := range []string{"lb1", "pid_file", tc.message} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("Check error %q does not contain %q", err, want)
				}
			}
			if err := n.Drain(context.Background(), "www", "host1"); !errors.Is(err, ErrNoPidFile) {
				t.Errorf("Drain = %v, want ErrNoPidFile", err)
			}
			if _, err := os.Stat(filepath.Join(dir, "www.conf")); !os.IsNotExist(err) {
				t.Errorf("the upstream file was written although there is no master to reload (stat: %v)", err)
			}
		})
	}
}

// TestRejectedReloadRestoresThePreviousFile: a master that keeps its old
// workers after the reload rejected the configuration: the drain fails,
// the previous file is back, and nginx was told to reload it.
func TestRejectedReloadRestoresThePreviousFile(t *testing.T) {
	dir := t.TempDir()
	n := newNginx(t, dir)
	file := filepath.Join(dir, "www.conf")
	ctx := context.Background()
	if err := n.Restore(ctx, "www", "host1"); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	before := readFile(t, file)

	pidFile, reload := fakeMaster(t, false)
	reloads := filepath.Join(t.TempDir(), "reloads")
	n.PidFile, n.ReloadCommand = pidFile, "echo >> "+shell.Quote(reloads)+"; "+reload
	n.ReloadTimeout = time.Second
	err := n.Drain(ctx, "www", "host1")
	if !errors.Is(err, ErrReloadRejected) {
		t.Fatalf("Drain = %v, want ErrReloadRejected", err)
	}
	if !strings.Contains(err.Error(), "lb1") || !strings.Contains(err.Error(), "restored") {
		t.Errorf("error %q does not name the load balancer and say the file was restored", err)
	}
	if got := readFile(t, file); got != before {
		t.Errorf("upstream file after a rejected reload:\n%s\nwant the previous content:\n%s", got, before)
	}
	if data, _ := os.ReadFile(reloads); strings.Count(string(data), "\n") != 2 {
		t.Errorf("nginx was reloaded %d times, want 2 (the new file, then the previous one)", strings.Count(string(data), "\n"))
	}
	// gantry still considers host1 up; putting it back changes nothing and
	// needs no reload, so it succeeds although nginx rejects reloads.
	if err := n.Restore(ctx, "www", "host1"); err != nil {
		t.Errorf("Restore after the rejected drain: %v", err)
	}
	if data, _ := os.ReadFile(reloads); strings.Count(string(data), "\n") != 2 {
		t.Errorf("the file put back after the rejected reload was reloaded again")
	}
}

// TestSameContentIsReloaded: outside the file put back after a rejected
// reload, writing the content the file already has still reloads nginx: a
// run cut off between writing and reloading left a file nginx does not
// serve.
func TestSameContentIsReloaded(t *testing.T) {
	dir := t.TempDir()
	n := newNginx(t, dir)
	reloads := filepath.Join(t.TempDir(), "reloads")
	n.ReloadCommand = "echo >> " + shell.Quote(reloads) + "; " + n.ReloadCommand
	ctx := context.Background()
	for range 2 {
		if err := n.Drain(ctx, "www", "host1"); err != nil {
			t.Fatalf("Drain: %v", err)
		}
	}
	if data, _ := os.ReadFile(reloads); strings.Count(string(data), "\n") != 2 {
		t.Errorf("nginx was reloaded %d times for two drains, want 2", strings.Count(string(data), "\n"))
	}
}

func TestApplyScriptQuotesItsValues(t *testing.T) {
	s := applyScript("/etc/nginx/gantry/it's.conf", "nginx -t", "nginx -s reload", "/run/$(reboot).pid", 10)
	for _, want := range []string{`f='/etc/nginx/gantry/it'\''s.conf'`, `pidfile='/run/$(reboot).pid'`, "+ 10 ))", "within 10s"} {
		if !strings.Contains(s, want) {
			t.Errorf("apply script does not contain %q:\n%s", want, s)
		}
	}
	if d := discoverScript("sudo nginx -t -q"); !strings.Contains(d, "{ sudo nginx -t -q -T ; }") || !strings.Contains(d, "{ sudo nginx -t -q -V ; }") {
		t.Errorf("discover script does not run the test command with -T and -V:\n%s", d)
	}
}

// With a pid file in the config, the check is one command: the test, then
// the pid file; each failure says which.
func TestCheckWithAPidFileIsOneCommand(t *testing.T) {
	ctx := context.Background()
	n := newNginx(t, t.TempDir())
	counted := &countingRunner{Runner: n.Runner}
	o := n.Options
	o.Runner = counted
	if err := o.Check(ctx); err != nil {
		t.Fatalf("Check: %v", err)
	}
	if counted.n != 1 {
		t.Errorf("Check ran %d commands, want 1", counted.n)
	}
	bad := o
	bad.TestCommand = "echo 'nginx: [emerg] unknown directive' >&2; false"
	if err := bad.Check(ctx); !errors.Is(err, ErrConfigTest) || !strings.Contains(err.Error(), "unknown directive") {
		t.Errorf("failing test: %v, want ErrConfigTest with nginx's words", err)
	}
	gone := o
	gone.PidFile = filepath.Join(t.TempDir(), "nginx.pid")
	if err := gone.Check(ctx); !errors.Is(err, ErrNoPidFile) || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("missing pid file: %v, want ErrNoPidFile saying so", err)
	}
}

// countingRunner counts the commands run through it.
type countingRunner struct {
	Runner
	n int
}

func (c *countingRunner) Run(ctx context.Context, command string, stdin []byte) ([]byte, error) {
	c.n++
	return c.Runner.Run(ctx, command, stdin)
}
