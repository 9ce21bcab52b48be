// Command bench measures a gantry deploy on the lab against the
// bare-operations floor (bench/floor.sh), both under the same load through
// both load balancer frontends (loadgen.DefaultSlow: 10% of the requests
// take 1 to 2 s, so every drain has requests in flight), and prints the figures: pull time, per-host
// time out of rotation (median, max), total deploy time, the floor's
// per-host swap time and total, the ratios, and the load counts. It writes
// the same figures to bench/results/latest.json. Run it with `make bench`
// (the lab must be up: `make lab`).
//
// It is a benchmark: it prints figures and fails only when something does
// not work (a deploy fails, a request fails), never on a time.
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
	"sort"
	"strings"
	"text/tabwriter"
	"time"

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

func run() error {
	config := envOr("GANTRY_LAB_CONFIG", "lab/gantry.yml")
	gantry := envOr("GANTRY_BIN", "bin/gantry")
	if _, err := os.Stat(config); err != nil {
		return fmt.Errorf("lab config %s: %w (run `make lab` first)", config, err)
	}

	a, b, c := publish(), publish(), publish()
	fmt.Printf("published %s %s %s\n", a, b, c)
	if _, err := deploy(gantry, config, a); err != nil { // baseline, not measured
		return err
	}

	fmt.Println("floor: bench/floor.sh, host after host, under load ...")
	var floorOut []byte
	floorLoad, err := underLoad(func() error {
		var err error
		floorOut, err = exec.Command("bench/floor.sh", image(b)).Output()
		return err
	})
	if err != nil {
		return fmt.Errorf("bench/floor.sh: %w", err)
	}
	var fh []floorHost
	var floorTotal struct {
		TotalS     float64 `json:"total_s"`
		PullTotalS float64 `json:"pull_total_s"`
	}
	sc := bufio.NewScanner(bytes.NewReader(floorOut))
	for sc.Scan() {
		line := sc.Bytes()
		if bytes.Contains(line, []byte(`"host"`)) {
			var h floorHost
			if err := json.Unmarshal(line, &h); err != nil {
				return err
			}
			fh = append(fh, h)
		} else if err := json.Unmarshal(line, &floorTotal); err != nil {
			return err
		}
	}
	swaps := make([]float64, len(fh))
	for i, h := range fh {
		swaps[i] = h.SwapS
	}
	floorMedian := median(swaps)

	fmt.Println("gantry: deploy under load ...")
	var sum rollout.Summary
	gantryLoad, err := underLoad(func() error {
		var err error
		sum, err = deploy(gantry, config, c)
		return err
	})
	if err != nil {
		return err
	}

	fmt.Println("gantry: emergency rollback under load ...")
	var rb rollout.Summary
	rollbackLoad, err := underLoad(func() error {
		var err error
		rb, err = gantryRun(gantry, config, "rollback", "www", "--env", "lab", "--emergency")
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

	results := map[string]any{
		"floor_per_host_s":                  round(floorMedian),
		"floor_total_s":                     round(floorTotal.TotalS),
		"floor_pull_total_s":                round(floorTotal.PullTotalS),
		"pull_s":                            round(sum.PullS),
		"out_of_rotation_median_s":          round(sum.OutOfRotationMedianS),
		"out_of_rotation_max_s":             round(sum.OutOfRotationMaxS),
		"deploy_total_s":                    round(sum.TotalS),
		"rollback_total_s":                  round(rb.TotalS),
		"rollback_requests":                 rollbackLoad.Requests,
		"rollback_non2xx":                   rollbackLoad.Non2xx,
		"rollback_errors":                   rollbackLoad.Errors,
		"ratio_out_of_rotation":             round(sum.OutOfRotationMedianS / floorMedian),
		"ratio_total":                       round(sum.TotalS / floorTotal.TotalS),
		"hosts":                             len(sum.Hosts),
		"requests":                          gantryLoad.Requests,
		"non2xx":                            gantryLoad.Non2xx,
		"errors":                            gantryLoad.Errors,
		"floor_requests":                    floorLoad.Requests,
		"floor_non2xx":                      floorLoad.Non2xx,
		"floor_errors":                      floorLoad.Errors,
		"load_rate_rps":                     loadRate,
		"start_first_out_of_rotation_max_s": round(sf.OutOfRotationMaxS),
		"start_first_total_s":               round(sf.TotalS),
		"start_first_requests":              sfLoad.Requests,
		"start_first_non2xx":                sfLoad.Non2xx,
		"start_first_errors":                sfLoad.Errors,
		"when":                              time.Now().UTC().Format(time.RFC3339),
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "\n%d hosts, load %d req/s through 2 LBs\t gantry\t floor\t gantry/floor\t\n", len(sum.Hosts), loadRate)
	fmt.Fprintf(tw, "pull phase (s)\t %.2f\t %.2f (sum, sequential)\t \t\n", sum.PullS, floorTotal.PullTotalS)
	fmt.Fprintf(tw, "per host out of rotation, median (s)\t %.2f\t %.2f\t %.2fx\t\n", sum.OutOfRotationMedianS, floorMedian, sum.OutOfRotationMedianS/floorMedian)
	fmt.Fprintf(tw, "per host out of rotation, max (s)\t %.2f\t %.2f\t \t\n", sum.OutOfRotationMaxS, maxOf(swaps))
	fmt.Fprintf(tw, "total deploy (s)\t %.2f\t %.2f\t %.2fx\t\n", sum.TotalS, floorTotal.TotalS, sum.TotalS/floorTotal.TotalS)
	fmt.Fprintf(tw, "emergency rollback, %d hosts (s)\t %.2f\t \t \t\n", len(rb.Hosts), rb.TotalS)
	fmt.Fprintf(tw, "requests / non-2xx / failed (deploy)\t %d / %d / %d\t %d / %d / %d\t \t\n",
		gantryLoad.Requests, gantryLoad.Non2xx, gantryLoad.Errors, floorLoad.Requests, floorLoad.Non2xx, floorLoad.Errors)
	fmt.Fprintf(tw, "requests / non-2xx / failed (rollback)\t %d / %d / %d\t \t \t\n", rollbackLoad.Requests, rollbackLoad.Non2xx, rollbackLoad.Errors)
	fmt.Fprintf(tw, "start-first: per host out of rotation, max (s)\t %.2f\t \t \t\n", sf.OutOfRotationMaxS)
	fmt.Fprintf(tw, "start-first: total deploy (s)\t %.2f\t \t \t\n", sf.TotalS)
	fmt.Fprintf(tw, "requests / non-2xx / failed (start-first)\t %d / %d / %d\t \t \t\n", sfLoad.Requests, sfLoad.Non2xx, sfLoad.Errors)
	tw.Flush()

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
	if gantryLoad.Non2xx+gantryLoad.Errors > 0 {
		return fmt.Errorf("users saw %d non-2xx and %d failed requests during the gantry deploy: %v", gantryLoad.Non2xx, gantryLoad.Errors, gantryLoad.FirstErrors)
	}
	return nil
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
	return gantryRun(gantry, config, "deploy", target, "--env", "lab")
}

// gantryRun runs one gantry command with --report and returns the report.
func gantryRun(gantry, config string, args ...string) (rollout.Summary, error) {
	report := filepath.Join(os.TempDir(), "gantry-bench-report.json")
	_ = os.Remove(report)
	cmd := exec.Command(gantry, append(append([]string{"--config", config}, args...), "--report", report)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return rollout.Summary{}, fmt.Errorf("gantry %s: %w\n%s", strings.Join(args, " "), err, out.String())
	}
	var s rollout.Summary
	data, err := os.ReadFile(report)
	if err != nil {
		return s, err
	}
	return s, json.Unmarshal(data, &s)
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

func maxOf(xs []float64) float64 {
	m := 0.0
	for _, x := range xs {
		m = max(m, x)
	}
	return m
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
