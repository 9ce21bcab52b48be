// Package inventory is the fleet model: hosts (where they are, which
// services they run) and what gantry observes on them (the containers it
// manages, their versions and state), and the records kept beside the
// deploy locks (decommissioned hosts, hosts in maintenance). It changes
// nothing on a machine itself. Its pure policies decide over that model:
// what prune removes from a host's cache (PlanPrune) and whether a host
// may be decommissioned (DecommissionRefusals).
package inventory
