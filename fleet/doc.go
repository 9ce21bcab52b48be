// Package fleet is the application layer: it carries out one command on
// an environment, leaving every decision to the packages that own it.
//
// A command opens a Session (session.go): Open lists the environment's
// hosts (discovery), narrows them to a service's less the decommissioned
// ones when asked, opens one SSH connection per host and load balancer
// (remote) and one to the records machine (deploy locks, history,
// decommission and maintenance records). The command that opened it is
// the one owner of closing it: Close releases the locks it took and closes
// every connection, returning every failure.
//
// A deploy, a rollback, a promotion and each service of an app's run go
// through a Pipeline (pipeline.go): lock → observe → policy checks
// (rollout.MarkKeptOut, rollout.CheckSinglePointOfFailure) → plan
// (rollout, rollback) → pre-flight → pre-hook → notify → execute
// (rollout.Executor) → re-observe → record history → notify → post-hook →
// prune. The Pipeline holds only that order and the choices between steps;
// the steps that reach machines are injected through RunDeps, so it is
// unit-tested without SSH (pipeline_test.go).
//
// The other commands are thin functions over a Session: decommission
// (its refusals are inventory.DecommissionRefusals), maintenance, prune
// (its retention is inventory.PlanPrune), lock, history and inventory;
// logs and exec dial only the hosts they read from.
package fleet
