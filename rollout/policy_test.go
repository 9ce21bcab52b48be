package rollout

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/inventory"
)

func zoned(zones ...string) []HostSnapshot {
	var hosts []HostSnapshot
	for i, z := range zones {
		hosts = append(hosts, HostSnapshot{Host: inventory.Host{Name: fmt.Sprintf("h%d", i+1), Zone: z}})
	}
	return hosts
}

func TestCheckSinglePointOfFailure(t *testing.T) {
	for _, tc := range []struct {
		name       string
		hosts      []HostSnapshot
		rules      SinglePointOfFailureRules
		why        string
		wantRefuse bool
	}{
		{"two zones", zoned("a", "b"), SinglePointOfFailureRules{Production: true}, "", false},
		{"one host, staging", zoned("a"), SinglePointOfFailureRules{}, "the service runs on a single host", false},
		{"one host, production", zoned("a"), SinglePointOfFailureRules{Production: true}, "the service runs on a single host", true},
		{"one host, production, allowed", zoned("a"), SinglePointOfFailureRules{Production: true, Allowed: true}, "the service runs on a single host", false},
		{"one zone, production", zoned("a", "a"), SinglePointOfFailureRules{Production: true}, "the service's 2 hosts are all in zone(s) a (min_zones 2)", true},
		{"two zones, min 3", zoned("a", "b", "b"), SinglePointOfFailureRules{MinZones: 3}, "the service's 3 hosts are all in zone(s) a, b (min_zones 3)", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			why, refuse := CheckSinglePointOfFailure(tc.hosts, tc.rules)
			if why != tc.why || refuse != tc.wantRefuse {
				t.Errorf("got (%q, %t), want (%q, %t)", why, refuse, tc.why, tc.wantRefuse)
			}
		})
	}
}

func TestMarkKeptOut(t *testing.T) {
	since := time.Date(2026, 1, 2, 3, 4, 0, 0, time.UTC)
	maint := map[string]inventory.Maintenance{"h1": {Host: "h1", Who: "ann", Since: since}}
	hosts := zoned("a", "a", "b", "b")
	hosts[1].Entries = map[string]Entry{"lb2": {Down: true, ByHand: true}, "lb1": {Down: true, ByHand: true}}
	hosts[2].Entries = map[string]Entry{"lb1": {Down: true}} // down by gantry: not held
	// In maintenance and marked down by hand: maintenance says why.
	hosts[3].Entries = map[string]Entry{"lb1": {Down: true, ByHand: true}}
	maint["h4"] = inventory.Maintenance{Host: "h4", Who: "bob", Since: since, Message: "disk"}

	byHand := MarkKeptOut(hosts, maint)

	var held []string
	for _, h := range hosts {
		held = append(held, h.Host.Name+": "+h.Held)
	}
	want := []string{
		"h1: in maintenance since 2026-01-02 03:04 UTC by ann",
		"h2: marked down by hand in lb1, lb2",
		"h3: ",
		`h4: in maintenance since 2026-01-02 03:04 UTC by bob: "disk"`,
	}
	if !reflect.DeepEqual(held, want) {
		t.Errorf("held:\n%q\nwant:\n%q", held, want)
	}
	if wantHand := []MarkedByHand{{Host: "h2", LBs: []string{"lb1", "lb2"}}}; !reflect.DeepEqual(byHand, wantHand) {
		t.Errorf("marked by hand: %+v, want %+v", byHand, wantHand)
	}
}
