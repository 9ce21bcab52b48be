package rollout

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/internal/fakefleet"
)

// waitingBalancer is a Balancer whose changes take reload of its own
// work and whose drains then wait for requests in flight for wait, and
// that says so (ReloadTimer, InFlightWaiter).
type waitingBalancer struct {
	Balancer
	wait, reload time.Duration
}

func (b waitingBalancer) Drain(ctx context.Context, service, host string) error {
	time.Sleep(b.reload + b.wait)
	return b.Balancer.Drain(ctx, service, host)
}

func (b waitingBalancer) Restore(ctx context.Context, service, host string) error {
	time.Sleep(b.reload)
	return b.Balancer.Restore(ctx, service, host)
}

func (b waitingBalancer) InFlightWait(service, host string) time.Duration { return b.wait }

func (b waitingBalancer) ReloadTime(service, host string) time.Duration { return b.reload }

// TestTimeOutOfRotationIsAccountedFor: each moved host's time out of
// rotation splits into the app's boot, the configured waits (the later
// passes, spaced by the interval), the requests in flight (what the
// balancers waited in the drain), the Docker calls (stop, start), the
// balancers' own work (drain and restore, the longest balancer each) and
// gantry's own, which is what is left; the verbose table and the summary
// show the split.
func TestTimeOutOfRotationIsAccountedFor(t *testing.T) {
	f := newFleet(2, "old1")
	e := f.executor(time.Second)
	e.Service.Health.Interval, e.Service.Health.Threshold = 30*time.Millisecond, 3
	for i, b := range e.Balancers {
		// The balancers work concurrently: the host waits for the longest.
		e.Balancers[i] = waitingBalancer{Balancer: b, wait: 40 * time.Millisecond, reload: time.Duration(10+5*i) * time.Millisecond}
	}
	var mu sync.Mutex
	dockerCalls := map[string][]string{} // per host, the calls made while drained
	for _, name := range []string{"host1", "host2"} {
		h := f.Host(name)
		h.Before = func(ctx context.Context, op, _ string) error {
			if op != fakefleet.OpStop && op != fakefleet.OpStart && op != fakefleet.OpRename && op != fakefleet.OpCreate && op != fakefleet.OpRemove {
				return nil
			}
			if f.Balancer("lb1").IsDrained("www", name) {
				mu.Lock()
				dockerCalls[name] = append(dockerCalls[name], op)
				mu.Unlock()
			}
			time.Sleep(20 * time.Millisecond)
			return nil
		}
	}
	rep := e.Run(context.Background(), f.plan("new2", 1))
	if !rep.OK() {
		t.Fatalf("deploy failed: %v\n%s", rep.Err, rep)
	}
	for _, h := range rep.Hosts {
		if h.InFlight != 40*time.Millisecond {
			t.Errorf("%s: in flight %s, want the balancers' 40ms", h.Host, h.InFlight)
		}
		if h.Nginx != 2*15*time.Millisecond {
			t.Errorf("%s: nginx %s, want the longest balancer's 15ms, in the drain and the restore", h.Host, h.Nginx)
		}
		// Two more passes after the first, 30ms apart.
		if h.Waits < 60*time.Millisecond || h.Waits > 60*time.Millisecond+50*time.Millisecond {
			t.Errorf("%s: waits %s, want about 60ms", h.Host, h.Waits)
		}
		if h.Boot < 0 || h.Boot > 50*time.Millisecond {
			t.Errorf("%s: boot %s: the fake app answers at once", h.Host, h.Boot)
		}
		calls := dockerCalls[h.Host]
		if got := strings.Join(calls, " "); got != "stop start" {
			t.Errorf("%s: Docker calls while out of rotation %q, want one stop and one start (the renames come before the drain)", h.Host, got)
		}
		if h.Docker < time.Duration(len(calls))*20*time.Millisecond || len(calls) == 0 {
			t.Errorf("%s: docker %s, want at least the %d calls' 20ms each (%v)", h.Host, h.Docker, len(calls), calls)
		}
		if sum := h.Boot + h.Waits + h.InFlight + h.Docker + h.Nginx + h.Own(); sum != h.OutOfRotation || h.Own() <= 0 {
			t.Errorf("%s: boot %s + waits %s + in flight %s + docker %s + nginx %s + own %s = %s, want out of rotation %s, own > 0",
				h.Host, h.Boot, h.Waits, h.InFlight, h.Docker, h.Nginx, h.Own(), sum, h.OutOfRotation)
		}
		if h.Overhead() != h.Docker+h.Nginx+h.Own() {
			t.Errorf("%s: overhead %s, want docker + nginx + own", h.Host, h.Overhead())
		}
	}
	if p := rep.Summary().Hosts[0].OutOfRotationParts; p == nil || p.InFlight != 0.04 || p.Nginx != 0.03 || p.Docker <= 0 {
		t.Errorf("summary parts %+v, want in_flight 0.04, nginx 0.03, docker > 0", p)
	}
	if table := rep.PhaseTable(); !strings.Contains(table, "OUT OF LB: BOOT") || !strings.Contains(table, "NGINX") || !strings.Contains(table, "0.04s") {
		t.Errorf("verbose table without the split:\n%s", table)
	}
}
