package rollout

import (
	"errors"
	"testing"
)

func TestOutcomeInterruptNeitherHidesNorInvents(t *testing.T) {
	done := func(h string) *HostResult {
		return &HostResult{Host: h, From: "a", To: "b", Ended: "b", Started: true, Deployed: true, InService: true}
	}
	tests := []struct {
		name        string
		hosts       []*HostResult
		interrupted bool
		want        string
	}{
		{"every host done, then ^C", []*HostResult{done("h1"), done("h2")}, true, OutcomeSucceeded},
		{"^C with a host that could not be put back", []*HostResult{done("h1"), {Host: "h2", From: "a", To: "b", Ended: "a", Started: true, Err: errors.New("x"), InService: false}}, true, OutcomeRevertFailed},
		{"^C mid-deploy, every host serving", []*HostResult{done("h1"), {Host: "h2", From: "a", To: "b", Ended: "a", Started: true, Err: errors.New("interrupted"), Reverted: true, InService: true}}, true, OutcomeInterrupted},
		{"failed and halted", []*HostResult{done("h1"), {Host: "h2", From: "a", To: "b", Ended: "a", Started: true, Err: errors.New("x"), Reverted: true, InService: true}}, false, OutcomeFailed},
		{"failed and reverted", []*HostResult{{Host: "h1", From: "a", To: "b", Ended: "a", Started: true, Deployed: true, RolledBack: true, InService: true}, {Host: "h2", From: "a", To: "b", Ended: "a", Started: true, Err: errors.New("x"), Reverted: true, InService: true}}, false, OutcomeReverted},
	}
	for _, tc := range tests {
		r := &Report{Hosts: tc.hosts}
		for _, h := range tc.hosts {
			if h.Err != nil {
				r.Err = h.Err
			}
		}
		if got := r.Outcome(tc.interrupted); got != tc.want {
			t.Errorf("%s: outcome %q, want %q", tc.name, got, tc.want)
		}
	}
}
