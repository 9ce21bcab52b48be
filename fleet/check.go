package fleet

import (
	"context"
	"fmt"
	"io"
	"sort"

	"github.com/gantry-dev/gantry/config"
)

// CheckOptions select what `config check` reaches.
type CheckOptions struct {
	Config *config.Config
	// Env limits the check to one environment ("" for all).
	Env string
	Out io.Writer
}

// CheckConfig reaches every host (SSH with verified host keys, then its
// Docker daemon) and every load balancer (SSH, then its config test) of
// the environments, changing nothing, and prints one line per machine.
func CheckConfig(ctx context.Context, o CheckOptions) error {
	envs := []string{o.Env}
	if o.Env == "" {
		envs = envs[:0]
		for name := range o.Config.Environments {
			envs = append(envs, name)
		}
		sort.Strings(envs)
	}
	bad := 0
	for _, name := range envs {
		env, err := o.Config.Environment(name)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrRefused, err)
		}
		hosts, err := discoverHosts(ctx, o.Config, env, o.Out)
		if err != nil {
			return err
		}
		conns, failed, err := ConnectEach(ctx, o.Config, env, hosts)
		if err != nil {
			return err
		}
		fmt.Fprintf(o.Out, "environment %s:\n", name)
		for _, h := range hosts {
			if err := failed[h.Name]; err != nil {
				bad++
				fmt.Fprintf(o.Out, "  host %-12s FAILED  %v\n", h.Name, err)
				continue
			}
			fmt.Fprintf(o.Out, "  host %-12s ok      ssh + docker (%s)\n", h.Name, h.DockerSocket)
		}
		for _, n := range nginxOptions(env, conns, io.Discard) {
			if err := failed[n.Name]; err != nil {
				bad++
				fmt.Fprintf(o.Out, "  lb   %-12s FAILED  %v\n", n.Name, err)
				continue
			}
			if err := n.Check(ctx); err != nil {
				bad++
				fmt.Fprintf(o.Out, "  lb   %-12s FAILED  %v\n", n.Name, err)
				continue
			}
			fmt.Fprintf(o.Out, "  lb   %-12s ok      ssh + %s\n", n.Name, n.TestCommand)
		}
		conns.Close()
		// Webhooks are not called (that would notify people), but one whose
		// URL variable is unset would silently never be: say so.
		for i, w := range env.Notify.Webhooks {
			if w.Endpoint(o.Config.LookupEnv) == "" {
				fmt.Fprintf(o.Out, "  warning: notify.webhooks[%d]: $%s is empty or unset here: that webhook would not be notified\n", i, w.URLEnv)
			}
		}
	}
	if bad > 0 {
		return fmt.Errorf("%w: %d machine(s) failed the check", ErrUnreachable, bad)
	}
	fmt.Fprintln(o.Out, "config ok: every host and load balancer answered")
	return nil
}
