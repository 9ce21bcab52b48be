package rollout

import (
	"context"
	"strings"
	"testing"
	"time"
)

// waitingBalancer is a Balancer whose drains wait for requests in flight
// for wait, and say so (InFlightWaiter).
type waitingBalancer struct {
	Balancer
	wait time.Duration
}

func (b waitingBalancer) Drain(ctx context.Context, service, host string) error {
	time.Sleep(b.wait)
	return b.Balancer.Drain(ctx, service, host)
}

func (b waitingBalancer) InFlightWait(service, host string) time.Duration { return b.wait }

// TestTimeOutOfRotationIsAccountedFor: each moved host's time out of
// rotation splits into the app's boot, the configured waits (the later
// passes, spaced by the interval), the requests in flight (what the
// balancers waited in the drain) and gantry's own, which is what is left;
// the verbose table shows the split.
func TestTimeOutOfRotationIsAccountedFor(t *testing.T) {
	f := newFleet(2, "old1")
	e := f.executor(time.Second)
	e.Service.Health.Interval, e.Service.Health.Threshold = 30*time.Millisecond, 3
	for i, b := range e.Balancers {
		e.Balancers[i] = waitingBalancer{Balancer: b, wait: 40 * time.Millisecond}
	}
	rep := e.Run(context.Background(), f.plan("new2", 1))
	if !rep.OK() {
		t.Fatalf("deploy failed: %v\n%s", rep.Err, rep)
	}
	for _, h := range rep.Hosts {
		if h.InFlight != 40*time.Millisecond {
			t.Errorf("%s: in flight %s, want the balancers' 40ms", h.Host, h.InFlight)
		}
		// Two more passes after the first, 30ms apart.
		if h.Waits < 60*time.Millisecond || h.Waits > 60*time.Millisecond+50*time.Millisecond {
			t.Errorf("%s: waits %s, want about 60ms", h.Host, h.Waits)
		}
		if h.Boot < 0 || h.Boot > 50*time.Millisecond {
			t.Errorf("%s: boot %s: the fake app answers at once", h.Host, h.Boot)
		}
		if sum := h.Boot + h.Waits + h.InFlight + h.Own(); sum != h.OutOfRotation || h.Own() <= 0 {
			t.Errorf("%s: boot %s + waits %s + in flight %s + own %s = %s, want out of rotation %s, own > 0", h.Host, h.Boot, h.Waits, h.InFlight, h.Own(), sum, h.OutOfRotation)
		}
		if p := rep.Summary().Hosts[0].OutOfRotationParts; p == nil || p.InFlight != 0.04 {
			t.Errorf("summary parts %+v, want in_flight 0.04", p)
		}
	}
	if table := rep.PhaseTable(); !strings.Contains(table, "OUT OF LB: BOOT") || !strings.Contains(table, "0.04s") {
		t.Errorf("verbose table without the split:\n%s", table)
	}
}
