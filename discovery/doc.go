// Package discovery finds the hosts of an environment. Static lists from
// gantry.yml are the source for fleets outside AWS; every source yields the
// same host model (name, address, zone, services), in natural order of name.
// A Source's Discover returns a Result: the hosts, and a warning for each
// host it had to leave out (EC2 instances with no address or untrusted
// tags), for the caller to print.
package discovery
