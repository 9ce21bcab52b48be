package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// startLine matches the log line of the demo app's start on host h, as gantry logs
// prints it: the host's name, padded to the longest, then " | ".
func (l *lab) startLine(h labHost, version string) *regexp.Regexp {
	width := 0
	for _, o := range l.hosts {
		width = max(width, len(o.Name))
	}
	prefix := fmt.Sprintf("%-*s | ", width, h.Name)
	return regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(prefix) + `demoapp: version=` + version + ` host=` + h.Name + ` `)
}

// TestLogs: gantry logs --tail shows the last lines of every host, each
// prefixed with its host; --host narrows it; a bad --host is refused; an
// unreachable host is a warning, the others are still shown, exit 1.
func TestLogs(t *testing.T) {
	l := needLab(t)
	l.fresh(t)
	v := sha(l.onBaseline(t))

	r := l.run(t, "logs", "www", "--env", "lab", "--tail", "5")
	if r.code != 0 {
		t.Fatalf("logs exited %d: %s", r.code, r.stderr)
	}
	for _, h := range l.hosts {
		if !l.startLine(h, v).MatchString(r.stdout) {
			t.Errorf("no start line of %s (version %s) in the logs:\n%s", h.Name, v, r.stdout)
		}
	}
	for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		if !regexp.MustCompile(`^host\d+ *\| `).MatchString(line) {
			t.Errorf("line without a host prefix: %q", line)
		}
	}

	r = l.run(t, "logs", "www", "--env", "lab", "--host", "host2", "--tail", "5", "--timestamps")
	if r.code != 0 || !regexp.MustCompile(`(?m)^host2 +\| \d{4}-\d\d-\d\dT[0-9:.]+Z demoapp: version=`+v+` host=host2 `).MatchString(r.stdout) ||
		regexp.MustCompile(`(?m)^host[134]`).MatchString(r.stdout) {
		t.Errorf("logs --host host2 --timestamps: exit %d, want host2's timestamped lines only:\n%s", r.code, r.stdout)
	}

	r = l.run(t, "logs", "www", "--env", "lab", "--host", "host9")
	if r.code != 2 || !strings.Contains(r.stderr, "no host host9") || !strings.Contains(r.stderr, "host1, host2, host3") {
		t.Errorf("logs --host host9: exit %d, want 2 naming host9 and listing the hosts:\n%s", r.code, r.stderr)
	}

	down := l.configWith(t, "address: 127.0.2.3\n", "address: 127.0.9.3\n")
	r = l.runWith(t, down, "logs", "www", "--env", "lab", "--tail", "5")
	if r.code != 1 || !regexp.MustCompile(`(?m)^warning: .*host3`).MatchString(r.stderr) || !strings.Contains(r.stderr, "the logs of host3 could not be read") {
		t.Errorf("logs with host3 unreachable: exit %d, want 1 and a warning naming host3:\n%s", r.code, r.stderr)
	}
	for _, h := range l.hosts {
		if h.Name != "host3" && !l.startLine(h, v).MatchString(r.stdout) {
			t.Errorf("with host3 unreachable, no start line of %s:\n%s", h.Name, r.stdout)
		}
	}
}

// TestLogsDrivers: a container logging with the local driver is read
// like json-file; one with a driver Docker cannot read back ("none") is an
// error naming the host and the driver.
func TestLogsDrivers(t *testing.T) {
	l := needLab(t)
	l.fresh(t)
	v := sha(l.onBaseline(t))
	h := l.hosts[0]
	image := "127.0.0.1:5000/gantry/www:" + v
	cfg := l.configWith(t, "container_name: www\n", "container_name: logtest\n")
	for _, tc := range []struct{ driver, port string }{{"local", "9097"}, {"none", "9098"}} {
		docker(h, "rm", "-f", "logtest") // a leftover of an earlier run
		if out, err := docker(h, "run", "-d", "--network", "host", "--name", "logtest", "--log-driver", tc.driver,
			"-e", "LISTEN="+h.Address+":"+tc.port, "-e", "HOST_NAME="+h.Name, image); err != nil {
			t.Fatalf("%s: starting logtest with driver %s: %v %s", h.Name, tc.driver, err, out)
		}
		t.Cleanup(func() { docker(h, "rm", "-f", "logtest") })
		r := l.runWith(t, cfg, "logs", "www", "--env", "lab", "--host", h.Name)
		switch tc.driver {
		case "local":
			if r.code != 0 || !regexp.MustCompile(`(?m)^host1 +\| demoapp: version=`+v+` host=host1 listen=`+h.Address+`:9097`).MatchString(r.stdout) {
				t.Errorf("logs of a container with the local driver: exit %d, want its start line:\n%s%s", r.code, r.stdout, r.stderr)
			}
		case "none":
			if r.code != 1 || !strings.Contains(r.stderr, "host1: container logtest logs with driver \"none\", which Docker cannot read back") {
				t.Errorf("logs of a container with driver none: exit %d, want 1 naming host1 and the driver:\n%s", r.code, r.stderr)
			}
		}
		docker(h, "rm", "-f", "logtest")
	}
}

// TestLogsFollow: --follow streams every host, keeps following a container
// that restarts, and ends on Ctrl-C with exit 130 and nothing on stderr.
func TestLogsFollow(t *testing.T) {
	l := needLab(t)
	l.fresh(t)
	v := sha(l.onBaseline(t))
	host2 := l.hosts[1]

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, l.gantry, "--config", l.config, "logs", "www", "--env", "lab", "--tail", "1", "--follow")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	pipe, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var out strings.Builder
	lines := make(chan string, 100)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(pipe)
		for sc.Scan() {
			mu.Lock()
			out.WriteString(sc.Text() + "\n")
			mu.Unlock()
			lines <- sc.Text()
		}
	}()
	// waitFor reads lines until every pattern matched one.
	waitFor := func(what string, res ...*regexp.Regexp) {
		t.Helper()
		left := append([]*regexp.Regexp(nil), res...)
		deadline := time.After(20 * time.Second)
		for len(left) > 0 {
			select {
			case line, ok := <-lines:
				if !ok {
					t.Fatalf("logs --follow ended before %s; stderr: %s", what, stderr.String())
				}
				for i, re := range left {
					if re.MatchString(line + "\n") {
						left = append(left[:i], left[i+1:]...)
						break
					}
				}
			case <-deadline:
				mu.Lock()
				defer mu.Unlock()
				t.Fatalf("no %s within 20 s; output so far:\n%s", what, out.String())
			}
		}
	}
	var starts []*regexp.Regexp
	for _, h := range l.hosts {
		starts = append(starts, l.startLine(h, v))
	}
	waitFor("start line of every host", starts...)

	if out, err := docker(host2, "restart", "-t", "10", "www"); err != nil {
		t.Fatalf("docker restart www on host2: %v %s", err, out)
	}
	l.waitServing(t, host2, 30*time.Second)
	waitFor("start line of host2's restarted container", l.startLine(host2, v))

	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	err = cmd.Wait()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	}
	if code != 130 || strings.TrimSpace(stderr.String()) != "" {
		t.Errorf("logs --follow after SIGINT: exit %d (%v), stderr %q; want 130 and nothing", code, err, stderr.String())
	}
}

// TestExec: gantry exec returns the command's output and exit code, passes
// arguments as they are (no shell), pipes stdin, and picks the first host
// whose container runs when no --host is given.
func TestExec(t *testing.T) {
	l := needLab(t)
	l.fresh(t)
	v := sha(l.onBaseline(t))

	r := l.run(t, "exec", "www", "--env", "lab", "--host", "host2", "--", "/demoapp", "version")
	if r.code != 0 || r.stdout != v+" host2\n" {
		t.Errorf("exec /demoapp version on host2: exit %d, stdout %q; want 0 and %q", r.code, r.stdout, v+" host2\n")
	}
	r = l.run(t, "exec", "www", "--env", "lab", "--host", "host2", "--", "/demoapp", "echo", "a b", "$HOME", "--env", "'x'", ";true")
	if want := "a b\n$HOME\n--env\n'x'\n;true\n"; r.code != 0 || r.stdout != want {
		t.Errorf("exec echo: exit %d, stdout %q; want every argument as given: %q", r.code, r.stdout, want)
	}
	r = l.run(t, "exec", "www", "--env", "lab", "--host", "host2", "--", "/demoapp", "exit", "3")
	if r.code != 3 || !strings.Contains(r.stderr, "exiting 3") {
		t.Errorf("exec /demoapp exit 3: exit %d, want 3 with the command's stderr:\n%s", r.code, r.stderr)
	}

	r = l.run(t, "exec", "www", "--env", "lab", "--", "/demoapp", "version")
	if r.code != 0 || r.stdout != v+" host1\n" || !strings.Contains(r.stderr, "running in www on host1") {
		t.Errorf("exec without --host: exit %d, stdout %q, stderr %q; want host1 named on stderr", r.code, r.stdout, r.stderr)
	}

	cmd := exec.Command(l.gantry, "--config", l.config, "exec", "www", "--env", "lab", "--host", "host4", "--", "/demoapp", "cat")
	cmd.Stdin = strings.NewReader("line one\nline two\n")
	out, err := cmd.Output()
	if err != nil || string(out) != "line one\nline two\n" {
		t.Errorf("exec cat with piped stdin: %v, stdout %q", err, out)
	}

	r = l.run(t, "exec", "www", "--env", "lab", "--host", "host9", "--", "/demoapp", "version")
	if r.code != 2 || !strings.Contains(r.stderr, "no host host9") || !strings.Contains(r.stderr, "host1, host2") {
		t.Errorf("exec --host host9: exit %d, want 2 naming host9 and listing the hosts:\n%s", r.code, r.stderr)
	}
}
