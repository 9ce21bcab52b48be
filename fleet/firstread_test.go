package fleet

import (
	"context"
	"errors"
	"testing"

	"github.com/gantry-dev/gantry/config"
	"github.com/gantry-dev/gantry/inventory"
	"github.com/gantry-dev/gantry/lb"
)

// A read started ahead is taken once, by the first observation; one never
// started, or taken already, says so and the caller reads anew. Entries
// are taken only when every load balancer's read started.
func TestFirstReadsAreTakenOnce(t *testing.T) {
	ctx := context.Background()
	env := config.Environment{LoadBalancers: []config.LoadBalancer{{Name: "lb1"}, {Name: "lb2"}}, Lock: config.Lock{Host: "lb1"}}
	f := newFirstReads(ctx, env, "prod", "www", false)
	defer f.close()
	lbs := []lb.Options{{Name: "lb1"}, {Name: "lb2"}}
	if _, _, ok := f.takeEntries(ctx, lbs); ok {
		t.Fatal("no read started: takeEntries said ok")
	}
	f.entries["lb1"].start(f, func(context.Context) (map[string]lb.Entry, error) {
		return map[string]lb.Entry{"host1": {Addr: "10.0.0.1:8080"}}, nil
	})
	if _, _, ok := f.takeEntries(ctx, lbs); ok {
		t.Fatal("lb2's read not started: takeEntries said ok")
	}
	f.entries["lb2"].start(f, func(context.Context) (map[string]lb.Entry, error) { return nil, errors.New("lb2: unreachable") })
	found, errs, ok := f.takeEntries(ctx, lbs)
	if !ok || found[0]["host1"].Addr != "10.0.0.1:8080" || errs[0] != nil || errs[1] == nil {
		t.Fatalf("takeEntries: %v %v %v", found, errs, ok)
	}
	if _, _, ok := f.takeEntries(ctx, lbs); ok {
		t.Error("entries taken twice")
	}
	if _, _, ok := f.lock.take(ctx); ok {
		t.Error("the lock's read never started: take said ok")
	}
	var none *firstRead[int]
	if _, _, ok := none.take(ctx); ok {
		t.Error("a read not prepared (a worker's entries): take said ok")
	}
}

// The registry check read ahead is used only when it went through a host
// the run keeps: one found decommissioned meanwhile has its connection
// closed under the check, which would fail the pre-flight for nothing.
func TestRegistryReadAheadFromADecommissionedHostIsNotUsed(t *testing.T) {
	f := newFirstReads(context.Background(), config.Environment{}, "prod", "www", false)
	defer f.close()
	if f.registryRead([]inventory.Host{{Name: "host1"}}) != nil {
		t.Fatal("no check started: registryRead returned one")
	}
	f.registry, f.registryVia = &firstRead[struct{}]{done: make(chan struct{})}, "host3"
	if f.registryRead([]inventory.Host{{Name: "host1"}, {Name: "host2"}}) != nil {
		t.Error("the check through host3, decommissioned, was used")
	}
	if f.registryRead([]inventory.Host{{Name: "host1"}, {Name: "host3"}}) != f.registry {
		t.Error("the check through host3, kept, was not used")
	}
}
