package rollout

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/internal/fakefleet"
)

// waitingBalancer is a Balancer whose drains take drainApply to take
// effect and then wait for requests in flight for wait, whose restores
// take reload of its own work, and that says so (ReloadTimer,
// InFlightWaiter, DrainConfirmer). It records when each host's last drain
// took effect and its last restore returned.
type waitingBalancer struct {
	Balancer
	wait, reload, drainApply time.Duration

	mu         *sync.Mutex
	drainedAt  map[string]time.Time
	restoredAt map[string]time.Time
}

func newWaitingBalancer(b Balancer, wait, reload, drainApply time.Duration) waitingBalancer {
	return waitingBalancer{Balancer: b, wait: wait, reload: reload, drainApply: drainApply,
		mu: &sync.Mutex{}, drainedAt: map[string]time.Time{}, restoredAt: map[string]time.Time{}}
}

func (b waitingBalancer) Drain(ctx context.Context, service, host string) error {
	time.Sleep(b.drainApply)
	if err := b.Balancer.Drain(ctx, service, host); err != nil {
		return err
	}
	b.mu.Lock()
	b.drainedAt[host] = time.Now()
	b.mu.Unlock()
	time.Sleep(b.wait)
	return nil
}

func (b waitingBalancer) Restore(ctx context.Context, service, host string) error {
	time.Sleep(b.reload)
	err := b.Balancer.Restore(ctx, service, host)
	b.mu.Lock()
	b.restoredAt[host] = time.Now()
	b.mu.Unlock()
	return err
}

func (b waitingBalancer) DrainTookEffect(service, host string) time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.drainedAt[host]
}

func (b waitingBalancer) InFlightWait(service, host string) time.Duration { return b.wait }

func (b waitingBalancer) ReloadTime(service, host string) time.Duration { return b.reload }

// TestTimeOutOfRotationIsAccountedFor: each moved host's time out of
// rotation, from the first balancer's confirmed drain to the last
// restore, splits into the app's boot, the configured waits (the later
// passes, spaced by the interval), the requests in flight (what the
// balancers waited in the drain), the Docker calls (stop, start), the
// balancers' own work (the restore's, the longest balancer; the drain's
// comes before the host is out) and gantry's own, which is what is left;
// the verbose table and the summary show the split.
func TestTimeOutOfRotationIsAccountedFor(t *testing.T) {
	f := newFleet(2, "old1")
	e := f.executor(time.Second)
	e.Service.Health.Interval, e.Service.Health.Threshold = 30*time.Millisecond, 3
	var balancers []waitingBalancer
	for i, b := range e.Balancers {
		// The balancers work concurrently: the host waits for the longest.
		// Their drains take effect 30ms and 60ms after they begin.
		w := newWaitingBalancer(b, 40*time.Millisecond, time.Duration(10+5*i)*time.Millisecond, time.Duration(30+30*i)*time.Millisecond)
		e.Balancers[i], balancers = w, append(balancers, w)
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
		if h.Nginx != 15*time.Millisecond {
			t.Errorf("%s: nginx %s, want the longest balancer's 15ms in the restore (the drain's is before the host is out)", h.Host, h.Nginx)
		}
		// Out from the first confirmed drain (lb1's) to the last restore
		// returned: not from the drain's beginning, 30ms earlier.
		first, last := balancers[0].DrainTookEffect("www", h.Host), time.Time{}
		for _, b := range balancers {
			if d := b.DrainTookEffect("www", h.Host); d.Before(first) {
				first = d
			}
			b.mu.Lock()
			if r := b.restoredAt[h.Host]; r.After(last) {
				last = r
			}
			b.mu.Unlock()
		}
		if want := last.Sub(first); h.OutOfRotation < want || h.OutOfRotation >= want+30*time.Millisecond {
			t.Errorf("%s: out of rotation %s, want from the first confirmed drain to the last restore, %s", h.Host, h.OutOfRotation, want)
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
	if p := rep.Summary().Hosts[0].OutOfRotationParts; p == nil || p.InFlight != 0.04 || p.Nginx != 0.015 || p.Docker <= 0 {
		t.Errorf("summary parts %+v, want in_flight 0.04, nginx 0.015, docker > 0", p)
	}
	if table := rep.PhaseTable(); !strings.Contains(table, "OUT OF LB: BOOT") || !strings.Contains(table, "NGINX") || !strings.Contains(table, "0.04s") {
		t.Errorf("verbose table without the split:\n%s", table)
	}
}

// TestDrainThatTookNoEffectLeavesTheHostInRotation: a host whose drain
// failed on every balancer before taking effect never left rotation (no
// time out of it), and is restored all the same, in case the failed drain
// left something behind.
func TestDrainThatTookNoEffectLeavesTheHostInRotation(t *testing.T) {
	f := newFleet(2, "old1")
	e := f.executor(time.Second)
	for i, b := range e.Balancers {
		e.Balancers[i] = newWaitingBalancer(b, 0, 0, 0)
	}
	for _, name := range []string{"lb1", "lb2"} {
		f.Balancer(name).FailDrain("host1", true)
	}
	rep := e.Run(context.Background(), f.plan("new2", 1))
	h := rep.Hosts[0]
	if h.Host != "host1" || h.Err == nil {
		t.Fatalf("host1's drain did not fail: %+v\n%s", h, rep)
	}
	if h.OutOfRotation != 0 || h.Overhead() != 0 {
		t.Errorf("host1 out of rotation %s (overhead %s), want 0: its drain took effect nowhere", h.OutOfRotation, h.Overhead())
	}
	if !h.InService || h.Ended != "old1" {
		t.Errorf("host1 in service %t on %q, want in service on old1", h.InService, h.Ended)
	}
	for _, name := range []string{"lb1", "lb2"} {
		if f.Balancer(name).IsDrained("www", "host1") {
			t.Errorf("%s: host1 left drained", name)
		}
	}
	if _, ok := h.Phases["restore"]; !ok {
		t.Errorf("host1 not restored after its failed drain: phases %v", h.Phases)
	}
}
