package fleet

import (
	"context"
	"testing"

	"github.com/gantry-dev/gantry/inventory"
	"github.com/gantry-dev/gantry/rollout"
)

// TestWorkerHostsNeedNoRepair: a worker's hosts are in no load balancer;
// observing them leaves their entries unobserved (nil), so a running
// worker is not taken for a host "out of some load balancer" and repaired.
func TestWorkerHostsNeedNoRepair(t *testing.T) {
	c := inventory.Container{ID: "c1", Name: "jobs", Image: "r/jobs:v1", Running: true, Labels: map[string]string{inventory.LabelVersion: "v1", inventory.LabelImage: "r/jobs:v1"}}
	snap := []rollout.HostSnapshot{{Host: inventory.Host{Name: "host1", Address: "127.0.2.1"}, Current: &c}}
	if err := observeEntries(context.Background(), nil, "jobs", snap); err != nil {
		t.Fatal(err)
	}
	if snap[0].Entries != nil {
		t.Fatalf("entries %v, want none observed", snap[0].Entries)
	}
	if repairs, _ := rollout.PlanRepairs(snap, "jobs", 0); len(rollout.WithoutBalancers(repairs)) != 0 {
		t.Errorf("a running worker gets repairs: %v", repairs)
	}
}
