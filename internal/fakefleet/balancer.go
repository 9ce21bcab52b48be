package fakefleet

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
)

// Balancer operations, as Balancer.Before names them.
const (
	OpDrain   = "drain"
	OpRestore = "restore"
	OpSwitch  = "switch"
)

// Balancer is a load balancer: per service, the hosts it drained and the
// address it sends each switched host's traffic to.
type Balancer struct {
	name  string
	fleet *Fleet

	// Before, when set, runs before every change (OpDrain, OpRestore,
	// OpSwitch) with the service and host, outside the balancer's lock. An
	// error it returns fails the change, which then changes nothing; it may
	// sleep (latency), and should then honour ctx. Set it while no change
	// runs.
	Before func(ctx context.Context, op, service, host string) error

	mu         sync.Mutex
	drained    map[string]map[string]bool   // service -> host -> drained
	addrs      map[string]map[string]string // service -> host -> host:port, when switched
	failDrain  map[string]bool              // hosts whose drain fails
	failSwitch map[string]bool              // "host addr" -> switching fails
	switches   []string                     // "host addr", in order
}

// LoadBalancerName names the balancer.
func (b *Balancer) LoadBalancerName() string { return b.name }

// FailDrain makes draining host fail (fail false: work again).
func (b *Balancer) FailDrain(host string, fail bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.failDrain == nil {
		b.failDrain = map[string]bool{}
	}
	b.failDrain[host] = fail
}

// FailSwitch makes switching host to addr fail (fail false: work again).
func (b *Balancer) FailSwitch(host, addr string, fail bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.failSwitch == nil {
		b.failSwitch = map[string]bool{}
	}
	b.failSwitch[host+" "+addr] = fail
}

// Drain takes host out of service's rotation.
func (b *Balancer) Drain(ctx context.Context, service, host string) error {
	if b.Before != nil {
		if err := b.Before(ctx, OpDrain, service, host); err != nil {
			return err
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.failDrain[host] {
		return errors.New("nginx: [emerg] host not found in upstream")
	}
	b.mark(service, host, true)
	return nil
}

// Restore puts host back in service's rotation.
func (b *Balancer) Restore(ctx context.Context, service, host string) error {
	if b.Before != nil {
		if err := b.Before(ctx, OpRestore, service, host); err != nil {
			return err
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.mark(service, host, false)
	return nil
}

// Switch sends host's traffic in service to addr, and puts it in rotation.
func (b *Balancer) Switch(ctx context.Context, service, host, addr string) error {
	if b.Before != nil {
		if err := b.Before(ctx, OpSwitch, service, host); err != nil {
			return err
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.failSwitch[host+" "+addr] {
		return errors.New("nginx: [emerg] invalid port in upstream")
	}
	if b.addrs[service] == nil {
		b.addrs[service] = map[string]string{}
	}
	b.addrs[service][host] = addr
	b.mark(service, host, false)
	b.switches = append(b.switches, host+" "+addr)
	return nil
}

// mark records host drained or not; callers hold b.mu.
func (b *Balancer) mark(service, host string, drained bool) {
	if !drained {
		delete(b.drained[service], host)
		return
	}
	if b.drained[service] == nil {
		b.drained[service] = map[string]bool{}
	}
	b.drained[service][host] = true
}

// SetDrained marks host drained (or not) in service without a change
// being asked: the state a cut-off run left.
func (b *Balancer) SetDrained(service, host string, drained bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.mark(service, host, drained)
}

// SetAddr makes the balancer send host's traffic in service to addr, as a
// switch does but with no hook or check and without putting host back in
// rotation: the state an earlier run left.
func (b *Balancer) SetAddr(service, host, addr string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.addrs[service] == nil {
		b.addrs[service] = map[string]string{}
	}
	b.addrs[service][host] = addr
}

// AddrOf is where the balancer sends host's traffic in service: the
// address it was switched to, else address on the fleet's port.
func (b *Balancer) AddrOf(service, host, address string) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if a, ok := b.addrs[service][host]; ok {
		return a
	}
	return fmt.Sprintf("%s:%d", address, b.fleet.Port)
}

// IsDrained says whether host is out of service's rotation.
func (b *Balancer) IsDrained(service, host string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.drained[service][host]
}

// Drained lists the drained hosts, as "service/host", sorted.
func (b *Balancer) Drained() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for svc, hosts := range b.drained {
		for h, d := range hosts {
			if d {
				out = append(out, svc+"/"+h)
			}
		}
	}
	sort.Strings(out)
	return out
}

// Switches lists the switches made, as "host addr", in order.
func (b *Balancer) Switches() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.switches)
}
