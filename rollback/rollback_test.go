package rollback

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/gantry-dev/gantry/inventory"
	"github.com/gantry-dev/gantry/rollout"
)

const repo = "127.0.0.1:5000/gantry/www"

func snap(name, zone, cur, prev string) rollout.HostSnapshot {
	s := rollout.HostSnapshot{Host: inventory.Host{Name: name, Zone: zone}}
	if cur != "" {
		labels := map[string]string{inventory.LabelVersion: cur, inventory.LabelImage: repo + ":" + cur}
		if prev != "" {
			labels[inventory.LabelPreviousImage] = repo + ":" + prev
		}
		s.Current = &inventory.Container{Name: "www", Image: repo + ":" + cur, Running: true, Labels: labels}
	}
	return s
}

func TestPlanGoesBackToEachHostsPrevious(t *testing.T) {
	hosts := []rollout.HostSnapshot{
		snap("host2", "b", "bbb2222", "aaa1111"),
		snap("host1", "a", "bbb2222", "aaa1111"),
		// A host deployed from an older version goes back to its own previous.
		snap("host3", "a", "bbb2222", "0001111"),
	}
	p, err := Plan(hosts, Options{Service: "www", BatchSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	want := `rollback www: 3 host(s) in 2 batch(es)
batch 1:
  host1 [a]: bbb2222 -> aaa1111: create, drain, stop, start, health, restore, cleanup
  host2 [b]: bbb2222 -> aaa1111: create, drain, stop, start, health, restore, cleanup
batch 2:
  host3 [a]: bbb2222 -> 0001111: create, drain, stop, start, health, restore, cleanup
`
	if got := p.String(); got != want {
		t.Errorf("plan:\n%s\nwant:\n%s", got, want)
	}
	if len(p.Pull) != 0 {
		t.Errorf("a rollback pulls nothing (cached images only); Pull = %v", p.Pull)
	}
}

func TestPlanRefusesHostsWithNothingToGoBackTo(t *testing.T) {
	hosts := []rollout.HostSnapshot{
		snap("host1", "a", "bbb2222", "aaa1111"),
		snap("host2", "b", "bbb2222", ""),
		snap("host3", "a", "", ""),
	}
	_, err := Plan(hosts, Options{Service: "www", BatchSize: 1})
	if !errors.Is(err, ErrNoPrevious) {
		t.Fatalf("err = %v, want ErrNoPrevious", err)
	}
	for _, w := range []string{"host2", "--to", "host3", "does not run there"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error does not mention %q: %v", w, err)
		}
	}
	if strings.Contains(err.Error(), "host1") {
		t.Errorf("host1 can be rolled back but is named: %v", err)
	}
}

func TestPlanToNamedVersionSkipsHostsAlreadyThere(t *testing.T) {
	to := rollout.Target{Service: "www", Tag: "aaa1111", Image: repo + ":aaa1111"}
	p, err := Plan([]rollout.HostSnapshot{snap("host1", "a", "aaa1111", ""), snap("host2", "b", "bbb2222", "aaa1111")}, Options{Service: "www", To: to, BatchSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Batches) != 1 || p.Batches[0].Hosts[0].Host.Name != "host2" || len(p.Skipped) != 1 {
		t.Errorf("plan:\n%s", p)
	}
}

// TestEmergencyBatches: half the hosts at a time, and while the service
// spans several zones no batch holds every host of a zone.
func TestEmergencyBatches(t *testing.T) {
	shapes := []struct {
		zones   []string // zone of each host
		batches int
	}{
		{[]string{"a", "b", "a", "b"}, 2},
		{[]string{"a", "a", "b", "b"}, 2},
		{[]string{"a", "a", "a", "b"}, 2},
		{[]string{"a", "b"}, 2},
		{[]string{"a", "a"}, 2},
		{[]string{"a"}, 1},
		{[]string{"a", "b", "c", "a", "b", "c", "a", "b", "c"}, 2},
		{[]string{"a", "a", "a", "a", "a", "a", "b"}, 2},
	}
	for _, sh := range shapes {
		t.Run(strings.Join(sh.zones, ""), func(t *testing.T) {
			var hps []rollout.HostPlan
			zoneSize := map[string]int{}
			for i, z := range sh.zones {
				hps = append(hps, rollout.HostPlan{Host: inventory.Host{Name: fmt.Sprintf("host%d", i+1), Zone: z}})
				zoneSize[z]++
			}
			batches := EmergencyBatches(hps)
			seen := 0
			for bi, b := range batches {
				if len(b.Hosts) > (len(hps)+1)/2 {
					t.Errorf("batch %d has %d hosts, more than half of %d", bi+1, len(b.Hosts), len(hps))
				}
				in := map[string]int{}
				for _, h := range b.Hosts {
					in[h.Host.Zone]++
					seen++
				}
				for z, n := range in {
					if len(zoneSize) > 1 && zoneSize[z] > 1 && n == zoneSize[z] {
						t.Errorf("batch %d takes every host of zone %s", bi+1, z)
					}
				}
			}
			if seen != len(hps) {
				t.Errorf("batches hold %d hosts, want %d", seen, len(hps))
			}
			if len(batches) > sh.batches+1 {
				t.Errorf("%d batches, want about %d", len(batches), sh.batches)
			}
		})
	}
}

func TestPlanResumesARollbackCutOffMidway(t *testing.T) {
	// host1 was already moved back to aaa1111 (its previous is now
	// bbb2222); host2 was not reached. Both go to the recorded aaa1111.
	hosts := []rollout.HostSnapshot{
		snap("host1", "a", "aaa1111", "bbb2222"),
		snap("host2", "b", "bbb2222", "aaa1111"),
	}
	resume := map[string]string{"host1": repo + ":aaa1111", "host2": repo + ":aaa1111"}
	p, err := Plan(hosts, Options{Service: "www", BatchSize: 1, Resume: resume})
	if err != nil {
		t.Fatal(err)
	}
	want := `rollback www: 1 host(s) in 1 batch(es)
batch 1:
  host2 [b]: bbb2222 -> aaa1111: create, drain, stop, start, health, restore, cleanup
skip host1: already runs aaa1111
`
	if got := p.String(); got != want {
		t.Errorf("plan:\n%s\nwant:\n%s", got, want)
	}
}
