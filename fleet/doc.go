// Package fleet connects the pieces for one command run: it loads the hosts
// of an environment (discovery), opens one SSH connection per host and load
// balancer (remote), observes what runs there (inventory), asks rollout for a
// plan and hands the plan to rollout's executor with the real hosts and nginx
// balancers (lb). It makes no deploy decisions of its own. It also holds
// the commands that look inside the fleet without changing it: inventory,
// logs (every host's container log, merged) and exec (a command in a
// running container).
package fleet
