package fakefleet

import (
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/gantry-dev/gantry/inventory"
)

// Health is how an image's app answers its health check.
type Health int

const (
	// Healthy answers its probes (the default).
	Healthy Health = iota
	// NeverHealthy answers 503 forever.
	NeverHealthy
	// Exits makes the process exit as soon as it is probed.
	Exits
	// NoHealthcheck is healthy, but the image has no HEALTHCHECK.
	NoHealthcheck
)

// Defaults of a Spec.
const (
	DefaultService    = "www"
	DefaultPort       = 8080
	DefaultHealthPath = "/healthz"
)

// Spec describes a fleet to build.
type Spec struct {
	// Hosts is how many hosts run the service.
	Hosts int
	// Service is the service every host runs (DefaultService when empty).
	Service string
	// Image is the repository of the service's image, without a tag.
	Image string
	// From is the version (tag) every host runs at first, in a container
	// named after the service; "" means no container.
	From string
	// Balancers names the load balancers in front of the hosts ("lb1",
	// "lb2" when nil).
	Balancers []string
	// Name and Address give host i (from 1) its name and address ("hostI",
	// "10.0.0.I" when nil).
	Name    func(i int) string
	Address func(i int) string
	// Port is where an app listens when its container records no port
	// (DefaultPort when zero).
	Port int
	// HealthPath is the path an app answers its health check on
	// (DefaultHealthPath when empty); any other path answers 404.
	HealthPath string
}

// Fleet is hosts running one service and the load balancers in front of
// them.
type Fleet struct {
	// Service is the service the hosts run; Image its repository.
	Service, Image string
	// Port is where an app listens when its container records none.
	Port int
	// HealthPath is the path apps answer their health check on.
	HealthPath string
	// Hosts and Balancers are the fleet's, in order. Do not change them,
	// but for setting Balancers to nil before any operation: a fleet of
	// workers, behind no load balancer.
	Hosts     []*Host
	Balancers []*Balancer

	byName     map[string]*Host
	mu         sync.Mutex
	health     map[string]Health // by image, for every host
	violations []string
}

// New returns the fleet spec describes.
func New(spec Spec) *Fleet {
	f := &Fleet{Service: spec.Service, Image: spec.Image, Port: spec.Port, HealthPath: spec.HealthPath, health: map[string]Health{}}
	if f.Service == "" {
		f.Service = DefaultService
	}
	if f.Port == 0 {
		f.Port = DefaultPort
	}
	if f.HealthPath == "" {
		f.HealthPath = DefaultHealthPath
	}
	lbs := spec.Balancers
	if lbs == nil {
		lbs = []string{"lb1", "lb2"}
	}
	for _, name := range lbs {
		f.Balancers = append(f.Balancers, &Balancer{name: name, fleet: f, drained: map[string]map[string]bool{}, addrs: map[string]map[string]string{}})
	}
	name, address := spec.Name, spec.Address
	if name == nil {
		name = func(i int) string { return fmt.Sprintf("host%d", i) }
	}
	if address == nil {
		address = func(i int) string { return fmt.Sprintf("10.0.0.%d", i) }
	}
	f.Hosts = make([]*Host, 0, spec.Hosts)
	f.byName = make(map[string]*Host, spec.Hosts)
	for i := 1; i <= spec.Hosts; i++ {
		h := &Host{name: name(i), address: address(i), fleet: f, containers: map[string]*Container{}, images: map[string]bool{}}
		if spec.From != "" {
			img := spec.Image + ":" + spec.From
			h.images[img] = true
			h.put(&Container{
				Name: f.Service, Image: img, Running: true,
				Labels: map[string]string{
					inventory.LabelManaged: "true", inventory.LabelService: f.Service,
					inventory.LabelVersion: spec.From, inventory.LabelImage: img,
				},
			})
		}
		f.Hosts = append(f.Hosts, h)
		f.byName[h.name] = h
	}
	return f
}

// Host returns the host called name; it panics when there is none.
func (f *Fleet) Host(name string) *Host {
	if h, ok := f.byName[name]; ok {
		return h
	}
	panic("no fake host " + name)
}

// Balancer returns the load balancer called name; it panics when there is
// none.
func (f *Fleet) Balancer(name string) *Balancer {
	for _, b := range f.Balancers {
		if b.name == name {
			return b
		}
	}
	panic("no fake balancer " + name)
}

// SetHealth sets how image's app answers on every host (a host's own
// SetHealth overrides it).
func (f *Fleet) SetHealth(image string, h Health) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.health[image] = h
}

func (f *Fleet) healthOf(image string) Health {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.health[image]
}

// Violations returns what the fleet saw that a deploy must never do, in
// order.
func (f *Fleet) Violations() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.violations)
}

func (f *Fleet) violation(s string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.violations = append(f.violations, s)
}

// InventoryHost is the discovery view of host h.
func (f *Fleet) InventoryHost(h *Host) inventory.Host {
	return inventory.Host{Name: h.name, Address: h.address, Services: []string{f.Service}}
}

// State renders what every host runs (container=version(state)) and what
// every balancer drains, for comparing end states as text.
func (f *Fleet) State() string {
	var b strings.Builder
	for _, h := range f.Hosts {
		fmt.Fprintf(&b, "%s:", h.name)
		for _, n := range h.Names() {
			c, _ := h.Container(n)
			st := "exited"
			if c.Running {
				st = "running"
			}
			fmt.Fprintf(&b, " %s=%s(%s)", n, c.Labels[inventory.LabelVersion], st)
		}
		b.WriteString("\n")
	}
	for _, l := range f.Balancers {
		fmt.Fprintf(&b, "%s drained: %v\n", l.name, l.Drained())
	}
	return b.String()
}
