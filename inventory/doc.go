// Package inventory is the fleet model: hosts (where they are, which
// services they run) and what gantry observes on them (the containers it
// manages, their versions and state). It holds data and changes nothing.
package inventory
