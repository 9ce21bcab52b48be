// Package rollout turns what was observed of a fleet and a target version
// into a Plan, and carries a plan out with an Executor.
//
// Observe: a HostSnapshot per host (its current container, the -gantry-old
// and -gantry-new leftovers of a run that was cut off, its entries in each
// load balancer, why it is held out of them). Package fleet fills them.
//
// Plan (pure, plan.go, repair.go, spread.go, keepout.go, release.go): one
// planner per kind of run — PlanDeployWith here, rollback.Plan for the
// operator's rollback, RevertPlan for the automatic undo of a failed
// deploy — calls PlanHost for every host, so a host moves the same way
// whoever planned it. A HostPlan's Steps carry their operands (version,
// port); the swap Strategy (stop-first, start-first, worker) decides which
// steps. Repairs of what a cut-off run left are planned steps too. Spread
// rules cut the hosts into batches. Plan.String is what `gantry plan`
// prints.
//
// Execute (executor.go, swap.go, revert.go): pull everywhere, run the
// release command, the repairs, then batch by batch each host's planned
// steps in order. The executor decides nothing about what to do; it only
// reacts to failures: a step that fails before the host serves the new
// version is undone (the new container goes, the old one is put back and
// the host returns to every load balancer), one after it is a warning, and
// a failed batch stops the run and — on_failure: revert — moves the hosts
// already moved back (RevertPlan). TestExecutedStepsAreThePlannedSteps
// holds the executor to the plan.
//
// Report (report.go, outcome.go): each host's HostOutcome is set by the
// executor where it changes; the run's RunOutcome, its kind and whether it
// was interrupted are the one vocabulary the table, --json, history,
// webhooks and exit codes use.
//
// The executor reaches hosts and load balancers only through the Host and
// Balancer interfaces declared here, which package remote and package lb
// satisfy.
package rollout
