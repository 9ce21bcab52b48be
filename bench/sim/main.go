// Command sim is a scale simulation of a gantry deploy: rollout.Executor
// runs a real plan against in-process fake hosts and load balancers
// (internal/fakefleet, the fakes of the unit tests) whose every operation
// sleeps a configurable latency (with seeded jitter), for
// fleets of several sizes. It prints, per fleet size, the wall time, the
// theoretical critical path, the executor's overhead over it, and peak
// heap, process memory, goroutines and concurrent host operations, and
// writes them to bench/results/sim.json.
//
//	go run ./bench/sim [-hosts 100,1000,5000] [-batch N] [-boot 100ms] [-lb-lock none|reload|full] ...
//
// # What counts as overhead
//
// Overhead is wall time beyond the critical path, as a percentage of it.
// The critical path is what a perfect engine making the same remote calls
// would take: the pull phase (the pull latencies list-scheduled over
// PullConcurrency slots, in plan order), then, per batch, the slowest
// host's path. A host's path is the sum of:
//
//   - the latency of every remote operation the fakes answered (inspect,
//     create, drain and restore on the slowest balancer, stop, rename,
//     start, remove), balancer lock queueing included;
//   - for its health step, the ideal check instead of what the executor
//     did: the app's boot time (-boot, drawn, from the end of the start
//     call: the app's time, not the engine's), then Threshold probes that
//     pass (their latencies) separated by (Threshold-1) x Interval: the
//     waits the user configured, which any engine honouring
//     healthy_threshold must spend.
//
// Everything else is the executor's overhead: its own CPU and scheduling,
// and in the health step the probes refused while the app boots, the delay
// between the app coming up and the next probe noticing it (the boot probe
// cadence, at most rollout's bootProbeMax), its container checks when they
// do not fit in its waits, and the slack of its own timers. HEALTH LAG is
// that health part, per host on average.
//
// The headline path uses each fake operation's latency as its timer really
// took it: on this kind of machine a Go timer fires ~0.5-1 ms late (the
// runtime's poller sleeps in whole milliseconds), and a fake that answered
// late is latency the engine had to wait for, not time it wasted. TIMER
// SLACK is that difference, and OVH VS DRAWN the overhead against the
// latencies as drawn, i.e. counting the fakes' slack as overhead too. Under
// heavy CPU load the engine's own work could delay the fakes' timers and
// hide in the slack; compare the two columns.
//
// It is a benchmark: it prints figures (PASS/MISS against the targets) and
// exits non-zero only when a deploy fails.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/gantry-dev/gantry/internal/fakefleet"
	"github.com/gantry-dev/gantry/inventory"
	"github.com/gantry-dev/gantry/rollout"
)

const (
	targetOverheadPct = 2.0
	targetPeakMB      = 300.0
	targetPeakHosts   = 5000
)

type config struct {
	hosts           []int
	zones, lbs      int
	batch           int
	batchPct        float64
	minInService    int
	pullConcurrency int
	lat             rollout.HealthCheck
	lats            Latencies
	jitter          float64
	failRate        float64
	seed            uint64
	lockMode        string
	sample          time.Duration
	out             string
}

// Result is one fleet size's figures (bench/results/sim.json).
type Result struct {
	Hosts     int     `json:"hosts"`
	Batches   int     `json:"batches"`
	BatchSize int     `json:"batch_size"`
	OK        bool    `json:"ok"`
	WallS     float64 `json:"wall_s"`
	// CriticalPathS is the headline path: the fakes' latencies as their
	// timers really took them, plus boot times and configured waits.
	CriticalPathS float64 `json:"critical_path_s"`
	OverheadPct   float64 `json:"overhead_pct"`
	// The same path with the latencies as drawn (no timer slack).
	CriticalPathDrawnS float64 `json:"critical_path_drawn_s"`
	OverheadDrawnPct   float64 `json:"overhead_vs_drawn_pct"`
	PeakHeapMB         float64 `json:"peak_heap_mb"`
	PeakSysMB          float64 `json:"peak_sys_mb"`
	PeakGoroutines     int     `json:"peak_goroutines"`
	PeakConcurrentOps  int64   `json:"peak_concurrent_ops"`
	// Breakdown, for explaining the overhead.
	PullS             float64 `json:"pull_s"`
	PullBoundS        float64 `json:"pull_bound_s"`
	PullBoundNominalS float64 `json:"pull_bound_nominal_s"`
	ConfiguredWaitsS  float64 `json:"configured_waits_s"`
	HealthLagMs       float64 `json:"health_lag_mean_ms"`
	TimerSlackS       float64 `json:"timer_slack_s"`
	LBQueueS          float64 `json:"lb_queue_s"`
	PeakLBOps         int64   `json:"peak_concurrent_lb_ops"`
	Error             string  `json:"error,omitempty"`
}

func main() {
	cfg, err := parseFlags()
	if err != nil {
		fmt.Fprintln(os.Stderr, "sim:", err)
		os.Exit(2)
	}
	fmt.Printf("sim: %d zones, %d load balancers (lock: %s), pull concurrency %d, jitter ±%.0f%%, fail rate %g, seed %d, GOMAXPROCS %d\n",
		cfg.zones, cfg.lbs, cfg.lockMode, cfg.pullConcurrency, cfg.jitter*100, cfg.failRate, cfg.seed, runtime.GOMAXPROCS(0))
	var results []Result
	failed := false
	for _, n := range cfg.hosts {
		r := simulate(cfg, n)
		results = append(results, r)
		fmt.Printf("  %d hosts: %d batches, wall %.2fs, critical path %.2fs, overhead %.2f%%", n, r.Batches, r.WallS, r.CriticalPathS, r.OverheadPct)
		if !r.OK {
			failed = true
			fmt.Printf(" — DEPLOY FAILED: %s", firstLine(r.Error))
		}
		fmt.Println()
	}
	printTable(cfg, results)
	if err := writeJSON(cfg, results); err != nil {
		fmt.Fprintln(os.Stderr, "sim:", err)
		os.Exit(1)
	}
	fmt.Printf("\nwritten: %s\n", cfg.out)
	if failed {
		os.Exit(1)
	}
}

func parseFlags() (config, error) {
	var c config
	hosts := flag.String("hosts", "100,1000,5000", "fleet sizes to simulate, comma-separated")
	flag.IntVar(&c.zones, "zones", 4, "zones (hosts are spread round-robin)")
	flag.IntVar(&c.lbs, "lbs", 2, "load balancers")
	flag.IntVar(&c.batch, "batch", 0, "batch size (0: -batch-pct of the hosts, at least 1)")
	flag.Float64Var(&c.batchPct, "batch-pct", 10, "batch size as a percentage of the hosts, when -batch is 0")
	flag.IntVar(&c.minInService, "min-in-service", -1, "SpreadRules.MinInService (-1: hosts - batch size)")
	flag.IntVar(&c.pullConcurrency, "pull-concurrency", 64, "Executor.PullConcurrency")
	flag.DurationVar(&c.lats.Pull, "pull", 300*time.Millisecond, "latency of a pull")
	flag.DurationVar(&c.lats.Inspect, "inspect", 5*time.Millisecond, "latency of an inspect")
	flag.DurationVar(&c.lats.Create, "create", 100*time.Millisecond, "latency of a create")
	flag.DurationVar(&c.lats.Start, "start", 150*time.Millisecond, "latency of a start")
	flag.DurationVar(&c.lats.Stop, "stop", 150*time.Millisecond, "latency of a stop")
	flag.DurationVar(&c.lats.Rename, "rename", 10*time.Millisecond, "latency of a rename")
	flag.DurationVar(&c.lats.Remove, "remove", 20*time.Millisecond, "latency of a remove")
	flag.DurationVar(&c.lats.Probe, "probe", 5*time.Millisecond, "latency of a health probe")
	flag.DurationVar(&c.lats.Boot, "boot", 100*time.Millisecond, "time a started app takes to answer its health endpoint")
	flag.DurationVar(&c.lats.Drain, "drain", 150*time.Millisecond, "latency of a drain on one load balancer")
	flag.DurationVar(&c.lats.Restore, "restore", 50*time.Millisecond, "latency of a restore on one load balancer")
	flag.DurationVar(&c.lats.Reload, "lb-reload", 50*time.Millisecond, "part of a drain under the balancer lock in -lb-lock reload (a restore is all reload)")
	flag.StringVar(&c.lockMode, "lb-lock", lockNone, "balancer serialisation: none; reload (lock held for the reload only, as lb/nginx.go does); full (lock held for the whole drain/restore). reload/full take ~B*(drain+restore) per batch: minutes at 1,000+ hosts")
	flag.DurationVar(&c.lat.Interval, "health-interval", 20*time.Millisecond, "HealthCheck.Interval")
	flag.DurationVar(&c.lat.Timeout, "health-timeout", time.Second, "HealthCheck.Timeout")
	flag.IntVar(&c.lat.Threshold, "health-threshold", 2, "HealthCheck.Threshold")
	flag.DurationVar(&c.lat.Deadline, "health-deadline", 30*time.Second, "HealthCheck.Deadline")
	flag.Float64Var(&c.jitter, "jitter", 0.10, "latency jitter, ± this fraction")
	flag.Float64Var(&c.failRate, "fail-rate", 0, "probability that any one operation fails")
	flag.Uint64Var(&c.seed, "seed", 1, "random seed")
	flag.DurationVar(&c.sample, "sample", 5*time.Millisecond, "goroutine/memory sampling interval")
	flag.StringVar(&c.out, "out", filepath.Join("bench", "results", "sim.json"), "JSON results file")
	flag.Parse()
	for _, s := range strings.Split(*hosts, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			return c, fmt.Errorf("-hosts: %q is not a positive number", s)
		}
		c.hosts = append(c.hosts, n)
	}
	switch c.lockMode {
	case lockNone, lockReload, lockFull:
	default:
		return c, fmt.Errorf("-lb-lock: %q: want none, reload or full", c.lockMode)
	}
	if c.zones < 1 || c.lbs < 1 {
		return c, fmt.Errorf("-zones and -lbs must be at least 1")
	}
	c.lat.Path, c.lat.Status = "/healthz", 200
	return c, nil
}

func (c config) batchSize(n int) int {
	if c.batch > 0 {
		return c.batch
	}
	return max(1, int(float64(n)*c.batchPct/100))
}

// peaks samples goroutines and memory until stopped.
type peaks struct {
	heap, sys  uint64
	goroutines int
	samples    []metrics.Sample
	stop       chan struct{}
	done       sync.WaitGroup
}

// sampleMetrics are read with runtime/metrics, which does not stop the
// world (runtime.ReadMemStats does, every sample, and would slow the run it
// measures): heap in use, all memory the runtime mapped (MemStats.Sys) and
// goroutines.
var sampleMetrics = []string{"/memory/classes/heap/objects:bytes", "/memory/classes/heap/unused:bytes", "/memory/classes/total:bytes", "/sched/goroutines:goroutines"}

func (p *peaks) take() {
	if p.samples == nil {
		p.samples = make([]metrics.Sample, len(sampleMetrics))
		for i, name := range sampleMetrics {
			p.samples[i].Name = name
		}
	}
	metrics.Read(p.samples)
	v := func(i int) uint64 {
		if p.samples[i].Value.Kind() != metrics.KindUint64 {
			return 0
		}
		return p.samples[i].Value.Uint64()
	}
	p.heap, p.sys = max(p.heap, v(0)+v(1)), max(p.sys, v(2))
	p.goroutines = max(p.goroutines, int(v(3)))
}

func startSampler(every time.Duration) *peaks {
	p := &peaks{stop: make(chan struct{})}
	p.take()
	p.done.Add(1)
	go func() {
		defer p.done.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-p.stop:
				p.take()
				return
			case <-t.C:
				p.take()
			}
		}
	}()
	return p
}

func (p *peaks) end() {
	close(p.stop)
	p.done.Wait()
}

func simulate(cfg config, n int) Result {
	runtime.GC()
	const repo, oldTag, newTag = "registry.local/www", "v1", "v2"
	newImage := repo + ":" + newTag
	w := &world{lat: cfg.lats, jitter: cfg.jitter, failRate: cfg.failRate, lockMode: cfg.lockMode, nLB: cfg.lbs, health: cfg.lat, hosts: make(map[string]*simHost, n)}
	zones := make([]string, cfg.zones)
	for i := range zones {
		zones[i] = fmt.Sprintf("zone-%c", 'a'+i)
	}
	exec := &rollout.Executor{
		Hosts: make(map[string]rollout.Host, n),
		Service: rollout.ServiceSpec{
			Name: "www", ContainerName: "www", Port: 8080,
			Env:         func(h inventory.Host, _ int) []string { return []string{"HOST_NAME=" + h.Name} },
			Health:      cfg.lat,
			StopTimeout: 10 * time.Second, Options: inventory.ContainerOptions{LogMaxSize: "10m", LogMaxFile: 3},
		},
		PullConcurrency: cfg.pullConcurrency,
		PullTimeout:     5 * time.Minute,
		CleanupTimeout:  time.Minute,
		// Tells each fake host when its health step runs (simHost.healthStep).
		Observe: func(ev rollout.Event) {
			if ev.Step == string(rollout.StepHealth) {
				w.hosts[ev.Host].healthStep(ev.Done, ev.Duration)
			}
		},
	}
	lbNames := make([]string, cfg.lbs)
	for i := range lbNames {
		lbNames[i] = fmt.Sprintf("lb%d", i+1)
	}
	fleet := fakefleet.New(fakefleet.Spec{
		Hosts: n, Service: "www", Image: repo, From: oldTag, Balancers: lbNames, Port: 8080, HealthPath: cfg.lat.Path,
		Name:    func(i int) string { return fmt.Sprintf("host%05d", i) },
		Address: func(i int) string { return fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255) },
	})
	snaps := make([]rollout.HostSnapshot, 0, n)
	for i, fh := range fleet.Hosts {
		h := newSimHost(w, fh, i+1, cfg.seed)
		w.hosts[h.Name()] = h
		exec.Hosts[h.Name()] = h
		c, _ := fh.Container("www")
		snaps = append(snaps, rollout.HostSnapshot{
			Host:    inventory.Host{Name: h.Name(), Address: h.Address(), Zone: zones[i%len(zones)], Services: []string{"www"}},
			Current: &inventory.Container{ID: c.ID, Name: c.Name, Image: c.Image, Running: true, State: "running", Labels: c.Labels},
		})
	}
	for i, fb := range fleet.Balancers {
		exec.Balancers = append(exec.Balancers, newSimBalancer(w, fb, i, cfg.seed))
	}
	b := cfg.batchSize(n)
	minIn := cfg.minInService
	if minIn < 0 {
		minIn = max(0, n-b)
	}
	target := rollout.Target{Service: "www", Tag: newTag, Image: newImage}
	plan, err := rollout.PlanDeployWith(target, snaps, rollout.SpreadRules{BatchSize: b, MinInService: minIn, Serving: n}, rollout.Strategy{})
	res := Result{Hosts: n, BatchSize: b, Batches: len(plan.Batches)}
	if err != nil {
		res.Error = "plan: " + err.Error()
		return res
	}
	snaps = nil

	p := startSampler(cfg.sample)
	start := time.Now()
	rep := exec.Run(context.Background(), plan)
	wall := time.Since(start)
	p.end()

	res.WallS = wall.Seconds()
	res.PullS = rep.PullDuration.Seconds()
	res.PeakHeapMB = float64(p.heap) / (1 << 20)
	res.PeakSysMB = float64(p.sys) / (1 << 20)
	res.PeakGoroutines = p.goroutines
	res.PeakConcurrentOps = w.hostOps.peak.Load()
	res.PeakLBOps = w.lbOps.peak.Load()
	res.OK = rep.OK()
	if rep.Err != nil {
		res.Error = rep.Err.Error()
	} else if msg := checkEndState(fleet, plan, newImage); msg != "" {
		res.OK, res.Error = false, msg
	}

	// Critical path: the pull phase as a list schedule of the pull
	// latencies over PullConcurrency slots, in plan order (the order the
	// executor hands them out), then per batch the slowest host's path (see
	// the package comment for what is on it). Computed twice: with the
	// latencies the fakes' timers really took (the headline) and as drawn.
	pullDrawn := make([]time.Duration, len(plan.Pull))
	pullSlept := make([]time.Duration, len(plan.Pull))
	for i, h := range plan.Pull {
		t := w.hosts[h.Name].totals()
		pullDrawn[i], pullSlept[i] = t.pullSim, t.pullAct
	}
	pc := max(1, cfg.pullConcurrency)
	pullBound, pullBoundSlept := listSchedule(pullDrawn, pc), listSchedule(pullSlept, pc)
	waves := (len(plan.Pull) + pc - 1) / pc
	res.PullBoundNominalS = (time.Duration(waves) * cfg.lats.Pull).Seconds()
	crit, critSlept, critNoQueue := pullBound, pullBoundSlept, pullBound
	var lag time.Duration
	checks := 0
	for _, bt := range plan.Batches {
		var slow, slowSlept, slowNoQueue time.Duration
		for _, hp := range bt.Hosts {
			t := w.hosts[hp.Host.Name].totals()
			slow, slowSlept, slowNoQueue = max(slow, t.sim), max(slowSlept, t.act), max(slowNoQueue, t.sim-t.queue)
			lag += t.healthWall - t.healthIdeal
			checks += t.healthChecks
		}
		crit += slow
		critSlept += slowSlept
		critNoQueue += slowNoQueue
	}
	res.PullBoundS = pullBoundSlept.Seconds()
	res.CriticalPathS = critSlept.Seconds()
	res.CriticalPathDrawnS = crit.Seconds()
	res.TimerSlackS = (critSlept - crit).Seconds()
	res.ConfiguredWaitsS = (time.Duration(len(plan.Batches)*max(0, cfg.lat.Threshold-1)) * cfg.lat.Interval).Seconds()
	res.LBQueueS = (crit - critNoQueue).Seconds()
	if checks > 0 {
		res.HealthLagMs = float64(lag/time.Duration(checks)) / float64(time.Millisecond)
	}
	if critSlept > 0 {
		res.OverheadPct = 100 * float64(wall-critSlept) / float64(critSlept)
		res.OverheadDrawnPct = 100 * float64(wall-crit) / float64(crit)
	}
	return res
}

// listSchedule is the makespan of running ds in order on slots workers,
// each taking the next job as soon as it is free.
func listSchedule(ds []time.Duration, slots int) time.Duration {
	free := make([]time.Duration, min(slots, max(1, len(ds))))
	var end time.Duration
	for _, d := range ds {
		k := 0
		for i := range free {
			if free[i] < free[k] {
				k = i
			}
		}
		free[k] += d
		end = max(end, free[k])
	}
	return end
}

// checkEndState confirms every host runs only the new container, started,
// and no balancer still has a host drained.
func checkEndState(fleet *fakefleet.Fleet, plan rollout.Plan, image string) string {
	for _, h := range plan.Pull {
		fh := fleet.Host(h.Name)
		c, _ := fh.Container("www")
		if names := fh.Names(); len(names) != 1 || names[0] != "www" || c.Image != image || !c.Running {
			return "end state: " + h.Name + " does not run only the new www container"
		}
	}
	for _, b := range fleet.Balancers {
		if n := len(b.Drained()); n > 0 {
			return fmt.Sprintf("end state: %s still has %d host(s) drained", b.LoadBalancerName(), n)
		}
	}
	return ""
}

func printTable(cfg config, rs []Result) {
	fmt.Println()
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "HOSTS\tBATCH\tBATCHES\tWALL s\tCRIT PATH s\tOVERHEAD\tCONFIGURED WAITS s\tHEALTH LAG ms\tTIMER SLACK s\tOVH VS DRAWN\tPULL s\tPULL BOUND s\tPEAK HEAP MB\tPEAK SYS MB\tPEAK GOROUTINES\tPEAK OPS\t")
	for _, r := range rs {
		fmt.Fprintf(tw, "%d\t%d\t%d\t%.2f\t%.2f\t%.2f%%\t%.2f\t%.1f\t%.2f\t%.2f%%\t%.2f\t%.2f\t%.1f\t%.1f\t%d\t%d\t\n",
			r.Hosts, r.BatchSize, r.Batches, r.WallS, r.CriticalPathS, r.OverheadPct, r.ConfiguredWaitsS, r.HealthLagMs, r.TimerSlackS, r.OverheadDrawnPct,
			r.PullS, r.PullBoundS, r.PeakHeapMB, r.PeakSysMB, r.PeakGoroutines, r.PeakConcurrentOps)
	}
	tw.Flush()
	fmt.Println()
	for _, r := range rs {
		fmt.Printf("target overhead < %.0f%% at %d hosts: %s (%.2f%%; %.2f%% against the drawn latencies, the fakes' timer slack counted as overhead)\n",
			targetOverheadPct, r.Hosts, passMiss(r.OverheadPct < targetOverheadPct), r.OverheadPct, r.OverheadDrawnPct)
	}
	for _, r := range rs {
		if r.Hosts == targetPeakHosts {
			fmt.Printf("target peak memory < %.0f MB at %d hosts: %s (sys %.1f MB, heap in use %.1f MB)\n",
				targetPeakMB, r.Hosts, passMiss(r.PeakSysMB < targetPeakMB), r.PeakSysMB, r.PeakHeapMB)
		}
	}
	if cfg.lockMode == lockNone {
		// lb/nginx.go applies the changes queued behind its lock together
		// (one write + test + reload per service), so a batch's drains cost
		// about one reload and its restores another, whatever the batch size.
		perBatch := min(cfg.lats.Reload, cfg.lats.Drain) + cfg.lats.Restore
		fmt.Printf("balancers modelled without a lock (-lb-lock none): lb/nginx.go groups a batch's changes, about %.2fs of reloads per batch per LB whatever its size\n", perBatch.Seconds())
	} else {
		for _, r := range rs {
			fmt.Printf("balancer lock (%s) queueing on the critical path at %d hosts: ~%.2fs of %.2fs\n", cfg.lockMode, r.Hosts, r.LBQueueS, r.CriticalPathS)
		}
	}
}

func passMiss(ok bool) string {
	if ok {
		return "PASS"
	}
	return "MISS"
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}

func writeJSON(cfg config, rs []Result) error {
	out := map[string]any{
		"when":             time.Now().UTC().Format(time.RFC3339),
		"gomaxprocs":       runtime.GOMAXPROCS(0),
		"zones":            cfg.zones,
		"load_balancers":   cfg.lbs,
		"lb_lock":          cfg.lockMode,
		"pull_concurrency": cfg.pullConcurrency,
		"jitter":           cfg.jitter,
		"fail_rate":        cfg.failRate,
		"seed":             cfg.seed,
		"results":          rs,
	}
	data, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(cfg.out), 0o755); err != nil {
		return err
	}
	return os.WriteFile(cfg.out, append(data, '\n'), 0o644)
}
