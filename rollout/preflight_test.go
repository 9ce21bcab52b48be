package rollout

import (
	"strings"
	"testing"
)

func TestCheckPreflight(t *testing.T) {
	const gb = 1 << 30
	f := newFleet(4, "old1")
	healthyAll := func() []HostFacts {
		var fs []HostFacts
		for _, h := range f.Hosts {
			fs = append(fs, HostFacts{Host: h.Name(), DataRoot: "/var/lib/docker", FreeDisk: 10 * gb, Running: true, Healthy: true})
		}
		return fs
	}
	tests := []struct {
		name  string
		batch int
		facts func() []HostFacts
		rules PreflightRules
		want  []string // substrings of the error; none means it passes
	}{
		{"all good", 1, healthyAll, PreflightRules{MinFreeDisk: gb, MinInService: 1}, nil},
		{"low disk on one host", 1, func() []HostFacts {
			fs := healthyAll()
			fs[2].FreeDisk = 200 << 20
			return fs
		}, PreflightRules{MinFreeDisk: gb, MinInService: 1}, []string{"host3", "200.0MiB free", "/var/lib/docker", "min_free_disk 1.0GiB"}},
		{"batch would leave too few serving", 2, healthyAll, PreflightRules{MinFreeDisk: gb, MinInService: 3},
			[]string{"batch 1 takes host1, host2 out of service: 2 of 4 healthy hosts would serve, below min_in_service 3"}},
		{"unhealthy hosts count against the minimum", 1, func() []HostFacts {
			fs := healthyAll()
			fs[1].Healthy, fs[2].Healthy = false, false
			return fs
		}, PreflightRules{MinFreeDisk: gb, MinInService: 2}, []string{"batch 1 takes host1", "1 of 2 healthy hosts", "not healthy now: host2, host3"}},
		{"first deploy: nothing serves, nothing to protect", 4, func() []HostFacts {
			fs := healthyAll()
			for i := range fs {
				fs[i].Running, fs[i].Healthy = false, false
			}
			return fs
		}, PreflightRules{MinFreeDisk: gb, MinInService: 1}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckPreflight(f.plan("new2", tc.batch), tc.facts(), tc.rules)
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("unexpected refusal: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("passed, want a refusal mentioning %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("refusal does not mention %q:\n%v", w, err)
				}
			}
		})
	}
}
