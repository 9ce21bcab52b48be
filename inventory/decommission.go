package inventory

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
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

func (d Decommissions) records() hostRecords {
	return hostRecords{Runner: d.Runner, Dir: d.Dir, Kind: "decommissioned", Env: d.Env, What: "decommission record"}
}

// List returns the decommissioned hosts by name.
func (d Decommissions) List(ctx context.Context) (map[string]Decommission, error) {
	lines, err := d.records().lines(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading decommissioned hosts: %w", err)
	}
	list := map[string]Decommission{}
	for _, line := range lines {
		var rec Decommission
		if err := json.Unmarshal([]byte(line), &rec); err == nil && rec.Host != "" {
			list[rec.Host] = rec
		}
	}
	return list, nil
}

// Add records rec.
func (d Decommissions) Add(ctx context.Context, rec Decommission) error {
	return d.records().add(ctx, rec.Host, rec)
}

// Remove forgets that host was decommissioned.
func (d Decommissions) Remove(ctx context.Context, host string) error {
	return d.records().remove(ctx, host)
}
