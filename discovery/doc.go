// Package discovery finds the hosts of an environment. Static lists from
// gantry.yml are the source for fleets outside AWS; every source yields the
// same host model (name, address, zone, services), in natural order of name.
package discovery
