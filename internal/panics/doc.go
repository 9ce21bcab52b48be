// Package panics turns a panic in a goroutine into an error, so that a bug
// in one host's work (or in an adapter gantry calls) fails that host
// instead of crashing the process while a deploy lock is held and hosts
// are drained. Every goroutine gantry starts for a host, a balancer or an
// observation runs its body through Catch.
package panics
