package e2e

// Fleet operations (issue 4): rollback (also with the registry down, in
// emergency batches, refused for a version not cached), the history kept on
// the fleet, inventory, decommission/recommission and prune.
//
// Like the safety tests, these share one fleet and run one after the
// other: each starts with l.fresh and leaves every host serving www and in
// every load balancer, and no host decommissioned.

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
)

// planHost is one host line of a printed plan: `  host1 [a]: x -> y: ...`.
type planHost struct{ name, zone string }

var (
	planBatchRe = regexp.MustCompile(`^batch (\d+):\s*$`)
	planHostRe  = regexp.MustCompile(`^  (\S+?)(?: \[([^\]]*)\])?: `)
)

// parsePlan returns the hosts of each batch of the plan printed in out.
func parsePlan(out string) [][]planHost {
	var batches [][]planHost
	in := false
	for _, line := range strings.Split(out, "\n") {
		if planBatchRe.MatchString(line) {
			batches = append(batches, nil)
			in = true
			continue
		}
		if !in {
			continue
		}
		m := planHostRe.FindStringSubmatch(line)
		if m == nil {
			in = false // the plan's batches end at the first other line
			continue
		}
		batches[len(batches)-1] = append(batches[len(batches)-1], planHost{m[1], m[2]})
	}
	return batches
}

// plannedHosts is the set of host names in a printed plan's batches.
func plannedHosts(out string) map[string]bool {
	s := map[string]bool{}
	for _, b := range parsePlan(out) {
		for _, h := range b {
			s[h.name] = true
		}
	}
	return s
}

// labZone is the lab's zone of host i (0-based): a for host1, host3, ...;
// b for host2, host4, ...
func labZone(i int) string {
	if i%2 == 0 {
		return "a"
	}
	return "b"
}

// cachedTags lists the tags of the www image cached on a host, sorted.
// otherServicesVersions lists the versions the containers of services
// other than www run on h (the big fleet's service big, built from the
// same image).
func otherServicesVersions(t *testing.T, h labHost) []string {
	t.Helper()
	out, err := docker(h, "ps", "-a", "--filter", "label=dev.gantry.managed=true", "--format", `{{.Label "dev.gantry.service"}} {{.Label "dev.gantry.version"}}`)
	if err != nil {
		t.Fatalf("%s: docker ps: %v %s", h.Name, err, out)
	}
	var vs []string
	for _, line := range strings.Split(out, "\n") {
		if svc, v, ok := strings.Cut(line, " "); ok && svc != "www" && v != "" {
			vs = append(vs, v)
		}
	}
	return vs
}

func cachedTags(t *testing.T, h labHost) []string {
	t.Helper()
	out, err := docker(h, "images", "--format", "{{.Tag}}", "127.0.0.1:5000/gantry/www")
	if err != nil {
		t.Fatalf("%s: docker images: %v %s", h.Name, err, out)
	}
	var tags []string
	for _, tag := range strings.Fields(out) {
		if tag != "<none>" {
			tags = append(tags, tag)
		}
	}
	sort.Strings(tags)
	return slices.Compact(tags)
}

func sortedShas(targets ...string) []string {
	var s []string
	for _, t := range targets {
		s = append(s, sha(t))
	}
	sort.Strings(s)
	return s
}

// runElsewhere runs gantry with config from a fresh empty directory with
// HOME and the XDG directories pointing there too: whatever it prints
// cannot come from local state left by earlier runs.
func (l *lab) runElsewhere(t *testing.T, config string, args ...string) result {
	t.Helper()
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, l.gantry, append([]string{"--config", config}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "HOME="+dir, "XDG_STATE_HOME="+dir, "XDG_CACHE_HOME="+dir, "XDG_CONFIG_HOME="+dir, "XDG_DATA_HOME="+dir)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("running gantry %v: %v", args, err)
	}
	t.Logf("gantry %s (from %s) -> exit %d\n%s%s", strings.Join(args, " "), dir, r.code, r.stdout, r.stderr)
	return r
}

// upstreamLine returns the line of an upstream file that names addr.
func upstreamLine(content, addr string) (string, bool) {
	for _, line := range strings.Split(content, "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "server "+addr+":") {
			return line, true
		}
	}
	return "", false
}

// waitServing waits until the host's app answers (after a container was
// started by hand).
func (l *lab) waitServing(t *testing.T, h labHost, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for strings.HasPrefix(l.versionOn(t, h), "unreachable") {
		if time.Now().After(deadline) {
			t.Errorf("%s does not serve %s after its container was started", h.Name, timeout)
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// --- rollback ---------------------------------------------------------

// TestRollbackWithRegistryDown: rollback takes every host back to the
// version before, from the image cached on the host, under load, with the
// registry stopped.
func TestRollbackWithRegistryDown(t *testing.T) {
	l := needLab(t)
	l.fresh(t)
	a := l.publish(t)
	b := l.publish(t)
	l.deployOK(t, a)
	l.deployOK(t, b)
	l.stopPiece(t, "registry/registry.pid", "config.yml")

	done := startLoad()
	r := l.run(t, "rollback", "www", "--env", "lab")
	load := done()

	if r.code != 0 {
		t.Errorf("rollback with the registry down exited %d, want 0 (the previous image is cached on every host)", r.code)
	}
	assertNoFailedRequests(t, load)
	for _, h := range l.hosts {
		if got := l.versionOn(t, h); got != sha(a) {
			t.Errorf("%s runs %q after the rollback, want %s (the version before %s)", h.Name, got, sha(a), sha(b))
		}
	}
	l.assertAllOn(t, a)
}

// TestRollbackToUncachedVersionRefused: --to a version no host has cached
// is refused by pre-flight, every host named, nothing changed.
func TestRollbackToUncachedVersionRefused(t *testing.T) {
	l := needLab(t)
	l.fresh(t)
	v := l.onBaseline(t)
	before := l.snapshot(t)

	w := l.watchDrains()
	r := l.run(t, "rollback", "www", "--env", "lab", "--to", "0000000")
	w.assertNeverDrained(t)

	if r.code != 3 {
		t.Errorf("rollback --to 0000000 exited %d, want 3 (refused by pre-flight)", r.code)
	}
	if !strings.Contains(r.stderr, "not cached") {
		t.Errorf("stderr does not say the version is \"not cached\":\n%s", r.stderr)
	}
	for _, h := range l.hosts {
		if !strings.Contains(r.stderr, h.Name) {
			t.Errorf("stderr does not name %s, which does not have 0000000 cached:\n%s", h.Name, r.stderr)
		}
	}
	l.assertUnchanged(t, before)
	l.assertAllOn(t, v)
}

// --- history ----------------------------------------------------------

type historyHost struct {
	Host    string `json:"host"`
	From    string `json:"from"`
	To      string `json:"to"`
	Ended   string `json:"ended"`
	Outcome string `json:"outcome"`
}

type historyEntry struct {
	Time      time.Time     `json:"time"`
	Who       string        `json:"who"`
	Kind      string        `json:"kind"`
	Env       string        `json:"env"`
	Service   string        `json:"service"`
	Target    string        `json:"target"`
	Outcome   string        `json:"outcome"`
	DurationS float64       `json:"duration_s"`
	Message   string        `json:"message"`
	Hosts     []historyHost `json:"hosts"`
}

// TestHistoryReadBySecondConfig: deploys, a failed deploy and a rollback
// are recorded on the fleet; another config file, from another directory,
// reads the same trail.
func TestHistoryReadBySecondConfig(t *testing.T) {
	l := needLab(t)
	l.fresh(t)
	a := l.publish(t)
	b := l.publish(t)
	broken := l.publish(t, "--broken")
	before := l.snapshot(t)

	l.deployOK(t, a)
	l.deployOK(t, b)
	short := l.configWith(t, "deadline: 30s", "deadline: 4s")
	if r := l.runWith(t, short, "deploy", broken, "--env", "lab"); r.code != 1 {
		t.Errorf("deploying the broken version %s exited %d, want 1", broken, r.code)
	}
	if r := l.run(t, "rollback", "www", "--env", "lab"); r.code != 0 {
		t.Errorf("rollback exited %d, want 0", r.code)
	}
	l.assertAllOn(t, a)

	// Another deployer: its own config file, elsewhere, another timeout.
	line := l.configLine(t, "connect_timeout:")
	other := l.configEdits(t, line, line[:strings.Index(line, "connect_timeout:")]+"connect_timeout: 7s")
	if filepath.Dir(other) == filepath.Dir(l.config) {
		t.Fatalf("the second config %s is beside the first", other)
	}
	r := l.runElsewhere(t, other, "history", "www", "--env", "lab", "--json")
	if r.code != 0 {
		t.Fatalf("history --json through a second config exited %d, want 0", r.code)
	}
	var entries []historyEntry
	if err := json.Unmarshal([]byte(r.stdout), &entries); err != nil {
		t.Fatalf("history --json is not a JSON array of entries: %v\n%s", err, r.stdout)
	}
	if len(entries) < 4 {
		t.Fatalf("history has %d entries, want at least the 4 of this test", len(entries))
	}
	last := entries[len(entries)-4:]
	want := []struct {
		kind, target, outcome string
		from, to, ended       string // "" from: whatever ran before the test
	}{
		{"deploy", sha(a), "succeeded", "", sha(a), sha(a)},
		{"deploy", sha(b), "succeeded", sha(a), sha(b), sha(b)},
		{"deploy", sha(broken), "reverted", sha(b), sha(broken), sha(b)},
		{"rollback", "www@" + sha(a), "succeeded", sha(b), sha(a), sha(a)},
	}
	for i, w := range want {
		e := last[i]
		name := []string{"deploy A", "deploy B", "deploy broken", "rollback"}[i]
		if e.Kind != w.kind || e.Outcome != w.outcome || !strings.Contains(e.Target, w.target) {
			t.Errorf("%s: entry is kind %q target %q outcome %q, want kind %q target with %q outcome %q", name, e.Kind, e.Target, e.Outcome, w.kind, w.target, w.outcome)
		}
		if e.Env != "lab" || e.Service != "www" || e.Who == "" || e.Time.IsZero() || e.DurationS <= 0 {
			t.Errorf("%s: env %q service %q who %q time %s duration %.1fs: want lab, www, someone, a time and a duration", name, e.Env, e.Service, e.Who, e.Time, e.DurationS)
		}
		if i > 0 && e.Time.Before(last[i-1].Time) {
			t.Errorf("%s is dated %s, before the entry before it (%s)", name, e.Time, last[i-1].Time)
		}
		byHost := map[string]historyHost{}
		for _, h := range e.Hosts {
			byHost[h.Host] = h
		}
		for hi, h := range l.hosts {
			got, ok := byHost[h.Name]
			if !ok {
				if w.outcome == "reverted" && hi > 0 {
					continue // not reached by the failed deploy: may be left out
				}
				t.Errorf("%s: no entry for %s in %+v", name, h.Name, e.Hosts)
				continue
			}
			from := w.from
			if from == "" && !strings.HasPrefix(before[h.Name].version, "unreachable") {
				from = before[h.Name].version
			}
			if from != "" && got.From != from {
				t.Errorf("%s: %s from %q, want %q", name, h.Name, got.From, from)
			}
			if got.Ended != w.ended {
				t.Errorf("%s: %s ended %q, want %q", name, h.Name, got.Ended, w.ended)
			}
			// The failed deploy moved host1 (then reverted it); hosts it
			// never reached may record either target.
			if (w.outcome != "reverted" || hi == 0) && got.To != w.to {
				t.Errorf("%s: %s to %q, want %q", name, h.Name, got.To, w.to)
			}
		}
	}

	// The human form, through the second config too.
	r = l.runElsewhere(t, other, "history", "www", "--env", "lab")
	if r.code != 0 || !strings.Contains(r.stdout, sha(broken)) || !strings.Contains(r.stdout, "rollback") {
		t.Errorf("history (table) exited %d, want 0 and the broken deploy %s and the rollback in it", r.code, sha(broken))
	}
}

// --- inventory --------------------------------------------------------

type invContainer struct {
	Name    string  `json:"name"`
	Service string  `json:"service"`
	Version string  `json:"version"`
	Image   string  `json:"image"`
	State   string  `json:"state"`
	Health  string  `json:"health"`
	UptimeS float64 `json:"uptime_s"`
	Managed bool    `json:"managed"`
}

type invHost struct {
	Name           string `json:"name"`
	Address        string `json:"address"`
	Zone           string `json:"zone"`
	Reachable      bool   `json:"reachable"`
	Error          string `json:"error"`
	Decommissioned bool   `json:"decommissioned"`
	Maintenance    *struct {
		Who     string `json:"who"`
		Message string `json:"message"`
	} `json:"maintenance"`
	DataRoot       string              `json:"data_root"`
	DiskFreeBytes  int64               `json:"disk_free_bytes"`
	Containers     []invContainer      `json:"containers"`
	Unmanaged      []invContainer      `json:"unmanaged"`
	CachedVersions map[string][]string `json:"cached_versions"`
	LBs            map[string]string   `json:"lbs"`
	Drift          bool                `json:"drift"`
}

type invService struct {
	Version    string   `json:"version"`
	DriftHosts []string `json:"drift_hosts"`
}

type inventoryJSON struct {
	Env      string                `json:"env"`
	Hosts    []invHost             `json:"hosts"`
	Services map[string]invService `json:"services"`
	Warnings []string              `json:"warnings"`
}

// inventory runs `gantry inventory --env lab --json` (plus args) and
// decodes it.
func (l *lab) inventory(t *testing.T, args ...string) inventoryJSON {
	t.Helper()
	r := l.run(t, append([]string{"inventory", "--env", "lab", "--json"}, args...)...)
	if r.code != 0 {
		t.Fatalf("inventory --json exited %d, want 0", r.code)
	}
	var inv inventoryJSON
	if err := json.Unmarshal([]byte(r.stdout), &inv); err != nil {
		t.Fatalf("inventory --json is not the inventory object: %v\n%s", err, r.stdout)
	}
	return inv
}

func (inv inventoryJSON) host(name string) (invHost, bool) {
	for _, h := range inv.Hosts {
		if h.Name == name {
			return h, true
		}
	}
	return invHost{}, false
}

func (h invHost) container(name string) (invContainer, bool) {
	for _, c := range h.Containers {
		if strings.TrimPrefix(c.Name, "/") == name {
			return c, true
		}
	}
	return invContainer{}, false
}

// TestInventory: what runs where, a container stopped by hand and one
// gantry does not manage included.
func TestInventory(t *testing.T) {
	l := needLab(t)
	l.fresh(t)
	a := l.onBaseline(t)
	stopped, other := l.hosts[1], l.hosts[2] // host2, host3
	image := "127.0.0.1:5000/gantry/www:" + sha(a)

	restored := false
	restore := func() {
		if restored {
			return
		}
		restored = true
		if out, err := docker(other, "rm", "-f", "intruder"); err != nil {
			t.Errorf("%s: removing intruder: %v %s", other.Name, err, out)
		}
		if out, err := docker(stopped, "start", "www"); err != nil {
			t.Errorf("%s: docker start www: %v %s", stopped.Name, err, out)
		}
		l.waitServing(t, stopped, 30*time.Second)
	}
	t.Cleanup(restore)
	docker(other, "rm", "-f", "intruder") // a leftover of an earlier run
	if out, err := docker(stopped, "stop", "www"); err != nil {
		t.Fatalf("%s: docker stop www: %v %s", stopped.Name, err, out)
	}
	if out, err := docker(other, "run", "-d", "--network", "host", "--name", "intruder",
		"-e", "LISTEN="+other.Address+":9099", "-e", "HOST_NAME=x", image); err != nil {
		t.Fatalf("%s: starting intruder: %v %s", other.Name, err, out)
	}

	inv := l.inventory(t)
	if inv.Env != "lab" {
		t.Errorf("env %q, want lab", inv.Env)
	}
	lbNames := []string{}
	for _, lb := range l.loadBalancers(t) {
		lbNames = append(lbNames, lb.Name)
	}
	for i, h := range l.hosts {
		hv, ok := inv.host(h.Name)
		if !ok {
			t.Errorf("inventory has no host %s", h.Name)
			continue
		}
		if hv.Address != h.Address || hv.Zone != labZone(i) || !hv.Reachable || hv.Decommissioned || hv.Error != "" {
			t.Errorf("%s: address %q zone %q reachable %v decommissioned %v error %q; want %s, %s, reachable, not decommissioned, no error",
				h.Name, hv.Address, hv.Zone, hv.Reachable, hv.Decommissioned, hv.Error, h.Address, labZone(i))
		}
		if hv.DiskFreeBytes <= 0 {
			t.Errorf("%s: disk_free_bytes %d, want the free space of its data root", h.Name, hv.DiskFreeBytes)
		}
		c, ok := hv.container("www")
		switch {
		case !ok:
			t.Errorf("%s: no container www in %+v", h.Name, hv.Containers)
		case c.Version != sha(a) || !c.Managed || c.Service != "www":
			t.Errorf("%s: www is %+v, want managed, service www, version %s", h.Name, c, sha(a))
		case h == stopped && (c.State == "running" || c.Health != "unhealthy"):
			t.Errorf("%s: www (stopped by hand) has state %q health %q, want not running and unhealthy", h.Name, c.State, c.Health)
		case h != stopped && (c.State != "running" || c.Health != "healthy"):
			t.Errorf("%s: www has state %q health %q, want running and healthy", h.Name, c.State, c.Health)
		}
		if !slices.Contains(hv.CachedVersions["www"], sha(a)) {
			t.Errorf("%s: cached_versions of www %v do not hold %s, which it runs", h.Name, hv.CachedVersions["www"], sha(a))
		}
		for _, lb := range lbNames {
			if hv.LBs[lb] != "up" {
				t.Errorf("%s: lbs[%s] = %q, want up (lbs %v)", h.Name, lb, hv.LBs[lb], hv.LBs)
			}
		}
		intruder := false
		for _, c := range hv.Unmanaged {
			intruder = intruder || strings.TrimPrefix(c.Name, "/") == "intruder"
		}
		if h == other && !intruder {
			t.Errorf("%s: unmanaged %+v does not list intruder", h.Name, hv.Unmanaged)
		}
		if h != other && intruder {
			t.Errorf("%s lists intruder, which runs on %s", h.Name, other.Name)
		}
		if _, ok := hv.container("intruder"); ok {
			t.Errorf("%s: intruder is listed among gantry's containers", h.Name)
		}
	}
	if s := inv.Services["www"]; s.Version != sha(a) || len(s.DriftHosts) != 0 {
		t.Errorf("services.www = %+v, want version %s and no drift", s, sha(a))
	}

	// --service www shows the same hosts.
	if only := l.inventory(t, "--service", "www"); len(only.Hosts) != len(l.hosts) {
		t.Errorf("inventory --service www lists %d hosts, want %d", len(only.Hosts), len(l.hosts))
	}

	r := l.run(t, "inventory", "--env", "lab")
	if r.code != 0 {
		t.Errorf("inventory exited %d, want 0", r.code)
	}
	if !strings.Contains(r.stdout, "intruder") || !strings.Contains(r.stdout, "unmanaged") {
		t.Errorf("the inventory table should show intruder as unmanaged:\n%s", r.stdout)
	}

	restore()
	l.assertAllOn(t, a)
}

// --- decommission -----------------------------------------------------

// TestDecommission: a decommissioned host leaves every load balancer, its
// container stops, later deploys skip it; decommissioning below
// min_in_service is refused; recommission and a deploy bring it back.
func TestDecommission(t *testing.T) {
	l := needLab(t)
	l.fresh(t)
	current := l.onBaseline(t)
	gone := l.hosts[len(l.hosts)-1] // host4
	lbNames := map[string]string{}
	for _, lb := range l.loadBalancers(t) {
		lbNames[lb.Dir] = lb.Name
	}

	undone := false
	undo := func() {
		if undone {
			return
		}
		undone = true
		if r := l.run(t, "recommission", gone.Name, "--env", "lab"); r.code != 0 {
			t.Errorf("recommission %s exited %d, want 0", gone.Name, r.code)
		}
		r := l.run(t, "deploy", current, "--env", "lab")
		if r.code != 0 {
			t.Errorf("deploy %s after recommission exited %d, want 0", current, r.code)
		}
		if !plannedHosts(r.stdout)[gone.Name] {
			t.Errorf("the deploy after recommission does not plan %s", gone.Name)
		}
		if got := l.versionOn(t, gone); got != sha(current) {
			t.Errorf("%s runs %q after recommission and a deploy, want %s", gone.Name, got, sha(current))
		}
		l.assertAllOn(t, current)
	}
	t.Cleanup(undo)

	done := startLoad()
	r := l.run(t, "decommission", gone.Name, "--env", "lab")
	load := done()
	if r.code != 0 {
		t.Fatalf("decommission %s exited %d, want 0", gone.Name, r.code)
	}
	assertNoFailedRequests(t, load) // drained before its container stopped
	if !strings.Contains(r.stdout+r.stderr, "www") {
		t.Errorf("decommission does not say what ran on %s (www)", gone.Name)
	}
	checkLBs := func(when string) {
		t.Helper()
		for _, dir := range l.lbs {
			up := upstream(t, dir)
			if line, ok := upstreamLine(up, gone.Address); ok {
				t.Errorf("%s: %s still has a line for %s: %q, want none:\n%s", when, lbNames[dir], gone.Name, line, up)
			}
			for _, h := range l.hosts[:len(l.hosts)-1] {
				if line, ok := upstreamLine(up, h.Address); !ok || strings.Contains(line, " down") {
					t.Errorf("%s: %s does not have %s up (%q):\n%s", when, lbNames[dir], h.Name, line, up)
				}
			}
		}
	}
	checkStopped := func(when string) {
		t.Helper()
		if out, err := docker(gone, "inspect", "--format", "{{.State.Running}}", "www"); err == nil && out == "true" {
			t.Errorf("%s: %s's www container still runs", when, gone.Name)
		}
		if v := l.versionOn(t, gone); !strings.HasPrefix(v, "unreachable") {
			t.Errorf("%s: %s still answers on :8080 (%s)", when, gone.Name, v)
		}
	}
	checkLBs("after decommission")
	checkStopped("after decommission")
	if hv, ok := l.inventory(t).host(gone.Name); !ok || !hv.Decommissioned {
		t.Errorf("inventory does not show %s as decommissioned: %+v", gone.Name, hv)
	}

	// A later deploy skips it.
	b := l.publish(t)
	r = l.run(t, "deploy", b, "--env", "lab")
	if r.code != 0 {
		t.Errorf("deploy %s with %s decommissioned exited %d, want 0", b, gone.Name, r.code)
	} else {
		current = b
	}
	planned := plannedHosts(r.stdout)
	for _, h := range l.hosts[:len(l.hosts)-1] {
		if !planned[h.Name] {
			t.Errorf("the plan does not move %s", h.Name)
		}
		if got := l.versionOn(t, h); got != sha(b) {
			t.Errorf("%s runs %q, want %s", h.Name, got, sha(b))
		}
	}
	if planned[gone.Name] {
		t.Errorf("the plan moves %s, which is decommissioned", gone.Name)
	}
	checkLBs("after a deploy")
	checkStopped("after a deploy")

	// Refused below min_in_service: 3 healthy hosts left, 2 if host3 went.
	victim := l.hosts[len(l.hosts)-2] // host3
	strict := l.configEdits(t, "    batch_size: 1", "    batch_size: 1\n    min_in_service: 3")
	w := l.watchDrains()
	r = l.runWith(t, strict, "decommission", victim.Name, "--env", "lab")
	w.assertNeverDrained(t)
	if r.code != 3 {
		t.Errorf("decommission %s below min_in_service exited %d, want 3", victim.Name, r.code)
	}
	if !strings.Contains(r.stderr, "min_in_service") {
		t.Errorf("stderr does not mention min_in_service:\n%s", r.stderr)
	}
	for _, dir := range l.lbs {
		if line, ok := upstreamLine(upstream(t, dir), victim.Address); !ok || strings.Contains(line, " down") {
			t.Errorf("%s: %s is not up after a refused decommission (%q)", lbNames[dir], victim.Name, line)
		}
	}
	if got := l.versionOn(t, victim); got != sha(current) {
		t.Errorf("%s runs %q after a refused decommission, want %s", victim.Name, got, sha(current))
	}
	if hv, ok := l.inventory(t).host(victim.Name); !ok || hv.Decommissioned {
		t.Errorf("inventory shows %s decommissioned after a refused decommission: %+v", victim.Name, hv)
	}

	undo()
	if hv, ok := l.inventory(t).host(gone.Name); !ok || hv.Decommissioned {
		t.Errorf("inventory still shows %s decommissioned after recommission: %+v", gone.Name, hv)
	}
}

// --- prune ------------------------------------------------------------

// TestPrune: deploys keep the last keep_versions (default 3) versions on
// each host; prune --keep 2 leaves the last two, the running one included.
func TestPrune(t *testing.T) {
	l := needLab(t)
	l.fresh(t)
	var vs []string
	for i := 0; i < 5; i++ {
		vs = append(vs, l.publish(t))
	}
	for _, v := range vs {
		l.deployOK(t, v)
	}
	// Another service built from the same image (the big fleet's) keeps
	// the version it runs; it takes none of www's places.
	wantOn := func(h labHost, keep []string) []string {
		return slices.Compact(slices.Sorted(slices.Values(append(sortedShas(keep...), otherServicesVersions(t, h)...))))
	}
	for _, h := range l.hosts {
		if got, want := cachedTags(t, h), wantOn(h, vs[2:]); !slices.Equal(got, want) {
			t.Errorf("%s after 5 deploys caches %v, want exactly the last 3 versions and those other services run %v (deploys prune with keep_versions 3)", h.Name, got, want)
		}
	}

	r := l.run(t, "prune", "--env", "lab", "--keep", "2")
	if r.code != 0 {
		t.Errorf("prune --keep 2 exited %d, want 0", r.code)
	}
	for _, h := range l.hosts {
		if got, want := cachedTags(t, h), wantOn(h, vs[3:]); !slices.Equal(got, want) {
			t.Errorf("%s after prune --keep 2 caches %v, want exactly %v", h.Name, got, want)
		}
	}
	l.assertAllOn(t, vs[4])
}

// TestDeployWaitingBehindDecommission: a deploy started while `gantry
// decommission` holds the lock read the host as in service; it waits for
// the lock, then leaves out the host decommissioned meanwhile (it reads
// again under the lock, the decommission records too): the host stays
// stopped and out of every load balancer, under load with no failed
// request.
func TestDeployWaitingBehindDecommission(t *testing.T) {
	l := needLab(t)
	l.fresh(t)
	current := l.onBaseline(t)
	gone := l.hosts[len(l.hosts)-1]
	t.Cleanup(func() {
		if r := l.run(t, "recommission", gone.Name, "--env", "lab"); r.code != 0 {
			t.Errorf("recommission %s exited %d", gone.Name, r.code)
		}
		if r := l.run(t, "deploy", current, "--env", "lab"); r.code != 0 {
			t.Errorf("deploy %s after recommission exited %d", current, r.code)
		}
	})
	next := l.publish(t)

	// Slow requests in flight: the decommission's drain waits for them,
	// so it holds the lock while the deploy reads the fleet.
	done := startLoad()
	dec := l.start(t, l.config, "decommission", gone.Name, "--env", "lab")
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(l.quiet("lock", "status", "www", "--env", "lab").stdout, "decommission "+gone.Name) {
		if time.Now().After(deadline) {
			t.Fatalf("the decommission of %s never held the lock", gone.Name)
		}
		time.Sleep(10 * time.Millisecond)
	}
	r := l.run(t, "deploy", next, "--env", "lab", "--lock-wait", "60s")
	dr := dec.wait(time.Minute)
	load := done()
	if dr.code != 0 {
		t.Fatalf("decommission exited %d", dr.code)
	}
	if r.code != 0 {
		t.Fatalf("deploy exited %d", r.code)
	}
	assertNoFailedRequests(t, load)
	if plannedHosts(r.stdout)[gone.Name] {
		t.Errorf("the deploy planned %s, decommissioned while it waited for the lock", gone.Name)
	}
	for _, h := range l.hosts[:len(l.hosts)-1] {
		if got := l.versionOn(t, h); got != sha(next) {
			t.Errorf("%s runs %q, want %s", h.Name, got, sha(next))
		}
	}
	if out, err := docker(gone, "inspect", "--format", "{{.State.Running}}", "www"); err == nil && out == "true" {
		t.Errorf("%s's www container runs again", gone.Name)
	}
	for _, dir := range l.lbs {
		if line, ok := upstreamLine(upstream(t, dir), gone.Address); ok {
			t.Errorf("%s is back in %s: %q", gone.Name, dir, line)
		}
	}
	l.assertLockFree(t)
}
