package rollout

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/internal/fakefleet"
	"github.com/gantry-dev/gantry/inventory"
)

// snapOf is the snapshot of hosts named names, each running www on tag.
func snapOf(tag string, names ...string) []HostSnapshot {
	var snap []HostSnapshot
	for _, n := range names {
		snap = append(snap, HostSnapshot{Host: inventory.Host{Name: n, Address: "10.0.0.1"}, Current: running(tag)})
	}
	return snap
}

func TestPlanWithRelease(t *testing.T) {
	migrate := &ReleaseCommand{Command: []string{"/app", "migrate"}, Timeout: 10 * time.Minute}
	leftover := func(snap []HostSnapshot, i int) []HostSnapshot {
		snap[i].Release = &inventory.Container{ID: "x", Name: "www-gantry-release", Labels: map[string]string{inventory.LabelVersion: "new1", inventory.LabelRelease: "true"}}
		return snap
	}
	tests := []struct {
		name    string
		rc      *ReleaseCommand
		skip    string
		snap    []HostSnapshot
		want    string // the release lines of the plan
		wantErr string
	}{
		{"first host in natural order", migrate, "", snapOf("old1", "host10", "host9", "host2"),
			"release on host2, once, after the pull and before any drain: /app migrate (timeout 10m0s)\n", ""},
		{"configured host", &ReleaseCommand{Command: []string{"migrate"}, Timeout: time.Minute, Host: "host9"}, "", snapOf("old1", "host10", "host9"),
			"release on host9, once, after the pull and before any drain: migrate (timeout 1m0s)\n", ""},
		{"configured host already on the target", &ReleaseCommand{Command: []string{"migrate"}, Timeout: time.Minute, Host: "host1"},
			"", append(snapOf("new1", "host1"), snapOf("old1", "host2")...),
			"release on host1, once, after the pull and before any drain: migrate (timeout 1m0s)\n", ""},
		{"unknown host", &ReleaseCommand{Command: []string{"migrate"}, Timeout: time.Minute, Host: "host7"}, "", snapOf("old1", "host2", "host1"),
			"", `release.host "host7" is not a host of service www here (its hosts: host1 host2)`},
		{"skipped", migrate, "--skip-release", snapOf("old1", "host1"), "release: /app migrate not run: --skip-release\n", ""},
		{"nothing to deploy", migrate, "", snapOf("new1", "host1"), "release: /app migrate not run: no host changes version\n", ""},
		{"no release command", nil, "", snapOf("old1", "host1"), "", ""},
		{"leftover, then run", migrate, "", leftover(snapOf("old1", "host1", "host2"), 1),
			"release: remove www-gantry-release on host2 (new1), left by a run cut off mid-release\n" +
				"release on host1, once, after the pull and before any drain: /app migrate (timeout 10m0s)\n", ""},
		{"leftover, no release command any more", nil, "", leftover(snapOf("old1", "host1"), 0),
			"release: remove www-gantry-release on host1 (new1), left by a run cut off mid-release\n", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := PlanDeploy(testTarget("new1"), tc.snap, 1).WithRelease(tc.rc, tc.skip, tc.snap)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := p.Release.String(); got != tc.want {
				t.Errorf("release step:\n%s\nwant:\n%s", got, tc.want)
			}
			if tc.want != "" && !strings.Contains(p.String(), tc.want) {
				t.Errorf("the plan does not show the release step:\n%s", p.String())
			}
		})
	}
}

// recorder collects the events of a run.
type recorder struct {
	mu     sync.Mutex
	events []Event
}

func (r *recorder) observe(ev Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, ev)
}

func releasePlan(t *testing.T, f *testFleet, rc *ReleaseCommand, skip string) Plan {
	t.Helper()
	p := f.plan("new1", 1)
	var snap []HostSnapshot
	for _, h := range f.Hosts {
		s := HostSnapshot{Host: f.InventoryHost(h)}
		if c, ok, _ := h.Inspect(context.Background(), "www-gantry-release"); ok {
			s.Release = &c
		}
		snap = append(snap, s)
	}
	p, err := p.WithRelease(rc, skip, snap)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestReleaseRunsOnceBeforeAnyDrain(t *testing.T) {
	f := newFleet(3, "old1")
	e := f.executor(time.Second)
	e.RunID = "run-42"
	var rec recorder
	e.Observe = rec.observe
	plan := releasePlan(t, f, &ReleaseCommand{Command: []string{"migrate", "--all"}, Timeout: time.Minute}, "")
	rep := e.Run(context.Background(), plan)
	if !rep.OK() {
		t.Fatalf("deploy failed: %v", rep.Err)
	}
	checkNoViolations(t, f)
	for _, h := range f.Hosts {
		want := 0
		if h.Name() == "host1" {
			want = 1
		}
		if len(h.Releases()) != want {
			t.Errorf("%s ran the release command %d times (%v), want %d", h.Name(), len(h.Releases()), h.Releases(), want)
		}
		if _, ok := h.Container("www-gantry-release"); ok {
			t.Errorf("%s: the release container is still there", h.Name())
		}
	}
	if got, want := f.Host("host1").Releases(), []string{testImage + ":new1 migrate --all"}; len(got) == 1 && got[0] != want[0] {
		t.Errorf("release ran %q, want %q", got[0], want[0])
	}
	// Order: every pull, the release (its output lines), then the first drain.
	var order []string
	for _, ev := range rec.events {
		switch {
		case ev.Stream != "":
			order = append(order, ev.Host+" "+ev.Stream+": "+ev.Output)
		case ev.Step == "pull" && ev.Done, ev.Step == "release", ev.Step == "drain" && !ev.Done:
			status := "start"
			if ev.Done {
				status = "done " + ev.Detail
			}
			order = append(order, ev.Host+" "+ev.Step+" "+status)
		}
	}
	got := strings.Join(order, "\n")
	if !strings.HasPrefix(got, "host") || strings.Index(got, "pull done") > strings.Index(got, "release start") {
		t.Errorf("release before every pull ended:\n%s", got)
	}
	wantMid := "host1 release start\n" +
		"host1 stdout: migrating with HOST_NAME=host1\n" +
		"host1 stderr: exiting 0\n" +
		"host1 stdout: partial\n" +
		"host1 release done exit 0\n" +
		"host1 drain start"
	if !strings.Contains(got, wantMid) {
		t.Errorf("events:\n%s\nwant, in the middle:\n%s", got, wantMid)
	}
	if got, want := rep.Release.String(), "release command ok (exit 0) on host1"; got != want {
		t.Errorf("report: %q, want %q", got, want)
	}
	if rep.Summary().Release != "release command ok (exit 0) on host1" {
		t.Errorf("summary release = %q", rep.Summary().Release)
	}
}

func TestReleaseFailureChangesNothing(t *testing.T) {
	f := newFleet(3, "old1")
	before := f.State()
	for _, h := range f.Hosts {
		h.SetReleaseExit(testImage+":new1", 3)
	}
	e := f.executor(time.Second)
	var rec recorder
	e.Observe = rec.observe
	rep := e.Run(context.Background(), releasePlan(t, f, &ReleaseCommand{Command: []string{"migrate"}, Timeout: time.Minute}, ""))
	if !errors.Is(rep.Err, ErrRelease) || !rep.ReleaseFailed() {
		t.Fatalf("report error %v, want a release failure", rep.Err)
	}
	if got, want := rep.Err.Error(), "release command failed (exit 3) on host1; nothing else was changed"; got != want {
		t.Errorf("error %q, want %q", got, want)
	}
	if got := rep.Outcome(); got != OutcomeFailed {
		t.Errorf("outcome %s, want %s", got, OutcomeFailed)
	}
	if after := f.State(); after != before {
		t.Errorf("the fleet changed:\n%s\nwas:\n%s", after, before)
	}
	for _, ev := range rec.events {
		if ev.Step != "pull" && ev.Step != "release" {
			t.Errorf("step %s ran on %s after a failed release command", ev.Step, ev.Host)
		}
	}
	for _, h := range rep.Hosts {
		if h.Outcome != "not-started" || !h.InService {
			t.Errorf("%s: %s, in service %t; want not-started and in service", h.Host, h.Outcome, h.InService)
		}
	}
	if rep.Release.String() != "release command failed (exit 3) on host1" {
		t.Errorf("report release %q", rep.Release.String())
	}
}

func TestReleaseTimeoutAndInterrupt(t *testing.T) {
	for _, interrupt := range []bool{false, true} {
		f := newFleet(2, "old1")
		before := f.State()
		f.Host("host1").BlockReleases(make(chan struct{})) // never ends by itself
		e := f.executor(time.Second)
		timeout := time.Hour
		ctx, cancel := context.WithCancel(context.Background())
		if interrupt {
			f.Host("host1").Before = func(_ context.Context, op, _ string) error {
				if op == fakefleet.OpRunOnce {
					cancel()
				}
				return nil
			}
		} else {
			timeout = 10 * time.Millisecond
		}
		rep := e.Run(ctx, releasePlan(t, f, &ReleaseCommand{Command: []string{"migrate"}, Timeout: timeout}, ""))
		cancel()
		want := "release command failed (timed out after 10ms) on host1; nothing else was changed"
		if interrupt {
			want = "release command interrupted on host1; nothing else was changed: context canceled"
		}
		if rep.Err == nil || rep.Err.Error() != want {
			t.Errorf("interrupt %t: error %v, want %q", interrupt, rep.Err, want)
		}
		if after := f.State(); after != before {
			t.Errorf("interrupt %t: the fleet changed:\n%s\nwas:\n%s", interrupt, after, before)
		}
	}
}

func TestReleaseSkippedAndLeftoverRemoved(t *testing.T) {
	f := newFleet(2, "old1")
	// A run killed mid-release left its container on host2.
	h2 := f.Host("host2")
	h2.AddImage(testImage + ":new1")
	if _, err := h2.Create(context.Background(), inventory.ContainerSpec{Name: "www-gantry-release", Image: testImage + ":new1",
		Labels: map[string]string{inventory.LabelRelease: "true", inventory.LabelVersion: "new1"}}); err != nil {
		t.Fatal(err)
	}
	plan := releasePlan(t, f, &ReleaseCommand{Command: []string{"migrate"}, Timeout: time.Minute, Host: "host2"}, "--skip-release")
	if plan.Release == nil || len(plan.Release.Leftovers) != 1 {
		t.Fatalf("plan has no leftover to remove:\n%s", plan)
	}
	rep := f.executor(time.Second).Run(context.Background(), plan)
	if !rep.OK() {
		t.Fatalf("deploy failed: %v", rep.Err)
	}
	if _, ok := h2.Container("www-gantry-release"); ok {
		t.Errorf("the leftover release container is still there")
	}
	for _, h := range f.Hosts {
		if len(h.Releases()) != 0 {
			t.Errorf("%s ran %v with --skip-release", h.Name(), h.Releases())
		}
	}
	if got, want := rep.Release.String(), "release command skipped: --skip-release"; got != want {
		t.Errorf("report: %q, want %q", got, want)
	}

	// Not skipped: the leftover goes, then the command runs there.
	f = newFleet(2, "old1")
	h2 = f.Host("host2")
	h2.AddImage(testImage + ":new1")
	if _, err := h2.Create(context.Background(), inventory.ContainerSpec{Name: "www-gantry-release", Image: testImage + ":new1"}); err != nil {
		t.Fatal(err)
	}
	rep = f.executor(time.Second).Run(context.Background(), releasePlan(t, f, &ReleaseCommand{Command: []string{"migrate"}, Timeout: time.Minute, Host: "host2"}, ""))
	if !rep.OK() || len(h2.Releases()) != 1 {
		t.Fatalf("deploy: %v; release runs on host2: %v", rep.Err, h2.Releases())
	}
}
