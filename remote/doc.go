// Package remote holds the one SSH connection gantry keeps per host and
// everything that travels over it: the Docker Engine API (dialled to the
// host's unix socket with direct-streamlocal, so the daemon is never exposed
// on the network), HTTP health probes made from the host's side, and shell
// commands on load balancers. It is the only package that imports the Docker
// client; the rest of gantry sees it through small interfaces of their own.
//
// A connection survives blips: keepalives find a peer that stopped
// answering within seconds and close it, every operation (opening its
// session or channel included) ends with its context, and a broken
// connection is redialled, with bounded attempts and backoff, on its next
// use. What is retried after a redial is only what is safe to repeat: a
// channel that never opened, idempotent Docker calls, and create or rename
// once a look at the host shows they did not take effect.
package remote
