package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/gantry-dev/gantry/fleet"
	"github.com/gantry-dev/gantry/lock"
	"github.com/gantry-dev/gantry/rollout"
)

// TestExitCode: every error a command can end with maps to the exit code
// of the table in exit.go.
func TestExitCode(t *testing.T) {
	live := context.Background()
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	wrap := func(err error) error { return fmt.Errorf("deploy: %w", err) }
	for _, tc := range []struct {
		name string
		ctx  context.Context
		err  error
		want int
	}{
		{"success", live, nil, exitOK},
		{"bad input", live, errors.New("--quiet and --verbose: give one or the other"), exitUsage},
		{"pre-flight refusal", live, wrap(rollout.ErrPreflight), exitPreflight},
		{"lock held", live, wrap(lock.ErrHeld), exitLockHeld},
		{"lock held, interrupted while waiting", cancelled, wrap(lock.ErrHeld), exitLockHeld},
		{"interrupted", cancelled, errors.New("context canceled"), exitInterrupted},
		{"pre-flight refusal, interrupted", cancelled, wrap(rollout.ErrPreflight), exitInterrupted},
		{"logs incomplete", live, wrap(fleet.ErrLogsIncomplete), exitFailed},
		{"logs incomplete, interrupted", cancelled, wrap(fleet.ErrLogsIncomplete), exitFailed},
		{"exec not run", live, wrap(fleet.ErrExecNotRun), exitExecNotRun},
		{"exec not run, whatever it wraps", live, fmt.Errorf("%w: %w", fleet.ErrExecNotRun, rollout.ErrPreflight), exitExecNotRun},
		{"carried code wins", cancelled, withExit(exitRevertFailed, wrap(lock.ErrHeld)), exitRevertFailed},
		{"carried code, wrapped", live, wrap(withExit(exitFailed, errors.New("x"))), exitFailed},
		{"exec's own exit code", live, exitStatus(7), 7},
		{"silent interrupt", live, exitStatus(exitInterrupted), exitInterrupted},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := exitCode(tc.ctx, tc.err); got != tc.want {
				t.Errorf("exitCode(%v) = %d, want %d", tc.err, got, tc.want)
			}
		})
	}
	if err := exitStatus(exitOK); err != nil {
		t.Errorf("exitStatus(0) = %v, want nil", err)
	}
}

// TestMessage: an exit status alone prints nothing; any other error
// prints its text.
func TestMessage(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
		ok   bool
	}{
		{nil, "", false},
		{exitStatus(3), "", false},
		{withExit(exitFailed, errors.New("deploy of www@abc failed")), "deploy of www@abc failed", true},
		{errors.New("bad flag"), "bad flag", true},
	} {
		if got, ok := message(tc.err); got != tc.want || ok != tc.ok {
			t.Errorf("message(%v) = %q, %v; want %q, %v", tc.err, got, ok, tc.want, tc.ok)
		}
	}
}

// TestReportError: how a run's report ends the run, and its exit code.
func TestReportError(t *testing.T) {
	live := context.Background()
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	hostErr := errors.New("host1: health check failed")
	served := func() *rollout.HostResult {
		return &rollout.HostResult{Host: "host1", From: "v1", To: "v2", Ended: "v2", Outcome: rollout.HostDeployed, InService: true}
	}
	reverted := func() *rollout.HostResult {
		return &rollout.HostResult{Host: "host1", From: "v1", To: "v2", Ended: "v1", InService: true, Err: hostErr, Outcome: rollout.HostFailedReverted}
	}
	revertFailed := func() *rollout.HostResult {
		return &rollout.HostResult{Host: "host1", From: "v1", To: "v2", Err: hostErr, RevertErr: errors.New("start v1: no such image"), Outcome: rollout.HostRevertFailed}
	}
	for _, tc := range []struct {
		name     string
		ctx      context.Context
		rep      *rollout.Report
		err      error
		want     int
		wantText string // the start of the message
	}{
		{name: "every host succeeded", ctx: live, rep: &rollout.Report{Hosts: []*rollout.HostResult{served()}}, want: exitOK},
		{name: "no report, no error", ctx: live, want: exitOK},
		{name: "refused before a report", ctx: live, err: fmt.Errorf("pre-flight: %w", rollout.ErrPreflight), want: exitPreflight, wantText: "pre-flight"},
		{name: "lock held", ctx: live, err: lock.ErrHeld, want: exitLockHeld},
		{name: "failed and reverted", ctx: live, rep: &rollout.Report{Err: hostErr, Hosts: []*rollout.HostResult{reverted()}}, want: exitFailed, wantText: "deploy of www@v2 failed; "},
		{name: "revert failed", ctx: live, rep: &rollout.Report{Err: hostErr, Hosts: []*rollout.HostResult{revertFailed()}}, want: exitRevertFailed, wantText: "deploy of www@v2 failed AND putting hosts back failed"},
		{name: "revert failed, interrupted", ctx: cancelled, rep: &rollout.Report{Err: hostErr, Interrupted: true, Hosts: []*rollout.HostResult{revertFailed()}}, want: exitRevertFailed, wantText: "deploy of www@v2 failed AND"},
		{name: "interrupted", ctx: cancelled, rep: &rollout.Report{Err: context.Canceled, Interrupted: true, Hosts: []*rollout.HostResult{reverted()}}, want: exitInterrupted, wantText: "deploy of www@v2 interrupted; "},
		{name: "release command failed", ctx: live, rep: &rollout.Report{Err: hostErr, Release: &rollout.ReleaseResult{Err: hostErr}}, want: exitPreflight, wantText: "deploy of www@v2 stopped: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := reportError("deploy of www@v2", tc.rep, tc.err)
			if got := exitCode(tc.ctx, err); got != tc.want {
				t.Errorf("exit code %d, want %d (error: %v)", got, tc.want, err)
			}
			if tc.wantText != "" && (err == nil || !strings.HasPrefix(err.Error(), tc.wantText)) {
				t.Errorf("error %q, want it to start with %q", err, tc.wantText)
			}
		})
	}
}
