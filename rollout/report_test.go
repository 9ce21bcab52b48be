package rollout

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestOutcomeInterruptNeitherHidesNorInvents(t *testing.T) {
	done := func(h string) *HostResult {
		return &HostResult{Host: h, From: "a", To: "b", Ended: "b", Outcome: HostDeployed, InService: true}
	}
	tests := []struct {
		name        string
		hosts       []*HostResult
		interrupted bool
		want        RunOutcome
	}{
		{"every host done, then ^C", []*HostResult{done("h1"), done("h2")}, true, OutcomeSucceeded},
		{"^C with a host that could not be put back", []*HostResult{done("h1"), {Host: "h2", From: "a", To: "b", Ended: "a", Outcome: HostFailedOut, Err: errors.New("x"), InService: false}}, true, OutcomeRevertFailed},
		{"^C mid-deploy, every host serving", []*HostResult{done("h1"), {Host: "h2", From: "a", To: "b", Ended: "a", Outcome: HostFailedReverted, Err: errors.New("interrupted"), InService: true}}, true, OutcomeInterrupted},
		{"failed and halted", []*HostResult{done("h1"), {Host: "h2", From: "a", To: "b", Ended: "a", Outcome: HostFailedReverted, Err: errors.New("x"), InService: true}}, false, OutcomeFailed},
		{"failed and reverted", []*HostResult{{Host: "h1", From: "a", To: "b", Ended: "a", Outcome: HostMovedBack, InService: true}, {Host: "h2", From: "a", To: "b", Ended: "a", Outcome: HostFailedReverted, Err: errors.New("x"), InService: true}}, false, OutcomeReverted},
	}
	for _, tc := range tests {
		r := &Report{Hosts: tc.hosts, Interrupted: tc.interrupted}
		for _, h := range tc.hosts {
			if h.Err != nil {
				r.Err = h.Err
			}
		}
		if got := r.Outcome(); got != tc.want {
			t.Errorf("%s: outcome %q, want %q", tc.name, got, tc.want)
		}
	}
}

// TestMergeReports: an app's report lists every service's hosts, in the
// app's order, with a SERVICE column, and fails when any service failed.
func TestMergeReports(t *testing.T) {
	www := &Report{Hosts: []*HostResult{{Host: "host1", From: "a", To: "b", Ended: "b", Outcome: HostDeployed, InService: true}}}
	jobs := &Report{Hosts: []*HostResult{{Host: "host1", From: "a", To: "b", Ended: "a", Outcome: HostFailedReverted, Err: errors.New("health check failed"), InService: true}}, Err: errors.New("host1: health check failed")}
	m := MergeReports(Target{Service: "shop", Tag: "b"}, map[string]*Report{"www": www, "jobs": jobs}, []string{"www", "jobs"})
	if m.OK() || len(m.Hosts) != 2 || m.Hosts[0].Service != "www" || m.Hosts[1].Service != "jobs" {
		t.Fatalf("merged: ok=%v hosts=%+v", m.OK(), m.Hosts)
	}
	table := m.String()
	if !strings.HasPrefix(table, "SERVICE  HOST") || !strings.Contains(table, "www      host1") || !strings.Contains(table, "jobs     host1") {
		t.Errorf("table:\n%s", table)
	}
	if !strings.Contains(m.Err.Error(), "jobs: host1: health check failed") {
		t.Errorf("error: %v", m.Err)
	}
	if s := m.Summary(); s.Hosts[1].Service != "jobs" {
		t.Errorf("summary hosts: %+v", s.Hosts)
	}
}

// TestInterruptIsRecordedOnlyForTheUsersCancel: a run whose context the
// user's signal cancelled is interrupted; one stopped with another cause
// (its deploy lock lost) failed, and is reported so.
func TestInterruptIsRecordedOnlyForTheUsersCancel(t *testing.T) {
	for _, tc := range []struct {
		name  string
		cause error
		want  bool
	}{{"signal", nil, true}, {"lock lost", errors.New("deploy lock lost"), false}} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFleet(2, "old1")
			ctx, cancel := context.WithCancelCause(context.Background())
			cancel(tc.cause)
			rep := f.executor(time.Second).Run(ctx, f.plan("new2", 1))
			if rep.Interrupted != tc.want {
				t.Errorf("Interrupted=%v, want %v (outcome %s)", rep.Interrupted, tc.want, rep.Outcome())
			}
		})
	}
}
