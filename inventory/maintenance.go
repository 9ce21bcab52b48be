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

// Maintenance records that a host was taken out of every load balancer on
// purpose (gantry maintenance on): deploys and rollbacks still move it, but
// leave it out until gantry maintenance off.
type Maintenance struct {
	Host    string    `json:"host"`
	Who     string    `json:"who"`
	Since   time.Time `json:"since"`
	Message string    `json:"message,omitempty"`
}

// String says who put the host in maintenance, since when, and why.
func (m Maintenance) String() string {
	s := fmt.Sprintf("in maintenance since %s by %s", m.Since.UTC().Format("2006-01-02 15:04 MST"), m.Who)
	if m.Message != "" {
		s += fmt.Sprintf(": %q", m.Message)
	}
	return s
}

// Maintenances keeps an environment's hosts in maintenance on the machine
// that keeps its locks (one small file per host beside the decommission
// records): every deployer sees them, and they outlive any deployer.
type Maintenances struct {
	Runner Runner
	Dir    string
	Env    string
}

func (m Maintenances) dir() string { return path.Join(m.Dir, "maintenance", m.Env) }

// file is the record of host. A host or environment name that could leave
// the directory or confuse the shell is refused.
func (m Maintenances) file(host string) (string, error) {
	if !names.Safe(host) {
		return "", fmt.Errorf("maintenance record: %w: host %q", names.ErrInvalid, host)
	}
	if !names.Safe(m.Env) {
		return "", fmt.Errorf("maintenance record: %w: environment %q", names.ErrInvalid, m.Env)
	}
	return path.Join(m.dir(), host+".json"), nil
}

// List returns the hosts in maintenance by name.
func (m Maintenances) List(ctx context.Context) (map[string]Maintenance, error) {
	if !names.Safe(m.Env) {
		return nil, fmt.Errorf("maintenance records: %w: environment %q", names.ErrInvalid, m.Env)
	}
	q := shell.Quote(m.dir())
	out, err := m.Runner.Run(ctx, fmt.Sprintf(`[ -d %s ] || exit 0; for f in %s/*.json; do [ -f "$f" ] && cat "$f" && echo; done; exit 0`, q, q), nil)
	if err != nil {
		return nil, fmt.Errorf("reading the hosts in maintenance: %w", err)
	}
	return parseMaintenances(string(out)), nil
}

// parseMaintenances reads one JSON record a line; a record that does not
// parse, or names an unsafe host, is left out.
func parseMaintenances(out string) map[string]Maintenance {
	list := map[string]Maintenance{}
	for _, line := range strings.Split(out, "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		var rec Maintenance
		if err := json.Unmarshal([]byte(line), &rec); err == nil && names.Safe(rec.Host) {
			list[rec.Host] = rec
		}
	}
	return list
}

// Add records rec, replacing an earlier record of the host (written to a
// temporary file and renamed: a reader never sees half a record).
func (m Maintenances) Add(ctx context.Context, rec Maintenance) error {
	file, err := m.file(rec.Host)
	if err != nil {
		return err
	}
	data, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	f := shell.Quote(file)
	if _, err := m.Runner.Run(ctx, fmt.Sprintf("mkdir -p %s && cat > %s.tmp && mv %s.tmp %s", shell.Quote(m.dir()), f, f, f), data); err != nil {
		return fmt.Errorf("recording %s in maintenance: %w", rec.Host, err)
	}
	return nil
}

// Remove forgets that host is in maintenance.
func (m Maintenances) Remove(ctx context.Context, host string) error {
	file, err := m.file(host)
	if err != nil {
		return err
	}
	if _, err := m.Runner.Run(ctx, "rm -f "+shell.Quote(file), nil); err != nil {
		return fmt.Errorf("removing the maintenance record of %s: %w", host, err)
	}
	return nil
}
