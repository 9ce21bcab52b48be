package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/gantry-dev/gantry/fleet"
	"github.com/gantry-dev/gantry/lock"
	"github.com/gantry-dev/gantry/rollout"
)

// Exit codes: the one table (README.md documents the same).
//
//	code  meaning                                                  decided by
//	0     success                                                   exitCode(nil)
//	1     the run failed; the fleet was reverted (or halted) and    reportError
//	      every host serves; logs: some host's log was not read     exitCode (fleet.ErrLogsIncomplete)
//	2     bad input: flags, config, target (any unclassified error) exitCode
//	3     refused by pre-flight checks (nothing changed), or the    exitCode (rollout.ErrPreflight),
//	      release command failed                                    reportError
//	4     someone else holds the deploy lock                        exitCode (lock.ErrHeld)
//	5     some host is not in service at the end: putting it back   reportError
//	      failed, it has nothing healthy to serve, or is unreachable
//	125   exec: the command could not be run at all                 exitCode (fleet.ErrExecNotRun)
//	N     exec: the command's own exit code                         exitStatus
//	130   interrupted                                               exitCode (ctx cancelled), reportError
const (
	exitOK           = 0
	exitFailed       = 1
	exitUsage        = 2
	exitPreflight    = 3
	exitLockHeld     = 4
	exitRevertFailed = 5
	exitExecNotRun   = 125 // as docker exec's 125
	exitInterrupted  = 130
)

// exitError is an error that carries its exit code. Its err may be nil:
// then gantry exits with code and prints nothing (exec's own exit code,
// logs --follow ended by Ctrl-C).
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

// withExit gives err the exit code code.
func withExit(code int, err error) error { return &exitError{code: code, err: err} }

// exitStatus ends a command with code and no message (nil for 0).
func exitStatus(code int) error {
	if code == exitOK {
		return nil
	}
	return &exitError{code: code}
}

// exitCode maps the error a command ended with to gantry's exit code. It
// is the only place an error becomes an exit code: an error that carries
// its code (exitError) keeps it; the others are classified by the
// sentinel errors they wrap, and anything else is bad input.
func exitCode(ctx context.Context, err error) int {
	if err == nil {
		return exitOK
	}
	if ee, ok := errors.AsType[*exitError](err); ok {
		return ee.code
	}
	switch {
	// The sentinels only logs and exec return come first: they say how
	// that command ended, whatever else the error wraps (Ctrl-C ends logs
	// --follow; a host whose log was not read is still what counts).
	case errors.Is(err, fleet.ErrLogsIncomplete):
		return exitFailed
	case errors.Is(err, fleet.ErrExecNotRun):
		return exitExecNotRun
	case errors.Is(err, lock.ErrHeld):
		return exitLockHeld
	case ctx.Err() != nil:
		return exitInterrupted
	case errors.Is(err, rollout.ErrPreflight):
		return exitPreflight
	}
	return exitUsage
}

// message is what gantry prints of the error a command ended with: none
// for an exit status without an error.
func message(err error) (string, bool) {
	if err == nil {
		return "", false
	}
	if ee, ok := errors.AsType[*exitError](err); ok && ee.err == nil {
		return "", false
	}
	return err.Error(), true
}

// reportError turns how a run (deploy, plan, rollback, promote) ended into
// the error it ends with, carrying its exit code: err itself when the run
// ended without a report's verdict (refused, lock held, bad input), nil
// when every host succeeded. what names the run in the message ("deploy of
// www@abc").
func reportError(what string, rep *rollout.Report, err error) error {
	if err != nil {
		return err
	}
	if rep == nil {
		return nil
	}
	// The run's outcome word decides, as it does in history, webhooks and
	// --json (rollout.RunOutcome: a host that could not be put back comes
	// before the interrupt the executor recorded).
	switch rep.Outcome() {
	case rollout.OutcomeSucceeded:
		return nil
	case rollout.OutcomeRevertFailed:
		return withExit(exitRevertFailed, fmt.Errorf("%s failed AND putting hosts back failed; see REVERT-FAILED above:\n%v", what, rep.Err))
	case rollout.OutcomeInterrupted:
		return withExit(exitInterrupted, fmt.Errorf("%s interrupted; every host above is serving and in every load balancer unless marked otherwise:\n%v", what, rep.Err))
	}
	if rep.ReleaseFailed() {
		// No host was touched: like a failed pre-flight check.
		return withExit(exitPreflight, fmt.Errorf("%s stopped: %v", what, rep.Err))
	}
	return withExit(exitFailed, fmt.Errorf("%s failed; %s:\n%v", what, rep.Verdict(), rep.Err))
}
