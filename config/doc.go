// Package config loads and validates gantry.yml: the registry, how to reach
// hosts over SSH, the environments (their hosts and load balancers) and the
// services gantry deploys. Every problem is reported at load time with the
// file, the key and what is wrong, so nothing on the fleet changes because of
// a bad config.
package config
