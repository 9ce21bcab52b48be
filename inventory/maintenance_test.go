package inventory

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/internal/names"
	"github.com/gantry-dev/gantry/internal/shell"
)

// TestMaintenanceRecordPaths: a host or environment name that could leave
// the records' directory or reach the shell never gets to a command.
func TestMaintenanceRecordPaths(t *testing.T) {
	ctx := context.Background()
	for _, host := range []string{"../../etc/cron.d/x", "a/b", "..", "h\nrm -rf /", "h'; rm -rf / #", "-rf", "", "h\xff", strings.Repeat("h", 300)} {
		r := &recorder{}
		m := Maintenances{Runner: r, Dir: "/var/lib/gantry/locks", Env: "lab"}
		if err := m.Add(ctx, Maintenance{Host: host, Who: "me", Since: time.Now()}); !errors.Is(err, names.ErrInvalid) {
			t.Errorf("Add(%q) = %v, want names.ErrInvalid", host, err)
		}
		if err := m.Remove(ctx, host); !errors.Is(err, names.ErrInvalid) {
			t.Errorf("Remove(%q) = %v, want names.ErrInvalid", host, err)
		}
		if len(r.commands) != 0 {
			t.Errorf("host %q: commands ran: %q", host, r.commands)
		}
	}
	r := &recorder{}
	if _, err := (Maintenances{Runner: r, Dir: "/d", Env: "../x"}).List(ctx); !errors.Is(err, names.ErrInvalid) || len(r.commands) != 0 {
		t.Errorf("env ../x: List = %v, commands %q; want names.ErrInvalid and none", err, r.commands)
	}
}

// TestMaintenanceRecords: records written are listed with who, when and
// why, survive a new reader, and go on Remove.
func TestMaintenanceRecords(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	m := Maintenances{Runner: &shell.LocalRunner{}, Dir: dir, Env: "lab"}
	since := time.Date(2026, 11, 29, 5, 0, 0, 0, time.UTC)
	if err := m.Add(ctx, Maintenance{Host: "host3", Who: "ops@box", Since: since, Message: "disk swap; \"ticket\" 42\n"}); err != nil {
		t.Fatal(err)
	}
	if err := m.Add(ctx, Maintenance{Host: "host1", Who: "ops@box", Since: since}); err != nil {
		t.Fatal(err)
	}
	// A stray file does not break the list.
	if err := os.WriteFile(filepath.Join(dir, "maintenance", "lab", "junk.json"), []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	list, err := (Maintenances{Runner: &shell.LocalRunner{}, Dir: dir, Env: "lab"}).List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list["host3"].Message != "disk swap; \"ticket\" 42\n" || !list["host3"].Since.Equal(since) || list["host1"].Who != "ops@box" {
		t.Errorf("List = %+v", list)
	}
	if got, want := list["host3"].String(), `in maintenance since 2026-11-29 05:00 UTC by ops@box: "disk swap; \"ticket\" 42\n"`; got != want {
		t.Errorf("String = %s, want %s", got, want)
	}
	if err := m.Remove(ctx, "host3"); err != nil {
		t.Fatal(err)
	}
	if list, _ := m.List(ctx); len(list) != 1 || list["host1"].Host != "host1" {
		t.Errorf("after Remove(host3): %+v", list)
	}
	if list, err := (Maintenances{Runner: &shell.LocalRunner{}, Dir: dir, Env: "prod"}).List(ctx); err != nil || len(list) != 0 {
		t.Errorf("another environment: %v %+v", err, list)
	}
}
