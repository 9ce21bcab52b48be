package rollout

import (
	"errors"
	"fmt"
	"math/rand"
	"testing"

	"github.com/gantry-dev/gantry/inventory"
)

// TestSpreadBatchesProperties checks the spread rules over many fleet
// shapes: 1 to 1,000 hosts, 1 to 4 zones (even and uneven), batch sizes
// and count or percent minimums. In every batch: at most BatchSize hosts,
// at least MinInService hosts still serving, and while the fleet spans
// several zones no batch takes every host of a zone still to do; every
// host appears exactly once.
func TestSpreadBatchesProperties(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	sizes := []int{1, 2, 3, 4, 5, 7, 10, 16, 50, 100, 333, 1000}
	cases := 0
	for _, n := range sizes {
		for zones := 1; zones <= 4; zones++ {
			for _, uneven := range []bool{false, true} {
				for _, batch := range []int{1, 2, 3, 5, n/2 + 1, n} {
					for _, minSpec := range []string{"0", "1", "2", "50%", "90%"} {
						cases++
						hosts := make([]HostPlan, n)
						for i := range hosts {
							z := i % zones
							if uneven && rng.Intn(3) == 0 {
								z = 0 // zone a gets more than its share
							}
							hosts[i] = HostPlan{Host: inventory.Host{Name: fmt.Sprintf("h%04d", i), Zone: string(rune('a' + z))}}
						}
						min := 0
						if len(minSpec) > 1 && minSpec[len(minSpec)-1] == '%' {
							var pct int
							fmt.Sscan(minSpec[:len(minSpec)-1], &pct)
							min = (pct*n + 99) / 100
						} else {
							fmt.Sscan(minSpec, &min)
						}
						rules := SpreadRules{BatchSize: batch, MinInService: min, Serving: n}
						batches, err := SpreadBatches(hosts, rules)
						name := fmt.Sprintf("n=%d zones=%d uneven=%v batch=%d min=%s", n, zones, uneven, batch, minSpec)
						if n-min < 1 {
							if !errors.Is(err, ErrSpread) {
								t.Errorf("%s: want ErrSpread (no host free to update), got %v", name, err)
							}
							continue
						}
						if err != nil {
							t.Errorf("%s: %v", name, err)
							continue
						}
						checkSpread(t, name, hosts, batches, rules)
					}
				}
			}
		}
	}
	t.Logf("%d fleet shapes checked", cases)
}

func checkSpread(t *testing.T, name string, hosts []HostPlan, batches []Batch, r SpreadRules) {
	t.Helper()
	left := map[string]int{}
	for _, h := range hosts {
		left[h.Host.Zone]++
	}
	multiZone := len(left) > 1
	seen := map[string]int{}
	for bi, b := range batches {
		if len(b.Hosts) == 0 || len(b.Hosts) > r.BatchSize {
			t.Fatalf("%s: batch %d has %d hosts (batch size %d)", name, bi+1, len(b.Hosts), r.BatchSize)
		}
		if r.Serving-len(b.Hosts) < r.MinInService {
			t.Fatalf("%s: batch %d leaves %d serving, below %d", name, bi+1, r.Serving-len(b.Hosts), r.MinInService)
		}
		in := map[string]int{}
		for _, h := range b.Hosts {
			in[h.Host.Zone]++
			seen[h.Host.Name]++
		}
		for z, k := range in {
			if multiZone && left[z] > 1 && k == left[z] {
				t.Fatalf("%s: batch %d takes all %d remaining hosts of zone %s", name, bi+1, k, z)
			}
		}
		for z, k := range in {
			left[z] -= k
		}
	}
	for _, h := range hosts {
		if seen[h.Host.Name] != 1 {
			t.Fatalf("%s: %s appears %d times", name, h.Host.Name, seen[h.Host.Name])
		}
	}
}
