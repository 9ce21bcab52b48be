package rollout

import (
	"testing"

	"github.com/gantry-dev/gantry/inventory"
)

const testImage = "127.0.0.1:5000/gantry/www"

func testTarget(tag string) Target {
	return Target{Service: "www", Tag: tag, Image: testImage + ":" + tag}
}

// running is a gantry-made www container on tag.
func running(tag string) *inventory.Container {
	return &inventory.Container{
		ID: "id-" + tag, Name: "www", Image: testImage + ":" + tag, Running: true,
		Labels: map[string]string{
			inventory.LabelManaged: "true",
			inventory.LabelVersion: tag,
			inventory.LabelImage:   testImage + ":" + tag,
		},
	}
}

func stopped(tag string) *inventory.Container {
	c := running(tag)
	c.Running = false
	return c
}

func snap(name, zone string, cur *inventory.Container) HostSnapshot {
	return HostSnapshot{Host: inventory.Host{Name: name, Zone: zone, Address: "10.0.0." + name[len(name)-1:]}, Current: cur}
}

func TestPlanDeploy(t *testing.T) {
	tests := []struct {
		name  string
		hosts []HostSnapshot
		batch int
		want  string
	}{
		{
			name:  "nothing running yet",
			hosts: []HostSnapshot{snap("host2", "", nil), snap("host1", "", nil)},
			batch: 1,
			want: `deploy www@abc1234 (127.0.0.1:5000/gantry/www:abc1234): 2 host(s) in 2 batch(es)
pull first, on every host: host1 host2
batch 1:
  host1: (none) -> abc1234: create, drain, start, health, restore
batch 2:
  host2: (none) -> abc1234: create, drain, start, health, restore
`,
		},
		{
			name: "mixed fleet, batches of 2, unsorted input",
			hosts: []HostSnapshot{
				snap("host4", "b", running("old1")),
				snap("host2", "b", running("abc1234")),
				snap("host1", "a", running("old1")),
				snap("host5", "a", nil),
				snap("host3", "a", stopped("old0")),
			},
			batch: 2,
			want: `deploy www@abc1234 (127.0.0.1:5000/gantry/www:abc1234): 4 host(s) in 2 batch(es)
pull first, on every host: host1 host3 host4 host5
batch 1:
  host1 [a]: old1 -> abc1234: create, drain, stop, start, health, restore, cleanup
  host3 [a]: old0 -> abc1234: create, drain, stop, start, health, restore, cleanup
batch 2:
  host4 [b]: old1 -> abc1234: create, drain, stop, start, health, restore, cleanup
  host5 [a]: (none) -> abc1234: create, drain, start, health, restore
skip host2: already runs abc1234
`,
		},
		{
			name: "batches of 3 over 5 hosts",
			hosts: []HostSnapshot{
				snap("host5", "", running("old1")),
				snap("host4", "", running("old1")),
				snap("host3", "", running("old1")),
				snap("host2", "", running("old1")),
				snap("host1", "", running("old1")),
			},
			batch: 3,
			want: `deploy www@abc1234 (127.0.0.1:5000/gantry/www:abc1234): 5 host(s) in 2 batch(es)
pull first, on every host: host1 host2 host3 host4 host5
batch 1:
  host1: old1 -> abc1234: create, drain, stop, start, health, restore, cleanup
  host2: old1 -> abc1234: create, drain, stop, start, health, restore, cleanup
  host3: old1 -> abc1234: create, drain, stop, start, health, restore, cleanup
batch 2:
  host4: old1 -> abc1234: create, drain, stop, start, health, restore, cleanup
  host5: old1 -> abc1234: create, drain, stop, start, health, restore, cleanup
`,
		},
		{
			name: "batch of 1 over 4 hosts, target stopped on one",
			hosts: []HostSnapshot{
				snap("host1", "", running("old1")),
				// On the target but not running: redeployed, not skipped.
				snap("host2", "", stopped("abc1234")),
				snap("host3", "", running("old1")),
				snap("host4", "", running("old1")),
			},
			batch: 1,
			want: `deploy www@abc1234 (127.0.0.1:5000/gantry/www:abc1234): 4 host(s) in 4 batch(es)
pull first, on every host: host1 host2 host3 host4
batch 1:
  host1: old1 -> abc1234: create, drain, stop, start, health, restore, cleanup
batch 2:
  host2: abc1234 -> abc1234: create, drain, stop, start, health, restore, cleanup
batch 3:
  host3: old1 -> abc1234: create, drain, stop, start, health, restore, cleanup
batch 4:
  host4: old1 -> abc1234: create, drain, stop, start, health, restore, cleanup
`,
		},
		{
			name: "batch size 0 means 1",
			hosts: []HostSnapshot{
				snap("host2", "", running("old1")),
				snap("host1", "", running("old1")),
			},
			batch: 0,
			want: `deploy www@abc1234 (127.0.0.1:5000/gantry/www:abc1234): 2 host(s) in 2 batch(es)
pull first, on every host: host1 host2
batch 1:
  host1: old1 -> abc1234: create, drain, stop, start, health, restore, cleanup
batch 2:
  host2: old1 -> abc1234: create, drain, stop, start, health, restore, cleanup
`,
		},
		{
			name: "batch larger than fleet",
			hosts: []HostSnapshot{
				snap("host2", "", running("old1")),
				snap("host1", "", nil),
			},
			batch: 5,
			want: `deploy www@abc1234 (127.0.0.1:5000/gantry/www:abc1234): 2 host(s) in 1 batch(es)
pull first, on every host: host1 host2
batch 1:
  host1: (none) -> abc1234: create, drain, start, health, restore
  host2: old1 -> abc1234: create, drain, stop, start, health, restore, cleanup
`,
		},
		{
			name:  "natural host order: host2 before host10",
			hosts: []HostSnapshot{snap("host10", "", nil), snap("host2", "", nil), snap("host1", "", nil)},
			batch: 2,
			want: `deploy www@abc1234 (127.0.0.1:5000/gantry/www:abc1234): 3 host(s) in 2 batch(es)
pull first, on every host: host1 host2 host10
batch 1:
  host1: (none) -> abc1234: create, drain, start, health, restore
  host2: (none) -> abc1234: create, drain, start, health, restore
batch 2:
  host10: (none) -> abc1234: create, drain, start, health, restore
`,
		},
		{
			name: "everything already on target",
			hosts: []HostSnapshot{
				snap("host2", "", running("abc1234")),
				snap("host1", "", running("abc1234")),
			},
			batch: 2,
			want: `deploy www@abc1234 (127.0.0.1:5000/gantry/www:abc1234): 0 host(s) in 0 batch(es)
skip host1: already runs abc1234
skip host2: already runs abc1234
`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := append([]HostSnapshot(nil), tc.hosts...)
			got := PlanDeploy(testTarget("abc1234"), tc.hosts, tc.batch).String()
			if got != tc.want {
				t.Errorf("plan:\n%s\nwant:\n%s", got, tc.want)
			}
			for i := range in {
				if in[i].Host.Name != tc.hosts[i].Host.Name {
					t.Fatalf("PlanDeploy reordered its input")
				}
			}
		})
	}
}

func TestPlanDeployStepReasons(t *testing.T) {
	p := PlanDeploy(testTarget("abc1234"), []HostSnapshot{
		snap("host1", "", running("old1")),
		snap("host2", "", stopped("old0")),
	}, 2)
	if len(p.Batches) != 1 || len(p.Batches[0].Hosts) != 2 {
		t.Fatalf("plan:\n%s", p)
	}
	reason := func(hp HostPlan, k StepKind) string {
		for _, s := range hp.Steps {
			if s.Kind == k {
				return s.Reason
			}
		}
		return ""
	}
	h1, h2 := p.Batches[0].Hosts[0], p.Batches[0].Hosts[1]
	if got, want := reason(h1, StepStop), "stop old1 gracefully, keep it until the new one is healthy"; got != want {
		t.Errorf("running host stop reason = %q, want %q", got, want)
	}
	if got, want := reason(h2, StepStop), "old container old0 is not running; keep it for restore"; got != want {
		t.Errorf("stopped host stop reason = %q, want %q", got, want)
	}
	for _, hp := range []HostPlan{h1, h2} {
		for _, s := range hp.Steps {
			if s.Reason == "" {
				t.Errorf("%s: step %s has no reason", hp.Host.Name, s.Kind)
			}
		}
	}
}
