package fleet

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/gantry-dev/gantry/config"
	"github.com/gantry-dev/gantry/discovery"
	"github.com/gantry-dev/gantry/internal/names"
	"github.com/gantry-dev/gantry/internal/panics"
	"github.com/gantry-dev/gantry/inventory"
	"github.com/gantry-dev/gantry/lb"
)

// InventoryOptions select what to show.
type InventoryOptions struct {
	Config  *config.Config
	Env     string
	Service string // "" for every service
	JSON    bool
	Out     io.Writer
}

// ContainerView is one container on a host.
type ContainerView struct {
	Name    string  `json:"name"`
	Service string  `json:"service,omitempty"`
	Version string  `json:"version,omitempty"`
	Image   string  `json:"image"`
	State   string  `json:"state"`
	Health  string  `json:"health,omitempty"` // healthy | unhealthy | unknown
	UptimeS float64 `json:"uptime_s,omitempty"`
	Managed bool    `json:"managed"`
}

// HostView is one host as it is.
type HostView struct {
	Name           string `json:"name"`
	Address        string `json:"address"`
	Zone           string `json:"zone"`
	Reachable      bool   `json:"reachable"`
	Error          string `json:"error,omitempty"`
	Decommissioned bool   `json:"decommissioned"`
	// Maintenance is the host's maintenance record, when it is in
	// maintenance (kept out of every load balancer).
	Maintenance    *inventory.Maintenance `json:"maintenance,omitempty"`
	DataRoot       string                 `json:"data_root,omitempty"`
	DiskFreeBytes  int64                  `json:"disk_free_bytes"`
	Containers     []ContainerView        `json:"containers"`
	Unmanaged      []ContainerView        `json:"unmanaged"`
	CachedVersions map[string][]string    `json:"cached_versions"`
	LBs            map[string]string      `json:"lbs"` // lb -> up | down | missing | unknown
	Drift          bool                   `json:"drift"`
}

// ServiceView sums a service up across hosts.
type ServiceView struct {
	Version    string   `json:"version"`
	Hosts      []string `json:"hosts"`
	DriftHosts []string `json:"drift_hosts"`
}

// Inventory is the fleet as it is.
type Inventory struct {
	Env      string                 `json:"env"`
	Hosts    []HostView             `json:"hosts"`
	Services map[string]ServiceView `json:"services"`
	Warnings []string               `json:"warnings"`
}

// ShowInventory looks at every host and load balancer of the environment,
// changing nothing, and prints what runs where.
func ShowInventory(ctx context.Context, o InventoryOptions) error {
	inv, err := TakeInventory(ctx, o)
	if err != nil {
		return err
	}
	if o.JSON {
		enc := json.NewEncoder(o.Out)
		enc.SetIndent("", "  ")
		return enc.Encode(inv)
	}
	printInventory(o.Out, inv)
	return nil
}

// TakeInventory gathers the Inventory. Unreachable machines are reported
// in it, not as an error.
func TakeInventory(ctx context.Context, o InventoryOptions) (*Inventory, error) {
	cfg := o.Config
	env, err := cfg.Environment(o.Env)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrRefused, err)
	}
	services := map[string]config.Service{}
	if o.Service != "" {
		svc, err := cfg.Service(o.Service)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrRefused, err)
		}
		services[o.Service] = svc
	} else {
		services = cfg.Services
	}
	s, err := Open(ctx, cfg, o.Env, o.Out, Needs{Discover: true, Dial: DialEach,
		Select: func(all []inventory.Host) ([]inventory.Host, error) {
			if o.Service != "" {
				return discovery.ForService(all, o.Service), nil
			}
			return all, nil
		}})
	if err != nil {
		return nil, err
	}
	defer s.Done()
	hosts, conns, failed := s.Hosts, s.Conns, s.Failed
	inv := &Inventory{Env: o.Env, Services: map[string]ServiceView{}, Warnings: []string{}}

	gone := map[string]inventory.Decommission{}
	maint := map[string]inventory.Maintenance{}
	if runner, err := conns.lockMachine(ctx, cfg, env); err == nil {
		if g, err := (inventory.Decommissions{Runner: runner, Dir: env.Lock.Dir, Env: o.Env}).List(ctx); err == nil {
			gone = g
		}
		if m, err := (inventory.Maintenances{Runner: runner, Dir: env.Lock.Dir, Env: o.Env}).List(ctx); err == nil {
			maint = m
		} else {
			inv.Warnings = append(inv.Warnings, fmt.Sprintf("cannot read the hosts in maintenance from %s: %v", env.Lock.Host, err))
		}
	} else {
		inv.Warnings = append(inv.Warnings, fmt.Sprintf("cannot read decommissioned hosts from %s: %v", env.Lock.Host, err))
	}

	// What each load balancer has, per service.
	lbState := map[string]map[string]map[string]string{} // lb -> service -> host -> state
	for _, lc := range env.LoadBalancers {
		conn, ok := conns.LBs[lc.Name]
		if !ok {
			inv.Warnings = append(inv.Warnings, fmt.Sprintf("load balancer %s unreachable: %v", lc.Name, failed[lc.Name]))
			continue
		}
		n := lb.Options{Name: lc.Name, Runner: conn, UpstreamsDir: lc.UpstreamsDir}
		lbState[lc.Name] = map[string]map[string]string{}
		for name, svc := range services {
			if svc.Worker() {
				continue // in no load balancer
			}
			if st, err := n.Upstream(ctx, name); err == nil {
				lbState[lc.Name][name] = st
			}
		}
	}

	views := make([]HostView, len(hosts))
	var g errgroup.Group
	g.SetLimit(DialConcurrency)
	var mu sync.Mutex
	for i, h := range hosts {
		g.Go(func() error {
			defer panics.Recover(func(err error) {
				mu.Lock()
				defer mu.Unlock()
				views[i] = HostView{Name: h.Name, Address: h.Address, Zone: h.Zone, Error: "observing: " + err.Error(),
					CachedVersions: map[string][]string{}, LBs: map[string]string{}, Containers: []ContainerView{}, Unmanaged: []ContainerView{}}
			})
			v := HostView{Name: h.Name, Address: h.Address, Zone: h.Zone, CachedVersions: map[string][]string{}, LBs: map[string]string{},
				Containers: []ContainerView{}, Unmanaged: []ContainerView{}}
			_, v.Decommissioned = gone[h.Name]
			if rec, ok := maint[h.Name]; ok {
				v.Maintenance = &rec
			}
			for _, lc := range env.LoadBalancers {
				for _, svc := range h.Services {
					if s, ok := services[svc]; !ok || s.Worker() {
						continue // a worker is in no load balancer
					}
					state := "unknown"
					if per, ok := lbState[lc.Name][svc]; ok {
						state = per[h.Name]
						if state == "" {
							state = "missing"
						}
					}
					v.LBs[lc.Name] = state
				}
			}
			hc, ok := conns.Hosts[h.Name]
			if !ok {
				v.Error = fmt.Sprint(failed[h.Name])
				views[i] = v
				return nil
			}
			v.Reachable = true
			observeHost(ctx, cfg, hc, h, services, &v)
			mu.Lock()
			views[i] = v
			mu.Unlock()
			return nil
		})
	}
	_ = g.Wait()
	inv.Hosts = views
	summarize(inv, services, env)
	return inv, nil
}

// observeHost fills v from the host's daemon.
func observeHost(ctx context.Context, cfg *config.Config, hc *Host, h inventory.Host, services map[string]config.Service, v *HostView) {
	if root, free, err := hc.FreeDisk(ctx); err == nil {
		v.DataRoot, v.DiskFreeBytes = root, free
	}
	list, err := hc.ListContainers(ctx)
	if err != nil {
		v.Error = err.Error()
		return
	}
	for _, c := range list {
		cv := ContainerView{Name: c.Name, Image: c.Image, State: c.State}
		if c.Labels[inventory.LabelManaged] != "true" {
			v.Unmanaged = append(v.Unmanaged, cv)
			continue
		}
		cv.Managed = true
		cv.Service = c.Labels[inventory.LabelService]
		if _, ok := services[cv.Service]; !ok {
			continue
		}
		cv.Version = c.Version()
		if !c.StartedAt.IsZero() && c.Running {
			cv.UptimeS = time.Since(c.StartedAt).Round(time.Second).Seconds()
		}
		cv.Health = "unhealthy"
		if svc := services[cv.Service]; c.Running && c.Name == svc.ContainerName {
			if hc.ServesHealthy(ctx, h, svc, c.Port(svc.Port)) {
				cv.Health = "healthy"
			}
		} else if c.Running {
			cv.Health = "unknown" // a leftover beside the service's container
		}
		v.Containers = append(v.Containers, cv)
	}
	for name, svc := range services {
		if !h.Runs(name) {
			continue
		}
		versions, err := hc.ListImageVersions(ctx, cfg.Registry.Address+"/"+svc.Image)
		if err != nil {
			continue
		}
		tags := []string{}
		for _, iv := range versions {
			tags = append(tags, iv.Tag)
		}
		v.CachedVersions[name] = tags
	}
}

// summarize finds each service's majority version, the hosts that drift
// from it, and single points of failure.
func summarize(inv *Inventory, services map[string]config.Service, env config.Environment) {
	for name, svc := range services {
		count := map[string]int{}
		sv := ServiceView{Hosts: []string{}, DriftHosts: []string{}}
		running := map[string]string{}
		for _, h := range inv.Hosts {
			if h.Decommissioned {
				continue
			}
			for _, c := range h.Containers {
				if c.Service == name && c.Name == svc.ContainerName {
					running[h.Name] = c.Version
					count[c.Version]++
					sv.Hosts = append(sv.Hosts, h.Name)
				}
			}
		}
		best := 0
		for v, n := range count {
			if n > best || (n == best && v < sv.Version) {
				sv.Version, best = v, n
			}
		}
		for i, h := range inv.Hosts {
			if v, ok := running[h.Name]; ok && v != sv.Version {
				sv.DriftHosts = append(sv.DriftHosts, h.Name)
				inv.Hosts[i].Drift = true
			}
		}
		names.Sort(sv.Hosts)
		zones := map[string]bool{}
		for _, h := range inv.Hosts {
			if _, ok := running[h.Name]; ok {
				zones[h.Zone] = true
			}
		}
		switch {
		case len(sv.Hosts) == 1:
			inv.Warnings = append(inv.Warnings, fmt.Sprintf("service %s runs on one host only (%s): a single point of failure", name, sv.Hosts[0]))
		case len(sv.Hosts) > 1 && len(zones) == 1:
			inv.Warnings = append(inv.Warnings, fmt.Sprintf("service %s runs in one zone only: a single point of failure", name))
		}
		if len(sv.Hosts) > 0 {
			inv.Services[name] = sv
		}
	}
	for _, h := range inv.Hosts {
		if len(h.Unmanaged) > 0 {
			names := make([]string, len(h.Unmanaged))
			for i, c := range h.Unmanaged {
				names[i] = c.Name
			}
			inv.Warnings = append(inv.Warnings, fmt.Sprintf("%s runs containers gantry does not manage: %s", h.Name, strings.Join(names, ", ")))
		}
	}
	if len(env.LoadBalancers) == 1 {
		inv.Warnings = append(inv.Warnings, "the environment has one load balancer: a single point of failure")
	}
	sort.Strings(inv.Warnings)
}

func printInventory(w io.Writer, inv *Inventory) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "HOST\tZONE\tADDRESS\tCONTAINER\tVERSION\tSTATE\tHEALTH\tUPTIME\tLBS\tCACHED\tDISK FREE")
	for _, h := range inv.Hosts {
		lbs := make([]string, 0, len(h.LBs))
		for n, st := range h.LBs {
			lbs = append(lbs, n+":"+st)
		}
		names.Sort(lbs)
		var cached []string
		for _, tags := range h.CachedVersions {
			cached = append(cached, tags...)
		}
		if len(cached) > 3 {
			cached = append(cached[:3], fmt.Sprintf("+%d more", len(cached)-3))
		}
		disk := fmt.Sprintf("%.1fG", float64(h.DiskFreeBytes)/(1<<30))
		name := h.Name
		switch {
		case !h.Reachable:
			fmt.Fprintf(tw, "%s\t%s\t%s\tUNREACHABLE: %s\t\t\t\t\t%s\t\t\n", name, h.Zone, h.Address, h.Error, strings.Join(lbs, " "))
			continue
		case h.Decommissioned:
			name += " (decommissioned)"
		case h.Maintenance != nil:
			name += " (maintenance)"
		}
		rows := append(append([]ContainerView{}, h.Containers...), h.Unmanaged...)
		if len(rows) == 0 {
			rows = []ContainerView{{Name: "-"}}
		}
		for i, c := range rows {
			version := c.Version
			if !c.Managed && c.Name != "-" {
				version = "unmanaged (" + c.Image + ")"
			}
			if h.Drift && c.Managed {
				version += " DRIFT"
			}
			up := ""
			if c.UptimeS > 0 {
				up = (time.Duration(c.UptimeS) * time.Second).String()
			}
			if i == 0 {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", name, h.Zone, h.Address, c.Name, version, c.State, c.Health, up, strings.Join(lbs, " "), strings.Join(cached, ","), disk)
			} else {
				fmt.Fprintf(tw, "\t\t\t%s\t%s\t%s\t%s\t%s\t\t\t\n", c.Name, version, c.State, c.Health, up)
			}
		}
	}
	tw.Flush()
	for name, sv := range inv.Services {
		fmt.Fprintf(w, "service %s: %s on %d host(s)", name, sv.Version, len(sv.Hosts))
		if len(sv.DriftHosts) > 0 {
			fmt.Fprintf(w, "; drift on %s", strings.Join(sv.DriftHosts, ", "))
		}
		fmt.Fprintln(w)
	}
	for _, h := range inv.Hosts {
		if h.Maintenance != nil {
			fmt.Fprintf(w, "%s is %s\n", h.Name, h.Maintenance)
		}
	}
	for _, warn := range inv.Warnings {
		fmt.Fprintln(w, "warning:", warn)
	}
}
