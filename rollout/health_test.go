package rollout

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/internal/fakefleet"
)

// TestHealthKinds: every kind of health check lets a healthy version
// through and reverts an unhealthy one, saying why.
func TestHealthKinds(t *testing.T) {
	tests := []struct {
		kind    HealthKind
		set     func(*HealthCheck)
		health  fakefleet.Health
		ok      bool
		errText string
	}{
		{kind: HealthHTTP, health: fakefleet.Healthy, ok: true},
		{kind: HealthHTTP, health: fakefleet.NeverHealthy, errText: "status 503, want 200"},
		{kind: HealthTCP, health: fakefleet.Healthy, ok: true},
		{kind: HealthTCP, health: fakefleet.Exits, errText: "container exited"},
		{kind: HealthCommand, set: func(h *HealthCheck) { h.Command = []string{"/app", "check"} }, health: fakefleet.Healthy, ok: true},
		{kind: HealthCommand, set: func(h *HealthCheck) { h.Command = []string{"/app", "check"} }, health: fakefleet.NeverHealthy, errText: "exit code 1: not ready: database unreachable"},
		{kind: HealthDocker, health: fakefleet.Healthy, ok: true},
		{kind: HealthDocker, health: fakefleet.NeverHealthy, errText: "Docker reports it unhealthy"},
		// No HEALTHCHECK in the image: fails at once, not at the deadline.
		{kind: HealthDocker, health: fakefleet.NoHealthcheck, errText: "the image has no HEALTHCHECK"},
		{kind: HealthRunning, set: func(h *HealthCheck) { h.MinRunning = 30 * time.Millisecond }, health: fakefleet.Healthy, ok: true},
		{kind: HealthRunning, set: func(h *HealthCheck) { h.MinRunning = 30 * time.Millisecond }, health: fakefleet.Exits, errText: "container exited"},
	}
	for _, tc := range tests {
		t.Run(string(tc.kind)+"/"+map[bool]string{true: "passes", false: "fails"}[tc.ok], func(t *testing.T) {
			f := newFleet(2, "old1")
			f.setHealth("new1", tc.health)
			if tc.kind == HealthRunning && tc.health == fakefleet.Exits {
				// A worker that crashes soon after it starts.
				for _, h := range f.Hosts {
					h.Before = func(_ context.Context, op, _ string) error {
						if op == fakefleet.OpInspect {
							h.Crash(testImage+":new1", 3)
						}
						return nil
					}
				}
			}
			e := f.executor(300 * time.Millisecond)
			e.Service.Health.Kind = tc.kind
			if tc.set != nil {
				tc.set(&e.Service.Health)
			}
			start := time.Now()
			rep := e.Run(context.Background(), f.plan("new1", 1))
			err := rep.Err
			want := "new1"
			if !tc.ok {
				want = "old1"
				if !errors.Is(err, ErrHealthCheck) || !strings.Contains(err.Error(), tc.errText) {
					t.Fatalf("Run error = %v, want a health check failure with %q", err, tc.errText)
				}
				if tc.health == fakefleet.NoHealthcheck && time.Since(start) > 200*time.Millisecond {
					t.Errorf("a missing HEALTHCHECK took %s to fail: it should fail at once", time.Since(start))
				}
			} else if err != nil {
				t.Fatalf("Run: %v", err)
			}
			for _, h := range f.Hosts {
				if c, ok := h.Container("www"); !ok || !c.Running || c.Labels["dev.gantry.version"] != want {
					t.Errorf("%s: www runs %s (running %v), want %s", h.Name(), c.Labels["dev.gantry.version"], c.Running, want)
				}
			}
			checkNoViolations(t, f)
		})
	}
}

// TestDockerHealthRevertsToAnImageWithoutOne: with kind docker, the
// version put back by a revert may predate the HEALTHCHECK; it is put back
// (by running), not left out of service.
func TestDockerHealthRevertsToAnImageWithoutOne(t *testing.T) {
	f := newFleet(2, "old1")
	f.setHealth("old1", fakefleet.NoHealthcheck)
	f.setHealth("new1", fakefleet.NeverHealthy)
	e := f.executor(300 * time.Millisecond)
	e.Service.Health.Kind = HealthDocker
	rep := e.Run(context.Background(), f.plan("new1", 1))
	if !errors.Is(rep.Err, ErrHealthCheck) || rep.RevertFailed() {
		t.Fatalf("want a failed health check and a clean revert, got %v (revert failed: %v)", rep.Err, rep.RevertFailed())
	}
	checkText(t, "fleet", f.State(), `host1: www=old1(running)
host2: www=old1(running)
lb1 drained: []
lb2 drained: []
`)
}
