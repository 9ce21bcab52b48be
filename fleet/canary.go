package fleet

import (
	"context"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/gantry-dev/gantry/canary"
	"github.com/gantry-dev/gantry/config"
	"github.com/gantry-dev/gantry/inventory"
	"github.com/gantry-dev/gantry/lb"
	"github.com/gantry-dev/gantry/rollout"
)

// accessLog is one load balancer and the access log a canary is judged
// from.
type accessLog struct {
	lb   lb.Options
	file string
}

// accessLogs pairs each load balancer of env with its access_log.
func accessLogs(env config.Environment, opts []lb.Options) []accessLog {
	var out []accessLog
	for i, lc := range env.LoadBalancers {
		out = append(out, accessLog{lb: opts[i], file: lc.AccessLog})
	}
	return out
}

// logJudge judges a canary from the load balancers' access logs: each read
// is aggregated on the load balancer (only counts and latency buckets per
// upstream address come back), and the canary hosts' upstream addresses
// are compared with the baseline's over the same stretch of every log.
type logJudge struct {
	logs       []accessLog
	ports      []int // the service's ports: an upstream address is host:port
	thresholds canary.Thresholds
	out        io.Writer

	mu    sync.Mutex
	at    []lb.LogPosition
	stats *canary.Stats
	// reads is the time each read of all the logs took, for the report.
	reads []time.Duration
	bytes int64
}

func newLogJudge(logs []accessLog, svc config.Service, t canary.Thresholds, out io.Writer) *logJudge {
	ports := []int{svc.Port}
	for _, p := range svc.Ports {
		if p != svc.Port {
			ports = append(ports, p)
		}
	}
	return &logJudge{logs: logs, ports: ports, thresholds: t, out: out}
}

// Mark records where every log ends now: the window starts there.
func (j *logJudge) Mark(ctx context.Context) error {
	at := make([]lb.LogPosition, len(j.logs))
	errs := make([]error, len(j.logs))
	var g errgroup.Group
	for i, l := range j.logs {
		g.Go(func() error {
			at[i], errs[i] = l.lb.AccessLogStart(ctx, l.file)
			return nil
		})
	}
	_ = g.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	j.at, j.stats = at, canary.NewStats()
	return nil
}

// Judge reads what every log got since the last read, adds it to the
// window's counts and judges the canary hosts against the baseline.
func (j *logJudge) Judge(ctx context.Context, canaryHosts, baseline []inventory.Host, window time.Duration) (rollout.CanaryVerdict, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	start := time.Now()
	reads := make([]lb.LogRead, len(j.logs))
	errs := make([]error, len(j.logs))
	var g errgroup.Group
	for i, l := range j.logs {
		g.Go(func() error {
			reads[i], errs[i] = l.lb.ReadAccessLog(ctx, j.at[i])
			return nil
		})
	}
	_ = g.Wait()
	for i, err := range errs {
		if err != nil {
			return rollout.CanaryVerdict{}, err
		}
		j.at[i] = reads[i].Next
		j.stats.Merge(reads[i].Stats)
		j.bytes += reads[i].Bytes
		for _, n := range reads[i].Notes {
			fmt.Fprintf(j.out, "warning: canary: %s: %s\n", j.logs[i].lb.Name, n)
		}
	}
	j.reads = append(j.reads, time.Since(start))
	v := canary.Judge(j.stats.Sum(j.addrs(canaryHosts)...), j.stats.Sum(j.addrs(baseline)...), window, j.thresholds)
	out := rollout.CanaryVerdict{Summary: v.Reason, Figures: v}
	// Too few requests: the executor applies the plan's inconclusive rule
	// (pass, fail, or bake on up to the longest bake) once, at the end.
	switch {
	case v.Inconclusive:
		out.Result = rollout.CanaryInconclusive
		out.Summary = fmt.Sprintf("%d canary requests, fewer than the %d needed, over %s", v.Canary.Requests, j.thresholds.MinRequests, window.Round(100*time.Millisecond))
	case v.Outcome == canary.Pass:
		out.Result = rollout.CanaryPass
	default:
		out.Result = rollout.CanaryFail
	}
	return out, nil
}

// addrs are the upstream addresses the load balancers know hosts by.
func (j *logJudge) addrs(hosts []inventory.Host) []string {
	var out []string
	for _, h := range hosts {
		for _, p := range j.ports {
			out = append(out, net.JoinHostPort(h.Address, strconv.Itoa(p)))
		}
	}
	return out
}

// canaryOf is the canary stage a run of svc bakes: the config's, unless
// the run says otherwise (--canary with none configured: one host and the
// default rules; --no-canary: none). A worker has none: no traffic.
func canaryOf(svc config.Service, override *bool) *config.Canary {
	if svc.Worker() {
		return nil
	}
	switch {
	case override != nil && !*override:
		return nil
	case svc.Canary != nil:
		return svc.Canary
	case override != nil:
		return &config.Canary{Hosts: config.Count{N: 1}, Bake: config.Duration(config.DefaultCanaryBake)}
	}
	return nil
}

// reportReads prints how long the bake's reads of the access logs took.
func (j *logJudge) reportReads(out io.Writer) {
	j.mu.Lock()
	times, bytes := slices.Clone(j.reads), j.bytes
	j.mu.Unlock()
	if len(times) == 0 {
		return
	}
	slices.Sort(times)
	fmt.Fprintf(out, "canary: %d reads of %d load balancer access log(s), median %s, max %s each; %.1f MiB aggregated on the load balancers\n",
		len(times), len(j.logs), times[len(times)/2].Round(time.Millisecond), times[len(times)-1].Round(time.Millisecond), float64(bytes)/(1<<20))
}
