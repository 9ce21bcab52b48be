package fleet

import (
	"bytes"
	"context"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/config"
	"github.com/gantry-dev/gantry/internal/shell"
	"github.com/gantry-dev/gantry/inventory"
	"github.com/gantry-dev/gantry/lock"
	"github.com/gantry-dev/gantry/rollout"
)

// Close releases every lock the session holds, last taken first, and
// returns every failure; Done prints them as warnings.
func TestSessionCloseCollectsReleaseErrors(t *testing.T) {
	var order []string
	release := func(name string, err error) func() error {
		return func() error { order = append(order, name); return err }
	}
	var out bytes.Buffer
	s := &Session{Out: &out, releases: []func() error{
		release("api", errors.New("could not release deploy lock prod--api: gone")),
		release("www", nil),
		release("jobs", errors.New("could not release deploy lock prod--jobs: timeout")),
	}}
	s.Done()
	if want := []string{"jobs", "www", "api"}; !reflect.DeepEqual(order, want) {
		t.Errorf("released %v, want %v", order, want)
	}
	want := "warning: could not release deploy lock prod--jobs: timeout\nwarning: could not release deploy lock prod--api: gone\n"
	if out.String() != want {
		t.Errorf("output:\n%s\nwant:\n%s", out.String(), want)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close = %v, want nothing left to close", err)
	}
}

// A lock released by its session's Close is free for the next deployer.
func TestSessionHoldLocksReleasedByClose(t *testing.T) {
	pl, _ := lockers(t)
	ctx := context.Background()
	_, release, err := holdServiceLocks(ctx, pl, "prod", []string{"api"}, lock.Request{Target: "decommission host1"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	s := &Session{Out: io.Discard, releases: []func() error{release}}
	if got := holder(t, pl, "prod--api"); got != "decommission host1" {
		t.Fatalf("held by %q", got)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if got := holder(t, pl, "prod--api"); got != "free" {
		t.Errorf("after Close the lock is held by %q, want free", got)
	}
}

// A run that read the fleet, then waited for the lock while `gantry
// decommission` held it, leaves out the host decommissioned meanwhile, and
// is refused when none is left.
func TestStillInServiceLeavesOutHostsDecommissionedMeanwhile(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	records := &shell.LocalRunner{}
	var out bytes.Buffer
	s := &Session{EnvName: "prod", Env: config.Environment{Lock: config.Lock{Host: "lb1", Dir: dir}}, Out: &out}
	hosts := []inventory.Host{{Name: "host1"}, {Name: "host2"}}
	if got, err := s.StillInService(ctx, records, "www", hosts); err != nil || len(got) != 2 {
		t.Fatalf("no record: %v, %v; want both hosts", got, err)
	}
	d := inventory.Decommissions{Runner: records, Dir: dir, Env: "prod"}
	if err := d.Add(ctx, inventory.Decommission{Host: "host2", Who: "ops@laptop", Since: time.Date(2026, 12, 6, 5, 0, 0, 0, time.UTC)}); err != nil {
		t.Fatal(err)
	}
	got, err := s.StillInService(ctx, records, "www", hosts)
	if err != nil || len(got) != 1 || got[0].Name != "host1" {
		t.Fatalf("host2 decommissioned: %v, %v; want host1 only", got, err)
	}
	if !strings.Contains(out.String(), "skip host2: decommissioned by ops@laptop") {
		t.Errorf("output does not say host2 is skipped:\n%s", out.String())
	}
	if err := d.Add(ctx, inventory.Decommission{Host: "host1", Who: "ops@laptop", Since: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.StillInService(ctx, records, "www", got); !errors.Is(err, rollout.ErrPreflight) {
		t.Errorf("every host decommissioned: err = %v, want a pre-flight refusal", err)
	}
}
