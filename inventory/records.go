package inventory

import (
	"context"
	"encoding/json"
	"fmt"
	"path"
	"strings"

	"github.com/gantry-dev/gantry/internal/names"
	"github.com/gantry-dev/gantry/internal/shell"
)

// hostRecords keeps one small JSON file per host of an environment in
// DIR/KIND/ENV on the machine that keeps the locks: every deployer sees
// them, and they outlive any deployer. Decommissions and maintenance
// records are kept this way.
type hostRecords struct {
	Runner Runner
	Dir    string // the environment's lock directory
	Kind   string // "decommissioned", "maintenance"
	Env    string
	// What names a record in messages: "decommission record".
	What string
}

func (r hostRecords) dir() string { return path.Join(r.Dir, r.Kind, r.Env) }

// file is the record of host. A host or environment name that could leave
// the directory ("../x", "a/b") or confuse the shell is refused, whatever
// discovery or the config checked before.
func (r hostRecords) file(host string) (string, error) {
	if !names.Safe(host) {
		return "", fmt.Errorf("%s: %w: host %q", r.What, names.ErrInvalid, host)
	}
	if !names.Safe(r.Env) {
		return "", fmt.Errorf("%s: %w: environment %q", r.What, names.ErrInvalid, r.Env)
	}
	return path.Join(r.dir(), host+".json"), nil
}

// lines returns every record, one JSON document a line.
func (r hostRecords) lines(ctx context.Context) ([]string, error) {
	if !names.Safe(r.Env) {
		return nil, fmt.Errorf("%ss: %w: environment %q", r.What, names.ErrInvalid, r.Env)
	}
	q := shell.Quote(r.dir())
	out, err := r.Runner.Run(ctx, fmt.Sprintf(`[ -d %s ] || exit 0; for f in %s/*.json; do [ -f "$f" ] && cat "$f" && echo; done; exit 0`, q, q), nil)
	if err != nil {
		return nil, err
	}
	var lines []string
	for _, line := range strings.Split(string(out), "\n") {
		if strings.TrimSpace(line) != "" {
			lines = append(lines, line)
		}
	}
	return lines, nil
}

// add writes host's record, replacing an earlier one (to a temporary file
// renamed into place: a reader never sees half a record).
func (r hostRecords) add(ctx context.Context, host string, rec any) error {
	file, err := r.file(host)
	if err != nil {
		return err
	}
	data, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	f := shell.Quote(file)
	_, err = r.Runner.Run(ctx, fmt.Sprintf("mkdir -p %s && cat > %s.tmp && mv %s.tmp %s", shell.Quote(r.dir()), f, f, f), data)
	return err
}

// remove deletes host's record.
func (r hostRecords) remove(ctx context.Context, host string) error {
	file, err := r.file(host)
	if err != nil {
		return err
	}
	_, err = r.Runner.Run(ctx, "rm -f "+shell.Quote(file), nil)
	return err
}
