package fleet

import (
	"context"
	"encoding/json"
	"fmt"
	"path"
	"time"

	"github.com/gantry-dev/gantry/internal/shell"
	"github.com/gantry-dev/gantry/inventory"
	"github.com/gantry-dev/gantry/rollout"
)

// rollbackIntent is where a rollback to each host's previous version is
// going, written on the lock's machine before its first step and removed
// when the run ends. "Previous" is relative to what a host runs, so a
// rollback cut off midway (killed, its connection lost) could not be
// finished by running it again: the hosts already moved would go forward
// again. The next `gantry rollback` of the service without --to resumes
// the recorded one instead.
type rollbackIntent struct {
	RunBy string            `json:"run_by"`
	Since time.Time         `json:"since"`
	Hosts map[string]string `json:"hosts"` // host -> image
}

func intentFile(dir, env, service string) string {
	return path.Join(dir, env+"--"+service+".rollback.json")
}

// readIntent returns the recorded rollback of the service, or nil.
func readIntent(ctx context.Context, r inventory.Runner, dir, env, service string) (*rollbackIntent, error) {
	f := shell.Quote(intentFile(dir, env, service))
	out, err := r.Run(ctx, fmt.Sprintf("[ -e %s ] || exit 0; cat %s", f, f), nil)
	if err != nil {
		return nil, fmt.Errorf("reading %s on the lock's machine: %w", intentFile(dir, env, service), err)
	}
	if len(out) == 0 {
		return nil, nil
	}
	var in rollbackIntent
	if err := json.Unmarshal(out, &in); err != nil || len(in.Hosts) == 0 {
		return nil, nil // damaged or empty: nothing to resume
	}
	return &in, nil
}

// writeIntent records where the rollback plan sends each host.
func writeIntent(ctx context.Context, r inventory.Runner, dir, env, service, who string, plan rollout.Plan) error {
	in := rollbackIntent{RunBy: who, Since: time.Now().UTC(), Hosts: map[string]string{}}
	for _, b := range plan.Batches {
		for _, hp := range b.Hosts {
			in.Hosts[hp.Host.Name] = hp.To.Image
		}
	}
	for _, hp := range plan.Skipped {
		in.Hosts[hp.Host.Name] = hp.To.Image
	}
	data, err := json.Marshal(in)
	if err != nil {
		return err
	}
	f := intentFile(dir, env, service)
	script := fmt.Sprintf("mkdir -p %s && cat > %s.tmp && mv -f %s.tmp %s", shell.Quote(dir), shell.Quote(f), shell.Quote(f), shell.Quote(f))
	if _, err := r.Run(ctx, script, data); err != nil {
		return fmt.Errorf("recording the rollback's targets in %s: %w", f, err)
	}
	return nil
}

// clearIntent removes the recorded rollback: the run that follows it ended.
func clearIntent(ctx context.Context, r inventory.Runner, dir, env, service string) error {
	_, err := r.Run(ctx, "rm -f "+shell.Quote(intentFile(dir, env, service)), nil)
	return err
}
