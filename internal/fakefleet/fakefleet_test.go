package fakefleet_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/internal/fakefleet"
	"github.com/gantry-dev/gantry/inventory"
	"github.com/gantry-dev/gantry/rollout"
)

// The fakes are what rollout drives, without importing it.
var (
	_ rollout.Host     = (*fakefleet.Host)(nil)
	_ rollout.Balancer = (*fakefleet.Balancer)(nil)
)

const repo = "registry.local/www"

func newFleet(n int) *fakefleet.Fleet {
	return fakefleet.New(fakefleet.Spec{Hosts: n, Image: repo, From: "v1"})
}

// TestHostRefusesWhatDockerRefuses: the fake host keeps real state and
// says no where Docker does.
func TestHostRefusesWhatDockerRefuses(t *testing.T) {
	ctx := context.Background()
	h := newFleet(1).Host("host1")
	if _, err := h.Create(ctx, inventory.ContainerSpec{Name: "www-gantry-new", Image: repo + ":v2"}); err == nil || !strings.Contains(err.Error(), "no such image") {
		t.Errorf("create from an image not pulled = %v, want no such image", err)
	}
	if err := h.Pull(ctx, repo+":v2"); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Create(ctx, inventory.ContainerSpec{Name: "www", Image: repo + ":v2"}); err == nil || !strings.Contains(err.Error(), "already in use") {
		t.Errorf("create over www = %v, want a name conflict", err)
	}
	if err := h.Rename(ctx, "www", "www"); err == nil {
		t.Error("renaming www to its own name succeeded")
	}
	if got := strings.Join(h.Names(), " "); got != "www" {
		t.Errorf("containers = %s, want www", got)
	}
}

// TestViolations: stopping what a balancer still sends traffic to is
// recorded; after a drain it is not.
func TestViolations(t *testing.T) {
	ctx := context.Background()
	f := newFleet(2)
	if err := f.Host("host1").Stop(ctx, "www", time.Second); err != nil {
		t.Fatal(err)
	}
	for _, b := range f.Balancers {
		if err := b.Drain(ctx, "www", "host2"); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Host("host2").Stop(ctx, "www", time.Second); err != nil {
		t.Fatal(err)
	}
	want := "host1: stop registry.local/www:v1 while in rotation on lb1,host1: stop registry.local/www:v1 while in rotation on lb2"
	if got := strings.Join(f.Violations(), ","); got != want {
		t.Errorf("violations = %s, want %s", got, want)
	}
	if got, want := f.State(), "host1: www=v1(exited)\nhost2: www=v1(exited)\nlb1 drained: [www/host2]\nlb2 drained: [www/host2]\n"; got != want {
		t.Errorf("state:\n%s\nwant:\n%s", got, want)
	}
}

// TestHooks: a Before hook sees every operation and its error fails the
// operation with nothing changed; a set failure does the same; an app
// answers probes only once booted.
func TestHooks(t *testing.T) {
	ctx := context.Background()
	f := newFleet(1)
	h := f.Host("host1")
	var ops []string
	injected := errors.New("injected")
	h.Before = func(_ context.Context, op, _ string) error {
		ops = append(ops, op)
		if op == fakefleet.OpRemove {
			return injected
		}
		return nil
	}
	if err := h.Remove(ctx, "www"); !errors.Is(err, injected) {
		t.Errorf("remove = %v, want the hook's error", err)
	}
	h.Fail(fakefleet.OpStop, injected)
	if err := h.Stop(ctx, "www", time.Second); !errors.Is(err, injected) {
		t.Errorf("stop = %v, want the set failure", err)
	}
	if c, ok := h.Container("www"); !ok || !c.Running {
		t.Errorf("www after failed remove and stop: %+v, %t; want it running", c, ok)
	}
	h.Fail(fakefleet.OpStop, nil)
	if err := h.Stop(ctx, "www", time.Second); err != nil {
		t.Fatal(err)
	}
	h.Boot = func(string) time.Duration { return time.Hour }
	if err := h.Start(ctx, "www"); err != nil {
		t.Fatal(err)
	}
	if _, err := h.ProbeHTTP(ctx, "10.0.0.1:8080", "/healthz", "", time.Second); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Errorf("probe while the app boots = %v, want refused", err)
	}
	if got, want := strings.Join(ops, " "), "remove stop stop start probe"; got != want {
		t.Errorf("hook saw %s, want %s", got, want)
	}
	b := f.Balancer("lb1")
	b.Before = func(_ context.Context, op, _, _ string) error { return injected }
	if err := b.Drain(ctx, "www", "host1"); !errors.Is(err, injected) || b.IsDrained("www", "host1") {
		t.Errorf("drain with a failing hook = %v, drained %t; want the error and nothing drained", err, b.IsDrained("www", "host1"))
	}
}

// TestSetUp: Edit, Delete, Crash and SetAddr change state as a test sets
// it up, with no hook and no violation.
func TestSetUp(t *testing.T) {
	f := newFleet(2)
	h := f.Host("host1")
	h.Before = func(context.Context, string, string) error { return errors.New("no hook for set-up") }
	if !h.Edit("www", func(c *fakefleet.Container) { c.Name, c.Running = "www-gantry-old", false }) {
		t.Fatal("no www to edit")
	}
	if h.Edit("www", func(*fakefleet.Container) {}) {
		t.Error("edited a www that was renamed away")
	}
	f.Host("host2").Crash(repo+":v1", 3)
	if c, _ := f.Host("host2").Container("www"); c.Running || c.ExitCode != 3 {
		t.Errorf("crashed www: running %t, exit %d; want exited 3", c.Running, c.ExitCode)
	}
	f.Host("host2").Delete("www")
	b := f.Balancer("lb1")
	b.SetAddr("www", "host1", "10.0.0.1:8081")
	if got := b.AddrOf("www", "host1", "10.0.0.1"); got != "10.0.0.1:8081" {
		t.Errorf("host1 on lb1 at %s, want 10.0.0.1:8081", got)
	}
	if got, want := f.State(), "host1: www-gantry-old=v1(exited)\nhost2:\nlb1 drained: []\nlb2 drained: []\n"; got != want {
		t.Errorf("state:\n%s\nwant:\n%s", got, want)
	}
	if v := f.Violations(); len(v) != 0 {
		t.Errorf("violations: %v", v)
	}
}

// TestDeployOnTheFakeFleet: rollout's executor deploys the fake fleet,
// with latency hooks on every host and balancer, without a violation.
func TestDeployOnTheFakeFleet(t *testing.T) {
	f := newFleet(4)
	var mu sync.Mutex
	count := map[string]int{}
	for _, h := range f.Hosts {
		h.Before = func(ctx context.Context, op, _ string) error {
			mu.Lock()
			count[op]++
			mu.Unlock()
			return nil
		}
	}
	for _, b := range f.Balancers {
		b.Before = func(ctx context.Context, op, _, _ string) error {
			mu.Lock()
			count[op]++
			mu.Unlock()
			return nil
		}
	}
	var snaps []rollout.HostSnapshot
	e := &rollout.Executor{
		Hosts: map[string]rollout.Host{},
		Service: rollout.ServiceSpec{
			Name: "www", ContainerName: "www", Port: fakefleet.DefaultPort,
			Env:         func(h inventory.Host, _ int) []string { return []string{"HOST_NAME=" + h.Name} },
			Health:      rollout.HealthCheck{Path: fakefleet.DefaultHealthPath, Status: 200, Interval: time.Millisecond, Timeout: time.Second, Threshold: 1, Deadline: 10 * time.Second},
			StopTimeout: time.Second,
		},
		PullConcurrency: 2, PullTimeout: 10 * time.Second, CleanupTimeout: 10 * time.Second,
	}
	for _, h := range f.Hosts {
		e.Hosts[h.Name()] = h
		c, _, err := h.Inspect(context.Background(), "www")
		if err != nil {
			t.Fatal(err)
		}
		snaps = append(snaps, rollout.HostSnapshot{Host: f.InventoryHost(h), Current: &c})
	}
	for _, b := range f.Balancers {
		e.Balancers = append(e.Balancers, b)
	}
	rep := e.Run(context.Background(), rollout.PlanDeploy(rollout.Target{Service: "www", Tag: "v2", Image: repo + ":v2"}, snaps, 2))
	if !rep.OK() {
		t.Fatalf("deploy failed: %v", rep.Err)
	}
	want := "host1: www=v2(running)\nhost2: www=v2(running)\nhost3: www=v2(running)\nhost4: www=v2(running)\nlb1 drained: []\nlb2 drained: []\n"
	if got := f.State(); got != want {
		t.Errorf("state:\n%s\nwant:\n%s", got, want)
	}
	if v := f.Violations(); len(v) > 0 {
		t.Errorf("violations: %v", v)
	}
	if count[fakefleet.OpPull] != 4 || count[fakefleet.OpDrain] != 8 || count[fakefleet.OpRestore] != 8 {
		t.Errorf("hooks saw %v, want 4 pulls, 8 drains and 8 restores", count)
	}
}
