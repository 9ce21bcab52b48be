package rollout

// The words of a run's outcome are one vocabulary: the table, --json, the
// history record, webhooks, hooks and the exit code all use these.
//
// Two words mean two different things: a revert is gantry's automatic undo
// of a failed deploy's moves (Executor.OnFailure, RevertPlan); a rollback
// is the operator's command (gantry rollback) that moves a fleet back to
// an earlier version.

// RunKind is what a run does.
type RunKind string

// Run kinds.
const (
	RunDeploy   RunKind = "deploy"
	RunRollback RunKind = "rollback"
	// RunRevert is the automatic undo of a failed deploy's moves: the plan
	// RevertPlan returns.
	RunRevert RunKind = "revert"
)

// HostOutcome is how one host's part of a run ended. The executor sets it
// where each transition happens; it is never derived afterwards.
type HostOutcome string

// Host outcomes.
const (
	HostUnchanged  HostOutcome = "unchanged"   // already on the target: skipped
	HostNotStarted HostOutcome = "not-started" // the run ended before it reached the host
	HostMoving     HostOutcome = "moving"      // its steps are running
	HostDeployed   HostOutcome = "deployed"    // on the target, where it belongs in the load balancers
	// HostMovedBack is a host moved to the target, then moved back to the
	// version it ran before because another host failed (the revert).
	HostMovedBack HostOutcome = "rolled-back"
	// HostFailedReverted is a host whose own move failed and whose old
	// version was put back, serving.
	HostFailedReverted HostOutcome = "failed-reverted"
	// HostFailed is a host whose move failed before it changed anything
	// that serves: it serves as before.
	HostFailed HostOutcome = "failed"
	// HostFailedOut is a host whose move failed and that is out of the
	// load balancers (nothing healthy to put back, or putting it back
	// failed).
	HostFailedOut HostOutcome = "failed-out-of-service"
	// HostRevertFailed is a host that could not be put back: the report
	// says what runs there.
	HostRevertFailed HostOutcome = "REVERT-FAILED"
)

// RunOutcome is how a whole run ended.
type RunOutcome string

// Run outcomes, as recorded in the history, sent to webhooks and hooks,
// reported in --json, and mapped to exit codes by the command line.
const (
	OutcomeSucceeded RunOutcome = "succeeded"
	// OutcomeFailed: some host failed and hosts already moved stay moved
	// (on_failure: halt); or the release command failed, and nothing was
	// changed.
	OutcomeFailed RunOutcome = "failed"
	// OutcomeReverted: some host failed; every host moved was put back.
	OutcomeReverted RunOutcome = "reverted"
	// OutcomeRevertFailed: putting some host back failed.
	OutcomeRevertFailed RunOutcome = "revert-failed"
	OutcomeInterrupted  RunOutcome = "interrupted"
	// OutcomeRefused: bad input or a pre-flight check failed; nothing
	// changed.
	OutcomeRefused RunOutcome = "refused"
	// OutcomePlanned: a dry run.
	OutcomePlanned RunOutcome = "planned"
)
