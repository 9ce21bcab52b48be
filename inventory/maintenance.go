package inventory

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/gantry-dev/gantry/internal/names"
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

func (m Maintenances) records() hostRecords {
	return hostRecords{Runner: m.Runner, Dir: m.Dir, Kind: "maintenance", Env: m.Env, What: "maintenance record"}
}

// List returns the hosts in maintenance by name.
func (m Maintenances) List(ctx context.Context) (map[string]Maintenance, error) {
	lines, err := m.records().lines(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading the hosts in maintenance: %w", err)
	}
	return parseMaintenances(strings.Join(lines, "\n")), nil
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

// Add records rec, replacing an earlier record of the host.
func (m Maintenances) Add(ctx context.Context, rec Maintenance) error {
	if err := m.records().add(ctx, rec.Host, rec); err != nil {
		return fmt.Errorf("recording %s in maintenance: %w", rec.Host, err)
	}
	return nil
}

// Remove forgets that host is in maintenance.
func (m Maintenances) Remove(ctx context.Context, host string) error {
	if err := m.records().remove(ctx, host); err != nil {
		return fmt.Errorf("removing the maintenance record of %s: %w", host, err)
	}
	return nil
}
