// Command bench measures gantry's deploys on the lab against the
// bare-operations floor (bench/floor.sh), all under the same load through
// both load balancer frontends (loadgen.DefaultSlow: 10% of the requests
// take 1 to 2 s, so every drain has requests in flight). Each figure is
// measured BENCH_RUNS times (default 3) and printed as median (min-max):
//
//   - the floor, raw (pulls in parallel, as gantry does, then host after
//     host with no waits) and with the same waits gantry makes on purpose
//     (nginx's old workers after the drain, the configured health passes);
//   - gantry's per-host time out of rotation, split into the app's boot,
//     the configured waits, the requests in flight and gantry's own; the
//     total; the fixed cost before the first pull; the run's own phases; a
//     no-op deploy;
//   - how the deploy grows with the fleet: with no load, the 4 hosts of
//     environment lab and, when the lab has 24 hosts, environment big, at
//     the same batch share (a quarter);
//   - an emergency rollback and a start-first deploy.
//
// It writes the figures to bench/results/latest.json. Run it with `make
// bench`. It is a benchmark: it prints figures and fails only when
// something does not work (a deploy fails, a request fails), never on a
// time.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/gantry-dev/gantry/lab/loadgen"
	"github.com/gantry-dev/gantry/rollout"
)

var frontends = []string{"http://127.0.0.1:8001/", "http://127.0.0.1:8002/"}

// loadRate is the request rate held during each measured deploy: steady
// traffic that leaves the 2-core lab's CPU to the fleet being measured.
const loadRate = 200

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

type floorHost struct {
	Host  string  `json:"host"`
	PullS float64 `json:"pull_s"`
	SwapS float64 `json:"swap_s"`
}

// stats are a figure's repeated measurements: median and spread.
type stats []float64

func (x stats) median() float64 { return median(x) }
func (x stats) min() float64    { return slices.Min(x) } // every figure has at least one run
func (x stats) max() float64    { return slices.Max(x) }

// json is the figure in the results file.
func (x stats) json() map[string]any {
	return map[string]any{"median": round(x.median()), "min": round(x.min()), "max": round(x.max()), "runs": len(x)}
}

// cell is "median (min-max)".
func (x stats) cell() string {
	if len(x) == 1 {
		return fmt.Sprintf("%.3f", x[0])
	}
	return fmt.Sprintf("%.3f (%.3f-%.3f)", x.median(), x.min(), x.max())
}

// target is one of the targets: a figure and its limit (at most
// the limit for "failed_requests", under it for the others).
type target struct {
	key, what    string
	value, limit float64
	unit         string
}

func (t target) met() bool {
	if t.limit == 0 {
		return t.value == 0
	}
	return t.value < t.limit
}

// runFigures are one measured gantry deploy's figures.
type runFigures struct {
	sum rollout.Summary
	// beforePull is from the command's start to its first pull starting:
	// the run's fixed cost (process start, config, connections, lock,
	// observation, pre-flight, hooks).
	beforePull float64
	wall       float64
}

// floorRun is one run of bench/floor.sh.
type floorRun struct {
	perHost, total, pull float64
}

func run() error {
	config := envOr("GANTRY_LAB_CONFIG", "lab/gantry.yml")
	bigConfig := envOr("GANTRY_LAB_BIG_CONFIG", "lab/gantry-big.yml")
	gantry := envOr("GANTRY_BIN", "bin/gantry")
	runs := 3
	if v := os.Getenv("BENCH_RUNS"); v != "" {
		if _, err := fmt.Sscan(v, &runs); err != nil || runs < 1 {
			return fmt.Errorf("BENCH_RUNS=%q: want a count of at least 1", v)
		}
	}
	if _, err := os.Stat(config); err != nil {
		return fmt.Errorf("lab config %s: %w (run `make lab` first)", config, err)
	}
	passes, interval, err := healthOf(config)
	if err != nil {
		return err
	}
	if _, err := deploy(gantry, config, publish()); err != nil { // baseline, not measured
		return err
	}

	// The floor, raw and with the same waits, and gantry, each several
	// times, alternating so that they share the machine's moods.
	var raw, fair []floorRun
	var gantryRuns []runFigures
	var noop stats
	// The floor's loads, raw and with the same waits: the raw floor does
	// not wait for the requests in flight, so it may fail some.
	var rawLoads, fairLoads, gantryLoads []loadgen.Result
	for i := range runs {
		fmt.Printf("run %d of %d: floor (raw), floor (same waits), gantry deploy, no-op deploy ...\n", i+1, runs)
		for _, fairRun := range []bool{false, true} {
			var fr floorRun
			load, err := underLoad(func() error {
				var err error
				fr, err = floor(image(publish()), fairRun, passes, interval)
				return err
			})
			if err != nil {
				return fmt.Errorf("bench/floor.sh: %w", err)
			}
			if fairRun {
				fair, fairLoads = append(fair, fr), append(fairLoads, load)
			} else {
				raw, rawLoads = append(raw, fr), append(rawLoads, load)
			}
		}
		rf, again, load, err := deployAndAgain(gantry, config)
		if err != nil {
			return err
		}
		gantryLoads = append(gantryLoads, load)
		gantryRuns = append(gantryRuns, rf)
		noop = append(noop, again.wall)
	}

	// Connections kept between commands (ssh.persist): the first deploy
	// dials every machine and starts a keeper (cold); the next ones go
	// through the connections it kept (warm). Each is followed by a
	// no-op deploy, also through the keeper.
	fmt.Println("gantry: deploys with ssh.persist (connections kept) under load ...")
	keptConfig, keepers, err := persistConfig(config)
	if err != nil {
		return err
	}
	defer os.Remove(keptConfig)
	stopKeepers(keepers) // a keeper an earlier bench left: the first run is cold
	defer stopKeepers(keepers)
	var keptCold float64
	var keptWarm, keptNoop stats
	for i := 0; i <= runs; i++ {
		rf, again, load, err := deployAndAgain(gantry, keptConfig)
		if err != nil {
			return err
		}
		gantryLoads = append(gantryLoads, load) // their requests count with the others
		if i == 0 {
			keptCold = rf.beforePull
			continue
		}
		keptWarm = append(keptWarm, rf.beforePull)
		keptNoop = append(keptNoop, again.wall)
	}

	fmt.Println("gantry: emergency rollback under load ...")
	var rb rollout.Summary
	rollbackLoad, err := underLoad(func() error {
		var err error
		rb, _, err = gantryRun(gantry, config, "rollback", "www", "--env", "lab", "--emergency")
		return err
	})
	if err != nil {
		return err
	}

	// Start-first (order: start-first, ports [8080, 8081]): the same
	// deploy where the host never leaves rotation; then the lab goes back
	// to its stock stop-first config on 8080.
	fmt.Println("gantry: start-first deploy under load ...")
	sfConfig, err := startFirstConfig(config)
	if err != nil {
		return err
	}
	defer os.Remove(sfConfig)
	d, e := publish(), publish()
	var sf rollout.Summary
	sfLoad, err := underLoad(func() error {
		var err error
		sf, err = deploy(gantry, sfConfig, d)
		return err
	})
	if err != nil {
		return err
	}
	if _, err := deploy(gantry, config, e); err != nil { // back to stop-first on 8080
		return err
	}

	// How the deploy grows with the fleet: the 24-host environment big at
	// the same batch share as lab's (1 of 4: a quarter), and lab's 4 hosts
	// the same way (no load, so no requests in flight to wait for: the
	// same service but for its name and port).
	var small, big stats
	for i := range runs {
		fmt.Printf("run %d of %d: gantry deploy of 4 hosts (environment lab), no load ...\n", i+1, runs)
		rf, err := measuredDeploy(gantry, config, publish(), "lab")
		if err != nil {
			return err
		}
		small = append(small, rf.sum.TotalS)
	}
	smallHosts := len(gantryRuns[0].sum.Hosts)
	bigHosts := 0
	if bc, hosts, err := quarterBatches(bigConfig); err != nil {
		fmt.Printf("no large-fleet figure: %v (start the lab with LAB_HOSTS=24)\n", err)
	} else {
		defer os.Remove(bc)
		bigHosts = hosts
		if _, err := measuredDeploy(gantry, bc, strings.Replace(publish(), "www@", "big@", 1), "big"); err != nil { // baseline
			return err
		}
		for i := range runs {
			fmt.Printf("run %d of %d: gantry deploy of %d hosts (environment big) ...\n", i+1, runs, hosts)
			rf, err := measuredDeploy(gantry, bc, strings.Replace(publish(), "www@", "big@", 1), "big")
			if err != nil {
				return err
			}
			big = append(big, rf.sum.TotalS)
		}
	}

	// The figures, each over the runs.
	var oor, total, pull, beforePull, boot, waits, inFlight, dockerPart, nginxPart, own stats
	phases := map[string]stats{}
	for _, r := range gantryRuns {
		oor = append(oor, r.sum.OutOfRotationMedianS)
		total = append(total, r.sum.TotalS)
		pull = append(pull, r.sum.PullS)
		beforePull = append(beforePull, r.beforePull)
		var b, w, f, dk, ng, g []float64
		for _, h := range r.sum.Hosts {
			if p := h.OutOfRotationParts; p != nil {
				b, w, f, g = append(b, p.Boot), append(w, p.Waits), append(f, p.InFlight), append(g, p.Gantry)
				dk, ng = append(dk, p.Docker), append(ng, p.Nginx)
			}
		}
		boot, waits, inFlight, own = append(boot, median(b)), append(waits, median(w)), append(inFlight, median(f)), append(own, median(g))
		dockerPart, nginxPart = append(dockerPart, median(dk)), append(nginxPart, median(ng))
		for name, sec := range r.sum.RunPhasesS {
			phases[name] = append(phases[name], sec)
		}
	}
	var rawPerHost, rawTotal, fairPerHost, fairTotal stats
	for _, f := range raw {
		rawPerHost, rawTotal = append(rawPerHost, f.perHost), append(rawTotal, f.total)
	}
	for _, f := range fair {
		fairPerHost, fairTotal = append(fairPerHost, f.perHost), append(fairTotal, f.total)
	}
	requests, failed := loadTotals(gantryLoads)
	rawRequests, rawFailed := loadTotals(rawLoads)
	fairRequests, fairFailed := loadTotals(fairLoads)
	phaseJSON := map[string]any{}
	for name, x := range phases {
		phaseJSON[name] = x.json()
	}
	results := map[string]any{
		"runs":                              runs,
		"hosts":                             len(gantryRuns[0].sum.Hosts),
		"health_passes":                     passes,
		"health_interval_s":                 interval,
		"floor_per_host_s":                  rawPerHost.json(),
		"floor_total_s":                     rawTotal.json(),
		"fair_floor_per_host_s":             fairPerHost.json(),
		"fair_floor_total_s":                fairTotal.json(),
		"out_of_rotation_median_s":          oor.json(),
		"out_of_rotation_boot_s":            boot.json(),
		"out_of_rotation_waits_s":           waits.json(),
		"out_of_rotation_in_flight_s":       inFlight.json(),
		"out_of_rotation_docker_s":          dockerPart.json(),
		"out_of_rotation_nginx_s":           nginxPart.json(),
		"out_of_rotation_gantry_s":          own.json(),
		"deploy_total_s":                    total.json(),
		"pull_s":                            pull.json(),
		"fixed_cost_before_pull_s":          beforePull.json(),
		"run_phases_s":                      phaseJSON,
		"noop_deploy_s":                     noop.json(),
		"ratio_out_of_rotation":             round(oor.median() / rawPerHost.median()),
		"ratio_total":                       round(total.median() / rawTotal.median()),
		"ratio_out_of_rotation_fair":        round(oor.median() / fairPerHost.median()),
		"ratio_total_fair":                  round(total.median() / fairTotal.median()),
		"requests":                          requests,
		"failed_requests":                   failed,
		"floor_requests":                    rawRequests,
		"floor_failed_requests":             rawFailed,
		"fair_floor_requests":               fairRequests,
		"fair_floor_failed_requests":        fairFailed,
		"rollback_total_s":                  round(rb.TotalS),
		"rollback_requests":                 rollbackLoad.Requests,
		"rollback_failed_requests":          rollbackLoad.Non2xx + rollbackLoad.Errors,
		"load_rate_rps":                     loadRate,
		"start_first_out_of_rotation_max_s": round(sf.OutOfRotationMaxS),
		"start_first_total_s":               round(sf.TotalS),
		"start_first_requests":              sfLoad.Requests,
		"start_first_failed_requests":       sfLoad.Non2xx + sfLoad.Errors,
		"when":                              time.Now().UTC().Format(time.RFC3339),
	}
	results["kept_connections"] = map[string]any{
		"fixed_cost_before_pull_cold_s": round(keptCold),
		"fixed_cost_before_pull_s":      keptWarm.json(),
		"noop_deploy_s":                 keptNoop.json(),
	}
	results["small_fleet_hosts"] = smallHosts
	results["small_fleet_deploy_total_s"] = small.json()
	if len(big) > 0 {
		results["large_fleet_hosts"] = bigHosts
		results["large_fleet_deploy_total_s"] = big.json()
	}
	// The targets, each judged on its median.
	targets := []target{
		{"out_of_rotation_gantry_s", "gantry's own time per host out of rotation", own.median(), 0.050, "s"},
		{"fixed_cost_before_pull_s", "fixed cost before the first pull", beforePull.median(), 0.300, "s"},
		{"noop_deploy_s", "no-op deploy", noop.median(), 0.500, "s"},
		{"kept_fixed_cost_before_pull_s", "fixed cost before the first pull, ssh.persist, warm", keptWarm.median(), 0.300, "s"},
		{"kept_noop_deploy_s", "no-op deploy, ssh.persist, warm", keptNoop.median(), 0.500, "s"},
		{"ratio_out_of_rotation_fair", "per host out of rotation / floor with the same waits", oor.median() / fairPerHost.median(), 1.3, "x"},
		{"ratio_total_fair", "total deploy / floor with the same waits", total.median() / fairTotal.median(), 1.2, "x"},
		{"failed_requests", "failed requests, gantry's measured runs", float64(failed), 0, ""},
	}
	judged := map[string]any{}
	for _, t := range targets {
		judged[t.key] = map[string]any{"value": round(t.value), "limit": t.limit, "met": t.met()}
	}
	results["targets"] = judged
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "\n%d hosts, %d runs each (median (min-max)), load %d req/s through 2 LBs\t gantry\t floor\t floor, same waits\t gantry/floor\t gantry/same waits\t\n", len(gantryRuns[0].sum.Hosts), runs, loadRate)
	fmt.Fprintf(tw, "per host out of rotation (s)\t %s\t %s\t %s\t %.2fx\t %.2fx\t\n", oor.cell(), rawPerHost.cell(), fairPerHost.cell(), oor.median()/rawPerHost.median(), oor.median()/fairPerHost.median())
	fmt.Fprintf(tw, "  of which the app's boot (s)\t %s\t \t \t \t \t\n", boot.cell())
	fmt.Fprintf(tw, "  of which the configured waits (%d passes, %gs apart) (s)\t %s\t \t \t \t \t\n", passes, interval, waits.cell())
	fmt.Fprintf(tw, "  of which requests in flight (s)\t %s\t \t \t \t \t\n", inFlight.cell())
	fmt.Fprintf(tw, "  of which the Docker daemon's stop and start (s)\t %s\t \t \t \t \t\n", dockerPart.cell())
	fmt.Fprintf(tw, "  of which nginx's reload, timed on the LBs (s)\t %s\t \t \t \t \t\n", nginxPart.cell())
	fmt.Fprintf(tw, "  of which gantry's own (s)\t %s\t \t \t \t \t\n", own.cell())
	fmt.Fprintf(tw, "total deploy (s)\t %s\t %s\t %s\t %.2fx\t %.2fx\t\n", total.cell(), rawTotal.cell(), fairTotal.cell(), total.median()/rawTotal.median(), total.median()/fairTotal.median())
	fmt.Fprintf(tw, "pull, every host at once (s)\t %s\t \t \t \t \t\n", pull.cell())
	fmt.Fprintf(tw, "fixed cost before the first pull (s)\t %s\t \t \t \t \t\n", beforePull.cell())
	var names []string
	for n := range phases {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(tw, "  run phase %s (s)\t %s\t \t \t \t \t\n", n, phases[n].cell())
	}
	fmt.Fprintf(tw, "no-op deploy (every host on the target) (s)\t %s\t \t \t \t \t\n", noop.cell())
	fmt.Fprintf(tw, "ssh.persist: fixed cost before the first pull, first run (cold) / next runs (s)\t %.3f / %s\t \t \t \t \t\n", keptCold, keptWarm.cell())
	fmt.Fprintf(tw, "ssh.persist: no-op deploy, next runs (s)\t %s\t \t \t \t \t\n", keptNoop.cell())
	fmt.Fprintf(tw, "no load, batches of a quarter: deploy of %d hosts (s)\t %s\t \t \t \t \t\n", smallHosts, small.cell())
	if len(big) > 0 {
		fmt.Fprintf(tw, "no load, batches of a quarter: deploy of %d hosts (s)\t %s\t \t \t \t \t\n", bigHosts, big.cell())
	}
	fmt.Fprintf(tw, "emergency rollback, %d hosts (s)\t %.2f\t \t \t \t \t\n", len(rb.Hosts), rb.TotalS)
	fmt.Fprintf(tw, "start-first: per host out of rotation, max / total (s)\t %.2f / %.2f\t \t \t \t \t\n", sf.OutOfRotationMaxS, sf.TotalS)
	fmt.Fprintf(tw, "requests / failed: gantry runs, floor runs (raw, same waits), rollback, start-first\t %d / %d\t %d / %d\t %d / %d\t %d / %d\t %d / %d\t\n",
		requests, failed, rawRequests, rawFailed, fairRequests, fairFailed, rollbackLoad.Requests, rollbackLoad.Non2xx+rollbackLoad.Errors, sfLoad.Requests, sfLoad.Non2xx+sfLoad.Errors)
	tw.Flush()
	fmt.Println("\ntargets (medians):")
	for _, t := range targets {
		mark := "met"
		if !t.met() {
			mark = "NOT met"
		}
		fmt.Printf("  %-55s %8.3f%s  (limit %g%s)  %s\n", t.what, t.value, t.unit, t.limit, t.unit, mark)
	}

	data, _ := json.MarshalIndent(results, "", "  ")
	if err := os.MkdirAll("bench/results", 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join("bench", "results", "latest.json"), append(data, '\n'), 0o644); err != nil {
		return err
	}
	fmt.Println("\nwritten: bench/results/latest.json")
	if rollbackLoad.Non2xx+rollbackLoad.Errors > 0 {
		return fmt.Errorf("users saw %d non-2xx and %d failed requests during the rollback: %v", rollbackLoad.Non2xx, rollbackLoad.Errors, rollbackLoad.FirstErrors)
	}
	if sfLoad.Non2xx+sfLoad.Errors > 0 {
		return fmt.Errorf("users saw %d non-2xx and %d failed requests during the start-first deploy: %v", sfLoad.Non2xx, sfLoad.Errors, sfLoad.FirstErrors)
	}
	if failed > 0 {
		return fmt.Errorf("users saw %d failed requests during the gantry deploys", failed)
	}
	return nil
}

// floor runs bench/floor.sh once (fair: with gantry's waits).
func floor(img string, fair bool, passes int, interval float64) (floorRun, error) {
	cmd := exec.Command("bench/floor.sh", img)
	cmd.Env = os.Environ()
	if fair {
		cmd.Env = append(cmd.Env, "FAIR=1", fmt.Sprintf("PASSES=%d", passes), fmt.Sprintf("INTERVAL=%g", interval))
	}
	out, err := cmd.Output()
	if err != nil {
		return floorRun{}, err
	}
	var swaps []float64
	var fr floorRun
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := sc.Bytes()
		if bytes.Contains(line, []byte(`"host"`)) {
			var h floorHost
			if err := json.Unmarshal(line, &h); err != nil {
				return fr, err
			}
			swaps = append(swaps, h.SwapS)
			continue
		}
		var t struct {
			TotalS     float64 `json:"total_s"`
			PullTotalS float64 `json:"pull_total_s"`
		}
		if err := json.Unmarshal(line, &t); err != nil {
			return fr, err
		}
		fr.total, fr.pull = t.TotalS, t.PullTotalS
	}
	fr.perHost = median(swaps)
	return fr, nil
}

// measuredDeploy deploys target with --json and --report, and returns the
// report, the time from the command's start to its first pull, and its wall
// time.
func measuredDeploy(gantry, config, target, env string) (runFigures, error) {
	start := time.Now()
	sum, out, err := gantryRun(gantry, config, "deploy", target, "--env", env, "--json")
	rf := runFigures{sum: sum, wall: time.Since(start).Seconds()}
	if err != nil {
		return rf, err
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var ev struct {
			Type, Step, Status, Time string
		}
		if json.Unmarshal(sc.Bytes(), &ev) == nil && ev.Type == "step" && ev.Step == "pull" && ev.Status == "started" {
			if at, err := time.Parse(time.RFC3339Nano, ev.Time); err == nil {
				rf.beforePull = at.Sub(start).Seconds()
			}
			break
		}
	}
	return rf, nil
}

// deployAndAgain deploys a new version under load (measured), then the
// same target again: nothing to change (measured, no load).
func deployAndAgain(gantry, config string) (rf, again runFigures, load loadgen.Result, err error) {
	target := publish()
	load, err = underLoad(func() error {
		var err error
		rf, err = measuredDeploy(gantry, config, target, "lab")
		return err
	})
	if err != nil {
		return rf, again, load, err
	}
	again, err = measuredDeploy(gantry, config, target, "lab")
	return rf, again, load, err
}

// healthOf reads the lab service's health check: how many passes it needs
// and how far apart.
func healthOf(config string) (passes int, interval float64, err error) {
	data, err := os.ReadFile(config)
	if err != nil {
		return 0, 0, err
	}
	var c struct {
		Services map[string]struct {
			Health struct {
				Interval  string `yaml:"interval"`
				Threshold int    `yaml:"healthy_threshold"`
			} `yaml:"health"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(data, &c); err != nil {
		return 0, 0, fmt.Errorf("%s: %w", config, err)
	}
	h := c.Services["www"].Health
	d, err := time.ParseDuration(h.Interval)
	if err != nil || h.Threshold < 1 {
		return 0, 0, fmt.Errorf("%s: services.www.health: interval %q, healthy_threshold %d", config, h.Interval, h.Threshold)
	}
	return h.Threshold, d.Seconds(), nil
}

// quarterBatches writes a copy of the big environment's config (every lab
// host) with batches of a quarter of its hosts, and returns it and the
// number of hosts.
func quarterBatches(config string) (string, int, error) {
	data, err := os.ReadFile(config)
	if err != nil {
		return "", 0, err
	}
	hosts := bytes.Count(data, []byte("      - name: host"))
	if hosts < 8 {
		return "", 0, fmt.Errorf("%s lists %d hosts", config, hosts)
	}
	re := regexp.MustCompile(`(?m)^    batch_size: \d+$`)
	if !re.Match(data) {
		return "", 0, fmt.Errorf("%s has no batch_size", config)
	}
	data = re.ReplaceAll(data, []byte(fmt.Sprintf("    batch_size: %d", hosts/4)))
	p := filepath.Join(filepath.Dir(config), ".gantry-big-quarter.yml")
	return p, hosts, os.WriteFile(p, data, 0o600)
}

// loadTotals adds up the requests of loads and those that failed (non-2xx
// or no answer).
func loadTotals(loads []loadgen.Result) (requests, failed int) {
	for _, l := range loads {
		requests += l.Requests
		failed += l.Non2xx + l.Errors
	}
	return requests, failed
}

func publish() string {
	out, err := exec.Command("lab/publish").Output()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench: lab/publish:", err)
		os.Exit(1)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return lines[len(lines)-1]
}

func image(target string) string {
	_, tag, _ := strings.Cut(target, "@")
	return "127.0.0.1:5000/gantry/www:" + tag
}

func deploy(gantry, config, target string) (rollout.Summary, error) {
	sum, _, err := gantryRun(gantry, config, "deploy", target, "--env", "lab")
	return sum, err
}

// gantryRun runs one gantry command with --report and returns the report
// (zero when the command wrote none: a deploy with nothing to change) and
// what it wrote on stdout.
func gantryRun(gantry, config string, args ...string) (rollout.Summary, []byte, error) {
	report := filepath.Join(os.TempDir(), "gantry-bench-report.json")
	_ = os.Remove(report)
	cmd := exec.Command(gantry, append(append([]string{"--config", config}, args...), "--report", report)...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	var s rollout.Summary
	if err := cmd.Run(); err != nil {
		return s, out.Bytes(), fmt.Errorf("gantry %s: %w\n%s%s", strings.Join(args, " "), err, out.String(), errOut.String())
	}
	data, err := os.ReadFile(report)
	if os.IsNotExist(err) {
		return s, out.Bytes(), nil
	}
	if err != nil {
		return s, out.Bytes(), err
	}
	return s, out.Bytes(), json.Unmarshal(data, &s)
}

// underLoad runs fn while the load generator runs through both frontends.
func underLoad(fn func() error) (loadgen.Result, error) {
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan loadgen.Result)
	go func() { done <- loadgen.Run(ctx, frontends, 4, loadRate, 10*time.Minute) }()
	time.Sleep(300 * time.Millisecond)
	err := fn()
	time.Sleep(300 * time.Millisecond)
	stop()
	return <-done, err
}

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func round(x float64) float64 { return float64(int(x*1000+0.5)) / 1000 }

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// startFirstConfig writes a copy of the lab config with www start-first on
// ports 8080 and 8081, beside it (relative paths keep working).
// persistConfig writes a copy of the lab config keeping connections
// between commands (ssh.persist), its keepers' sockets and pid files in
// the lab state's keepers directory (which lab/down stops); it returns the
// copy and that directory.
func persistConfig(config string) (string, string, error) {
	data, err := os.ReadFile(config)
	if err != nil {
		return "", "", err
	}
	dir := filepath.Join(envOr("LAB_STATE", "/tmp/gantry-lab"), "keepers")
	anchor := []byte("\nssh:\n")
	if !bytes.Contains(data, anchor) {
		return "", "", fmt.Errorf("%s has no ssh section: cannot make a copy with ssh.persist", config)
	}
	data = bytes.Replace(data, anchor, []byte("\nssh:\n  persist: 60s\n  persist_dir: "+dir+"\n"), 1)
	p := filepath.Join(filepath.Dir(config), ".gantry-persist.yml")
	return p, dir, os.WriteFile(p, data, 0o600)
}

// stopKeepers stops the keepers of dir, by their pid files, and waits
// (bounded) for them to exit.
func stopKeepers(dir string) {
	files, _ := filepath.Glob(filepath.Join(dir, "*.pid"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		var pid int
		if _, err := fmt.Sscan(string(b), &pid); err != nil || pid <= 0 {
			continue
		}
		// Only a keeper: a stale pid file may name another process now.
		if cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); err != nil || !bytes.Contains(cmdline, []byte("ssh-keeper")) {
			continue
		}
		if syscall.Kill(pid, syscall.SIGTERM) != nil {
			continue
		}
		for i := 0; i < 100 && syscall.Kill(pid, 0) == nil; i++ {
			time.Sleep(20 * time.Millisecond)
		}
	}
}

func startFirstConfig(config string) (string, error) {
	data, err := os.ReadFile(config)
	if err != nil {
		return "", err
	}
	for _, r := range [][2]string{
		{"    port: 8080\n", "    order: start-first\n    ports: [8080, 8081]\n"},
		{`LISTEN: "${host.address}:8080"`, `LISTEN: "${host.address}:${port}"`},
	} {
		if !bytes.Contains(data, []byte(r[0])) {
			return "", fmt.Errorf("%s has no %q: cannot make a start-first copy", config, r[0])
		}
		data = bytes.Replace(data, []byte(r[0]), []byte(r[1]), 1)
	}
	p := filepath.Join(filepath.Dir(config), ".gantry-start-first.yml")
	return p, os.WriteFile(p, data, 0o600)
}
