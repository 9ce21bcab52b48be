package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// lab is what the tests know of the running lab.
type lab struct {
	config string // path of lab/gantry.yml
	// setup is lab/gantry.yml with two hosts per batch: the config of
	// deployOK, whose deploys only set a test's scene up.
	setup  string
	state  string // LAB_STATE
	root   string // repository root
	gantry string // built binary
	hosts  []labHost
	lbs    []string // upstreams dirs
}

type labHost struct {
	Name, Address, Socket string
}

var theLab *lab

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	cfg := os.Getenv("GANTRY_LAB_CONFIG")
	if cfg == "" {
		if os.Getenv("CI") != "" {
			fmt.Fprintln(os.Stderr, "e2e: GANTRY_LAB_CONFIG is not set in CI: run the integration tests through `make test`, which starts the lab")
			return 1
		}
		fmt.Fprintln(os.Stderr, "e2e: skipping integration tests: the lab is not up (run `make test`, or `make lab` and set GANTRY_LAB_CONFIG=lab/gantry.yml)")
		return m.Run() // every test skips through needLab
	}
	root, err := filepath.Abs("..")
	if err != nil {
		panic(err)
	}
	l := &lab{config: absFrom(root, cfg), root: root, state: os.Getenv("LAB_STATE")}
	if l.state == "" {
		l.state = "/tmp/gantry-lab"
	}
	if err := l.load(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	dir, err := os.MkdirTemp("", "gantry-e2e")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	l.gantry = filepath.Join(dir, "gantry")
	build := exec.Command("go", "build", "-o", l.gantry, "./cmd/gantry")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: building gantry: %v\n%s", err, out)
		return 1
	}
	data, err := os.ReadFile(l.config)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	l.setup = filepath.Join(dir, "gantry-setup.yml")
	if err := os.WriteFile(l.setup, bytes.Replace(data, []byte("    batch_size: 1\n"), []byte("    batch_size: 2\n"), 1), 0o600); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	theLab = l
	return m.Run()
}

func absFrom(root, p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(root, p)
}

// load reads the hosts and load balancers of environment lab from the
// lab's config, so the tests follow LAB_HOSTS.
func (l *lab) load() error { return l.loadEnv("lab") }

// loadEnv reads the hosts and load balancers of environment env.
func (l *lab) loadEnv(name string) error {
	data, err := os.ReadFile(l.config)
	if err != nil {
		return err
	}
	var c struct {
		Environments map[string]struct {
			Hosts []struct {
				Name, Address string
				DockerSocket  string `yaml:"docker_socket"`
			}
			LoadBalancers []struct {
				UpstreamsDir string `yaml:"upstreams_dir"`
			} `yaml:"load_balancers"`
		}
	}
	if err := yaml.Unmarshal(data, &c); err != nil {
		return fmt.Errorf("%s: %w", l.config, err)
	}
	env := c.Environments[name]
	for _, h := range env.Hosts {
		l.hosts = append(l.hosts, labHost{h.Name, h.Address, h.DockerSocket})
	}
	for _, lb := range env.LoadBalancers {
		l.lbs = append(l.lbs, lb.UpstreamsDir)
	}
	if len(l.hosts) == 0 || len(l.lbs) == 0 {
		return fmt.Errorf("%s: environment %s has no hosts or no load balancers", l.config, name)
	}
	return nil
}

func needLab(t *testing.T) *lab {
	t.Helper()
	if theLab == nil {
		t.Skip("the lab is not up: run `make test` (see e2e/doc.go)")
	}
	return theLab
}

// publish builds and pushes a new demo version and returns its target.
func (l *lab) publish(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command(filepath.Join(l.root, "lab", "publish"), args...)
	cmd.Env = append(os.Environ(), "LAB_STATE="+l.state)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("lab/publish %v: %v\n%s", args, err, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	target := lines[len(lines)-1]
	if !regexp.MustCompile(`^www@[0-9a-f]{7}$`).MatchString(target) {
		t.Fatalf("lab/publish printed %q as its last line, want www@<sha>", target)
	}
	return target
}

// result is one run of the gantry binary.
type result struct {
	code   int
	stdout string
	stderr string
}

func (l *lab) run(t *testing.T, args ...string) result {
	t.Helper()
	return l.runWith(t, l.config, args...)
}

// configWith writes a copy of the lab config with old replaced by new.
func (l *lab) configWith(t *testing.T, old, new string) string {
	t.Helper()
	data, err := os.ReadFile(l.config)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(data, []byte(old)) {
		t.Fatalf("%s has no %q to replace", l.config, old)
	}
	p := filepath.Join(t.TempDir(), "gantry.yml")
	if err := os.WriteFile(p, bytes.ReplaceAll(data, []byte(old), []byte(new)), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func (l *lab) runWith(t *testing.T, config string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, l.gantry, append([]string{"--config", config}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("running gantry %v: %v", args, err)
	}
	t.Logf("gantry %s -> exit %d\n%s%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	return r
}

// deployOK deploys target and fails the test unless gantry exits 0: a
// test's setup, two hosts at a time.
func (l *lab) deployOK(t *testing.T, target string) {
	t.Helper()
	if r := l.runWith(t, l.setup, "deploy", target, "--env", "lab"); r.code != 0 {
		t.Fatalf("deploy %s exited %d: %s", target, r.code, r.stderr)
	}
}

// versionOn asks the host's app directly which version it runs.
func (l *lab) versionOn(t *testing.T, h labHost) string {
	t.Helper()
	out, err := exec.Command("curl", "-fsS", "--max-time", "5", "http://"+h.Address+":8080/").Output()
	if err != nil {
		return "unreachable: " + err.Error()
	}
	v, _, _ := strings.Cut(strings.TrimSpace(string(out)), " ")
	return v
}

// docker runs the docker CLI against a lab host's daemon socket.
func docker(h labHost, args ...string) (string, error) {
	out, err := exec.Command("docker", append([]string{"-H", "unix://" + h.Socket}, args...)...).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// upstream returns the lines of service www's upstream file on a load
// balancer.
func upstream(t *testing.T, dir string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "www.conf"))
	if err != nil {
		t.Fatalf("reading upstream file: %v", err)
	}
	return string(data)
}

func sha(target string) string { _, s, _ := strings.Cut(target, "@"); return s }
