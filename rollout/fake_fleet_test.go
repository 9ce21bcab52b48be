package rollout

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/gantry-dev/gantry/inventory"
)

// health is how an image's app answers its health check.
type health int

const (
	healthy       health = iota
	neverHealthy         // answers 503 forever
	exits                // the process exits as soon as it is probed
	noHealthcheck        // healthy, but the image has no HEALTHCHECK
)

const (
	appPort    = 8080
	healthPath = "/healthz"
)

// fakeContainer is one container on a fake host.
type fakeContainer struct {
	ID       string
	Name     string
	Image    string
	Labels   map[string]string
	Env      []string
	Options  inventory.ContainerOptions
	Running  bool
	ExitCode int
}

// port is where the container's app listens: the port recorded on it, or
// the app's usual port.
func (c *fakeContainer) port() int {
	return inventory.Container{Labels: c.Labels}.Port(appPort)
}

// fakeHost is an in-memory Docker host. It keeps real state (containers,
// image cache) and refuses what Docker refuses (name conflicts, unknown
// images, renaming to the current name).
type fakeHost struct {
	name    string
	address string
	fleet   *fakeFleet

	mu         sync.Mutex
	containers map[string]*fakeContainer // by name
	images     map[string]bool
	pulls      []string
	nextID     int
	pullErr    error
	health     map[string]health // by image; missing means healthy
	// hook, if set, runs before every operation ("inspect", "create",
	// "start", "probe", ...) with the image concerned, if any.
	hook func(op, image string)
	// fail makes an operation fail, by name ("stop", "rename", ...).
	fail map[string]error
	// releaseExit is the exit code of a release command, by image
	// (missing: 0); releases records each one run, as "image argv...".
	releaseExit map[string]int
	releases    []string
	// releaseBlock, if set, is waited on by a release command (or ctx).
	releaseBlock chan struct{}
}

func (h *fakeHost) run(op, image string) error {
	if h.hook != nil {
		h.hook(op, image)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.fail[op]
}

// byID finds a container by id or name; callers hold h.mu.
func (h *fakeHost) byID(id string) *fakeContainer {
	for _, c := range h.containers {
		if c.ID == id || c.Name == id {
			return c
		}
	}
	return nil
}

// checkDrained records a violation when a container listening on port
// changes while some load balancer still sends the host's traffic to that
// port; callers hold h.mu.
func (h *fakeHost) checkDrained(what string, port int) {
	addr := fmt.Sprintf("%s:%d", h.address, port)
	for _, b := range h.fleet.lbs {
		if !b.isDrained("www", h.name) && b.addrOf("www", h.name, h.address) == addr {
			h.fleet.violation(fmt.Sprintf("%s: %s while in rotation on %s", h.name, what, b.name))
		}
	}
}

func (h *fakeHost) Pull(ctx context.Context, ref string) error {
	if err := h.run("pull", ref); err != nil {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return err
	}
	h.pulls = append(h.pulls, ref)
	if h.pullErr != nil {
		return h.pullErr
	}
	h.images[ref] = true
	return nil
}

func (h *fakeHost) Inspect(ctx context.Context, name string) (inventory.Container, bool, error) {
	if err := h.run("inspect", ""); err != nil {
		return inventory.Container{}, false, err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return inventory.Container{}, false, err
	}
	c := h.byID(name)
	if c == nil {
		return inventory.Container{}, false, nil
	}
	dockerHealth := map[health]string{healthy: "healthy", neverHealthy: "unhealthy", exits: "starting"}[h.health[c.Image]]
	return inventory.Container{
		ID: c.ID, Name: c.Name, Image: c.Image, Running: c.Running, ExitCode: c.ExitCode,
		Labels: maps.Clone(c.Labels), Health: dockerHealth,
	}, true, nil
}

// ProbeTCP connects when a running container listens on addr whose app
// is not broken.
func (h *fakeHost) ProbeTCP(ctx context.Context, addr string, _ time.Duration) error {
	if _, err := h.ProbeHTTP(ctx, addr, healthPath, "", 0); err != nil {
		return err
	}
	return nil
}

// ExecCheck runs a health command: exit 0 for a healthy app, 1 otherwise.
func (h *fakeHost) ExecCheck(ctx context.Context, id string, cmd []string, _ time.Duration) (int, string, error) {
	if err := h.run("exec", h.runningImage()); err != nil {
		return 0, "", err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	c := h.byID(id)
	if c == nil || !c.Running {
		return 0, "", fmt.Errorf("container %s is not running", id)
	}
	switch h.health[c.Image] {
	case neverHealthy:
		return 1, "not ready: database unreachable", nil
	case exits:
		c.Running, c.ExitCode = false, 3
		return 0, "", errors.New("container exited")
	}
	return 0, "ok", nil
}

func (h *fakeHost) Create(ctx context.Context, spec inventory.ContainerSpec) (string, error) {
	if err := h.run("create", spec.Image); err != nil {
		return "", err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return "", err
	}
	if _, taken := h.containers[spec.Name]; taken {
		return "", fmt.Errorf("conflict: container name %q is already in use", spec.Name)
	}
	if !h.images[spec.Image] {
		return "", fmt.Errorf("no such image: %s", spec.Image)
	}
	h.nextID++
	c := &fakeContainer{
		ID: fmt.Sprintf("%s-c%d", h.name, h.nextID), Name: spec.Name, Image: spec.Image,
		Labels: maps.Clone(spec.Labels), Env: slices.Clone(spec.Env), Options: spec.Options,
	}
	h.containers[c.Name] = c
	return c.ID, nil
}

// RunOnce runs a release command: the container exists while it runs
// (its name is taken), it writes one line to each stream, and it is
// removed when it ends.
func (h *fakeHost) RunOnce(ctx context.Context, spec inventory.ContainerSpec, stdout, stderr io.Writer) (int, error) {
	if err := h.run("runonce", spec.Image); err != nil {
		return -1, err
	}
	h.mu.Lock()
	if _, taken := h.containers[spec.Name]; taken {
		h.mu.Unlock()
		return -1, fmt.Errorf("conflict: container name %q is already in use", spec.Name)
	}
	if !h.images[spec.Image] {
		h.mu.Unlock()
		return -1, fmt.Errorf("no such image: %s", spec.Image)
	}
	h.nextID++
	c := &fakeContainer{ID: fmt.Sprintf("%s-c%d", h.name, h.nextID), Name: spec.Name, Image: spec.Image,
		Labels: maps.Clone(spec.Labels), Env: slices.Clone(spec.Env), Options: spec.Options, Running: true}
	h.containers[c.Name] = c
	h.releases = append(h.releases, strings.Join(append([]string{spec.Image}, spec.Options.Command...), " "))
	code := h.releaseExit[spec.Image]
	block := h.releaseBlock
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		delete(h.containers, spec.Name)
		h.mu.Unlock()
	}()
	for _, b := range h.fleet.lbs {
		if d := b.drainedHosts(); len(d) > 0 {
			h.fleet.violation(fmt.Sprintf("%s: release command runs while %v are drained", h.name, d))
		}
	}
	fmt.Fprintf(stdout, "migrating with %s\npartial", strings.Join(spec.Env, " "))
	fmt.Fprintf(stderr, "exiting %d\n", code)
	if block != nil {
		select {
		case <-block:
		case <-ctx.Done():
			return -1, ctx.Err()
		}
	}
	return code, nil
}

func (h *fakeHost) Start(ctx context.Context, id string) error {
	c := h.lookup(id)
	if c != nil {
		if err := h.run("start", c.Image); err != nil {
			return err
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return err
	}
	c = h.byID(id)
	if c == nil {
		return fmt.Errorf("no such container: %s", id)
	}
	h.checkDrained("start "+c.Image, c.port())
	for _, o := range h.containers {
		if o != c && o.Running && o.port() == c.port() {
			h.fleet.violation(fmt.Sprintf("%s: %s started while %s still runs", h.name, c.Image, o.Image))
		}
	}
	c.Running, c.ExitCode = true, 0
	return nil
}

func (h *fakeHost) Stop(ctx context.Context, id string, _ time.Duration) error {
	if err := h.run("stop", ""); err != nil {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return err
	}
	c := h.byID(id)
	if c == nil {
		return fmt.Errorf("no such container: %s", id)
	}
	if c.Running {
		h.checkDrained("stop "+c.Image, c.port())
	}
	c.Running = false
	return nil
}

func (h *fakeHost) Rename(ctx context.Context, id, name string) error {
	if err := h.run("rename", ""); err != nil {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return err
	}
	c := h.byID(id)
	if c == nil {
		return fmt.Errorf("no such container: %s", id)
	}
	if c.Name == name {
		return errors.New("renaming a container with the same name as its current name")
	}
	if _, taken := h.containers[name]; taken {
		return fmt.Errorf("conflict: container name %q is already in use", name)
	}
	delete(h.containers, c.Name)
	c.Name = name
	h.containers[name] = c
	return nil
}

func (h *fakeHost) Remove(ctx context.Context, id string) error {
	if err := h.run("remove", ""); err != nil {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return err
	}
	c := h.byID(id)
	if c == nil {
		return nil
	}
	if c.Running {
		h.checkDrained("remove running "+c.Image, c.port())
	}
	delete(h.containers, c.Name)
	return nil
}

func (h *fakeHost) ProbeHTTP(ctx context.Context, addr, path, _ string, _ time.Duration) (int, error) {
	if err := h.run("probe", h.runningImage()); err != nil {
		return 0, err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	var app *fakeContainer
	for _, c := range h.containers {
		if c.Running && addr == fmt.Sprintf("%s:%d", h.address, c.port()) {
			app = c
		}
	}
	if app == nil {
		return 0, fmt.Errorf("dial %s: connection refused", addr)
	}
	if path != healthPath {
		return 404, nil
	}
	switch h.health[app.Image] {
	case neverHealthy:
		return 503, nil
	case exits:
		app.Running, app.ExitCode = false, 3
		return 0, errors.New("connection reset by peer")
	}
	return 200, nil
}

func (h *fakeHost) lookup(id string) *fakeContainer {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.byID(id)
}

func (h *fakeHost) runningImage() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, c := range h.containers {
		if c.Running {
			return c.Image
		}
	}
	return ""
}

// container returns a copy of the container called name.
func (h *fakeHost) container(name string) (fakeContainer, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	c, ok := h.containers[name]
	if !ok {
		return fakeContainer{}, false
	}
	return *c, true
}

// names lists the host's container names.
func (h *fakeHost) names() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Sorted(maps.Keys(h.containers))
}

// fakeBalancer keeps the set of drained hosts per service.
type fakeBalancer struct {
	name string

	mu        sync.Mutex
	drained   map[string]map[string]bool   // service -> host -> drained
	addrs     map[string]map[string]string // service -> host -> host:port, when switched
	failDrain map[string]bool              // hosts whose drain fails
	// failSwitch makes switching a host to an address fail.
	failSwitch map[string]bool // host -> fails
	switches   []string        // "host addr", in order
	hook       func(op, host string)
}

func (b *fakeBalancer) LoadBalancerName() string { return b.name }

func (b *fakeBalancer) Drain(_ context.Context, service, host string) error {
	if b.hook != nil {
		b.hook("drain", host)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.failDrain[host] {
		return errors.New("nginx: [emerg] host not found in upstream")
	}
	if b.drained[service] == nil {
		b.drained[service] = map[string]bool{}
	}
	b.drained[service][host] = true
	return nil
}

func (b *fakeBalancer) Restore(_ context.Context, service, host string) error {
	if b.hook != nil {
		b.hook("restore", host)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.drained[service], host)
	return nil
}

func (b *fakeBalancer) Switch(_ context.Context, service, host, addr string) error {
	if b.hook != nil {
		b.hook("switch", host)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.failSwitch[host+" "+addr] {
		return errors.New("nginx: [emerg] invalid port in upstream")
	}
	if b.addrs[service] == nil {
		b.addrs[service] = map[string]string{}
	}
	b.addrs[service][host] = addr
	delete(b.drained[service], host)
	b.switches = append(b.switches, host+" "+addr)
	return nil
}

// addrOf is where the balancer sends host's traffic (address:appPort
// until switched).
func (b *fakeBalancer) addrOf(service, host, address string) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if a, ok := b.addrs[service][host]; ok {
		return a
	}
	return fmt.Sprintf("%s:%d", address, appPort)
}

func (b *fakeBalancer) isDrained(service, host string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.drained[service][host]
}

func (b *fakeBalancer) drainedHosts() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for svc, hosts := range b.drained {
		for h, d := range hosts {
			if d {
				out = append(out, svc+"/"+h)
			}
		}
	}
	sort.Strings(out)
	return out
}

// fakeFleet is hosts running www and the load balancers in front of them.
type fakeFleet struct {
	hosts []*fakeHost
	lbs   []*fakeBalancer

	// held says why a host is to stay out of every load balancer (in
	// maintenance), by host name: planWith observes it.
	held map[string]string

	mu         sync.Mutex
	violations []string
}

func (f *fakeFleet) violation(s string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.violations = append(f.violations, s)
}

// newFleet returns hosts host1..hostN, each running www on version from
// (none when from is ""), behind two load balancers.
func newFleet(n int, from string) *fakeFleet {
	f := &fakeFleet{}
	for _, name := range []string{"lb1", "lb2"} {
		f.lbs = append(f.lbs, &fakeBalancer{name: name, drained: map[string]map[string]bool{}, addrs: map[string]map[string]string{}, failDrain: map[string]bool{}, failSwitch: map[string]bool{}})
	}
	for i := 1; i <= n; i++ {
		h := &fakeHost{
			name: fmt.Sprintf("host%d", i), address: fmt.Sprintf("10.0.0.%d", i), fleet: f,
			containers: map[string]*fakeContainer{}, images: map[string]bool{}, health: map[string]health{},
		}
		if from != "" {
			img := testImage + ":" + from
			h.images[img] = true
			h.nextID++
			h.containers["www"] = &fakeContainer{
				ID: fmt.Sprintf("%s-c%d", h.name, h.nextID), Name: "www", Image: img, Running: true,
				Labels: map[string]string{
					inventory.LabelManaged: "true", inventory.LabelService: "www",
					inventory.LabelVersion: from, inventory.LabelImage: img,
				},
			}
		}
		f.hosts = append(f.hosts, h)
	}
	return f
}

func (f *fakeFleet) host(name string) *fakeHost {
	for _, h := range f.hosts {
		if h.name == name {
			return h
		}
	}
	panic("no fake host " + name)
}

func (f *fakeFleet) lb(name string) *fakeBalancer {
	for _, b := range f.lbs {
		if b.name == name {
			return b
		}
	}
	panic("no fake balancer " + name)
}

// setHealth sets how image answers on every host.
func (f *fakeFleet) setHealth(tag string, hh health) {
	for _, h := range f.hosts {
		h.health[testImage+":"+tag] = hh
	}
}

// inventoryHost is the discovery view of a fake host.
func (h *fakeHost) inventoryHost() inventory.Host {
	return inventory.Host{Name: h.name, Address: h.address, Services: []string{"www"}}
}

// plan snapshots the fleet the way fleet.Deploy does and plans a
// stop-first deploy.
func (f *fakeFleet) plan(tag string, batch int) Plan {
	return f.planWith(tag, batch, Strategy{})
}

// planWith snapshots the fleet the way fleet.Deploy does and plans a
// deploy under strategy s.
func (f *fakeFleet) planWith(tag string, batch int, s Strategy) Plan {
	var snaps []HostSnapshot
	for _, h := range f.hosts {
		snap := HostSnapshot{Host: h.inventoryHost(), Held: f.held[h.name]}
		for name, c := range map[string]**inventory.Container{"www": &snap.Current, "www-gantry-old": &snap.Old, "www-gantry-new": &snap.New} {
			if got, ok, err := h.Inspect(context.Background(), name); err != nil {
				panic(err)
			} else if ok {
				*c = &got
			}
		}
		for _, l := range f.lbs { // a worker's fleet has none: not observed
			if snap.Entries == nil {
				snap.Entries = map[string]Entry{}
			}
			snap.Entries[l.name] = Entry{Addr: l.addrOf("www", h.name, h.address), Down: l.isDrained("www", h.name)}
		}
		snaps = append(snaps, snap)
	}
	// What a cut-off run left is repaired first, and the deploy planned
	// from the state the repairs leave.
	repairs, healed := PlanRepairs(snaps, "www", appPort)
	p, err := PlanDeployWith(testTarget(tag), healed, SpreadRules{BatchSize: batch}, s)
	if err != nil {
		panic(err)
	}
	p.Repairs = repairs
	return p
}

// executor returns an executor over the fleet with fast health checks.
func (f *fakeFleet) executor(deadline time.Duration) *Executor {
	e := &Executor{
		Hosts: map[string]Host{},
		Service: ServiceSpec{
			Name: "www", ContainerName: "www", Port: appPort,
			Env: func(h inventory.Host, _ int) []string { return []string{"HOST_NAME=" + h.Name} },
			Health: HealthCheck{
				Path: healthPath, Status: 200, Interval: 2 * time.Millisecond,
				Timeout: 50 * time.Millisecond, Threshold: 2, Deadline: deadline,
			},
			StopTimeout: time.Second, Options: inventory.ContainerOptions{LogMaxSize: "10m", LogMaxFile: 3},
		},
		PullConcurrency: 4,
		PullTimeout:     time.Second,
		CleanupTimeout:  2 * time.Second,
	}
	for _, h := range f.hosts {
		e.Hosts[h.name] = h
	}
	for _, b := range f.lbs {
		e.Balancers = append(e.Balancers, b)
	}
	return e
}

// state renders what every host runs and every balancer drains, for
// comparing end states as text.
func (f *fakeFleet) state() string {
	var b strings.Builder
	for _, h := range f.hosts {
		fmt.Fprintf(&b, "%s:", h.name)
		for _, n := range h.names() {
			c, _ := h.container(n)
			st := "exited"
			if c.Running {
				st = "running"
			}
			fmt.Fprintf(&b, " %s=%s(%s)", n, c.Labels[inventory.LabelVersion], st)
		}
		b.WriteString("\n")
	}
	for _, l := range f.lbs {
		fmt.Fprintf(&b, "%s drained: %v\n", l.name, l.drainedHosts())
	}
	return b.String()
}
