// Package lb takes hosts out of and back into nginx load balancers.
//
// Options describes one load balancer (how to reach, test and reload it);
// its methods only read (Entries, Check). New builds from Options and a
// service's upstream as it is now the balancer of that service (Nginx),
// ready to Drain, Restore, Switch and Remove its hosts: there is no
// balancer without its upstream.
//
// gantry owns one upstream include file per service on each load balancer
// (<upstreams_dir>/<service>.conf, included inside the service's upstream
// block). Draining a host rewrites that file with the host marked down
// (temp file + rename, the previous content kept beside it), runs the
// configured test command (restoring the previous file if it fails), reloads
// nginx, confirms the master took the file (it started new workers within
// the reload timeout; if not, the previous file is put back:
// ErrReloadRejected) and waits until the old worker processes — the ones
// that may still be proxying requests to the host — have exited, or the
// drain timeout passes. Restoring rewrites the file with the host up.
//
// Both the wait and the confirmation need the master's pid file: the
// configured one, or the one nginx's own configuration names (the test
// command run with -T and -V). Without one nothing is changed
// (ErrNoPidFile).
//
// A balancer whose runner can start commands ahead (Starter, an SSH
// connection) keeps one apply script started on its load balancer,
// waiting for its request, so a change does not pay for a session's
// set-up; the script changes nothing unless it read a whole request, so a
// session abandoned (Close) or cut leaves the load balancer as it was.
package lb
