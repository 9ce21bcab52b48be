package rollout

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/internal/fakefleet"
	"github.com/gantry-dev/gantry/inventory"
)

// outcomes renders each host's outcome and what the report says it runs.
func outcomes(r *Report) string {
	var b strings.Builder
	for _, h := range r.Hosts {
		ended := h.Ended
		if ended == "" {
			ended = "-"
		}
		fmt.Fprintf(&b, "%s %s %s in-service=%v\n", h.Host, h.Outcome, ended, h.InService)
	}
	return b.String()
}

func checkText(t *testing.T, what, got, want string) {
	t.Helper()
	if got != want {
		t.Errorf("%s:\n%s\nwant:\n%s", what, got, want)
	}
}

// checkKnownBug compares like checkText while bug is empty. While bug names
// a known, reported bug, a mismatch skips the rest of the test instead of
// failing it; finishKnownBug then fails a marked test that fully passes, so
// the marker goes once the bug is fixed.
func checkKnownBug(t *testing.T, bug, what, got, want string) {
	t.Helper()
	if bug == "" {
		checkText(t, what, got, want)
		return
	}
	if got != want {
		t.Skipf("known bug: %s\n%s:\n%s\nwant:\n%s", bug, what, got, want)
	}
}

func finishKnownBug(t *testing.T, bug string) {
	t.Helper()
	if bug != "" {
		t.Errorf("marked as known bug %q but every check passes: remove the marker", bug)
	}
}

func checkNoViolations(t *testing.T, f *testFleet) {
	t.Helper()
	for _, v := range f.Violations() {
		t.Errorf("violation: %s", v)
	}
}

func TestRunHappyPath(t *testing.T) {
	for _, batch := range []int{1, 2, 3} {
		t.Run(fmt.Sprintf("batch %d", batch), func(t *testing.T) {
			f := newFleet(4, "old1")
			// host4 had nothing yet.
			f.Host("host4").Delete("www")
			plan := f.plan("new2", batch)
			var events []Event
			e := f.executor(time.Second)
			e.Observe = func(ev Event) { events = append(events, ev) }

			rep := e.Run(context.Background(), plan)

			if !rep.OK() || rep.Err != nil {
				t.Fatalf("report not OK: %v\n%s", rep.Err, rep)
			}
			checkText(t, "fleet", f.State(), `host1: www=new2(running)
host2: www=new2(running)
host3: www=new2(running)
host4: www=new2(running)
lb1 drained: []
lb2 drained: []
`)
			checkText(t, "outcomes", outcomes(rep), `host1 deployed new2 in-service=true
host2 deployed new2 in-service=true
host3 deployed new2 in-service=true
host4 deployed new2 in-service=true
`)
			for _, h := range f.Hosts {
				c, _ := h.Container("www")
				want := map[string]string{
					inventory.LabelManaged:       "true",
					inventory.LabelService:       "www",
					inventory.LabelVersion:       "new2",
					inventory.LabelImage:         testImage + ":new2",
					inventory.LabelPreviousImage: testImage + ":old1",
				}
				if h.Name() == "host4" {
					want[inventory.LabelPreviousImage] = ""
				}
				for k, v := range want {
					if c.Labels[k] != v {
						t.Errorf("%s: label %s = %q, want %q", h.Name(), k, c.Labels[k], v)
					}
				}
				if _, err := time.Parse(time.RFC3339, c.Labels[inventory.LabelDeployedAt]); err != nil {
					t.Errorf("%s: label %s = %q: %v", h.Name(), inventory.LabelDeployedAt, c.Labels[inventory.LabelDeployedAt], err)
				}
				if got, want := strings.Join(c.Env, " "), "HOST_NAME="+h.Name(); got != want {
					t.Errorf("%s: env = %q, want %q", h.Name(), got, want)
				}
				if !h.HasImage(testImage+":old1") && h.Name() != "host4" {
					t.Errorf("%s: old image dropped from the cache; rollback needs it", h.Name())
				}
				if len(h.Pulls()) != 1 {
					t.Errorf("%s: pulled %v, want one pull of the target", h.Name(), h.Pulls())
				}
			}
			checkNoViolations(t, f)
			// Every host was pulled before the first drain.
			firstDrain, lastPull := -1, -1
			for i, ev := range events {
				if ev.Step == "drain" && firstDrain < 0 {
					firstDrain = i
				}
				if ev.Step == "pull" {
					lastPull = i
				}
			}
			if firstDrain < lastPull {
				t.Errorf("a host was drained before every host had pulled the image")
			}
		})
	}
}

func TestRunSkipsHostsAlreadyOnTarget(t *testing.T) {
	f := newFleet(3, "old1")
	f.Host("host2").Edit("www", func(c *fakefleet.Container) {
		c.Labels[inventory.LabelVersion] = "new2"
		c.Labels[inventory.LabelImage] = testImage + ":new2"
	})
	before, _ := f.Host("host2").Container("www")

	rep := f.executor(time.Second).Run(context.Background(), f.plan("new2", 1))

	if !rep.OK() {
		t.Fatalf("report not OK: %v", rep.Err)
	}
	checkText(t, "outcomes", outcomes(rep), `host1 deployed new2 in-service=true
host2 unchanged new2 in-service=true
host3 deployed new2 in-service=true
`)
	if after, _ := f.Host("host2").Container("www"); after.ID != before.ID || !after.Running {
		t.Errorf("skipped host2's container changed: %+v -> %+v", before, after)
	}
	if len(f.Host("host2").Pulls()) != 0 {
		t.Errorf("skipped host2 pulled %v", f.Host("host2").Pulls())
	}
	checkNoViolations(t, f)
}

func TestRunPullFailsNothingChanges(t *testing.T) {
	f := newFleet(3, "old1")
	f.Host("host2").FailPulls(errors.New("manifest unknown"))
	before := f.State()
	ids := map[string]string{}
	for _, h := range f.Hosts {
		c, _ := h.Container("www")
		ids[h.Name()] = c.ID
	}

	rep := f.executor(time.Second).Run(context.Background(), f.plan("new2", 1))

	if rep.OK() || rep.Err == nil {
		t.Fatalf("report OK after a failed pull")
	}
	for _, w := range []string{"nothing was changed", "host2", "manifest unknown"} {
		if !strings.Contains(rep.Err.Error(), w) {
			t.Errorf("report error %q does not mention %q", rep.Err, w)
		}
	}
	if strings.Contains(rep.Err.Error(), "host1") || strings.Contains(rep.Err.Error(), "host3") {
		t.Errorf("report error blames hosts whose pull worked: %v", rep.Err)
	}
	checkText(t, "fleet", f.State(), before)
	for _, h := range f.Hosts {
		if c, _ := h.Container("www"); c.ID != ids[h.Name()] {
			t.Errorf("%s: container replaced after a failed pull", h.Name())
		}
	}
	checkText(t, "outcomes", outcomes(rep), `host1 not-started old1 in-service=true
host2 not-started old1 in-service=true
host3 not-started old1 in-service=true
`)
	checkNoViolations(t, f)
}

func TestRunUnhealthyVersionIsReverted(t *testing.T) {
	tests := []struct {
		name     string
		health   fakefleet.Health
		batch    int
		deadline time.Duration
		maxTime  time.Duration // the whole run must end within this
		fleet    string
		outcomes string
		errText  string
	}{
		{
			name: "never healthy, first batch of 1", health: fakefleet.NeverHealthy, batch: 1,
			deadline: 100 * time.Millisecond, maxTime: 3 * time.Second,
			fleet: `host1: www=old1(running)
host2: www=old1(running)
host3: www=old1(running)
lb1 drained: []
lb2 drained: []
`,
			outcomes: `host1 failed-reverted old1 in-service=true
host2 not-started old1 in-service=true
host3 not-started old1 in-service=true
`,
			// The last real answer is kept, not the deadline's cut-off.
			errText: "(last: status 503, want 200)",
		},
		{
			name: "never healthy, first batch of 2", health: fakefleet.NeverHealthy, batch: 2,
			deadline: 100 * time.Millisecond, maxTime: 3 * time.Second,
			fleet: `host1: www=old1(running)
host2: www=old1(running)
host3: www=old1(running)
lb1 drained: []
lb2 drained: []
`,
			outcomes: `host1 failed-reverted old1 in-service=true
host2 failed-reverted old1 in-service=true
host3 not-started old1 in-service=true
`,
			errText: "not healthy within 100ms",
		},
		{
			// The deadline is long: exiting must fail at once, not at the deadline.
			name: "container exits during the health check", health: fakefleet.Exits, batch: 1,
			deadline: 10 * time.Second, maxTime: time.Second,
			fleet: `host1: www=old1(running)
host2: www=old1(running)
host3: www=old1(running)
lb1 drained: []
lb2 drained: []
`,
			outcomes: `host1 failed-reverted old1 in-service=true
host2 not-started old1 in-service=true
host3 not-started old1 in-service=true
`,
			errText: "container exited (code 3)",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFleet(3, "old1")
			f.setHealth("new2", tc.health)
			old1, _ := f.Host("host1").Container("www")

			start := time.Now()
			rep := f.executor(tc.deadline).Run(context.Background(), f.plan("new2", tc.batch))
			took := time.Since(start)

			if rep.OK() {
				t.Fatalf("report OK for an unhealthy version")
			}
			if !errors.Is(rep.Err, ErrHealthCheck) {
				t.Errorf("errors.Is(report.Err, ErrHealthCheck) = false: %v", rep.Err)
			}
			for _, w := range []string{"host1", tc.errText, "deploy halted after batch 1"} {
				if !strings.Contains(rep.Err.Error(), w) {
					t.Errorf("report error does not mention %q:\n%v", w, rep.Err)
				}
			}
			if took > tc.maxTime {
				t.Errorf("run took %s, want under %s (health deadline %s)", took, tc.maxTime, tc.deadline)
			}
			checkText(t, "fleet", f.State(), tc.fleet)
			checkText(t, "outcomes", outcomes(rep), tc.outcomes)
			// The old container itself came back, not a copy.
			if c, _ := f.Host("host1").Container("www"); c.ID != old1.ID {
				t.Errorf("host1 runs container %s, want the original %s back", c.ID, old1.ID)
			}
			checkNoViolations(t, f)
		})
	}
}

func TestRunDrainFailsHostUntouched(t *testing.T) {
	f := newFleet(3, "old1")
	f.Balancer("lb2").FailDrain("host1", true)
	old1, _ := f.Host("host1").Container("www")

	rep := f.executor(time.Second).Run(context.Background(), f.plan("new2", 1))

	if rep.OK() {
		t.Fatal("report OK after a failed drain")
	}
	for _, w := range []string{"host1", "drain", "lb2"} {
		if !strings.Contains(rep.Err.Error(), w) {
			t.Errorf("report error does not mention %q: %v", w, rep.Err)
		}
	}
	checkText(t, "fleet", f.State(), `host1: www=old1(running)
host2: www=old1(running)
host3: www=old1(running)
lb1 drained: []
lb2 drained: []
`)
	checkText(t, "outcomes", outcomes(rep), `host1 failed old1 in-service=true
host2 not-started old1 in-service=true
host3 not-started old1 in-service=true
`)
	if c, _ := f.Host("host1").Container("www"); c.ID != old1.ID {
		t.Errorf("host1's container was replaced although its drain failed")
	}
	checkNoViolations(t, f)
}

func TestRunInterrupted(t *testing.T) {
	tests := []struct {
		name string
		// at is the operation on host1 during which the deploy is interrupted.
		at       string
		outcomes string
		// saysInterrupted: the report error wraps context.Canceled or says
		// "interrupted".
		saysInterrupted bool
		bug             string
	}{
		{
			name:            "while the new container starts",
			at:              "start",
			saysInterrupted: true,
			outcomes: `host1 failed-reverted old1 in-service=true
host2 not-started old1 in-service=true
host3 not-started old1 in-service=true
`,
		},
		{
			name:            "while the new container is health checked",
			at:              "probe",
			saysInterrupted: true,
			outcomes: `host1 failed-reverted old1 in-service=true
host2 not-started old1 in-service=true
host3 not-started old1 in-service=true
`,
		},
		{
			name:            "while the host is drained",
			at:              "drain",
			saysInterrupted: true,
			// Interrupted before the old container was touched.
			outcomes: `host1 failed old1 in-service=true
host2 not-started old1 in-service=true
host3 not-started old1 in-service=true
`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFleet(3, "old1")
			plan := f.plan("new2", 1)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			h1 := f.Host("host1")
			if tc.at == "drain" {
				f.Balancer("lb1").Before = func(_ context.Context, op, _, host string) error {
					if op == fakefleet.OpDrain && host == "host1" {
						cancel()
					}
					return nil
				}
			} else {
				h1.Before = func(_ context.Context, op, image string) error {
					if op == tc.at && image == testImage+":new2" {
						cancel()
					}
					return nil
				}
			}

			rep := f.executor(time.Second).Run(ctx, plan)

			if rep.OK() {
				t.Fatal("report OK after an interrupt")
			}
			said := errors.Is(rep.Err, context.Canceled) || strings.Contains(rep.Err.Error(), "interrupted")
			if tc.saysInterrupted && !said {
				t.Errorf("report error does not say the deploy was interrupted: %v", rep.Err)
			}
			checkText(t, "fleet", f.State(), `host1: www=old1(running)
host2: www=old1(running)
host3: www=old1(running)
lb1 drained: []
lb2 drained: []
`)
			if st, ok, _ := h1.Inspect(context.Background(), "www"); !ok || !st.Running {
				t.Errorf("host1 ends not serving")
			}
			checkNoViolations(t, f)
			checkKnownBug(t, tc.bug, "outcomes", outcomes(rep), tc.outcomes)
			finishKnownBug(t, tc.bug)
		})
	}
}

func TestRunFinishesASwapCutOffEarlier(t *testing.T) {
	// An earlier run was killed after renaming www away: only the kept old
	// container is left, stopped.
	f := newFleet(2, "old1")
	h1 := f.Host("host1")
	h1.Edit("www", func(c *fakefleet.Container) { c.Name, c.Running = "www-gantry-old", false })

	rep := f.executor(time.Second).Run(context.Background(), f.plan("new2", 1))

	if !rep.OK() {
		t.Fatalf("report not OK: %v\n%s", rep.Err, rep)
	}
	checkText(t, "fleet", f.State(), `host1: www=new2(running)
host2: www=new2(running)
lb1 drained: []
lb2 drained: []
`)
	c, _ := h1.Container("www")
	if got := c.Labels[inventory.LabelPreviousImage]; got != testImage+":old1" {
		t.Errorf("host1 previous-image label = %q, want the kept old image", got)
	}
	checkNoViolations(t, f)
}

func TestRunEmptyPlan(t *testing.T) {
	f := newFleet(2, "new2")
	rep := f.executor(time.Second).Run(context.Background(), f.plan("new2", 1))
	if !rep.OK() {
		t.Fatalf("report not OK: %v", rep.Err)
	}
	checkText(t, "outcomes", outcomes(rep), `host1 unchanged new2 in-service=true
host2 unchanged new2 in-service=true
`)
	for _, h := range f.Hosts {
		if len(h.Pulls()) != 0 {
			t.Errorf("%s pulled %v for an empty plan", h.Name(), h.Pulls())
		}
	}
}

func TestRunDockerStepFailsHostKeepsOldVersion(t *testing.T) {
	tests := []struct {
		op       string // the operation that fails on host1
		outcomes string
		bug      string
	}{
		// The old container was never touched: the host simply failed.
		{op: "create", outcomes: `host1 failed old1 in-service=true
host2 not-started old1 in-service=true
`},
		{op: "stop", outcomes: `host1 failed old1 in-service=true
host2 not-started old1 in-service=true
`},
		// Stop-first renames the old container while it serves, before the
		// drain: a failed rename leaves it serving, untouched.
		{op: "rename", outcomes: `host1 failed old1 in-service=true
host2 not-started old1 in-service=true
`},
	}
	for _, tc := range tests {
		t.Run(tc.op, func(t *testing.T) {
			f := newFleet(2, "old1")
			plan := f.plan("new2", 1)
			f.Host("host1").Fail(tc.op, errors.New("docker daemon hiccup"))

			rep := f.executor(time.Second).Run(context.Background(), plan)

			if rep.OK() {
				t.Fatal("report OK after a failed docker call")
			}
			if !strings.Contains(rep.Err.Error(), "docker daemon hiccup") {
				t.Errorf("report error does not carry the cause: %v", rep.Err)
			}
			checkNoViolations(t, f)
			checkKnownBug(t, tc.bug, "fleet", f.State(), `host1: www=old1(running)
host2: www=old1(running)
lb1 drained: []
lb2 drained: []
`)
			checkKnownBug(t, tc.bug, "outcomes", outcomes(rep), tc.outcomes)
			finishKnownBug(t, tc.bug)
		})
	}
}

// A booting app is probed at a short cadence, not backed off to the
// interval: once it answers, the check passes without waiting an interval
// more than the threshold asks for.
func TestHealthNoticesABootingAppSoon(t *testing.T) {
	f := newFleet(1, "old1")
	h := f.Host("host1")
	refused := errors.New("dial: connection refused")
	var probes atomic.Int32
	h.Fail(fakefleet.OpProbe, refused)
	h.Before = func(_ context.Context, op, _ string) error {
		if op != fakefleet.OpProbe {
			return nil
		}
		if probes.Add(1) > 8 { // booted after eight refusals
			h.Fail(fakefleet.OpProbe, nil)
		}
		return nil
	}
	e := f.executor(10 * time.Second)
	e.Service.Health.Interval = 5 * time.Second
	e.Service.Health.Threshold = 1
	var health time.Duration
	e.Observe = func(ev Event) {
		if ev.Done && ev.Step == string(StepHealth) {
			health = ev.Duration
		}
	}

	rep := e.Run(context.Background(), f.plan("new2", 1))

	if !rep.OK() {
		t.Fatalf("report not OK: %v\n%s", rep.Err, rep)
	}
	// Backing off to the interval would take 10+20+...+1280 ms.
	if limit := 8*bootProbeMax + time.Second; health > limit {
		t.Errorf("health step took %s after the app booted at its 9th probe; want under %s", health, limit)
	}
	checkNoViolations(t, f)
}
