package config

import (
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/canary"
)

// withLB returns minimalYAML with a load balancer (lines added to it) in
// front of environment lab and lines added to service www.
func withLB(t *testing.T, lbLines, svcLines string) string {
	t.Helper()
	data := withService(t, svcLines)
	return edit(t, data, "        services: [www]\n", "        services: [www]\n    load_balancers:\n      - name: lb1\n        address: 127.0.1.1\n        upstreams_dir: /etc/nginx/gantry\n"+lbLines)
}

func TestCanaryAccepted(t *testing.T) {
	data := withLB(t, "        access_log: /var/log/nginx/gantry-canary.log\n",
		"    canary:\n      hosts: 25%\n      bake: 2m\n      max_error_rate: 2%\n      max_p99: 800ms\n      max_p50_factor: 1.2\n      min_requests: 50\n      inconclusive: extend\n      max_bake: 10m\n")
	c, err := Parse("/srv/deploy/gantry.yml", []byte(data))
	if err != nil {
		t.Fatalf("Parse: %v\nconfig:\n%s", err, data)
	}
	cn := c.Services["www"].Canary
	if cn.Hosts.Of(8) != 2 || cn.Bake.D() != 2*time.Minute {
		t.Errorf("hosts %s of 8 = %d, bake %s; want 2 and 2m", cn.Hosts, cn.Hosts.Of(8), cn.Bake.D())
	}
	th := cn.Thresholds(true)
	want := canary.DefaultThresholds(true)
	want.MaxErrorRate, want.MaxP99, want.MaxP50Factor, want.MinRequests, want.Inconclusive, want.MaxBake = 0.02, 800*time.Millisecond, 1.2, 50, canary.InconclusiveExtend, 10*time.Minute
	if th != want {
		t.Errorf("thresholds %+v\nwant %+v", th, want)
	}
	if got := c.Environments["lab"].LoadBalancers[0].AccessLog; got != "/var/log/nginx/gantry-canary.log" {
		t.Errorf("access_log %q", got)
	}
	// Defaults: one host, a minute, inconclusive fails in production only.
	d, err := Parse("/srv/deploy/gantry.yml", []byte(withLB(t, "        access_log: /var/log/nginx/a.log\n", "    canary: {}\n")))
	if err != nil {
		t.Fatal(err)
	}
	dc := d.Services["www"].Canary
	if dc.Hosts.Of(10) != 1 || dc.Bake.D() != DefaultCanaryBake || dc.Thresholds(true).Inconclusive != canary.InconclusiveFail || dc.Thresholds(false).Inconclusive != canary.InconclusivePass {
		t.Errorf("defaults: hosts %d, bake %s, inconclusive %s / %s", dc.Hosts.Of(10), dc.Bake.D(), dc.Thresholds(true).Inconclusive, dc.Thresholds(false).Inconclusive)
	}
}

func TestCanaryRejected(t *testing.T) {
	const file = "/srv/deploy/gantry.yml"
	withLog := "        access_log: /var/log/nginx/gantry-canary.log\n"
	tests := []struct {
		name         string
		lbLines, svc string
		want         []string
	}{
		{"no access log", "", "    canary: {hosts: 1}\n", []string{"environments.lab.load_balancers[0].access_log", "required", "services.www has a canary", "log_format gantry_canary"}},
		{"relative access log", "        access_log: logs/a.log\n", "", []string{"environments.lab.load_balancers[0].access_log", "absolute path"}},
		{"share not a share", withLog, "    canary: {max_error_rate: lots}\n", []string{"services.www.canary.max_error_rate", "not a share"}},
		{"share above 100%", withLog, "    canary: {max_error_rate: 150%}\n", []string{"services.www.canary.max_error_rate", "not a share"}},
		{"zero hosts", withLog, "    canary: {hosts: 0}\n", []string{"services.www.canary.hosts", "how many hosts move first"}},
		{"bake too short", withLog, "    canary: {bake: 10ms}\n", []string{"services.www.canary.bake", "too short"}},
		{"bad inconclusive", withLog, "    canary: {inconclusive: maybe}\n", []string{"services.www.canary", "maybe", "fail, pass, extend"}},
		{"factor below 1", withLog, "    canary: {max_p99_factor: 0.5}\n", []string{"services.www.canary", "factor below 1"}},
		{"unknown key", withLog, "    canary: {hosts: 1, percent: 3}\n", []string{"services.www.canary", "percent"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			data := withLB(t, tc.lbLines, tc.svc)
			_, err := Parse(file, []byte(data))
			if err == nil {
				t.Fatalf("Parse succeeded, want an error; config:\n%s", data)
			}
			for _, w := range append([]string{file + ": "}, tc.want...) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not contain %q:\n%s", w, err)
				}
			}
		})
	}
}
