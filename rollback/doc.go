// Package rollback decides where a rollback takes each host: back to the
// version it ran before its current one (recorded on the container itself,
// so any deployer can roll back what another deployed), or to a named
// version, always from the image already cached on the host so that a
// rollback needs no registry. It returns an ordinary rollout.Plan, carried
// out with the same drain/swap/health/restore steps and safety rules as a
// deploy. Emergency rollbacks use larger batches that never take out every
// host of a zone at once.
package rollback
