package lb

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/rollout"
)

// TestChangesReportTheirTimeOnTheLoadBalancer: a drain and a restore each
// say how long the load balancer's own work took (the apply script's
// measure), for the host whose change it carried only.
func TestChangesReportTheirTimeOnTheLoadBalancer(t *testing.T) {
	dir := t.TempDir()
	n := newNginx(t, dir)
	ctx := context.Background()
	if err := n.Drain(ctx, "www", "host1"); err != nil {
		t.Fatalf("drain: %v", err)
	}
	drain := n.ReloadTime("www", "host1")
	if drain <= 0 || drain > 10*time.Second {
		t.Errorf("drain's time on the load balancer %s, want a measure", drain)
	}
	if d := n.ReloadTime("www", "host2"); d != 0 {
		t.Errorf("host2, never changed, has %s on the load balancer", d)
	}
	if d := n.ReloadTime("api", "host1"); d != 0 {
		t.Errorf("another service's upstream has %s for host1", d)
	}
	if err := n.Restore(ctx, "www", "host1"); err != nil {
		t.Fatalf("restore: %v", err)
	}
	if d := n.ReloadTime("www", "host1"); d <= 0 {
		t.Errorf("restore's time on the load balancer %s, want a measure", d)
	}
}

// noNanosRunner runs commands with a date whose %N is not supported (it
// prints a literal N, as BSD date does).
type noNanosRunner struct{ Runner }

func (r noNanosRunner) Run(ctx context.Context, command string, stdin []byte) ([]byte, error) {
	fake := `date() { case "$1" in *%N*) echo "$(command date +%s)N";; *) command date "$@";; esac; }` + "\n"
	return r.Runner.Run(ctx, fake+command, stdin)
}

// TestApplyWorksWithoutNanoseconds: on a load balancer whose date has no
// %N, changes apply as ever; their time there is unknown (0).
func TestApplyWorksWithoutNanoseconds(t *testing.T) {
	dir := t.TempDir()
	n := newNginx(t, dir)
	n.Runner = noNanosRunner{n.Runner}
	ctx := context.Background()
	if err := n.Drain(ctx, "www", "host1"); err != nil {
		t.Fatalf("drain: %v", err)
	}
	if content := readFile(t, filepath.Join(dir, "www.conf")); !strings.Contains(content, "10.0.0.1:8080 down;") {
		t.Errorf("host1 not drained:\n%s", content)
	}
	if d := n.ReloadTime("www", "host1"); d != 0 {
		t.Errorf("time on the load balancer %s without %%N, want 0 (unknown)", d)
	}
}

func TestParseApplyOutput(t *testing.T) {
	for _, tc := range []struct {
		out, old string
		onLB     time.Duration
	}{
		{"", "", 0},
		{"12 13\n", "12 13", 0},
		{"12 13\ngantry-on-lb-us 1500\n", "12 13", 1500 * time.Microsecond},
		{"\ngantry-on-lb-us 90\n", "", 90 * time.Microsecond},
		{"gantry-on-lb-us x\n", "", 0},
	} {
		old, onLB := parseApplyOutput(tc.out)
		if old != tc.old || onLB != tc.onLB {
			t.Errorf("parseApplyOutput(%q) = %q, %s; want %q, %s", tc.out, old, onLB, tc.old, tc.onLB)
		}
	}
}

// The executor starts a host's time out of rotation when a balancer
// confirmed its drain.
var _ rollout.DrainConfirmer = (*Nginx)(nil)

// TestDrainTookEffectWhenItsApplyReturned: a drain records when its apply
// returned (nginx's new workers run without the host); a restore does not
// move it, another host has none, nor another service.
func TestDrainTookEffectWhenItsApplyReturned(t *testing.T) {
	dir := t.TempDir()
	n := newNginx(t, dir)
	ctx := context.Background()
	before := time.Now()
	if err := n.Drain(ctx, "www", "host1"); err != nil {
		t.Fatalf("drain: %v", err)
	}
	after := time.Now()
	at := n.DrainTookEffect("www", "host1")
	if at.Before(before) || at.After(after) {
		t.Errorf("drain took effect at %s, want within the drain (%s to %s)", at, before, after)
	}
	if err := n.Restore(ctx, "www", "host1"); err != nil {
		t.Fatalf("restore: %v", err)
	}
	if got := n.DrainTookEffect("www", "host1"); !got.Equal(at) {
		t.Errorf("restore moved the drain's time to %s", got)
	}
	if got := n.DrainTookEffect("www", "host2"); !got.IsZero() {
		t.Errorf("host2, never drained, drained at %s", got)
	}
	if got := n.DrainTookEffect("api", "host1"); !got.IsZero() {
		t.Errorf("another service drained host1 at %s", got)
	}
}
