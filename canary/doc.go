// Package canary judges a canary from the load balancers' own access logs.
//
// nginx records, for every request it proxies, which upstream server it
// tried ($upstream_addr), what that server answered ($upstream_status) and
// how long it took ($upstream_response_time). When nginx tried several
// servers for one request it writes comma-separated lists, and groups
// separated by " : " for internal redirects; every attempt counts here, as
// a request of the server it went to.
//
// The log lines gantry reads carry the three values as tagged fields
// anywhere in the line (LogFormat is a complete format that has them):
//
//	ua="$upstream_addr" us="$upstream_status" urt="$upstream_response_time"
//
// The lines are aggregated on the load balancer, by AwkProgram (a mawk-
// and POSIX-awk-compatible script), into per-address Counts: requests,
// 5xx, gateway errors, aborted attempts and a histogram of response times
// in fixed log-scale buckets. Only that summary travels back (see
// ParseSummary); ParseLine and Stats.AddLine are the reference
// implementation the awk script agrees with (the lb package tests prove
// it on sample logs). Stats from several load balancers and several reads
// merge by addition.
//
// Judge compares the canary hosts' Counts with the baseline hosts' over a
// window against Thresholds and returns a Verdict: pass, fail or extend
// (keep baking), with a reason that carries the figures and the figures
// themselves for a JSON event. The package is pure: no I/O.
package canary
