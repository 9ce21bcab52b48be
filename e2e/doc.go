// Package e2e holds the integration tests: they drive the built gantry
// binary against the real lab (dockerd, sshd, nginx and a registry on
// loopback, started by lab/up) and assert what users care about: which
// version each host runs, whether every host is in every load balancer, and
// whether any request through the load balancers failed.
//
// They need the lab: `make test` starts it and sets GANTRY_LAB_CONFIG. Run
// by hand without the lab, they skip with a message; in CI (CI=true) a
// missing lab is a failure, never a skip.
package e2e
