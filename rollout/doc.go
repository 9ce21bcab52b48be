// Package rollout turns a fleet snapshot and a target version into a Plan —
// batches of hosts, each with its steps and the reason for them — and
// carries a plan out with an Executor: pull the image on every host first,
// then batch by batch drain each host from every load balancer, swap its
// container, health-check the new one from the host's side and put the host
// back. The planner is pure; the executor holds no decisions beyond "stop at
// the first failed batch and leave every host serving".
//
// The executor reaches hosts and load balancers only through the Host and
// Balancer interfaces declared here, which package remote and package lb
// satisfy.
package rollout
