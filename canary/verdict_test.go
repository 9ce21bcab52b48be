package canary

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// side returns counts of n requests, errs of them 5xx (gw of those
// 502/504), every one answered in ms milliseconds but slow of them in
// slowMS.
func side(n, errs, gw int64, ms, slow, slowMS int64) Counts {
	c := Counts{Requests: n, Errors: errs, GatewayErrors: gw}
	c.Latency[Bucket(ms)] += n - slow
	c.Latency[Bucket(slowMS)] += slow
	return c
}

func TestJudge(t *testing.T) {
	def := DefaultThresholds(true)
	strict := def
	strict.MaxP50, strict.MaxP99 = 100*time.Millisecond, time.Second
	extend := def
	extend.Inconclusive, extend.MaxBake = InconclusiveExtend, 3*time.Minute
	pass := def
	pass.Inconclusive = InconclusivePass
	onlyPoints := def
	onlyPoints.MaxErrorFactor = 0
	onlyFactor := def
	onlyFactor.MaxErrorIncrease = 0
	noAbs := def
	noAbs.MaxErrorRate = 0

	healthy := side(11802, 0, 0, 2, 100, 40)
	tests := []struct {
		name         string
		canary, base Counts
		window       time.Duration
		t            Thresholds
		outcome      Outcome
		rule         Rule
		inconclusive bool
		reason       string
	}{
		{"the issue's example: 5xx above the absolute limit",
			side(3950, 312, 0, 2, 0, 0), healthy, time.Minute, def, Fail, RuleErrorRate, false,
			"canary failed: 5xx 7.9% (312 of 3,950) vs baseline 0.0% (0 of 11,802), above the 5.0% allowed over 60 s"},
		{"a good canary passes",
			side(3950, 1, 0, 2, 40, 40), side(11802, 2, 0, 2, 118, 40), time.Minute, def, Pass, RuleNone, false,
			"canary passed: 5xx 0.0% (1 of 3,950) vs baseline 0.0% (2 of 11,802), p50 1.5 ms vs baseline 1.5 ms, p99 32 ms vs baseline 2.0 ms over 60 s"},
		{"errors above the baseline by more than a point and twice",
			side(1000, 30, 0, 2, 0, 0), side(10000, 50, 0, 2, 0, 0), time.Minute, def, Fail, RuleErrorRelative, false,
			"canary failed: 5xx 3.0% (30 of 1,000) vs baseline 0.5% (50 of 10,000), above the baseline by more than +1.0 points and 2× over 60 s"},
		{"a rise of a noisy baseline under twice it passes",
			side(1000, 45, 0, 2, 0, 0), side(10000, 300, 0, 2, 0, 0), time.Minute, def, Pass, RuleNone, false, ""},
		{"a single error against a clean baseline passes",
			side(1000, 1, 1, 2, 0, 0), side(10000, 0, 0, 2, 0, 0), time.Minute, def, Pass, RuleNone, false, ""},
		{"points alone: 1.5 points over a noisy baseline fails",
			side(1000, 45, 0, 2, 0, 0), side(10000, 300, 0, 2, 0, 0), time.Minute, onlyPoints, Fail, RuleErrorRelative, false,
			"canary failed: 5xx 4.5% (45 of 1,000) vs baseline 3.0% (300 of 10,000), above the baseline by more than +1.0 points over 60 s"},
		{"factor alone: one error against a clean baseline fails",
			side(1000, 1, 0, 2, 0, 0), side(10000, 0, 0, 2, 0, 0), time.Minute, onlyFactor, Fail, RuleErrorRelative, false, ""},
		{"connection failures count as errors",
			side(1000, 100, 100, 2, 0, 0), healthy, 30 * time.Second, noAbs, Fail, RuleErrorRelative, false,
			"canary failed: 5xx 10.0% (100 of 1,000) vs baseline 0.0% (0 of 11,802), above the baseline by more than +1.0 points and 2× over 30 s"},
		{"300 ms more on every request: p50 against the baseline",
			side(4000, 0, 0, 302, 40, 340), healthy, time.Minute, def, Fail, RuleP50Relative, false,
			"canary failed: p50 309 ms vs baseline 1.5 ms, more than 1.5× and 50 ms above it over 60 s"},
		{"absolute p50 comes first",
			side(4000, 0, 0, 302, 0, 0), healthy, time.Minute, strict, Fail, RuleP50, false,
			"canary failed: p50 309 ms vs baseline 1.5 ms, above the 100 ms allowed over 60 s"},
		{"a slow tail: p99 against the baseline",
			side(4000, 0, 0, 2, 200, 900), healthy, time.Minute, def, Fail, RuleP99Relative, false,
			"canary failed: p99 964 ms vs baseline 2.0 ms, more than 2× and 50 ms above it over 60 s"},
		{"absolute p99",
			side(4000, 0, 0, 2, 200, 1500), side(10000, 0, 0, 2, 500, 1500), time.Minute, strict, Fail, RuleP99, false,
			"canary failed: p99 1928 ms vs baseline 1928 ms, above the 1000 ms allowed over 60 s"},
		{"a slower canary within the slack passes",
			side(4000, 0, 0, 30, 0, 0), side(10000, 0, 0, 3, 0, 0), time.Minute, def, Pass, RuleNone, false, ""},
		{"too few requests: inconclusive, fails by default in production",
			side(42, 0, 0, 2, 0, 0), healthy, time.Minute, def, Fail, RuleMinRequests, true,
			"canary inconclusive, failed (inconclusive: fail): 42 canary requests, fewer than the 100 needed over 60 s"},
		{"too few requests, pass configured",
			side(42, 40, 0, 2, 0, 0), healthy, time.Minute, pass, Pass, RuleMinRequests, true,
			"canary inconclusive, passed (inconclusive: pass): 42 canary requests, fewer than the 100 needed over 60 s"},
		{"default outside production is pass",
			Counts{}, healthy, time.Minute, DefaultThresholds(false), Pass, RuleMinRequests, true, ""},
		{"too few requests, extend: bake on",
			side(42, 0, 0, 2, 0, 0), healthy, time.Minute, extend, Extend, RuleMinRequests, true,
			"canary inconclusive, baking on up to 180 s: 42 canary requests, fewer than the 100 needed over 60 s"},
		{"too few requests, extend, at the longest bake: fail",
			side(42, 0, 0, 2, 0, 0), healthy, 3 * time.Minute, extend, Fail, RuleMinRequests, true,
			"canary inconclusive after the longest bake (180 s), failed: 42 canary requests, fewer than the 100 needed over 180 s"},
		{"no canary request at all, even with MinRequests 0",
			Counts{}, healthy, time.Minute, Thresholds{}, Fail, RuleMinRequests, true, ""},
		{"a small baseline: only the absolute rules",
			side(1000, 30, 0, 400, 0, 0), side(50, 0, 0, 2, 0, 0), time.Minute, def, Pass, RuleNone, false,
			"canary passed: 5xx 3.0% (30 of 1,000) vs baseline 0.0% (0 of 50), p50 437 ms vs baseline 1.5 ms, p99 511 ms vs baseline 2.0 ms over 60 s (baseline has fewer than 100 requests: compared with the absolute limits only)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := Judge(tc.canary, tc.base, tc.window, tc.t)
			if v.Outcome != tc.outcome || v.Rule != tc.rule || v.Inconclusive != tc.inconclusive {
				t.Errorf("got %s %q inconclusive=%v, want %s %q %v: %s", v.Outcome, v.Rule, v.Inconclusive, tc.outcome, tc.rule, tc.inconclusive, v.Reason)
			}
			if tc.reason != "" && v.Reason != tc.reason {
				t.Errorf("reason\n got %s\nwant %s", v.Reason, tc.reason)
			}
			if v.Canary.Requests != tc.canary.Requests || v.Baseline.Requests != tc.base.Requests || v.Window != tc.window {
				t.Errorf("figures %+v / %+v / %v", v.Canary, v.Baseline, v.Window)
			}
		})
	}
}

// TestJudgeRetriedRequests: a request nginx retried on a second server is
// a request (and here an error) of the first server too.
func TestJudgeRetriedRequests(t *testing.T) {
	var log strings.Builder
	for i := 0; i < 300; i++ {
		switch {
		case i%3 == 0: // canary refused the connection, the baseline took it
			log.WriteString(line("canary:80, base:80", "502, 200", "0.000, 0.002") + "\n")
		case i%3 == 1:
			log.WriteString(line("canary:80", "200", "0.002") + "\n")
		default:
			log.WriteString(line("base:80", "200", "0.002") + "\n")
		}
	}
	s := ParseLog(log.String())
	v := Judge(s.Sum("canary:80"), s.Sum("base:80"), 10*time.Second, DefaultThresholds(true))
	want := "canary failed: 5xx 50.0% (100 of 200) vs baseline 0.0% (0 of 200), above the 5.0% allowed over 10 s"
	if v.Outcome != Fail || v.Reason != want || v.Canary.GatewayErrors != 100 {
		t.Errorf("got %s %q (gateway errors %d), want fail %q", v.Outcome, v.Reason, v.Canary.GatewayErrors, want)
	}
}

func TestVerdictJSON(t *testing.T) {
	v := Judge(side(3950, 312, 12, 2, 0, 0), side(11802, 0, 0, 2, 0, 0), time.Minute, DefaultThresholds(true))
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	c := got["canary"].(map[string]any)
	if got["outcome"] != "fail" || got["rule"] != "error_rate" || got["window_s"] != 60.0 ||
		c["requests"] != 3950.0 || c["errors"] != 312.0 || c["gateway_errors"] != 12.0 || c["p50_ms"] == nil ||
		!strings.HasPrefix(got["reason"].(string), "canary failed: 5xx 7.9%") {
		t.Errorf("JSON %s", b)
	}
}

func TestThresholdsValidate(t *testing.T) {
	if err := DefaultThresholds(true).Validate(); err != nil {
		t.Errorf("defaults: %v", err)
	}
	for _, bad := range []Thresholds{
		{MaxErrorRate: 5},
		{MaxErrorIncrease: -0.1},
		{MaxP99Factor: 0.5},
		{MaxP50: -time.Second},
		{MinRequests: -1},
		{Inconclusive: "maybe"},
	} {
		if bad.Validate() == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}

func TestCount(t *testing.T) {
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 11802: "11,802", 1234567: "1,234,567"} {
		if got := count(n); got != want {
			t.Errorf("count(%d) = %s", n, got)
		}
	}
}

// TestCriteriaOfTheDefaults: the plan's line of what fails a canary under
// the default rules (README "Canary deploys" shows it).
func TestCriteriaOfTheDefaults(t *testing.T) {
	want := "5xx above 5%, 5xx both 1 percentage point(s) and 2× above the baseline's, p50 1.5× the baseline's, p99 2× the baseline's (and 50ms above it); needs 100 canary requests"
	if got := DefaultThresholds(true).Criteria(); got != want {
		t.Errorf("criteria\n%s\nwant\n%s", got, want)
	}
}
