package fleet

import (
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/config"
	"github.com/gantry-dev/gantry/inventory"
	"github.com/gantry-dev/gantry/rollout"
)

func TestRotationProblem(t *testing.T) {
	var unset config.Count
	if why := RotationProblem("www", 0, 3, unset); !strings.Contains(why, "0 host(s) in rotation") {
		t.Errorf("no host left in rotation: %q, want a refusal", why)
	}
	if why := RotationProblem("www", 1, 3, unset); why != "" {
		t.Errorf("one host left, min_in_service unset: %q, want none", why)
	}
}

// TestMarkHeld: hosts in maintenance and hosts marked down by hand are
// kept out; only the latter warn, naming maintenance mode. A host down by
// gantry (a cut-off run's drain) is neither: its repair puts it back.
func TestMarkHeld(t *testing.T) {
	snap := []rollout.HostSnapshot{
		{Host: inventory.Host{Name: "host1"}, Entries: map[string]rollout.Entry{"lb1": {Down: true}, "lb2": {Down: true}}},
		{Host: inventory.Host{Name: "host2"}, Entries: map[string]rollout.Entry{"lb1": {Down: true}}},
		{Host: inventory.Host{Name: "host3"}, Entries: map[string]rollout.Entry{"lb1": {Down: true, ByHand: true}, "lb2": {}}},
		{Host: inventory.Host{Name: "host4"}, Entries: map[string]rollout.Entry{"lb1": {}}},
	}
	maint := map[string]inventory.Maintenance{"host1": {Host: "host1", Who: "ops@box", Since: time.Date(2026, 1, 2, 3, 4, 0, 0, time.UTC), Message: "disk"}}
	warnings := markHeld(snap, maint, "prod")
	if snap[0].Held != `in maintenance since 2026-01-02 03:04 UTC by ops@box: "disk"` || snap[1].Held != "" || snap[2].Held != "marked down by hand in lb1" || snap[3].Held != "" {
		t.Errorf("held: %q %q %q %q", snap[0].Held, snap[1].Held, snap[2].Held, snap[3].Held)
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], "host3 is marked down by hand in lb1") || !strings.Contains(warnings[0], "gantry maintenance on host3 --env prod") {
		t.Errorf("warnings = %q", warnings)
	}
}
