package fakefleet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gantry-dev/gantry/inventory"
)

// Operations, as hooks and Fail name them.
const (
	OpPull    = "pull"
	OpInspect = "inspect"
	OpCreate  = "create"
	OpStart   = "start"
	OpStop    = "stop"
	OpRename  = "rename"
	OpRemove  = "remove"
	OpProbe   = "probe"   // ProbeHTTP and ProbeTCP
	OpExec    = "exec"    // ExecCheck
	OpRunOnce = "runonce" // a release command
)

// Container is one container on a fake host.
type Container struct {
	ID       string
	Name     string
	Image    string
	Labels   map[string]string
	Env      []string
	Options  inventory.ContainerOptions
	Running  bool
	ExitCode int
	// ReadyAt is when its app starts answering probes (see Host.Boot).
	ReadyAt time.Time
}

// Port is where the container's app listens: the port recorded on it, or
// def.
func (c *Container) Port(def int) int {
	return inventory.Container{Labels: c.Labels}.Port(def)
}

// Host is an in-memory Docker host. It keeps real state (containers, image
// cache) and refuses what Docker refuses (name conflicts, unknown images,
// renaming to the current name).
type Host struct {
	name, address string
	fleet         *Fleet

	// Before, when set, runs before every operation, outside the host's
	// lock, with the operation (OpPull, ...) and the image concerned ("" when
	// none). An error it returns fails the operation, which then changes
	// nothing; it may sleep (latency), and should then honour ctx. Set it
	// while no operation runs.
	Before func(ctx context.Context, op, image string) error
	// Boot, when set, is how long the app of a container started with
	// image takes to answer probes: until then they are refused. Nil means
	// at once.
	Boot func(image string) time.Duration

	mu           sync.Mutex
	containers   map[string]*Container // by name
	images       map[string]bool
	pulls        []string
	nextID       int
	pullErr      error
	health       map[string]Health // by image; missing means the fleet's
	fail         map[string]error  // by operation
	releaseExit  map[string]int    // by image; missing means 0
	releases     []string
	releaseBlock chan struct{}
}

// Name is the host's name; Address its address.
func (h *Host) Name() string    { return h.name }
func (h *Host) Address() string { return h.address }

// before runs the Before hook, then any failure set for op.
func (h *Host) before(ctx context.Context, op, image string) error {
	if h.Before != nil {
		if err := h.Before(ctx, op, image); err != nil {
			return err
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.fail[op]
}

// Fail makes every op (OpStop, ...) fail with err from now on; nil makes it
// work again.
func (h *Host) Fail(op string, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.fail == nil {
		h.fail = map[string]error{}
	}
	if err == nil {
		delete(h.fail, op)
		return
	}
	h.fail[op] = err
}

// FailPulls makes every pull fail with err (recorded as tried, the image
// not cached); nil makes pulls work again.
func (h *Host) FailPulls(err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.pullErr = err
}

// SetHealth sets how image's app answers on this host.
func (h *Host) SetHealth(image string, hh Health) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.health == nil {
		h.health = map[string]Health{}
	}
	h.health[image] = hh
}

// healthOf is how image's app answers; callers hold h.mu.
func (h *Host) healthOf(image string) Health {
	if hh, ok := h.health[image]; ok {
		return hh
	}
	return h.fleet.healthOf(image)
}

// SetReleaseExit sets the exit code of release commands run with image.
func (h *Host) SetReleaseExit(image string, code int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.releaseExit == nil {
		h.releaseExit = map[string]int{}
	}
	h.releaseExit[image] = code
}

// BlockReleases makes release commands wait for block to be closed (or
// their context); nil lets them end at once.
func (h *Host) BlockReleases(block chan struct{}) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.releaseBlock = block
}

// Releases lists the release commands run, as "image argv...".
func (h *Host) Releases() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.releases)
}

// AddImage puts image in the host's cache.
func (h *Host) AddImage(image string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.images[image] = true
}

// HasImage says whether image is in the host's cache.
func (h *Host) HasImage(image string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.images[image]
}

// Pulls lists the images pulled (or tried), in order.
func (h *Host) Pulls() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.pulls)
}

// Put adds c to the host as it is (an id is given when it has none),
// replacing any container of the same name, and returns its id: a leftover
// of an earlier run, a container started by hand.
func (h *Host) Put(c Container) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.put(&c)
}

func (h *Host) put(c *Container) string {
	if c.ID == "" {
		h.nextID++
		c.ID = fmt.Sprintf("%s-c%d", h.name, h.nextID)
	}
	h.containers[c.Name] = c
	return c.ID
}

// Edit changes the container called name in place with fn, under the
// host's lock and with no hook or check: the state a test sets up (a label
// changed by hand, a swap cut off after a rename). A Name fn sets moves
// the container to that name, replacing any container there. Edit reports
// whether there was a container called name.
func (h *Host) Edit(name string, fn func(c *Container)) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	c, ok := h.containers[name]
	if !ok {
		return false
	}
	fn(c)
	if c.Name != name {
		delete(h.containers, name)
		h.containers[c.Name] = c
	}
	return true
}

// Delete removes the container called name at once, with no hook or
// check: a host that never ran it.
func (h *Host) Delete(name string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.containers, name)
}

// Crash makes every running container of image exit with code, as an app
// that crashes does. Called from a Before hook, it crashes the app just
// before the operation sees it.
func (h *Host) Crash(image string, code int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, c := range h.containers {
		if c.Running && c.Image == image {
			c.Running, c.ExitCode = false, code
		}
	}
}

// Container returns a copy of the container called name.
func (h *Host) Container(name string) (Container, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	c, ok := h.containers[name]
	if !ok {
		return Container{}, false
	}
	return *c, true
}

// Names lists the host's container names, sorted.
func (h *Host) Names() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Sorted(maps.Keys(h.containers))
}

// byID finds a container by id or name; callers hold h.mu.
func (h *Host) byID(id string) *Container {
	if c, ok := h.containers[id]; ok {
		return c
	}
	for _, c := range h.containers {
		if c.ID == id {
			return c
		}
	}
	return nil
}

// checkDrained records a violation when a container listening on port
// changes while some load balancer still sends the host's traffic to that
// port; callers hold h.mu.
func (h *Host) checkDrained(what string, port int) {
	addr := fmt.Sprintf("%s:%d", h.address, port)
	for _, b := range h.fleet.Balancers {
		if !b.IsDrained(h.fleet.Service, h.name) && b.AddrOf(h.fleet.Service, h.name, h.address) == addr {
			h.fleet.violation(fmt.Sprintf("%s: %s while in rotation on %s", h.name, what, b.name))
		}
	}
}

// Pull puts ref in the host's cache.
func (h *Host) Pull(ctx context.Context, ref string) error {
	if err := h.before(ctx, OpPull, ref); err != nil {
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

// Inspect returns the container with that name or id, as Docker describes
// it (its health as Docker's HEALTHCHECK reports it).
func (h *Host) Inspect(ctx context.Context, name string) (inventory.Container, bool, error) {
	if err := h.before(ctx, OpInspect, ""); err != nil {
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
	dockerHealth := map[Health]string{Healthy: "healthy", NeverHealthy: "unhealthy", Exits: "starting"}[h.healthOf(c.Image)]
	state := "exited"
	if c.Running {
		state = "running"
	}
	return inventory.Container{
		ID: c.ID, Name: c.Name, Image: c.Image, Running: c.Running, State: state, ExitCode: c.ExitCode,
		Labels: maps.Clone(c.Labels), Health: dockerHealth,
	}, true, nil
}

// ProbeTCP connects when a running container whose app is not broken
// listens on addr.
func (h *Host) ProbeTCP(ctx context.Context, addr string, _ time.Duration) error {
	if _, err := h.ProbeHTTP(ctx, addr, h.fleet.HealthPath, "", 0); err != nil {
		return err
	}
	return nil
}

// ExecCheck runs a health command: exit 0 for a healthy app, 1 otherwise.
func (h *Host) ExecCheck(ctx context.Context, id string, cmd []string, _ time.Duration) (int, string, error) {
	if err := h.before(ctx, OpExec, h.runningImage()); err != nil {
		return 0, "", err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	c := h.byID(id)
	if c == nil || !c.Running {
		return 0, "", fmt.Errorf("container %s is not running", id)
	}
	switch h.healthOf(c.Image) {
	case NeverHealthy:
		return 1, "not ready: database unreachable", nil
	case Exits:
		c.Running, c.ExitCode = false, 3
		return 0, "", errors.New("container exited")
	}
	return 0, "ok", nil
}

// Create creates a container, not started, from a cached image.
func (h *Host) Create(ctx context.Context, spec inventory.ContainerSpec) (string, error) {
	if err := h.before(ctx, OpCreate, spec.Image); err != nil {
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
	return h.put(&Container{
		Name: spec.Name, Image: spec.Image,
		Labels: maps.Clone(spec.Labels), Env: slices.Clone(spec.Env), Options: spec.Options,
	}), nil
}

// RunOnce runs a release command: the container exists while it runs
// (its name is taken), it writes one line to each stream, and it is
// removed when it ends.
func (h *Host) RunOnce(ctx context.Context, spec inventory.ContainerSpec, stdout, stderr io.Writer) (int, error) {
	if err := h.before(ctx, OpRunOnce, spec.Image); err != nil {
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
	h.put(&Container{Name: spec.Name, Image: spec.Image,
		Labels: maps.Clone(spec.Labels), Env: slices.Clone(spec.Env), Options: spec.Options, Running: true})
	h.releases = append(h.releases, strings.Join(append([]string{spec.Image}, spec.Options.Command...), " "))
	code := h.releaseExit[spec.Image]
	block := h.releaseBlock
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		delete(h.containers, spec.Name)
		h.mu.Unlock()
	}()
	for _, b := range h.fleet.Balancers {
		if d := b.Drained(); len(d) > 0 {
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

// Start starts a container; its app answers probes once booted (Boot).
func (h *Host) Start(ctx context.Context, id string) error {
	if c := h.lookup(id); c != nil {
		if err := h.before(ctx, OpStart, c.Image); err != nil {
			return err
		}
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
	port := c.Port(h.fleet.Port)
	h.checkDrained("start "+c.Image, port)
	for _, o := range h.containers {
		if o != c && o.Running && o.Port(h.fleet.Port) == port {
			h.fleet.violation(fmt.Sprintf("%s: %s started while %s still runs", h.name, c.Image, o.Image))
		}
	}
	if !c.Running {
		c.ReadyAt = time.Time{}
		if h.Boot != nil {
			c.ReadyAt = time.Now().Add(h.Boot(c.Image))
		}
	}
	c.Running, c.ExitCode = true, 0
	return nil
}

// Stop stops a container.
func (h *Host) Stop(ctx context.Context, id string, _ time.Duration) error {
	if err := h.before(ctx, OpStop, ""); err != nil {
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
		h.checkDrained("stop "+c.Image, c.Port(h.fleet.Port))
	}
	c.Running = false
	return nil
}

// Rename renames a container.
func (h *Host) Rename(ctx context.Context, id, name string) error {
	if err := h.before(ctx, OpRename, ""); err != nil {
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

// Remove removes a container (none is no error), never its image.
func (h *Host) Remove(ctx context.Context, id string) error {
	if err := h.before(ctx, OpRemove, ""); err != nil {
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
		h.checkDrained("remove running "+c.Image, c.Port(h.fleet.Port))
	}
	delete(h.containers, c.Name)
	return nil
}

// ProbeHTTP answers for the running container listening on addr, as its
// app was when the probe was sent: refused while it boots, 404 off the
// health path, then as its image's Health says.
func (h *Host) ProbeHTTP(ctx context.Context, addr, path, _ string, _ time.Duration) (int, error) {
	sent := time.Now()
	if err := h.before(ctx, OpProbe, h.runningImage()); err != nil {
		return 0, err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	var app *Container
	for _, c := range h.containers {
		if c.Running && addr == fmt.Sprintf("%s:%d", h.address, c.Port(h.fleet.Port)) {
			app = c
		}
	}
	if app == nil || sent.Before(app.ReadyAt) {
		return 0, fmt.Errorf("dial %s: connection refused", addr)
	}
	if path != h.fleet.HealthPath {
		return 404, nil
	}
	switch h.healthOf(app.Image) {
	case NeverHealthy:
		return 503, nil
	case Exits:
		app.Running, app.ExitCode = false, 3
		return 0, errors.New("connection reset by peer")
	}
	return 200, nil
}

func (h *Host) lookup(id string) *Container {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.byID(id)
}

func (h *Host) runningImage() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, c := range h.containers {
		if c.Running {
			return c.Image
		}
	}
	return ""
}
