package inventory

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/internal/names"
)

// recorder records the commands it is asked to run and runs none.
type recorder struct{ commands []string }

func (r *recorder) Run(_ context.Context, command string, _ []byte) ([]byte, error) {
	r.commands = append(r.commands, command)
	return nil, nil
}

func TestDecommissionRecordPaths(t *testing.T) {
	ctx := context.Background()
	for _, host := range []string{"../../etc/cron.d/x", "a/b", "..", "h\nrm -rf /", "h'; rm -rf / #", "-rf", "", "h\xff", strings.Repeat("h", 300)} {
		r := &recorder{}
		d := Decommissions{Runner: r, Dir: "/var/lib/gantry/locks", Env: "lab"}
		if err := d.Add(ctx, Decommission{Host: host, Who: "me", Since: time.Now()}); !errors.Is(err, names.ErrInvalid) {
			t.Errorf("Add(%q) = %v, want names.ErrInvalid", host, err)
		}
		if err := d.Remove(ctx, host); !errors.Is(err, names.ErrInvalid) {
			t.Errorf("Remove(%q) = %v, want names.ErrInvalid", host, err)
		}
		if len(r.commands) != 0 {
			t.Errorf("host %q: commands ran: %q", host, r.commands)
		}
	}
	r := &recorder{}
	d := Decommissions{Runner: r, Dir: "/var/lib/gantry/locks", Env: "../x"}
	if err := d.Remove(ctx, "host1"); !errors.Is(err, names.ErrInvalid) || len(r.commands) != 0 {
		t.Errorf("env ../x: Remove = %v, commands %q; want names.ErrInvalid and none", err, r.commands)
	}
	d.Env = "lab"
	if err := d.Remove(ctx, "host1"); err != nil {
		t.Fatal(err)
	}
	if want := "rm -f /var/lib/gantry/locks/decommissioned/lab/host1.json"; len(r.commands) != 1 || r.commands[0] != want {
		t.Errorf("commands = %q, want %q", r.commands, want)
	}
}
