package rollout

import (
	"context"
	"time"

	"github.com/gantry-dev/gantry/internal/fakefleet"
	"github.com/gantry-dev/gantry/inventory"
)

const (
	appPort    = fakefleet.DefaultPort
	healthPath = fakefleet.DefaultHealthPath
)

// testFleet is the shared fake fleet with what rollout's tests plan and
// run it with.
type testFleet struct {
	*fakefleet.Fleet
	// held says why a host is to stay out of every load balancer (in
	// maintenance), by host name: snapshot observes it.
	held map[string]string
}

// newFleet returns hosts host1..hostN, each running www on version from
// (none when from is ""), behind load balancers lb1 and lb2.
func newFleet(n int, from string) *testFleet {
	return &testFleet{Fleet: fakefleet.New(fakefleet.Spec{Hosts: n, Image: testImage, From: from})}
}

// snapshot observes the fleet the way fleet.execute does: each host's
// maintenance, the service's container, the leftovers of a cut-off swap,
// and each balancer's entry for the host (none in a worker's fleet).
func (f *testFleet) snapshot() []HostSnapshot {
	var snaps []HostSnapshot
	for _, h := range f.Hosts {
		snap := HostSnapshot{Host: f.InventoryHost(h), Held: f.held[h.Name()]}
		for _, x := range []struct {
			name string
			into **inventory.Container
		}{{"www", &snap.Current}, {"www-gantry-old", &snap.Old}, {"www-gantry-new", &snap.New}} {
			if c, ok, err := h.Inspect(context.Background(), x.name); err != nil {
				panic(err)
			} else if ok {
				*x.into = &c
			}
		}
		for _, b := range f.Balancers {
			if snap.Entries == nil {
				snap.Entries = map[string]Entry{}
			}
			snap.Entries[b.LoadBalancerName()] = Entry{Addr: b.AddrOf("www", h.Name(), h.Address()), Down: b.IsDrained("www", h.Name())}
		}
		snaps = append(snaps, snap)
	}
	return snaps
}

// plan snapshots the fleet and plans a stop-first deploy.
func (f *testFleet) plan(tag string, batch int) Plan {
	return f.planWith(tag, batch, Strategy{})
}

// planWith snapshots the fleet and plans a deploy under strategy s: what
// a cut-off run left is repaired first, and the deploy planned from the
// state the repairs leave.
func (f *testFleet) planWith(tag string, batch int, s Strategy) Plan {
	repairs, healed := PlanRepairs(f.snapshot(), "www", appPort)
	p, err := PlanDeployWith(testTarget(tag), healed, SpreadRules{BatchSize: batch}, s)
	if err != nil {
		panic(err)
	}
	p.Repairs = repairs
	return p
}

// executor returns an executor over the fleet with fast health checks.
func (f *testFleet) executor(deadline time.Duration) *Executor {
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
	for _, h := range f.Hosts {
		e.Hosts[h.Name()] = h
	}
	for _, b := range f.Balancers {
		e.Balancers = append(e.Balancers, b)
	}
	return e
}

// setHealth sets how version tag's app answers on every host.
func (f *testFleet) setHealth(tag string, h fakefleet.Health) {
	f.SetHealth(testImage+":"+tag, h)
}
