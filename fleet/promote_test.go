package fleet

import (
	"strings"
	"testing"

	"github.com/gantry-dev/gantry/inventory"
	"github.com/gantry-dev/gantry/rollout"
)

func TestPromotedVersion(t *testing.T) {
	running := func(host, version string) rollout.HostSnapshot {
		return rollout.HostSnapshot{Host: inventory.Host{Name: host}, Current: &inventory.Container{
			Name: "www", Image: "reg/www:" + version, Running: true, State: "running",
			Labels: map[string]string{inventory.LabelVersion: version},
		}}
	}
	stopped := func(host, version string) rollout.HostSnapshot {
		s := running(host, version)
		s.Current.Running, s.Current.State = false, "exited"
		return s
	}
	unmanaged := running("web2", "")
	unmanaged.Current.Labels = nil
	allHealthy := map[string]bool{"web1": true, "web2": true, "web3": true}
	for _, tc := range []struct {
		name    string
		snap    []rollout.HostSnapshot
		healthy map[string]bool
		want    string
		errs    []string // every one must be in the error
	}{
		{"one version everywhere", []rollout.HostSnapshot{running("web1", "abc1234"), running("web2", "abc1234")}, allHealthy, "abc1234", nil},
		{"mixed versions", []rollout.HostSnapshot{running("web1", "abc1234"), running("web2", "def5678"), running("web3", "abc1234")}, allHealthy, "",
			[]string{"different versions", "abc1234 on web1, web3", "def5678 on web2"}},
		{"one container stopped", []rollout.HostSnapshot{running("web1", "abc1234"), stopped("web2", "abc1234")}, allHealthy, "",
			[]string{"web2: container www (version abc1234) is exited, not running"}},
		{"one unhealthy", []rollout.HostSnapshot{running("web1", "abc1234"), running("web2", "abc1234")}, map[string]bool{"web1": true}, "",
			[]string{"web2", "not healthy"}},
		{"one host without the service", []rollout.HostSnapshot{running("web1", "abc1234"), {Host: inventory.Host{Name: "web2"}}}, allHealthy, "",
			[]string{"web2: no container"}},
		{"no host runs it", []rollout.HostSnapshot{{Host: inventory.Host{Name: "web1"}}, {Host: inventory.Host{Name: "web2"}}}, allHealthy, "",
			[]string{"web1: no container", "web2: no container", "no host runs the service"}},
		{"no hosts", nil, allHealthy, "", []string{"no host runs the service"}},
		{"container not made by gantry", []rollout.HostSnapshot{running("web1", "abc1234"), unmanaged}, allHealthy, "",
			[]string{"web2", "not deployed by gantry"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := PromotedVersion(tc.snap, tc.healthy)
			if len(tc.errs) == 0 {
				if err != nil || got != tc.want {
					t.Fatalf("got %q, %v; want %q", got, err, tc.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("got %q, want an error", got)
			}
			for _, w := range tc.errs {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not say %q:\n%v", w, err)
				}
			}
		})
	}
}
