// Package fakefleet is an in-memory fleet for unit tests and the scale
// simulation (bench/sim): container hosts that keep real state (containers,
// image cache) and refuse what Docker refuses, and load balancers that keep
// which hosts they drained and where they send each host's traffic.
//
// A Fleet records, as violations, what a deploy must never do: change the
// container a load balancer still sends traffic to, start an app while
// another runs on its port, run a release command while hosts are drained.
//
// Latency and failures are added through hooks (Host.Before,
// Balancer.Before, Host.Boot) and set failures (Host.Fail,
// Balancer.FailDrain, Balancer.FailSwitch): a hook may sleep, count, or
// fail the operation. State a test sets up by hand (a container left by a
// cut-off run, a label changed, an address an earlier run switched to)
// goes in through Host.Put, Edit, Delete, Crash and Balancer.SetAddr,
// SetDrained, with no hook and no check.
//
// Host and Balancer satisfy rollout.Host and rollout.Balancer structurally:
// the package imports only inventory, so rollout's own tests can use it
// without an import cycle.
package fakefleet
