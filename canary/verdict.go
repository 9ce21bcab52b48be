package canary

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Inconclusive says what a bake with too few canary requests leads to.
type Inconclusive string

// The behaviours of an inconclusive bake.
const (
	// InconclusiveFail fails the canary: nothing proves the new version
	// good (the default for production environments).
	InconclusiveFail Inconclusive = "fail"
	// InconclusivePass lets the rollout go on.
	InconclusivePass Inconclusive = "pass"
	// InconclusiveExtend keeps baking, up to MaxBake, then fails.
	InconclusiveExtend Inconclusive = "extend"
)

// Defaults of Thresholds (see DefaultThresholds).
const (
	DefaultMaxErrorRate     = 0.05
	DefaultMaxErrorIncrease = 0.01
	DefaultMaxErrorFactor   = 2.0
	DefaultMaxP50Factor     = 1.5
	DefaultMaxP99Factor     = 2.0
	DefaultLatencySlack     = 50 * time.Millisecond
	DefaultMinRequests      = 100
	DefaultMaxBake          = 10 * time.Minute
)

// Thresholds are the rules a canary is judged by. A zero field turns its
// rule off, except where said otherwise; DefaultThresholds gives sensible
// values.
type Thresholds struct {
	// MaxErrorRate fails the canary when its error rate (5xx and
	// connection failures per request) is above it, whatever the
	// baseline's: 0.05 is 5%.
	MaxErrorRate float64
	// MaxErrorIncrease and MaxErrorFactor compare with the baseline: the
	// canary fails when its error rate is above the baseline's by more
	// than MaxErrorIncrease (0.01: one percentage point) and is more than
	// MaxErrorFactor times the baseline's. Either alone applies when the
	// other is zero. Both together keep a single error against a clean
	// baseline, or a small rise of an already noisy one, from failing the
	// canary.
	MaxErrorIncrease float64
	MaxErrorFactor   float64
	// MaxP50 and MaxP99 fail the canary when its estimated median or
	// 99th percentile response time is above them.
	MaxP50, MaxP99 time.Duration
	// MaxP50Factor and MaxP99Factor fail the canary when its median or
	// 99th percentile is more than that many times the baseline's and
	// also more than LatencySlack above it (differences within the slack
	// never fail: a 1 ms baseline against 3 ms is noise, and the
	// histogram's buckets are about 40% wide).
	MaxP50Factor, MaxP99Factor float64
	LatencySlack               time.Duration
	// MinRequests is the number of canary requests below which the
	// figures prove nothing: the bake is inconclusive. The relative rules
	// also need the baseline to have that many; without them only the
	// absolute ones apply.
	MinRequests int64
	// Inconclusive is what an inconclusive bake leads to (default fail).
	Inconclusive Inconclusive
	// MaxBake bounds an extended bake (InconclusiveExtend): a window that
	// reaches it with too few requests fails (DefaultMaxBake when zero).
	MaxBake time.Duration
}

// DefaultThresholds returns the default rules: error rate at most 5%, and
// not both one point and twice above the baseline's; median at most 1.5
// and p99 at most 2 times the baseline's (beyond 50 ms of slack); no
// absolute latency bound; at least 100 canary requests. An inconclusive
// bake fails in a production environment and passes elsewhere.
func DefaultThresholds(production bool) Thresholds {
	t := Thresholds{
		MaxErrorRate:     DefaultMaxErrorRate,
		MaxErrorIncrease: DefaultMaxErrorIncrease,
		MaxErrorFactor:   DefaultMaxErrorFactor,
		MaxP50Factor:     DefaultMaxP50Factor,
		MaxP99Factor:     DefaultMaxP99Factor,
		LatencySlack:     DefaultLatencySlack,
		MinRequests:      DefaultMinRequests,
		Inconclusive:     InconclusivePass,
		MaxBake:          DefaultMaxBake,
	}
	if production {
		t.Inconclusive = InconclusiveFail
	}
	return t
}

// Validate reports thresholds that cannot be meant.
func (t Thresholds) Validate() error {
	switch {
	case t.MaxErrorRate < 0 || t.MaxErrorRate > 1:
		return fmt.Errorf("max error rate %v is not a share between 0 and 1", t.MaxErrorRate)
	case t.MaxErrorIncrease < 0 || t.MaxErrorIncrease > 1:
		return fmt.Errorf("max error increase %v is not a share between 0 and 1", t.MaxErrorIncrease)
	case t.MaxErrorFactor < 0, t.MaxP50Factor < 0, t.MaxP99Factor < 0:
		return fmt.Errorf("a factor is negative")
	case t.MaxErrorFactor > 0 && t.MaxErrorFactor < 1, t.MaxP50Factor > 0 && t.MaxP50Factor < 1, t.MaxP99Factor > 0 && t.MaxP99Factor < 1:
		return fmt.Errorf("a factor below 1 would fail a canary that equals its baseline")
	case t.MaxP50 < 0 || t.MaxP99 < 0 || t.LatencySlack < 0 || t.MaxBake < 0:
		return fmt.Errorf("a duration is negative")
	case t.MinRequests < 0:
		return fmt.Errorf("min requests %d is negative", t.MinRequests)
	}
	switch t.Inconclusive {
	case "", InconclusiveFail, InconclusivePass, InconclusiveExtend:
	default:
		return fmt.Errorf("inconclusive %q is none of fail, pass, extend", t.Inconclusive)
	}
	return nil
}

// Criteria says in a line what fails a canary under t, for the plan.
func (t Thresholds) Criteria() string {
	var parts []string
	if t.MaxErrorRate > 0 {
		parts = append(parts, fmt.Sprintf("5xx above %g%%", t.MaxErrorRate*100))
	}
	switch {
	case t.MaxErrorIncrease > 0 && t.MaxErrorFactor > 0:
		parts = append(parts, fmt.Sprintf("5xx both %g percentage point(s) and %g× above the baseline's", t.MaxErrorIncrease*100, t.MaxErrorFactor))
	case t.MaxErrorIncrease > 0:
		parts = append(parts, fmt.Sprintf("5xx %g percentage point(s) above the baseline's", t.MaxErrorIncrease*100))
	case t.MaxErrorFactor > 0:
		parts = append(parts, fmt.Sprintf("5xx %g× the baseline's", t.MaxErrorFactor))
	}
	if t.MaxP50 > 0 {
		parts = append(parts, "p50 above "+t.MaxP50.String())
	}
	if t.MaxP99 > 0 {
		parts = append(parts, "p99 above "+t.MaxP99.String())
	}
	if t.MaxP50Factor > 0 {
		parts = append(parts, fmt.Sprintf("p50 %g× the baseline's", t.MaxP50Factor))
	}
	if t.MaxP99Factor > 0 {
		parts = append(parts, fmt.Sprintf("p99 %g× the baseline's", t.MaxP99Factor))
	}
	s := strings.Join(parts, ", ")
	if t.LatencySlack > 0 && (t.MaxP50Factor > 0 || t.MaxP99Factor > 0) {
		s += fmt.Sprintf(" (and %s above it)", t.LatencySlack)
	}
	return s + fmt.Sprintf("; needs %d canary requests", t.MinRequests)
}

// Outcome is what a verdict means for the rollout.
type Outcome string

// The outcomes of a verdict.
const (
	// Pass: the rollout goes on with the remaining batches.
	Pass Outcome = "pass"
	// Fail: the canary hosts are reverted and the run fails.
	Fail Outcome = "fail"
	// Extend: too few requests yet; keep baking and judge again with a
	// longer window.
	Extend Outcome = "extend"
)

// Rule names the rule that decided a verdict.
type Rule string

// The rules.
const (
	RuleNone          Rule = ""                       // every rule held
	RuleMinRequests   Rule = "min_requests"           // too few canary requests
	RuleErrorRate     Rule = "error_rate"             // above MaxErrorRate
	RuleErrorRelative Rule = "error_rate_vs_baseline" // above the baseline's by too much
	RuleP50           Rule = "p50"                    // above MaxP50
	RuleP50Relative   Rule = "p50_vs_baseline"        // too far above the baseline's
	RuleP99           Rule = "p99"                    // above MaxP99
	RuleP99Relative   Rule = "p99_vs_baseline"        // too far above the baseline's
)

// Figures are one side's numbers over the window.
type Figures struct {
	Requests      int64
	Errors        int64
	GatewayErrors int64
	Aborted       int64
	ErrorRate     float64
	P50, P99      time.Duration
	// Latencies counts the requests with a response time (the p50 and
	// p99 are estimated from them).
	Latencies int64
}

// FiguresOf sums up counts.
func FiguresOf(c Counts) Figures {
	return Figures{
		Requests:      c.Requests,
		Errors:        c.Errors,
		GatewayErrors: c.GatewayErrors,
		Aborted:       c.Aborted,
		ErrorRate:     c.ErrorRate(),
		P50:           c.Latency.Quantile(0.50),
		P99:           c.Latency.Quantile(0.99),
		Latencies:     c.Latency.Count(),
	}
}

// MarshalJSON writes durations as milliseconds (p50_ms, p99_ms).
func (f Figures) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Requests      int64   `json:"requests"`
		Errors        int64   `json:"errors"`
		GatewayErrors int64   `json:"gateway_errors"`
		Aborted       int64   `json:"aborted"`
		ErrorRate     float64 `json:"error_rate"`
		P50MS         float64 `json:"p50_ms"`
		P99MS         float64 `json:"p99_ms"`
	}{f.Requests, f.Errors, f.GatewayErrors, f.Aborted, f.ErrorRate, ms(f.P50), ms(f.P99)})
}

func ms(d time.Duration) float64 { return math.Round(float64(d)/float64(time.Millisecond)*10) / 10 }

// Verdict is the judgement of a bake.
type Verdict struct {
	Outcome Outcome `json:"outcome"`
	// Inconclusive is set when the canary had fewer than MinRequests:
	// Outcome then comes from the Inconclusive behaviour.
	Inconclusive bool `json:"inconclusive"`
	// Rule names the rule that failed the canary, or made it
	// inconclusive.
	Rule Rule `json:"rule,omitempty"`
	// Reason says it in a sentence, with the figures, e.g. "canary
	// failed: 5xx 7.9% (312 of 3,950) vs baseline 0.0% (0 of 11,802) over
	// 60 s".
	Reason   string        `json:"reason"`
	Window   time.Duration `json:"-"`
	Canary   Figures       `json:"canary"`
	Baseline Figures       `json:"baseline"`
}

// MarshalJSON adds window_s to the verdict's fields.
func (v Verdict) MarshalJSON() ([]byte, error) {
	type plain Verdict
	return json.Marshal(struct {
		plain
		WindowS float64 `json:"window_s"`
	}{plain(v), v.Window.Seconds()})
}

// Judge compares the canary hosts' counts with the baseline hosts' over
// window (the same stretch of log for both). The rules, in order: too few
// canary requests (inconclusive); error rate absolute, then against the
// baseline; p50 and p99 absolute, then against the baseline. The first
// rule broken fails the canary and names itself; else it passes. The
// relative rules are skipped, and the reason says so, when the baseline
// has fewer than MinRequests requests.
func Judge(canary, baseline Counts, window time.Duration, t Thresholds) Verdict {
	c, b := FiguresOf(canary), FiguresOf(baseline)
	v := Verdict{Window: window, Canary: c, Baseline: b}
	over := " over " + seconds(window)
	errs := "5xx " + pct(c.ErrorRate) + " (" + count(c.Errors) + " of " + count(c.Requests) + ") vs baseline " +
		pct(b.ErrorRate) + " (" + count(b.Errors) + " of " + count(b.Requests) + ")"
	fail := func(r Rule, what string) Verdict {
		v.Outcome, v.Rule, v.Reason = Fail, r, "canary failed: "+what+over
		return v
	}

	if c.Requests < t.MinRequests || c.Requests == 0 {
		v.Inconclusive, v.Rule = true, RuleMinRequests
		what := fmt.Sprintf("%s canary requests, fewer than the %s needed", count(c.Requests), count(t.MinRequests)) + over
		maxBake := t.MaxBake
		if maxBake == 0 {
			maxBake = DefaultMaxBake
		}
		switch t.Inconclusive {
		case InconclusivePass:
			v.Outcome, v.Reason = Pass, "canary inconclusive, passed (inconclusive: pass): "+what
		case InconclusiveExtend:
			if window < maxBake {
				v.Outcome, v.Reason = Extend, "canary inconclusive, baking on up to "+seconds(maxBake)+": "+what
			} else {
				v.Outcome, v.Reason = Fail, "canary inconclusive after the longest bake ("+seconds(maxBake)+"), failed: "+what
			}
		default:
			v.Outcome, v.Reason = Fail, "canary inconclusive, failed (inconclusive: fail): "+what
		}
		return v
	}
	relative := b.Requests >= t.MinRequests && b.Requests > 0

	if t.MaxErrorRate > 0 && c.ErrorRate > t.MaxErrorRate {
		return fail(RuleErrorRate, errs+", above the "+pct(t.MaxErrorRate)+" allowed")
	}
	if relative && (t.MaxErrorIncrease > 0 || t.MaxErrorFactor > 0) {
		up := t.MaxErrorIncrease == 0 || c.ErrorRate-b.ErrorRate > t.MaxErrorIncrease
		times := t.MaxErrorFactor == 0 || c.ErrorRate > b.ErrorRate*t.MaxErrorFactor
		if up && times {
			var limits []string
			if t.MaxErrorIncrease > 0 {
				limits = append(limits, "+"+points(t.MaxErrorIncrease))
			}
			if t.MaxErrorFactor > 0 {
				limits = append(limits, factor(t.MaxErrorFactor))
			}
			return fail(RuleErrorRelative, errs+", above the baseline by more than "+strings.Join(limits, " and "))
		}
	}
	lat := func(name string, cv, bv time.Duration) string {
		return name + " " + millis(cv) + " vs baseline " + millis(bv)
	}
	if t.MaxP50 > 0 && c.P50 > t.MaxP50 {
		return fail(RuleP50, lat("p50", c.P50, b.P50)+", above the "+millis(t.MaxP50)+" allowed")
	}
	if t.MaxP99 > 0 && c.P99 > t.MaxP99 {
		return fail(RuleP99, lat("p99", c.P99, b.P99)+", above the "+millis(t.MaxP99)+" allowed")
	}
	if relative && b.Latencies > 0 && c.Latencies > 0 {
		slower := func(f float64, cv, bv time.Duration) bool {
			return f > 0 && float64(cv) > f*float64(bv) && cv-bv > t.LatencySlack
		}
		if slower(t.MaxP50Factor, c.P50, b.P50) {
			return fail(RuleP50Relative, lat("p50", c.P50, b.P50)+", more than "+factor(t.MaxP50Factor)+" and "+millis(t.LatencySlack)+" above it")
		}
		if slower(t.MaxP99Factor, c.P99, b.P99) {
			return fail(RuleP99Relative, lat("p99", c.P99, b.P99)+", more than "+factor(t.MaxP99Factor)+" and "+millis(t.LatencySlack)+" above it")
		}
	}
	v.Outcome = Pass
	v.Reason = "canary passed: " + errs + ", " + lat("p50", c.P50, b.P50) + ", " + lat("p99", c.P99, b.P99) + over
	if !relative {
		v.Reason += " (baseline has fewer than " + count(t.MinRequests) + " requests: compared with the absolute limits only)"
	}
	return v
}

// pct formats a share as a percentage with one decimal: "7.9%".
func pct(f float64) string { return strconv.FormatFloat(f*100, 'f', 1, 64) + "%" }

// points formats a share as percentage points: "1.0 points".
func points(f float64) string { return strconv.FormatFloat(f*100, 'f', 1, 64) + " points" }

// factor formats a factor: "2×", "1.5×".
func factor(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) + "×" }

// millis formats a duration in milliseconds: "812 ms", "0.5 ms".
func millis(d time.Duration) string {
	m := float64(d) / float64(time.Millisecond)
	if m < 10 && m != math.Trunc(m) {
		return strconv.FormatFloat(m, 'f', 1, 64) + " ms"
	}
	return strconv.FormatFloat(math.Round(m), 'f', 0, 64) + " ms"
}

// seconds formats a window: "60 s", "1.5 s".
func seconds(d time.Duration) string {
	return strconv.FormatFloat(math.Round(d.Seconds()*10)/10, 'f', -1, 64) + " s"
}

// count formats a count with thousands separators: "11,802".
func count(n int64) string {
	s := strconv.FormatInt(n, 10)
	if n < 0 {
		return s
	}
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
