package inventory

import (
	"context"
	"encoding/json"
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/gantry-dev/gantry/internal/names"
	"github.com/gantry-dev/gantry/internal/shell"
)

// Runner runs a shell command on the machine keeping the fleet's records.
type Runner interface {
	Run(ctx context.Context, command string, stdin []byte) ([]byte, error)
}

// Decommission records that a host was taken out for good.
type Decommission struct {
	Host  string    `json:"host"`
	Who   string    `json:"who"`
	Since time.Time `json:"since"`
	// Stopped lists the containers gantry stopped there.
	Stopped []string `json:"stopped"`
}

// Decommissions keeps the decommissioned hosts of an environment on the
// fleet (one small file per host beside the deploy locks), so every
// deployer skips them even while discovery still lists them.
type Decommissions struct {
	Runner Runner
	Dir    string
	Env    string
}

func (d Decommissions) dir() string { return path.Join(d.Dir, "decommissioned", d.Env) }

// file is the record of host. A host or environment name that could leave
// the directory ("../x", "a/b") or confuse the shell is refused, whatever
// discovery or the config checked before.
func (d Decommissions) file(host string) (string, error) {
	if !names.Safe(host) {
		return "", fmt.Errorf("decommission record: %w: host %q", names.ErrInvalid, host)
	}
	if !names.Safe(d.Env) {
		return "", fmt.Errorf("decommission record: %w: environment %q", names.ErrInvalid, d.Env)
	}
	return path.Join(d.dir(), host+".json"), nil
}

// List returns the decommissioned hosts by name.
func (d Decommissions) List(ctx context.Context) (map[string]Decommission, error) {
	q := shell.Quote(d.dir())
	out, err := d.Runner.Run(ctx, fmt.Sprintf(`[ -d %s ] || exit 0; for f in %s/*.json; do [ -f "$f" ] && cat "$f" && echo; done; exit 0`, q, q), nil)
	if err != nil {
		return nil, fmt.Errorf("reading decommissioned hosts: %w", err)
	}
	list := map[string]Decommission{}
	for _, line := range strings.Split(string(out), "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		var rec Decommission
		if err := json.Unmarshal([]byte(line), &rec); err == nil && rec.Host != "" {
			list[rec.Host] = rec
		}
	}
	return list, nil
}

// Add records rec.
func (d Decommissions) Add(ctx context.Context, rec Decommission) error {
	data, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	file, err := d.file(rec.Host)
	if err != nil {
		return err
	}
	f := shell.Quote(file)
	_, err = d.Runner.Run(ctx, fmt.Sprintf("mkdir -p %s && cat > %s.tmp && mv %s.tmp %s", shell.Quote(d.dir()), f, f, f), data)
	return err
}

// Remove forgets that host was decommissioned.
func (d Decommissions) Remove(ctx context.Context, host string) error {
	file, err := d.file(host)
	if err != nil {
		return err
	}
	_, err = d.Runner.Run(ctx, "rm -f "+shell.Quote(file), nil)
	return err
}
