package rollout

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// TestHealthKinds: every kind of health check lets a healthy version
// through and reverts an unhealthy one, saying why.
func TestHealthKinds(t *testing.T) {
	tests := []struct {
		kind    HealthKind
		set     func(*HealthCheck)
		health  health
		ok      bool
		errText string
	}{
		{kind: HealthHTTP, health: healthy, ok: true},
		{kind: HealthHTTP, health: neverHealthy, errText: "status 503, want 200"},
		{kind: HealthTCP, health: healthy, ok: true},
		{kind: HealthTCP, health: exits, errText: "container exited"},
		{kind: HealthCommand, set: func(h *HealthCheck) { h.Command = []string{"/app", "check"} }, health: healthy, ok: true},
		{kind: HealthCommand, set: func(h *HealthCheck) { h.Command = []string{"/app", "check"} }, health: neverHealthy, errText: "exit code 1: not ready: database unreachable"},
		{kind: HealthDocker, health: healthy, ok: true},
		{kind: HealthDocker, health: neverHealthy, errText: "Docker reports it unhealthy"},
		// No HEALTHCHECK in the image: fails at once, not at the deadline.
		{kind: HealthDocker, health: noHealthcheck, errText: "the image has no HEALTHCHECK"},
		{kind: HealthRunning, set: func(h *HealthCheck) { h.MinRunning = 30 * time.Millisecond }, health: healthy, ok: true},
		{kind: HealthRunning, set: func(h *HealthCheck) { h.MinRunning = 30 * time.Millisecond }, health: exits, errText: "container exited"},
	}
	for _, tc := range tests {
		t.Run(string(tc.kind)+"/"+map[bool]string{true: "passes", false: "fails"}[tc.ok], func(t *testing.T) {
			f := newFleet(2, "old1")
			f.setHealth("new1", tc.health)
			if tc.kind == HealthRunning && tc.health == exits {
				// A worker that crashes soon after it starts.
				for _, h := range f.hosts {
					h.hook = func(op, image string) {
						if op == "inspect" {
							h.mu.Lock()
							for _, c := range h.containers {
								if c.Running && strings.HasSuffix(c.Image, ":new1") {
									c.Running, c.ExitCode = false, 3
								}
							}
							h.mu.Unlock()
						}
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
				if tc.health == noHealthcheck && time.Since(start) > 200*time.Millisecond {
					t.Errorf("a missing HEALTHCHECK took %s to fail: it should fail at once", time.Since(start))
				}
			} else if err != nil {
				t.Fatalf("Run: %v", err)
			}
			for _, h := range f.hosts {
				if c, ok := h.container("www"); !ok || !c.Running || c.Labels["dev.gantry.version"] != want {
					t.Errorf("%s: www runs %s (running %v), want %s", h.name, c.Labels["dev.gantry.version"], c.Running, want)
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
	f.setHealth("old1", noHealthcheck)
	f.setHealth("new1", neverHealthy)
	e := f.executor(300 * time.Millisecond)
	e.Service.Health.Kind = HealthDocker
	rep := e.Run(context.Background(), f.plan("new1", 1))
	if !errors.Is(rep.Err, ErrHealthCheck) || rep.RevertFailed() {
		t.Fatalf("want a failed health check and a clean revert, got %v (revert failed: %v)", rep.Err, rep.RevertFailed())
	}
	checkText(t, "fleet", f.state(), `host1: www=old1(running)
host2: www=old1(running)
lb1 drained: []
lb2 drained: []
`)
}
