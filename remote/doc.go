// Package remote holds the one SSH connection gantry keeps per host and
// everything that travels over it: the Docker Engine API (dialled to the
// host's unix socket with direct-streamlocal, so the daemon is never exposed
// on the network), HTTP health probes made from the host's side, and shell
// commands on load balancers. It is the only package that imports the Docker
// client; the rest of gantry sees it through small interfaces of their own.
package remote
