// Package progress shows a run (deploy, rollback, promote) to whoever runs
// gantry, as it happens: a live view of every host on a terminal,
// timestamped plain lines when the output is not a terminal (CI logs), or a
// stream of JSON events (--json) for machines. The schema of the JSON
// events is documented in docs/events.md and, machine-checkably, in
// events.schema.json (embedded as Schema).
//
// fleet calls a View through its own small interface (Plan, Step, and the
// Messages writer for warnings and notes); the CLI makes the View, chooses
// its mode and verbosity, and calls Finish with the run's result and exit
// code. Secret values given in Options are replaced by "***" in everything
// a View writes.
package progress
